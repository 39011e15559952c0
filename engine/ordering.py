"""The sales path's use cases: place, pay, cancel, expire and reveal orders.

Every use case loads what it needs, decides, and hands all changed aggregates to the writer
as one atomic save; a version clash (another process got there first) re-runs the decision
on fresh state. No lock in this process is relied on for correctness.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from engine.catalog import Catalog, Product
from engine.codes import Code
from engine.errors import (ConcurrentUpdate, InvalidState, NotFound, SoldOut,
                           ValidationFailed)
from engine.ids import legacy_order_id, payment_id, quota_id
from engine.ids import order_id as make_order_id
from engine.orders import CANCELLED, DELIVERED, EXPIRED, RESERVED, BuyerQuota, Order, Payment
from engine.reservations import Reservations, utc_now
from engine.store import EventStore
from engine.vault import Vault
from engine.writer import Writer

RETRIES = 10
MAX_UNITS = 10_000
MAX_LINES = 50
T = TypeVar("T")


MASK_STARS = "*" * 8
MASK_MIN_LENGTH = 8


def mask(code: str) -> str:
    """Enough of a code to recognise it, never enough to use it: at most a quarter of its
    characters (half at each end), none of a code shorter than 8, and always the same run of
    stars in the middle so the mask does not tell the code's exact length."""
    if len(code) < MASK_MIN_LENGTH:
        return MASK_STARS
    shown = len(code) // 4
    tail = shown // 2
    return code[:shown - tail] + MASK_STARS + code[len(code) - tail:]


