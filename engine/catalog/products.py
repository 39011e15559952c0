"""Products: what is sold, how it is delivered, at what price and under which limits."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from engine.catalog.accounts import check_pattern
from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel import reads
from engine.kernel.errors import AlreadyExists, ConcurrentUpdate, ValidationFailed
from engine.kernel.ids import product_id
from engine.kernel.retry import retrying
from engine.kernel.tenancy import SEPARATOR, check_tenant, shown, stock_key, tenant_of

DELIVERY_KINDS = ("card", "code", "topup")
RECENT_SECONDS = 1.0
MAX_MONEY = 10**12
MAX_THRESHOLD = 10**9  # minor units; far above any voucher, well inside 64 bits


@dataclass(frozen=True)
class PurchaseLimit:
    quantity: int
    window_seconds: int | None = None


class Product(Aggregate):
    TOPIC = "quanyi:product"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:product.defined"
        class_version = 2
        sku: str  # the stock key: a tenant's SKU carries its tenant (engine/kernel/tenancy.py)
        name: str
        delivery: str
        price: int
        currency: str
        purchase_limit: dict[str, Any] | None
        commission_rates_bp: list[int]
        allow_below_cost: bool
        channel_prices: dict[str, int]
        components: list[dict[str, Any]]
        actor: str
        case_sensitive: bool = True  # products defined before the field stay as they were
        recharge_account_pattern: str | None = None  # a top-up's accounts (engine/catalog/accounts.py)
        tenant: str | None = None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Products defined before tenants were walls are the platform's."""
            state["tenant"] = None

    def __init__(self, *, id: UUID, sku: str, name: str, delivery: str, price: int,
                 currency: str, purchase_limit: dict[str, Any] | None,
                 commission_rates_bp: list[int], allow_below_cost: bool,
                 channel_prices: dict[str, int], components: list[dict[str, Any]],
                 actor: str, case_sensitive: bool = True,
                 recharge_account_pattern: str | None = None,
                 tenant: str | None = None) -> None:
        self.sku = sku
        self.tenant = tenant
        self.name = name
        self.delivery = delivery
        self.price = price
        self.currency = currency
        self.purchase_limit = purchase_limit
        self.commission_rates_bp = commission_rates_bp
        self.allow_below_cost = allow_below_cost
        self.channel_prices = dict(channel_prices)
        self.components = list(components)
        # whether `abc` and `ABC` are two codes; generated codes always ignore case
        self.case_sensitive = case_sensitive
        self.low_stock_threshold: int | None = None  # stock.low webhooks below it
        self.recharge_account_pattern = recharge_account_pattern

    @event("ChannelPriceSet", topic="quanyi:product.channel_price_set")
    def set_channel_price(self, channel: str, price: int, actor: str) -> None:
        self.channel_prices[channel] = price

    @event("LowStockThresholdSet", topic="quanyi:product.low_stock_threshold_set")
    def set_low_stock_threshold(self, sku: str, threshold: int | None, actor: str) -> None:
        self.low_stock_threshold = threshold

    @property
    def is_bundle(self) -> bool:
        """A bundle (全家桶) delivers one code of each component SKU and holds none itself."""
        return bool(self.components)

    def price_for(self, channel: str | None) -> int:
        """The channel's price where one is set, else the list price."""
        return self.channel_prices.get(channel, self.price) if channel else self.price

    def limit(self) -> PurchaseLimit | None:
        return PurchaseLimit(**self.purchase_limit) if self.purchase_limit else None

    def is_below_cost(self, unit_cost: int) -> bool:
        return unit_cost > self.price and not self.allow_below_cost

    def to_dict(self) -> dict[str, Any]:
        return {
            "sku": shown(self.sku), "tenant": self.tenant, "name": self.name, "delivery": self.delivery,
            "price": self.price, "currency": self.currency,
            "purchase_limit": self.purchase_limit,
            "commission_rates_bp": self.commission_rates_bp,
            "allow_below_cost": self.allow_below_cost,
            "channel_prices": self.channel_prices, "components": self.components,
            "case_sensitive": self.case_sensitive,
            "recharge_account_pattern": self.recharge_account_pattern,
            "created_at": self.created_on, "version": self.version,
        }


