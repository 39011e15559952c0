"""Placing an order: price its lines, count its purchase quotas and take its codes, all in
one atomic save. A version clash re-runs the decision on fresh state (engine/kernel/retry.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from engine.catalog.accounts import DEFAULT_PRESET, check_account, mask
from engine.catalog.products import Catalog, Product
from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel.clock import utc_now
from engine.kernel.errors import (
    ConcurrentUpdate,
    ExternalRefReused,
    IdempotencyKeyReused,
    InvalidState,
    PriceBelowCost,
    ValidationFailed,
)
from engine.kernel.ids import legacy_order_id, quota_id
from engine.kernel.ids import order_id as make_order_id
from engine.kernel.retry import retrying
from engine.kernel.vault import Vault
from engine.ledger.distribution import Distribution
from engine.sales.holding import OrderCodes
from engine.sales.orders import BuyerQuota, Order
from engine.sales.postings import Sales

MAX_UNITS = 10_000
MAX_LINES = 50
REQUEST_KEY = "idempotency-key:"  # an order named by its request's key, not an owner's ref


class Placing:
    """The use case that reserves an order's units."""

    def __init__(self, store: EventStore, writer: Writer, vault: Vault, catalog: Catalog,
                 codes: OrderCodes, sales: Sales, distribution: Distribution,
                 reservation_ttl_seconds: int) -> None:
        self._store = store
        self._writer = writer
        self._vault = vault
        self._catalog = catalog
        self._codes = codes
        self._sales = sales
        self._distribution = distribution
        self._ttl = timedelta(seconds=reservation_ttl_seconds)

    def place(self, *, buyer_id: str, items: list[dict[str, Any]], channel: str | None,
              distributor_id: str | None, external_ref: str | None, actor: str,
              owner: str | None, recharge_account: str | None = None,
              request_key: str | None = None) -> Order:
        """Reserve every unit of every item, or nothing; the order belongs to ``owner``
        (by default the actor). The same owner's external_ref again answers its order.
        A distributor must be registered; codes costing more than their unit's price are
        refused unless the product allows it (PriceBelowCost), before anything is held.
        A direct top-up is an order of one unit of one top-up SKU, with the account to
        credit (matched against the product's pattern, then sealed). The external_ref of an
        order asked for otherwise is refused (ExternalRefReused). Without an external_ref,
        the request's Idempotency-Key (``request_key``) names the order instead: its retry
        finds the order placed, whatever became of the first answer."""
        lines = _merge_lines(buyer_id, items)
        owner = owner or actor
        asked = {"buyer_id": buyer_id, "lines": sorted((i["sku"], i["quantity"]) for i in lines),
                 "channel": channel, "distributor_id": distributor_id,
                 "recharge_account": recharge_account}
        oid, placed = self._order_id(owner, actor, external_ref, request_key)
        if placed:
            return self._same_order(placed, asked)
        if distributor_id is not None:
            self._distribution.chain(distributor_id)  # NotFound; kept for the payment
        asked = {"buyer_id": buyer_id, "channel": channel, "distributor_id": distributor_id,
                 "external_ref": external_ref, "actor": actor, "owner": owner}
        try:
            return retrying(lambda: self._place_once(oid, lines, asked, recharge_account),
                            what=f"order {oid}")
        except ConcurrentUpdate:
            if external_ref or request_key:  # placed meanwhile
                return self._same_order(self._store.get(oid, f"order {oid}"), asked)
            raise

    def _order_id(self, owner: str, actor: str, external_ref: str | None,
                  request_key: str | None) -> tuple[UUID, Order | None]:
        """The new order's id, and the order already placed under its external_ref (or,
        without one, under the actor's Idempotency-Key)."""
        if not external_ref:
            if not request_key:
                return uuid4(), None
            oid = make_order_id(self._vault.order_ref(f"{REQUEST_KEY}{actor}", request_key))
            return oid, self._placed(oid, owner)
        oid = make_order_id(self._vault.order_ref(owner, external_ref))
        # An order placed before ids were keyed keeps its plain uuid5 id: a retry after the
        # upgrade finds it there instead of placing a second order (one more read).
        return oid, self._placed(oid, owner) or self._placed(
            legacy_order_id(actor, external_ref), owner)

    def _same_order(self, placed: Order, asked: dict[str, Any]) -> Order:
        """The order already placed under the external_ref, if it was asked for as this one
        is: buyer, SKUs and quantities, channel, distributor and recharge account."""
        account = (self._vault.open(placed.id, placed.recharge["sealed"])["account"]
                   if placed.recharge else None)
        had = {"buyer_id": placed.buyer_id, "channel": placed.channel,
               "lines": sorted((i["sku"], i["quantity"]) for i in placed.items),
               "distributor_id": placed.distributor_id, "recharge_account": account}
        if had != asked and placed.external_ref is None:
            raise IdempotencyKeyReused("this Idempotency-Key placed another order")
        if had != asked:
            raise ExternalRefReused(f"external_ref {placed.external_ref} was used for another "
                                    f"order: {placed.id}")
        return placed

    def _placed(self, order_id: UUID, owner: str) -> Order | None:
        order: Order | None = self._store.find(order_id)
        return order if order is not None and order.belongs_to(owner) else None

    def _priced(self, oid: UUID, lines: list[dict[str, Any]], asked: dict[str, Any],
                recharge_account: str | None) -> tuple[dict[str, Product], dict[str, Any],
                                                        dict[str, str] | None]:
        """The lines' products (read inside the attempt, so that a refusal decided on a
        product changed since is decided again: engine/kernel/reads.py), the new order's fields
        and its sealed recharge account."""
        products = {line["sku"]: self._catalog.get_recent(line["sku"]) for line in lines}
        account = _recharge_account(lines, products, recharge_account)
        fields = _order_fields(lines, products, **asked)
        recharge = None if account is None else {
            "sealed": self._vault.seal(oid, {"account": account}), "masked": mask(account)}
        return products, fields, recharge

    def _place_once(self, oid: UUID, lines: list[dict[str, Any]], asked: dict[str, Any],
                    recharge_account: str | None) -> Order:
        products, fields, recharge = self._priced(oid, lines, asked, recharge_account)
        now = utc_now()
        quotas = [self._quota_taken(fields["buyer_id"], products[i["sku"]], str(oid),
                                    i["quantity"], now)
                  for i in fields["items"] if products[i["sku"]].limit()]
        codes = self._codes.take(fields["needs"], str(oid), fields["buyer_id"],
                                 fields["actor"])
        order = Order(id=oid, expires_at=now + self._ttl,
                      codes=[{"code_id": str(c.id), "sku": c.sku} for c in codes], **fields)
        if recharge is not None:
            order.name_recharge_account(**recharge)
        try:
            self._sales.check_price(order, codes, products)
        except PriceBelowCost:
            self._codes.give_back(codes)
            raise
        try:
            self._writer.save(order, *codes, *quotas, remember=True)
        except ConcurrentUpdate:
            self._codes.give_back(codes, clashed=True)
            raise
        return order

    def _quota_taken(self, buyer_id: str, product: Product, order_id: str, quantity: int,
                     now: datetime) -> BuyerQuota:
        limit = product.limit()
        if limit is None:
            raise InvalidState(f"{product.sku} has no purchase limit to count")
        qid = quota_id(buyer_id, product.sku)
        quota: BuyerQuota | None = self._store.find(qid)
        if quota is None:
            quota = BuyerQuota(id=qid, buyer_id=buyer_id, sku=product.sku)
        quota.take(order_id=order_id, quantity=quantity, limit=limit.quantity,
                   window_seconds=limit.window_seconds, now=now)
        return quota


