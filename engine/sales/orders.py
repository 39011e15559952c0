"""Orders, payments and purchase quotas: the aggregates of the sales path.

An order holds its codes from placement; payment sells them in the same transaction that
records the payment, so a paid order and its delivered codes can never be seen apart. A
payment's id derives from its ``payment_ref``: a provider calling back five times in parallel
creates one payment, and every other callback finds it and answers the same.

    reserved ──pay──▶ delivered
       │ ├──pay a top-up──▶ fulfilling ──supplier succeeded──▶ delivered
       │ │                   │  ▲   └──every offer failed──▶ refunded (automatic)
       │ │   unknown too long▼  │ support: failed (next offer)
       │ │             needs_attention ──support: succeeded──▶ delivered
       │ └──cancel──▶ cancelled ─┐
       └───expire───▶ expired  ──┴─late pay──▶ delivered (re-reserved) | refunded (no stock)
    delivered ──refund some──▶ partially_refunded ──refund the rest──▶ refunded
        └──────────────────refund all──────────────────────────────────┘

``codes`` are the codes the order holds now; ``released`` the ones it let go, and why
(expired, cancelled, refunded): both are derived from the events as they are applied, so
an order that lapsed, or was refunded, lists none of the codes that went back on sale.

The order guards its own transitions: each changing method refuses (InvalidState,
AmountMismatch, OrderExpired) a step the diagram does not draw, so a use case only loads,
asks the order and saves.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from engine.kernel.errors import (
    AlreadyRefunded,
    AmountMismatch,
    InvalidState,
    OrderExpired,
    PaymentRefReused,
    PurchaseLimitExceeded,
    ValidationFailed,
)
from engine.kernel.money import Money
from engine.kernel.tenancy import owner_tenant
from engine.sales.lines import OrderLine

RESERVED, DELIVERED, PARTIALLY_REFUNDED, REFUNDED, CANCELLED, EXPIRED = (
    "reserved", "delivered", "partially_refunded", "refunded", "cancelled", "expired")
FULFILLING, NEEDS_ATTENTION = "fulfilling", "needs_attention"  # a paid top-up, undecided


class Order(Aggregate):
    TOPIC = "quanyi:order"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:order.placed"
        class_version = 2
        buyer_id: str
        items: list[dict[str, Any]]
        needs: list[dict[str, Any]]
        amount: int
        currency: str
        channel: str | None
        distributor_id: str | None
        external_ref: str | None
        expires_at: datetime
        codes: list[dict[str, str]]
        actor: str
        owner: str  # the tenant (``tenant:<name>``) or key (``key:<id>``) it belongs to

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Orders placed before owners belong to the key that placed them."""
            state["owner"] = state["actor"]

    def __init__(self, *, id: UUID, buyer_id: str, items: list[dict[str, Any]],
                 needs: list[dict[str, Any]], amount: int, currency: str, channel: str | None,
                 distributor_id: str | None, external_ref: str | None, expires_at: datetime,
                 codes: list[dict[str, str]], actor: str, owner: str) -> None:
        self.owner = owner
        # a direct top-up's account: {"sealed": bound to the order id, "masked": for answers}
        self.recharge: dict[str, str] | None = None
        self.buyer_id = buyer_id
        self.items = items
        self.needs = needs  # code units per SKU, bundles expanded
        self.amount = amount
        self.currency = currency
        self.channel = channel
        self.distributor_id = distributor_id
        self.external_ref = external_ref
        self.expires_at = expires_at
        self.codes = codes  # held now
        self.delivered: list[dict[str, str]] = []  # as delivered, refunded ones included
        self.released: list[dict[str, str]] = []  # let go: code_id, sku, why
        self.refunded_code_ids: list[str] = []
        self.status = RESERVED
        self.payments: list[dict[str, Any]] = []
        self.refunds: list[dict[str, Any]] = []
        self.reveals = 0

    @property
    def is_topup(self) -> bool:
        """A direct top-up: no codes; a supplier credits the recharge account."""
        return self.recharge is not None

    @property
    def lines(self) -> list[OrderLine]:
        return [OrderLine.from_item(item, self.currency) for item in self.items]

    @property
    def total(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def lapsed(self) -> bool:
        """Expired or cancelled: a payment now needs codes taken afresh."""
        return self.status in (EXPIRED, CANCELLED)

    @property
    def code_ids(self) -> list[UUID]:
        return [UUID(c["code_id"]) for c in self.codes]

    def payment(self, payment_ref: str) -> dict[str, Any] | None:
        return next((p for p in self.payments if p["payment_ref"] == payment_ref), None)

    def check_amount(self, amount: int, currency: str) -> None:
        if amount != self.amount or currency != self.currency:
            raise AmountMismatch(f"order {self.id} is {self.amount} {self.currency}, "
                                 f"not {amount} {currency}")

    @property
    def tenant(self) -> str | None:
        """The tenant of its owner (None: a platform key's order)."""
        return owner_tenant(self.owner)

    def belongs_to(self, scope: str | None) -> bool:
        """Whether a caller limited to the owner ``scope`` may see it (None: anyone)."""
        return scope is None or scope == self.owner

    def accepts_payment(self, payment_ref: str, amount: int, currency: str) -> bool:
        """Whether this is a new payment the order can take; False for a repeated callback
        (the first answer stands). Raises when the order cannot take it, or when the
        payment_ref was taken with another amount."""
        taken = self.payment(payment_ref)
        if taken:
            if (taken["amount"], taken["currency"]) != (amount, currency):
                raise PaymentRefReused(f"payment_ref {payment_ref} paid {taken['amount']} "
                                       f"{taken['currency']} on order {self.id}")
            return False
        self.check_amount(amount, currency)
        if self.status not in (RESERVED, EXPIRED, CANCELLED):
            raise InvalidState(f"order {self.id} is already {self.status}")
        return True

    def is_due(self, now: datetime) -> bool:
        """Whether an unpaid reservation has run past its time."""
        return self.status == RESERVED and self.expires_at <= now

    def check_open(self) -> None:
        if self.status == EXPIRED:
            raise OrderExpired(f"order {self.id} has expired")
        if self.status != RESERVED:
            raise InvalidState(f"order {self.id} is {self.status}")

    # -- events ---------------------------------------------------------------------------

    class Paid(Aggregate.Event):
        TOPIC = "quanyi:order.paid"
        payment_ref: str
        amount: int
        currency: str
        provider: str | None
        codes: list[dict[str, str]]
        late: bool
        actor: str

        def apply(self, order: "Order") -> None:
            order.status = DELIVERED
            order.codes = self.codes
            order.delivered = list(self.codes)
            order.payments.append({"payment_ref": self.payment_ref, "amount": self.amount,
                                   "currency": self.currency, "provider": self.provider,
                                   "late": self.late, "at": self.timestamp})

    class PaymentRefunded(Aggregate.Event):
        """A payment that could not be honoured (no stock left after expiry), returned."""

        TOPIC = "quanyi:order.payment_refunded"
        payment_ref: str
        amount: int
        currency: str
        provider: str | None
        reason: str
        actor: str

        def apply(self, order: "Order") -> None:
            order.status = REFUNDED
            order.payments.append({"payment_ref": self.payment_ref, "amount": self.amount,
                                   "currency": self.currency, "provider": self.provider,
                                   "late": True, "at": self.timestamp})
            order.refunds.append({"refund_id": f"auto-{self.payment_ref}",
                                  "amount": self.amount, "reason": self.reason,
                                  "code_ids": [], "automatic": True, "at": self.timestamp})

    def pay(self, *, payment_ref: str, amount: int, currency: str, provider: str | None,
            actor: str, codes: list[dict[str, str]] | None = None) -> None:
        """Deliver on a new payment: the codes the order holds or, for a late payment
        (expired or cancelled), ``codes`` taken afresh."""
        self._check_new_payment(payment_ref, amount, currency)
        if self.lapsed != (codes is not None):
            raise InvalidState("a late payment, and only a late one, delivers codes taken "
                               "afresh")
        self.trigger_event(self.Paid, payment_ref=payment_ref, amount=amount,
                           currency=currency, provider=provider,
                           codes=self.codes if codes is None else codes, late=self.lapsed,
                           actor=actor)

    def refund_payment(self, *, payment_ref: str, amount: int, currency: str,
                       provider: str | None, reason: str, actor: str) -> None:
        """Keep and return a late payment that no stock is left to honour."""
        self._check_new_payment(payment_ref, amount, currency)
        if not self.lapsed:
            raise InvalidState(f"order {self.id} is {self.status}: only a late payment is "
                               "refunded on arrival")
        self.trigger_event(self.PaymentRefunded, payment_ref=payment_ref, amount=amount,
                           currency=currency, provider=provider, reason=reason, actor=actor)

    # -- direct top-up --------------------------------------------------------------------

    class TopupPaid(Aggregate.Event):
        """A top-up's payment captured: the order waits for a supplier (engine/topups/desk.py)."""

        TOPIC = "quanyi:order.topup_paid"
        payment_ref: str
        amount: int
        currency: str
        provider: str | None
        late: bool
        actor: str

        def apply(self, order: "Order") -> None:
            order.status = FULFILLING
            order.payments.append({"payment_ref": self.payment_ref, "amount": self.amount,
                                   "currency": self.currency, "provider": self.provider,
                                   "late": self.late, "at": self.timestamp})

    def name_recharge_account(self, *, sealed: str, masked: str) -> None:
        """A top-up order's account, given when it is placed (in the same save)."""
        if self.recharge is not None or self.status != RESERVED:
            raise InvalidState(f"order {self.id} already has its recharge account")
        self._name_recharge_account(sealed=sealed, masked=masked)

    @event("RechargeAccountNamed", topic="quanyi:order.recharge_account_named")
    def _name_recharge_account(self, sealed: str, masked: str) -> None:
        self.recharge = {"sealed": sealed, "masked": masked}

    def pay_topup(self, *, payment_ref: str, amount: int, currency: str,
                  provider: str | None, actor: str) -> None:
        """Take a top-up's payment; its fulfilment starts outside this step."""
        self._check_new_payment(payment_ref, amount, currency)
        if not self.is_topup:
            raise InvalidState(f"order {self.id} is not a top-up")
        self.trigger_event(self.TopupPaid, payment_ref=payment_ref, amount=amount,
                           currency=currency, provider=provider, late=self.lapsed,
                           actor=actor)

    def escalate_topup(self, *, reason: str) -> None:
        """A supplier's answer stayed unknown too long: support decides."""
        self._check_topup(FULFILLING)
        self._escalate_topup(reason=reason)

    @event("TopupNeedsAttention", topic="quanyi:order.topup_needs_attention")
    def _escalate_topup(self, reason: str) -> None:
        self.status = NEEDS_ATTENTION

    def resume_topup(self) -> None:
        """Support found the attempt failed: the next offer is tried."""
        self._check_topup(NEEDS_ATTENTION)
        self._resume_topup()

    @event("TopupResumed", topic="quanyi:order.topup_resumed")
    def _resume_topup(self) -> None:
        self.status = FULFILLING

    def deliver_topup(self, *, supplier_id: str, reference: str) -> None:
        """A supplier credited the account."""
        self._check_topup(FULFILLING, NEEDS_ATTENTION)
        self._deliver_topup(supplier_id=supplier_id, reference=reference)

    @event("TopupDelivered", topic="quanyi:order.topup_delivered")
    def _deliver_topup(self, supplier_id: str, reference: str) -> None:
        self.status = DELIVERED

    def refund_topup(self, *, refund_id: str, reason: str) -> None:
        """No supplier credited the account: the payment goes back, all of it."""
        self._check_topup(FULFILLING)
        self.trigger_event(self.TopupRefunded, refund_id=refund_id,
                           amount=Money(self.amount, self.currency), reason=reason)

    class TopupRefunded(Aggregate.Event):
        TOPIC = "quanyi:order.topup_refunded"
        refund_id: str
        amount: Money
        reason: str

        def apply(self, order: "Order") -> None:
            order.status = REFUNDED
            order.refunds.append({"refund_id": self.refund_id, "amount": self.amount.amount,
                                  "currency": self.amount.currency, "reason": self.reason,
                                  "code_ids": [], "automatic": True, "at": self.timestamp})

    def _check_topup(self, *statuses: str) -> None:
        if not self.is_topup or self.status not in statuses:
            raise InvalidState(f"order {self.id} is {self.status}")

    def _check_new_payment(self, payment_ref: str, amount: int, currency: str) -> None:
        if not self.accepts_payment(payment_ref, amount, currency):
            raise InvalidState(f"order {self.id} already has payment {payment_ref}")

    def expire(self, *, actor: str, now: datetime) -> None:
        """Let an unpaid reservation lapse once it is due."""
        if not self.is_due(now):
            raise InvalidState(f"order {self.id} is {self.status}, not due to expire")
        self._expire(actor=actor)

    @event("Expired", topic="quanyi:order.expired")
    def _expire(self, actor: str) -> None:
        self.status = EXPIRED
        self._let_go(self.codes, "expired")

    def cancel(self, *, reason: str, actor: str) -> None:
        """Cancel an unpaid order (an expired one is refused as OrderExpired)."""
        self.check_open()
        self._cancel(reason=reason or "cancelled", actor=actor)

    @event("Cancelled", topic="quanyi:order.cancelled")
    def _cancel(self, reason: str, actor: str) -> None:
        self.status = CANCELLED
        self._let_go(self.codes, "cancelled")

    def _let_go(self, codes: list[dict[str, str]], why: str) -> None:
        """The order no longer holds ``codes``: they leave ``codes`` for ``released``."""
        gone = {c["code_id"] for c in codes}
        self.released += [{"code_id": c["code_id"], "sku": c["sku"], "why": why}
                          for c in codes]
        self.codes = [c for c in self.codes if c["code_id"] not in gone]

    def record_reveal(self, *, actor: str, client_address: str | None) -> None:
        """Note that a delivered order's codes were shown: who asked, from where."""
        if self.status not in (DELIVERED, PARTIALLY_REFUNDED):
            raise InvalidState(f"order {self.id} is {self.status}: nothing to reveal")
        self._reveal(actor=actor, client_address=client_address,
                     code_ids=[c["code_id"] for c in self.codes])

    @event("Revealed", topic="quanyi:order.revealed")
    def _reveal(self, actor: str, client_address: str | None, code_ids: list[str]) -> None:
        self.reveals += 1

    # -- refunds --------------------------------------------------------------------------

    @property
    def delivering_payment(self) -> dict[str, Any]:
        """The payment that delivered the order's codes (a delivered order has one)."""
        if self.status not in (DELIVERED, PARTIALLY_REFUNDED, REFUNDED) or not self.delivered:
            raise InvalidState(f"order {self.id} is {self.status}: it delivered nothing")
        return self.payments[-1]

    def check_refundable(self, code_ids: list[str]) -> None:
        """Refuse a refund of codes this order was not delivered, or has refunded."""
        if not code_ids:
            raise ValidationFailed("a refund names at least one code")
        refunded = set(self.refunded_code_ids)
        again = [c for c in code_ids if c in refunded]
        if again:
            raise AlreadyRefunded(f"code {again[0]} of order {self.id} is already refunded",
                                  code_ids=again)
        if self.status not in (DELIVERED, PARTIALLY_REFUNDED):
            raise InvalidState(f"order {self.id} is {self.status}: only a delivered order "
                               "is refunded")
        held = {c["code_id"] for c in self.codes}
        foreign = [c for c in code_ids if c not in held]
        if foreign:
            raise ValidationFailed(f"code {foreign[0]} is not delivered to order {self.id}")
        if len(set(code_ids)) != len(code_ids):
            raise ValidationFailed("a refund names each code once")

    def refund(self, *, refund_id: str, code_ids: list[str], amount: Money, reason: str,
               actor: str) -> None:
        """Give back ``amount`` for codes this order holds; it holds them no more."""
        self.check_refundable(code_ids)
        if amount.currency != self.currency or not 0 <= amount.amount <= self.amount:
            raise ValidationFailed(f"a refund of order {self.id} is 0-{self.amount} "
                                   f"{self.currency}")
        rest = {c["code_id"] for c in self.codes} - set(code_ids)
        self.trigger_event(self.Refunded, refund_id=refund_id, code_ids=list(code_ids),
                           amount=amount, reason=reason,
                           status=PARTIALLY_REFUNDED if rest else REFUNDED, actor=actor)

    class Refunded(Aggregate.Event):
        """Codes of a delivered order refunded: money back, codes no longer the order's."""

        TOPIC = "quanyi:order.refunded"
        refund_id: str
        code_ids: list[str]
        amount: Money
        reason: str
        status: str  # what the order is after it: partially_refunded or refunded
        actor: str

        def apply(self, order: "Order") -> None:
            refunded = set(self.code_ids)
            order._let_go([c for c in order.codes if c["code_id"] in refunded], "refunded")
            order.refunded_code_ids += self.code_ids
            order.status = self.status
            order.refunds.append({"refund_id": self.refund_id, "amount": self.amount.amount,
                                  "currency": self.amount.currency, "reason": self.reason,
                                  "code_ids": list(self.code_ids), "automatic": False,
                                  "at": self.timestamp})


class Payment(Aggregate):
    """One captured payment, keyed by the provider's reference: it exists at most once."""

    TOPIC = "quanyi:payment"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:payment.captured"
        payment_ref: str
        order_id: str
        amount: int
        currency: str
        provider: str | None
        outcome: str
        actor: str

    def __init__(self, *, id: UUID, payment_ref: str, order_id: str, amount: int,
                 currency: str, provider: str | None, outcome: str, actor: str) -> None:
        self.payment_ref = payment_ref
        self.order_id = order_id
        self.amount = amount
        self.currency = currency
        self.provider = provider
        self.outcome = outcome


class BuyerQuota(Aggregate):
    """Units of one SKU a buyer holds or has bought: the purchase limit (限购) is checked and
    taken on this one aggregate, so two concurrent orders by one buyer cannot both pass."""

    TOPIC = "quanyi:buyer_quota"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:buyer_quota.opened"
        buyer_id: str
        sku: str

    def __init__(self, *, id: UUID, buyer_id: str, sku: str) -> None:
        self.buyer_id = buyer_id
        self.sku = sku
        self.entries: dict[str, dict[str, Any]] = {}

    def used(self, now: datetime, window_seconds: int | None) -> int:
        since = now - timedelta(seconds=window_seconds) if window_seconds else None
        return sum(e["quantity"] for e in self.entries.values()
                   if since is None or e["at"] > since)

    def take(self, *, order_id: str, quantity: int, limit: int, window_seconds: int | None,
             now: datetime) -> None:
        used = self.used(now, window_seconds)
        if used + quantity > limit:
            raise PurchaseLimitExceeded(
                f"buyer may hold at most {limit} of {self.sku}"
                + (f" per {window_seconds} s" if window_seconds else "")
                + f"; {used} already counted", limit=limit, used=used)
        self.trigger_event(self.Used, order_id=order_id, quantity=quantity)

    class Used(Aggregate.Event):
        TOPIC = "quanyi:buyer_quota.used"
        order_id: str
        quantity: int

        def apply(self, quota: "BuyerQuota") -> None:
            quota.entries[self.order_id] = {"quantity": self.quantity, "at": self.timestamp}

    @event("Released", topic="quanyi:buyer_quota.released")
    def release(self, order_id: str) -> None:
        self.entries.pop(order_id, None)