SKU_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def check_sku(sku: str) -> str:
    """A SKU as named, or its stock key (``<tenant>:<sku>``, engine/kernel/tenancy.py)."""
    tenant = tenant_of(sku)
    if tenant is not None:
        check_tenant(tenant)
    named = shown(sku)
    if not 1 <= len(named) <= 64 or not set(named) <= SKU_CHARS:
        raise ValidationFailed("sku must be 1-64 characters of letters, digits, '.', '_' or '-'")
    return sku


def check_currency(currency: str) -> str:
    if len(currency) != 3 or not currency.isascii() or not currency.isupper():
        raise ValidationFailed("currency must be an ISO 4217 code such as CNY")
    return currency


class Catalog:
    """Use cases on products."""

    def __init__(self, store: EventStore, writer: Writer) -> None:
        self._store = store
        self._writer = writer
        self._recent: dict[str, tuple[float, Product]] = {}

    def define_product(self, *, sku: str, name: str, delivery: str, price: int,
                       currency: str = "CNY", purchase_limit: dict[str, Any] | None = None,
                       commission_rates_bp: list[int] | None = None,
                       allow_below_cost: bool = False,
                       channel_prices: dict[str, int] | None = None,
                       components: list[dict[str, Any]] | None = None,
                       case_sensitive: bool | None = None,
                       recharge_account_pattern: str | None = None, actor: str,
                       tenant: str | None = None) -> Product:
        """Define a new product; a SKU is defined once per tenant (and once on the
        platform). Card codes are case-sensitive unless told otherwise; redemption-code
        products ignore case unless told otherwise. A top-up product says what its
        recharge accounts look like (engine/catalog/accounts.py). A bundle's parts are SKUs of the
        same tenant."""
        rates = list(commission_rates_bp or [])
        prices = dict(channel_prices or {})
        parts = [{**c, "sku": stock_key(tenant, str(c.get("sku", "")))}
                 for c in components or []]
        if SEPARATOR in sku:
            raise ValidationFailed("sku must be 1-64 characters of letters, digits, '.', '_' "
                                   "or '-'")
        _check_product(sku, name, delivery, price, currency, purchase_limit, rates)
        sku = stock_key(tenant, sku)
        for channel, channel_price in prices.items():
            _check_channel_price(channel, channel_price)
        self._check_components(parts, currency)
        if case_sensitive is None:
            case_sensitive = delivery != "code"
        if not isinstance(case_sensitive, bool):
            raise ValidationFailed("case_sensitive must be true or false")
        pattern = _recharge_pattern(delivery, recharge_account_pattern, parts)
        product = Product(id=product_id(sku), sku=sku, name=name, delivery=delivery,
                          price=price, currency=currency, purchase_limit=purchase_limit,
                          commission_rates_bp=rates, allow_below_cost=allow_below_cost,
                          channel_prices=prices, components=parts, actor=actor,
                          case_sensitive=case_sensitive, recharge_account_pattern=pattern,
                          tenant=tenant)
        try:
            self._writer.save(product)
        except ConcurrentUpdate as exc:
            raise AlreadyExists(f"product {shown(sku)} is already defined") from exc
        return product

    def set_channel_price(self, *, sku: str, channel: str, price: int, actor: str) -> Product:
        """Set (or change) the price a SKU sells at in one channel."""
        _check_channel_price(channel, price)

        def attempt() -> Product:
            product = self.get(sku)
            product.set_channel_price(channel=channel, price=price, actor=actor)
            self._writer.save(product)
            return product
        product = retrying(attempt, attempts=5, what=f"product {sku}")
        self._recent.pop(sku, None)
        return product

    def set_low_stock_threshold(self, *, sku: str, threshold: int | None,
                                actor: str) -> Product:
        """Set (or clear, with None) the available count below which stock is low."""
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(
                threshold, int) or not 1 <= threshold <= MAX_THRESHOLD):
            raise ValidationFailed(f"threshold must be 1-{MAX_THRESHOLD}, or null to clear it")

        def attempt() -> Product:
            product = self.get(sku)
            if product.is_bundle or product.delivery == "topup":
                raise ValidationFailed(f"product {sku} holds no codes to run low on")
            product.set_low_stock_threshold(sku=sku, threshold=threshold, actor=actor)
            self._writer.save(product)
            return product
        return retrying(attempt, attempts=5, what=f"product {sku}")

    def _check_components(self, parts: list[dict[str, Any]], currency: str) -> None:
        if len(parts) > 20:
            raise ValidationFailed("a bundle holds at most 20 components")
        for part in parts:
            quantity = part.get("quantity", 1)
            if not isinstance(quantity, int) or not 1 <= quantity <= 100:
                raise ValidationFailed("a component's quantity must be 1-100")
            part["quantity"] = quantity
            component = self.get(str(part.get("sku", "")))
            if component.is_bundle or component.delivery == "topup":
                raise ValidationFailed(f"component {component.sku} must be a code product")
            if component.currency != currency:
                raise ValidationFailed(f"component {component.sku} is priced in "
                                       f"{component.currency}, not {currency}")

    def get_recent(self, sku: str) -> Product:
        """The product as read at most a second ago: for the hot sales path, where a price
        change taking effect a second later is acceptable and a read per order is not. A
        refusal decided on it is checked against the store first (engine/kernel/reads.py)."""
        now = time.monotonic()
        hit = self._recent.get(sku)
        if hit and now - hit[0] < RECENT_SECONDS and not reads.fresh():
            reads.note(self._store, hit[1].id, hit[1].version)
            return hit[1]
        product = self.get(sku)
        self._recent[sku] = (now, product)
        return product

    def get(self, sku: str) -> Product:
        """The product of a stock key (a tenant's SKU carries its tenant)."""
        check_sku(sku)
        product: Product = self._store.get(product_id(sku), f"product {shown(sku)}")
        return product


