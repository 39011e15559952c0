"""Paying an order: capture the payment and deliver in the same atomic save.

The order decides whether it takes the payment (engine/sales/orders.py); this use case finds the
codes to deliver: the ones the order holds or, for a late payment after expiry or
cancellation, fresh ones from the pool if stock allows (else the payment is kept and
refunded). A payment's id derives from its ``payment_ref``, so it exists at most once, and
so does the ledger transaction it posts (engine/sales/postings.py), saved in the same atomic save.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from engine.codes.codes import Code
from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel.errors import (
    ConcurrentUpdate,
    NotFound,
    PaymentRefReused,
    PriceBelowCost,
    SoldOut,
    ValidationFailed,
)
from engine.kernel.ids import payment_id
from engine.kernel.retry import retrying
from engine.ledger.transactions import clearing
from engine.sales.holding import OrderCodes
from engine.sales.orders import DELIVERED, FULFILLING, REFUNDED, Order, Payment
from engine.sales.postings import Sales

MAX_PAYMENT_REF = 128
LAPSED_OUT_OF_STOCK = "paid after the reservation lapsed; out of stock"
LAPSED_BELOW_COST = "paid after the reservation lapsed; the codes left cost more than the price"


# What a top-up's payment opens beside the order and its payment (its fulfilment and the
# capture posting): handed in by the composition, since top-ups build on sales and not the
# other way round.
TopupOpening = Callable[[Order, dict[str, Any]], Sequence[Any]]


class Paying:
    """The use case that turns a reservation into a delivery."""

    def __init__(self, store: EventStore, writer: Writer, codes: OrderCodes,
                 sales: Sales, open_topup: TopupOpening) -> None:
        self._store = store
        self._writer = writer
        self._codes = codes
        self._sales = sales
        self._open_topup = open_topup

    def pay(self, *, order_id: UUID, payment_ref: str, amount: int, currency: str,
            provider: str | None, actor: str, owner: str | None) -> Order:
        """Capture a payment and deliver in the same step; the same payment_ref acts once.
        With ``owner``, only that owner's order is found."""
        if not payment_ref or len(payment_ref) > MAX_PAYMENT_REF:
            raise ValidationFailed(f"payment_ref must be 1-{MAX_PAYMENT_REF} characters")
        clearing(provider)  # a provider names a ledger account: refused before anything moves
        paid = {"payment_ref": payment_ref, "amount": amount, "currency": currency,
                "provider": provider, "actor": actor}
        return retrying(lambda: self._pay_once(order_id, owner, paid),
                        what=f"order {order_id}")

    def _pay_once(self, order_id: UUID, owner: str | None, paid: dict[str, Any]) -> Order:
        order = self._load(order_id, owner)
        if not order.accepts_payment(paid["payment_ref"], paid["amount"], paid["currency"]):
            # a repeated callback: the first answer stands
            repeated: Order = self._store.get(order_id, f"order {order_id}")
            return repeated
        if order.is_topup:
            return self._pay_topup(order, paid)
        late = order.lapsed
        if late:
            codes, outcome = self._late(order, paid)
        else:
            codes, outcome = self._codes.held(order), DELIVERED
            order.pay(**paid)
        for code in codes:
            code.sell(order_id=str(order_id), actor=paid["actor"])
        payment = Payment(id=payment_id(paid["payment_ref"]), order_id=str(order_id),
                          outcome=outcome, **paid)
        posted = (self._sales.sale(order, codes, paid) if outcome == DELIVERED
                  else self._sales.refunded_on_arrival(order, paid))
        try:
            self._writer.save(order, payment, *codes, posted)
        except ConcurrentUpdate:
            if late:
                self._codes.give_back(codes, clashed=True)  # taken afresh by this attempt
            self._refuse_foreign_payment(paid["payment_ref"], order_id)
            raise
        return order

    def _pay_topup(self, order: Order, paid: dict[str, Any]) -> Order:
        """Capture a top-up's payment and open its fulfilment, in one save: no supplier is
        called here (a dispatcher does it outside every transaction, engine/topups/desk.py)."""
        order.pay_topup(**paid)
        payment = Payment(id=payment_id(paid["payment_ref"]), order_id=str(order.id),
                          outcome=FULFILLING, **paid)
        try:
            self._writer.save(order, payment, *self._open_topup(order, paid), remember=True)
        except ConcurrentUpdate:
            self._refuse_foreign_payment(paid["payment_ref"], order.id)
            raise
        return order

    def _load(self, order_id: UUID, owner: str | None) -> Order:
        order: Order = self._writer.load(order_id, f"order {order_id}")
        if not order.belongs_to(owner):
            raise NotFound(f"no order {order_id}")
        return order

    def _late(self, order: Order, paid: dict[str, Any]) -> tuple[list[Code], str]:
        """A payment after expiry or cancellation: deliver afresh if stock allows, at a
        price above the codes' cost (unless the product allows below), else record an
        automatic refund. Either way the payment is kept."""
        try:
            codes = self._codes.take(order.needs, str(order.id), order.buyer_id,
                                     paid["actor"])
        except SoldOut:
            order.refund_payment(reason=LAPSED_OUT_OF_STOCK, **paid)
            return [], REFUNDED
        try:
            self._sales.check_price(order, codes)
        except PriceBelowCost:
            self._codes.give_back(codes)
            order.refund_payment(reason=LAPSED_BELOW_COST, **paid)
            return [], REFUNDED
        order.pay(codes=[{"code_id": str(c.id), "sku": c.sku} for c in codes], **paid)
        return codes, DELIVERED

    def _refuse_foreign_payment(self, payment_ref: str, order_id: UUID) -> None:
        payment: Payment | None = self._store.find(payment_id(payment_ref))
        if payment is not None and payment.order_id != str(order_id):
            raise PaymentRefReused(f"payment_ref {payment_ref} belongs to another order")
