"""The sale transaction a delivering payment posted (docs/ledger.md, "Payment captured and
codes delivered"), for tests that compare a refund's legs with the sale's."""

from __future__ import annotations

from engine.ledger.transactions import LedgerTransaction, transaction_id
from engine.sales.orders import Order


def sale_of(rt, order: Order) -> LedgerTransaction:
    """The sale transaction the order's (delivering) payment posted with it."""
    payment = order.payments[-1]
    return rt.store.get(transaction_id("sale", payment["payment_ref"]), "sale transaction")
