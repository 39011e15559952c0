"""What a direct top-up posts to the ledger (docs/ledger.md, "Direct top-up").

A top-up is paid before it is delivered, so its payment waits in ``liabilities:unearned``
until a supplier answers. Delivery recognises the revenue, the cost owed to the supplier
that credited the account (the offer's cost, as recorded when the attempt started) and the
commission; when every offer failed the payment is paid back from unearned. A supplier that
credits the account after we gave up on its attempt is still owed: its cost is posted as a
write-off, flagged for reconciliation by its memo.
"""

from __future__ import annotations

from typing import Any

from engine.kernel.money import Money
from engine.ledger.transactions import (
    COST_OF_SALES,
    SALES,
    UNEARNED,
    WRITE_OFFS,
    LedgerTransaction,
    Leg,
    clearing,
    supplier_payable,
)
from engine.sales.orders import Order
from engine.topups.fulfilment import Attempt

TOPUP = "topup"
LATE_MEMO = "top-up credited after we gave up"


def captured(order: Order, paid: dict[str, Any]) -> LedgerTransaction | None:
    """The payment of a top-up: held as unearned until a supplier answers."""
    amount = Money(paid["amount"], paid["currency"])
    legs = [Leg(clearing(paid["provider"]), amount, "capture"),
            Leg(UNEARNED, -amount, "capture: top-up not yet delivered")]
    return _post("sale", paid["payment_ref"], legs, _links(order), paid["actor"], order.tenant)


def delivered(order: Order, attempt: Attempt, commission: list[Leg],
              actor: str) -> LedgerTransaction | None:
    """A supplier credited the account: revenue, its cost owed to it, commission."""
    legs = [Leg(UNEARNED, order.total, "top-up delivered"),
            Leg(SALES, -order.total, "revenue"),
            Leg(COST_OF_SALES, attempt.cost, "top-up cost"),
            Leg(supplier_payable(attempt.supplier_id), -attempt.cost, "top-up cost"),
            *commission]
    links = {**_links(order), "supplier_id": attempt.supplier_id}
    return _post(TOPUP, str(order.id), legs, links, actor, order.tenant)


def refunded(order: Order, refund_id: str, actor: str) -> LedgerTransaction | None:
    """No supplier credited the account: the whole payment goes back."""
    payment = order.payments[-1]
    legs = [Leg(UNEARNED, order.total, "refund paid back"),
            Leg(clearing(payment["provider"]), -order.total, "refund paid back")]
    links = {**_links(order), "refund_id": refund_id}
    return _post("refund", refund_id, legs, links, actor, order.tenant)


def credited_late(order: Order, attempt: Attempt, actor: str) -> LedgerTransaction | None:
    """The supplier credited an attempt we had given up on: it is owed its cost, which the
    platform bears (the buyer was refunded, or credited by another supplier)."""
    legs = [Leg(WRITE_OFFS, attempt.cost, LATE_MEMO),
            Leg(supplier_payable(attempt.supplier_id), -attempt.cost, LATE_MEMO)]
    links = {**_links(order), "supplier_id": attempt.supplier_id}
    return _post(TOPUP, f"late:{attempt.reference}", legs, links, actor, order.tenant)


def _links(order: Order) -> dict[str, str]:
    links = {"order_id": str(order.id)}
    if order.payments:
        payment = order.payments[-1]
        links["payment_ref"] = payment["payment_ref"]
        links["provider"] = clearing(payment["provider"]).rsplit(":", 1)[1]
    if order.distributor_id:
        links["distributor_id"] = order.distributor_id
    return links


def _post(kind: str, cause: str, legs: list[Leg], links: dict[str, str], actor: str,
          tenant: str | None) -> LedgerTransaction | None:
    if not any(leg.amount.amount for leg in legs):
        return None  # a free top-up from a free offer moves no money
    return LedgerTransaction.post(kind=kind, cause=cause, legs=legs, links=links, actor=actor,
                                  tenant=tenant)