def _recharge_pattern(delivery: str, pattern: str | None,
                      parts: list[dict[str, Any]]) -> str | None:
    """A top-up product's pattern (a safe default when none is given); no other kind has
    one. A top-up is one account credited once: never a bundle."""
    if delivery != "topup":
        if pattern is not None:
            raise ValidationFailed("only a topup product has a recharge_account_pattern")
        return None
    if parts:
        raise ValidationFailed("a topup product cannot be a bundle")
    return check_pattern(pattern)


def _check_channel_price(channel: str, price: int) -> None:
    if not isinstance(channel, str) or not 1 <= len(channel) <= 64:
        raise ValidationFailed("a channel name must be 1-64 characters")
    if isinstance(price, bool) or not isinstance(price, int) or not 0 <= price <= MAX_MONEY:
        raise ValidationFailed(f"a channel price must be an integer of minor units, "
                               f"0 to {MAX_MONEY}")


def _check_product(sku: str, name: str, delivery: str, price: int, currency: str,
                   purchase_limit: dict[str, Any] | None, rates: list[int]) -> None:
    check_sku(sku)
    check_currency(currency)
    if not name.strip() or len(name) > 200:
        raise ValidationFailed("name must be 1-200 characters")
    if delivery not in DELIVERY_KINDS:
        raise ValidationFailed(f"delivery must be one of {', '.join(DELIVERY_KINDS)}")
    if isinstance(price, bool) or not isinstance(price, int) or not 0 <= price <= MAX_MONEY:
        raise ValidationFailed(f"price must be an integer of minor units, 0 to {MAX_MONEY}")
    if len(rates) > 3 or any(not 0 <= r <= 10_000 for r in rates) or sum(rates) > 10_000:
        raise ValidationFailed("commission_rates_bp: at most three levels, 0-10000 bp, "
                               "summing to at most 10000")
    if purchase_limit is not None:
        quantity = purchase_limit.get("quantity")
        window = purchase_limit.get("window_seconds")
        if not isinstance(quantity, int) or quantity < 1:
            raise ValidationFailed("purchase_limit.quantity must be at least 1")
        if window is not None and (not isinstance(window, int) or window < 1):
            raise ValidationFailed("purchase_limit.window_seconds must be at least 1")
