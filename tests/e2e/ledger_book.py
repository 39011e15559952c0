"""Ledger transactions as docs/ledger.md posts them, saved directly (the tests' own book
keeping: each helper builds one transaction's legs from its business figures)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from engine.kernel.money import Money
from engine.ledger.transactions import (
    BANK,
    COMMISSION,
    COST_OF_SALES,
    SALES,
    UNEARNED,
    WRITE_OFFS,
    LedgerTransaction,
    Leg,
    clearing,
    distributor_payable,
    supplier_payable,
)


def _save(runtime, kind: str, legs: list[Leg], links: dict[str, str]) -> str:
    txn = LedgerTransaction.post(kind=kind, cause=uuid.uuid4().hex, legs=legs, links=links,
                                 actor="test", tenant=None)
    runtime.engine.writer.save(txn)
    return str(txn.id)


def post_sale(runtime, *, order_id: str, payment_ref: str, provider: str, paid: int,
              costs: Sequence[tuple[str, str, int]],
              commissions: Sequence[tuple[str, int]], currency: str = "CNY",
              commission_memo: str = "commission") -> str:
    """Capture ``paid``, recognise it, cost each (code_id, supplier, cost), and owe each
    (distributor, amount) its commission, nearest level first."""
    def money(minor: int) -> Money:
        return Money(minor, currency)

    legs = [Leg(clearing(provider), money(paid), "capture"),
            Leg(UNEARNED, money(-paid), "capture"),
            Leg(UNEARNED, money(paid), "revenue"), Leg(SALES, money(-paid), "revenue")]
    for code_id, supplier, cost in costs:
        legs += [Leg(COST_OF_SALES, money(cost), "cost", code_id),
                 Leg(supplier_payable(supplier), money(-cost), "cost", code_id)]
    for distributor, amount in commissions:
        legs += [Leg(COMMISSION, money(amount), commission_memo),
                 Leg(distributor_payable(distributor), money(-amount), commission_memo)]
    return _save(runtime, "sale", legs, {"order_id": order_id, "payment_ref": payment_ref,
                                         "provider": provider})


def post_refund(runtime, *, order_id: str, refund_id: str, payment_ref: str, provider: str,
                amount: int, returned: Sequence[tuple[str, str, int]] = (),
                written_off: Sequence[tuple[str, int]] = (),
                clawbacks: Sequence[tuple[str, int]] = (), currency: str = "CNY") -> str:
    """Pay ``amount`` back; codes (code_id, supplier, cost) back on sale, codes (code_id,
    cost) written off, and each (distributor, amount) clawed back."""
    def money(minor: int) -> Money:
        return Money(minor, currency)

    legs = [Leg(SALES, money(amount), "refund"), Leg(clearing(provider), money(-amount), "refund")]
    for code_id, supplier, cost in returned:
        legs += [Leg(supplier_payable(supplier), money(cost), "cost reversed", code_id),
                 Leg(COST_OF_SALES, money(-cost), "cost reversed", code_id)]
    for code_id, cost in written_off:
        legs += [Leg(WRITE_OFFS, money(cost), "written off", code_id),
                 Leg(COST_OF_SALES, money(-cost), "written off", code_id)]
    for distributor, amount in clawbacks:
        legs += [Leg(distributor_payable(distributor), money(amount), "clawback"),
                 Leg(COMMISSION, money(-amount), "clawback")]
    return _save(runtime, "refund", legs, {"order_id": order_id, "refund_id": refund_id,
                                           "payment_ref": payment_ref, "provider": provider})


def post_payout(runtime, *, distributor: str, amount: int, currency: str = "CNY") -> str:
    return _save(runtime, "payout", [
        Leg(distributor_payable(distributor), Money(amount, currency), "payout"),
        Leg(BANK, Money(-amount, currency), "payout")],
        {"payout_id": uuid.uuid4().hex, "distributor_id": distributor})


def post_settlement(runtime, *, supplier: str, amount: int, currency: str = "CNY") -> str:
    return _save(runtime, "settlement", [
        Leg(supplier_payable(supplier), Money(amount, currency), "settlement"),
        Leg(BANK, Money(-amount, currency), "settlement")],
        {"settlement_id": uuid.uuid4().hex, "supplier_id": supplier})