class Orders:
    """Use cases of the storefront's backend on orders."""

    def __init__(self, store: EventStore, writer: Writer, vault: Vault, catalog: Catalog,
                 reservations: Reservations, reservation_ttl_seconds: int) -> None:
        self._store = store
        self._writer = writer
        self._vault = vault
        self._catalog = catalog
        self._reservations = reservations
        self._ttl = timedelta(seconds=reservation_ttl_seconds)

    # -- reads ----------------------------------------------------------------------------

    def get(self, order_id: UUID, owner: str | None = None) -> Order:
        """The order; with ``owner``, only if it belongs to that owner (another owner's
        order is answered as missing, so its existence does not leak)."""
        try:
            order: Order = self._store.repository.get(order_id)
        except AggregateNotFoundError as exc:
            raise NotFound(f"no order {order_id}") from exc
        if not order.belongs_to(owner):
            raise NotFound(f"no order {order_id}")
        return order

    def codes_of(self, order: Order) -> list[Code]:
        return [self._store.repository.get(i) for i in order.code_ids]

    def _held_codes(self, order: Order) -> list[Code]:
        """The codes a reserved order holds; if they moved on, the order was read stale."""
        codes = [self._writer.load(i) for i in order.code_ids]
        if any(c.status != "reserved" or c.order_id != str(order.id) for c in codes):
            self._writer.recent.forget([order.id, *order.code_ids])
            raise ConcurrentUpdate(f"order {order.id} changed while it was being read")
        return codes

    def masked_codes(self, order: Order, *, just_saved: bool = False) -> list[dict[str, Any]]:
        """The order's codes, masked; ``just_saved`` takes them as this process last
        wrote them (the answer to the command that wrote them) instead of re-reading."""
        codes = [self._writer.recent.recall(i) for i in order.code_ids] if just_saved else []
        if not codes or None in codes:
            codes = self.codes_of(order)
        return [{"code_id": str(c.id), "sku": c.sku, "status": c.status,
                 "masked": mask(self._vault.open(c.id, c.sealed)["code"])} for c in codes]

    # -- place ----------------------------------------------------------------------------

    def place(self, *, buyer_id: str, items: list[dict[str, Any]], channel: str | None = None,
              distributor_id: str | None = None, external_ref: str | None = None,
              actor: str, owner: str | None = None) -> Order:
        """Reserve every unit of every item, or nothing; the order belongs to ``owner``
        (by default the actor). The same owner's external_ref again answers its order."""
        lines = _merge_lines(buyer_id, items)
        owner = owner or actor
        oid = uuid4()
        if external_ref:
            oid = make_order_id(self._vault.order_ref(owner, external_ref))
            # An order placed before ids were keyed keeps its plain uuid5 id: a retry after
            # the upgrade finds it there instead of placing a second order (one more read).
            placed = self._placed(oid, owner) or self._placed(
                legacy_order_id(actor, external_ref), owner)
            if placed:
                return placed
        products = {line["sku"]: self._sellable(line["sku"]) for line in lines}
        currencies = {p.currency for p in products.values()}
        if len(currencies) > 1:
            raise ValidationFailed("every item of an order must be priced in one currency")
        priced = [{**line, "unit_price": products[line["sku"]].price_for(channel)}
                  for line in lines]
        needs = _code_needs(priced, products)
        fields = {"buyer_id": buyer_id, "items": priced, "needs": needs,
                  "amount": sum(i["unit_price"] * i["quantity"] for i in priced),
                  "currency": currencies.pop(), "channel": channel,
                  "distributor_id": distributor_id, "external_ref": external_ref,
                  "actor": actor, "owner": owner}
        try:
            return _retrying(lambda: self._place_once(oid, products, fields))
        except ConcurrentUpdate:
            if external_ref:
                return self.get(oid)  # the same external_ref was placed meanwhile
            raise

    def _placed(self, order_id: UUID, owner: str) -> Order | None:
        try:
            return self.get(order_id, owner)
        except NotFound:
            return None

    def _place_once(self, oid: UUID, products: dict[str, Product],
                    fields: dict[str, Any]) -> Order:
        now = utc_now()
        quotas = [self._quota_taken(fields["buyer_id"], products[i["sku"]], str(oid),
                                    i["quantity"], now)
                  for i in fields["items"] if products[i["sku"]].limit()]
        codes = self._take(fields["needs"], str(oid), fields["buyer_id"], fields["actor"])
        order = Order(id=oid, expires_at=now + self._ttl,
                      codes=[{"code_id": str(c.id), "sku": c.sku} for c in codes], **fields)
        try:
            self._writer.save(order, *codes, *quotas, remember=True)
        except ConcurrentUpdate:
            self._give_back(codes, clashed=True)
            raise
        return order

    def _sellable(self, sku: str) -> Product:
        product = self._catalog.get_recent(sku)
        if product.delivery == "topup":
            raise InvalidState(f"{sku} is a direct top-up, which orders do not deliver yet")
        return product

    def _quota_taken(self, buyer_id: str, product: Product, order_id: str, quantity: int,
                     now: datetime) -> BuyerQuota:
        limit = product.limit()
        assert limit is not None
        qid = quota_id(buyer_id, product.sku)
        try:
            quota: BuyerQuota = self._store.repository.get(qid)
        except AggregateNotFoundError:
            quota = BuyerQuota(id=qid, buyer_id=buyer_id, sku=product.sku)
        quota.take(order_id=order_id, quantity=quantity, limit=limit.quantity,
                   window_seconds=limit.window_seconds, now=now)
        return quota

    def _take(self, needs: list[dict[str, Any]], order_id: str, holder: str,
              actor: str) -> list[Code]:
        taken: list[Code] = []
        try:
            for need in needs:
                taken += self._reservations.take(sku=need["sku"], quantity=need["quantity"],
                                                 order_id=order_id, holder=holder, actor=actor)
        except SoldOut:
            self._give_back(taken)
            raise
        return taken

    def _give_back(self, codes: list[Code], *, clashed: bool = False) -> None:
        by_sku: dict[str, list[Code]] = {}
        for code in codes:
            by_sku.setdefault(code.sku, []).append(code)
        for sku, group in by_sku.items():
            self._reservations.give_back(sku, group, clashed=clashed)

    # -- pay ------------------------------------------------------------------------------

    def pay(self, *, order_id: UUID, payment_ref: str, amount: int, currency: str,
            provider: str | None, actor: str, owner: str | None = None) -> Order:
        """Capture a payment and deliver in the same step; the same payment_ref acts once.
        With ``owner``, only that owner's order is found."""
        if not payment_ref or len(payment_ref) > 128:
            raise ValidationFailed("payment_ref must be 1-128 characters")
        return _retrying(lambda: self._pay_once(order_id, payment_ref, amount, currency,
                                                provider, actor, owner))

    def _pay_once(self, order_id: UUID, payment_ref: str, amount: int, currency: str,
                  provider: str | None, actor: str, owner: str | None) -> Order:
        try:
            order: Order = self._writer.load(order_id)
        except AggregateNotFoundError as exc:
            raise NotFound(f"no order {order_id}") from exc
        if not order.belongs_to(owner):
            raise NotFound(f"no order {order_id}")
        if order.payment(payment_ref):
            return self.get(order_id)  # a repeated callback: the first answer stands
        order.check_amount(amount, currency)
        if order.status not in (RESERVED, EXPIRED, CANCELLED):
            raise InvalidState(f"order {order_id} is already {order.status}")
        paid = {"payment_ref": payment_ref, "amount": amount, "currency": currency,
                "provider": provider, "actor": actor}
        fresh: list[Code] = []  # codes taken from the pool by this attempt
        if order.status == RESERVED:
            codes = self._held_codes(order)
            for code in codes:
                code.sell(order_id=str(order_id), actor=actor)
            order.pay(codes=order.codes, late=False, **paid)
            outcome = DELIVERED
        else:
            codes, outcome = self._late(order, paid)
            fresh = codes
        payment = Payment(id=payment_id(payment_ref), order_id=str(order_id),
                          outcome=outcome, **paid)
        try:
            self._writer.save(order, payment, *codes, remember=True)
        except ConcurrentUpdate:
            self._give_back(fresh, clashed=True)
            self._refuse_foreign_payment(payment_ref, order_id)
            raise
        return order

    def _late(self, order: Order, paid: dict[str, Any]) -> tuple[list[Code], str]:
        """A payment after expiry or cancellation: deliver afresh if stock allows, else
        record an automatic refund. Either way the payment is kept."""
        try:
            codes = self._take(order.needs, str(order.id), order.buyer_id, paid["actor"])
        except SoldOut:
            order.refund_payment(reason="paid after the reservation lapsed; out of stock",
                                 **paid)
            return [], "refunded"
        for code in codes:
            code.sell(order_id=str(order.id), actor=paid["actor"])
        order.pay(codes=[{"code_id": str(c.id), "sku": c.sku} for c in codes], late=True,
                  **paid)
        return codes, DELIVERED

    def _refuse_foreign_payment(self, payment_ref: str, order_id: UUID) -> None:
        try:
            payment: Payment = self._store.repository.get(payment_id(payment_ref))
        except AggregateNotFoundError:
            return
        if payment.order_id != str(order_id):
            raise InvalidState(f"payment_ref {payment_ref} belongs to another order")

    # -- cancel, expire -------------------------------------------------------------------

    def cancel(self, *, order_id: UUID, reason: str, actor: str,
               owner: str | None = None) -> Order:
        """Cancel an unpaid order and release its reservations (with ``owner``, only
        that owner's)."""
        def attempt() -> Order:
            order = self.get(order_id, owner)
            order.check_open()
            order.cancel(reason=reason or "cancelled", actor=actor)
            return self._released(order, "cancelled", actor)
        return _retrying(attempt)

    def expire(self, order_id: UUID, actor: str = "system:expiry") -> bool:
        """Expire an unpaid order past its time; safe to run twice, and beside a payment."""
        def attempt() -> bool:
            order = self.get(order_id)
            if order.status != RESERVED or order.expires_at > utc_now():
                return False
            order.expire(actor=actor)
            self._released(order, "expired", actor)
            return True
        return _retrying(attempt)

    def _released(self, order: Order, reason: str, actor: str) -> Order:
        codes = self._held_codes(order)
        for code in codes:
            code.release(order_id=str(order.id), reason=reason, actor=actor)
        quotas = []
        for item in order.items:
            try:
                quota: BuyerQuota = self._store.repository.get(quota_id(order.buyer_id,
                                                                          item["sku"]))
            except AggregateNotFoundError:
                continue
            if str(order.id) in quota.entries:
                quota.release(order_id=str(order.id))
                quotas.append(quota)
        self._writer.save(order, *codes, *quotas)
        self._reservations.released([c.id for c in codes])
        return order

    # -- reveal ---------------------------------------------------------------------------

    def reveal(self, *, order_id: UUID, actor: str, client_address: str | None,
               owner: str | None = None) -> list[dict[str, Any]]:
        """Show the codes of a delivered order (with ``owner``, only that owner's); each
        code's history records who and where."""
        def attempt() -> list[dict[str, Any]]:
            order = self.get(order_id, owner)
            if order.status not in (DELIVERED, "partially_refunded"):
                raise InvalidState(f"order {order_id} is {order.status}: nothing to reveal")
            codes = self.codes_of(order)
            for code in codes:
                code.record_reveal(order_id=str(order_id), actor=actor,
                                   client_address=client_address)
            order.record_reveal(actor=actor, client_address=client_address,
                                code_ids=[str(c.id) for c in codes])
            self._writer.save(order, *codes)
            return [{"code_id": str(c.id), "sku": c.sku, **self._vault.open(c.id, c.sealed)}
                    for c in codes]
        return _retrying(attempt)