def _recharge_account(lines: list[dict[str, Any]], products: dict[str, Product],
                      account: str | None) -> str | None:
    """The checked account of a top-up order (None for an order of codes)."""
    topups = [sku for sku, p in products.items() if p.delivery == "topup"]
    if not topups:
        if account is not None:
            raise ValidationFailed("recharge_account is for an order of a topup product")
        return None
    if len(lines) != 1 or lines[0]["quantity"] != 1:
        raise ValidationFailed("a top-up order is one unit of one topup product")
    if account is None:
        raise ValidationFailed(f"{topups[0]} is a direct top-up: recharge_account is "
                               "required")
    pattern = products[topups[0]].recharge_account_pattern or DEFAULT_PRESET
    return check_account(account, pattern)


def _order_fields(lines: list[dict[str, Any]], products: dict[str, Product], *,
                  buyer_id: str, channel: str | None, **rest: Any) -> dict[str, Any]:
    """The new order's fields: its lines priced for the channel, in one currency."""
    currencies = {p.currency for p in products.values()}
    if len(currencies) > 1:
        raise ValidationFailed("every item of an order must be priced in one currency")
    priced = [{**line, "unit_price": products[line["sku"]].price_for(channel)}
              for line in lines]
    return {"buyer_id": buyer_id, "items": priced, "needs": _code_needs(priced, products),
            "amount": sum(i["unit_price"] * i["quantity"] for i in priced),
            "currency": currencies.pop(), "channel": channel, **rest}


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
        if product.delivery == "topup":
            continue  # a supplier credits an account: no code is held
        parts = product.components or [{"sku": product.sku, "quantity": 1}]
        for part in parts:
            needs[part["sku"]] = needs.get(part["sku"], 0) + part["quantity"] * item["quantity"]
    return [{"sku": sku, "quantity": q} for sku, q in needs.items()]
