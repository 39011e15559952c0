"""Stand-in for the sale postings (docs/ledger.md, "Payment captured and codes delivered")
until the pay path posts them itself: tests post an order's sale transaction right after
paying it. The one place to remove once the real one lands (then ``post_sale`` callers drop
the call and read the transaction the payment posted)."""

from __future__ import annotations

from uuid import UUID

from engine.distribution import commission_legs
from engine.ledger import (COMMISSION, COST_OF_SALES, SALES, UNEARNED, Leg, LedgerTransaction,
                           clearing, distributor_payable, supplier_payable)
from engine.money import Money
from engine.orders import Order


def post_sale(rt, order: Order) -> LedgerTransaction:
    """The sale transaction of the order's (delivering) payment, saved."""
    payment = order.payments[-1]
    paid = Money(payment["amount"], payment["currency"])
    legs = [Leg(clearing(payment["provider"]), paid, "capture"), Leg(UNEARNED, -paid, "capture"),
            Leg(UNEARNED, paid, "revenue"), Leg(SALES, -paid, "revenue")]
    for code in order.codes:
        batch = rt.store.get(UUID(rt.engine.codes.get(UUID(code["code_id"])).batch_id), "b")
        cost = Money(batch.unit_cost, batch.currency)
        legs += [Leg(COST_OF_SALES, cost, "cost", code["code_id"]),
                 Leg(supplier_payable(batch.supplier_id), -cost, "cost", code["code_id"])]
    legs += _commission(rt, order, paid)
    links = {"order_id": str(order.id), "payment_ref": payment["payment_ref"],
             "provider": payment["provider"] or "default"}
    sale = LedgerTransaction.post(kind="sale", cause=payment["payment_ref"], legs=legs,
                                  links=links, actor="t")
    rt.engine.writer.save(sale)
    return sale


def _commission(rt, order: Order, paid: Money) -> list[Leg]:
    if not order.distributor_id:
        return []
    rates = rt.engine.catalog.get(order.lines[0].sku).commission_rates_bp
    chain = [d.distributor_id for d in rt.engine.distribution.chain(order.distributor_id)]
    legs = []
    for distributor, level, amount in commission_legs(paid, rates, chain):
        memo = f"commission level {level}"
        legs += [Leg(COMMISSION, amount, memo), Leg(distributor_payable(distributor), -amount,
                                                    memo)]
    return legs