def _merge_lines(buyer_id: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not buyer_id or len(buyer_id) > 128:
        raise ValidationFailed("buyer_id must be 1-128 characters")
    if not 1 <= len(items) <= MAX_LINES:
        raise ValidationFailed(f"an order has 1-{MAX_LINES} items")
    merged: dict[str, int] = {}
    for item in items:
        quantity = item.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValidationFailed("each item's quantity must be a positive integer")
        merged[str(item.get("sku"))] = merged.get(str(item.get("sku")), 0) + quantity
    if sum(merged.values()) > MAX_UNITS:
        raise ValidationFailed(f"an order holds at most {MAX_UNITS} units")
    return [{"sku": sku, "quantity": q} for sku, q in merged.items()]


def _code_needs(items: list[dict[str, Any]],
                products: dict[str, Product]) -> list[dict[str, Any]]:
    """Code units per SKU: a bundle needs its components' codes, not its own."""
    needs: dict[str, int] = {}
    for item in items:
        product = products[item["sku"]]
        parts = product.components or [{"sku": product.sku, "quantity": 1}]
        for part in parts:
            needs[part["sku"]] = needs.get(part["sku"], 0) + part["quantity"] * item["quantity"]
    return [{"sku": sku, "quantity": q} for sku, q in needs.items()]


def _retrying(attempt: Callable[[], T]) -> T:
    for _ in range(RETRIES - 1):
        try:
            return attempt()
        except ConcurrentUpdate:
            time.sleep(random.uniform(0, 0.01))
    return attempt()
