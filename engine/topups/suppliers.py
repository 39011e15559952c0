"""Upstream suppliers of direct top-ups (直充), and which of them fulfil each top-up SKU.

A supplier is registered once, with the protocol its adapter speaks, where it listens and
its credentials. The credentials are sealed by the vault, bound to the supplier's id, before
they enter an event: the log, the database, the feed and every answer hold only the sealed
blob (and the credentials' names). Only ``adapter_for`` opens them, to build the adapter.

    registered          (the same registration again answers it; another one is refused)

Each top-up SKU has an ordered list of offers (``TopupOffer``: the supplier, its SKU, what it
costs, a priority), its own aggregate so that changing offers never touches the product:

    (none) ──set──▶ offers ──set──▶ offers ...   (an empty list: none fulfils it)

A supplier belongs to the tenant of the key that registered it (None: the platform's, as
is every supplier registered before tenants were walls). A tenant-bound key sees only its
tenant's suppliers, and a tenant's offers name only its own suppliers; another tenant's
supplier is answered exactly as an unknown one (engine/kernel/tenancy.py).
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from engine.catalog.products import Catalog
from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel import ids
from engine.kernel.addresses import check_host
from engine.kernel.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    InvalidState,
    NotFound,
    PriceBelowCost,
    ValidationFailed,
)
from engine.kernel.fields import check_text
from engine.kernel.retry import retrying
from engine.kernel.tenancy import check_visible, tenant_of
from engine.kernel.vault import Vault
from engine.ledger.transactions import PART
from engine.topups.offers import TopupOffer
from engine.topups.supplier_port import (
    AdapterRegistry,
    SupplierAdapter,
    SupplierLink,
    SupplierTimeouts,
)

__all__ = ["Supplier", "Suppliers", "TopupOffer", "TopupOffers"]

MAX_NAME = 200
MAX_ENDPOINT = 500
MAX_CREDENTIALS = 20
MAX_CREDENTIAL = 2000
MAX_OFFERS = 20
RECENT_SECONDS = 1.0  # offers read this recently serve again: every top-up order reads them
CREDENTIAL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                  r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")


class Supplier(Aggregate):
    """One upstream supplier; its credentials only ever sealed."""

    TOPIC = "quanyi:supplier"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:supplier.registered"
        class_version = 2
        supplier_id: str
        name: str
        adapter: str
        endpoint: str
        credential_names: list[str]
        sealed_credentials: str
        actor: str
        tenant: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Suppliers registered before tenants were walls are the platform's."""
            state["tenant"] = None

    def __init__(self, *, id: UUID, supplier_id: str, name: str, adapter: str, endpoint: str,
                 credential_names: list[str], sealed_credentials: str, actor: str,
                 tenant: str | None) -> None:
        self.supplier_id = supplier_id
        self.tenant = tenant
        self.name = name
        self.adapter = adapter
        self.endpoint = endpoint
        self.credential_names = list(credential_names)
        self.sealed_credentials = sealed_credentials

    def view(self) -> dict[str, Any]:
        """What may be shown: the credentials' names, never their values."""
        return {"supplier_id": self.supplier_id, "name": self.name, "adapter": self.adapter,
                "endpoint": self.endpoint, "credential_names": self.credential_names,
                "registered_at": self.created_on, "version": self.version}


class TopupOffers(Aggregate):
    """The offers of one top-up SKU, in the order they were given."""

    TOPIC = "quanyi:topup_offers"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:topup_offers.created"
        sku: str
        actor: str

    def __init__(self, *, id: UUID, sku: str, actor: str) -> None:
        self.sku = sku
        self.offers: list[TopupOffer] = []

    @event("Set", topic="quanyi:topup_offers.set")
    def set(self, offers: list[TopupOffer], actor: str) -> None:
        self.offers = list(offers)

    def ranked(self) -> list[TopupOffer]:
        """Lowest priority first; equal priorities in the order given."""
        return sorted(self.offers, key=lambda offer: offer.priority)


class Suppliers:
    """Register suppliers, give each top-up SKU its offers, and build suppliers' adapters."""

    def __init__(self, store: EventStore, writer: Writer, vault: Vault, catalog: Catalog,
                 adapters: AdapterRegistry, timeouts: SupplierTimeouts, *,
                 allow_private_urls: bool = False) -> None:
        self._store = store
        self._writer = writer
        self._vault = vault
        self._catalog = catalog
        self._adapters = adapters
        self._timeouts = timeouts
        self._allow_private = allow_private_urls
        self._built: dict[str, SupplierAdapter] = {}
        self._recent: dict[str, tuple[float, list[TopupOffer]]] = {}
        self._lock = threading.Lock()

    def register(self, *, supplier_id: str, name: str, adapter: str, endpoint: str,
                 credentials: Mapping[str, str], actor: str,
                 tenant: str | None = None) -> Supplier:
        """Register a supplier, its credentials sealed; the same registration again answers
        the first one, another with the same id is refused."""
        check_supplier_id(supplier_id, "supplier_id")
        name = _check_name(name)
        endpoint = check_endpoint(endpoint, allow_private=self._allow_private)
        secrets = _check_credentials(credentials, self._adapters.kind(adapter).credentials)
        supplier = Supplier(
            id=ids.supplier_id(supplier_id), supplier_id=supplier_id, name=name,
            adapter=adapter, endpoint=endpoint, credential_names=sorted(secrets),
            sealed_credentials=self._vault.seal(ids.supplier_id(supplier_id), secrets),
            actor=actor, tenant=tenant)
        existing = self._find(supplier_id)
        if existing is None:
            try:
                self._writer.save(supplier)
                return supplier
            except ConcurrentUpdate:  # registered meanwhile, by this request's twin or another
                existing = self.get(supplier_id)
        if self._same(existing, supplier, secrets):
            return existing
        raise AlreadyExists(f"supplier {supplier_id} is already registered differently")

    def get(self, supplier_id: str, *, viewer: str | None = None) -> Supplier:
        """The supplier, or NotFound (also for one of a tenant other than ``viewer``'s;
        None: the platform, which sees every tenant's)."""
        unknown = (f"no supplier {supplier_id}" if PART.match(str(supplier_id))
                   else "no such supplier")
        supplier = self._find(supplier_id)
        if supplier is None:
            raise NotFound(unknown)
        check_visible(viewer, supplier.tenant, unknown)
        return supplier

    def set_offers(self, sku: str, offers: Sequence[TopupOffer], actor: str
                   ) -> list[TopupOffer]:
        """Replace a top-up SKU's offers; each names a registered supplier, costs what the
        product is priced in, and at most its price unless the product allows it."""
        product = self._catalog.get(sku)
        if product.delivery != "topup":
            raise InvalidState(f"product {sku} is not a top-up product: it has no offers")
        if len(offers) > MAX_OFFERS:
            raise ValidationFailed(f"a SKU has at most {MAX_OFFERS} offers")
        if len({offer.supplier_id for offer in offers}) != len(offers):
            raise ValidationFailed("a supplier makes at most one offer per SKU")
        for index, offer in enumerate(offers):
            self._check_offer(offer, index, product)

        def attempt() -> TopupOffers:
            found = self._store.find(ids.topup_offers_id(sku))
            if found is None:
                found = TopupOffers(id=ids.topup_offers_id(sku), sku=sku, actor=actor)
            found.set(offers=list(offers), actor=actor)
            self._writer.save(found)
            return found
        ranked = retrying(attempt, attempts=5, what=f"the offers of {sku}").ranked()
        self._recent[sku] = (time.monotonic(), ranked)
        return list(ranked)

    def offers_for(self, sku: str, *, fresh: bool = False) -> list[TopupOffer]:
        """The SKU's offers, lowest priority first ([] when none was ever set), as read at
        most a second ago (a change made by another process counts within a second), or
        ``fresh`` from the store."""
        now = time.monotonic()
        hit = self._recent.get(sku)
        if hit is not None and now - hit[0] < RECENT_SECONDS and not fresh:
            return list(hit[1])
        found = self._store.find(ids.topup_offers_id(sku))
        ranked = found.ranked() if found is not None else []
        self._recent[sku] = (now, ranked)
        return list(ranked)

    def adapter_for(self, supplier_id: str) -> SupplierAdapter:
        """The supplier's adapter, built once per process (a supplier never changes)."""
        with self._lock:
            built = self._built.get(supplier_id)
        if built is not None:
            return built
        supplier = self.get(supplier_id)
        opened = self._vault.open(ids.supplier_id(supplier_id), supplier.sealed_credentials)
        link = SupplierLink(supplier_id, supplier.endpoint,
                            {k: str(v) for k, v in opened.items()}, self._timeouts,
                            allow_private_addresses=self._allow_private)
        adapter = self._adapters.build(supplier.adapter, link)
        with self._lock:
            return self._built.setdefault(supplier_id, adapter)

    def close(self) -> None:
        with self._lock:
            built, self._built = list(self._built.values()), {}
        for adapter in built:
            adapter.close()

    def _check_offer(self, offer: TopupOffer, index: int, product: Any) -> None:
        where = f"offers[{index}]"
        check_supplier_id(offer.supplier_id, f"{where}.supplier_id")
        _check_supplier_sku(offer.supplier_sku, f"{where}.supplier_sku")
        supplier = self._find(offer.supplier_id)
        if supplier is None or supplier.tenant != tenant_of(product.sku):
            raise ValidationFailed(f"{where}.supplier_id: no supplier {offer.supplier_id}")
        if offer.cost.currency != product.currency:
            raise ValidationFailed(f"{where}.cost must be in {product.currency}, "
                                   "the product's currency")
        if product.is_below_cost(offer.cost.amount):
            raise PriceBelowCost(f"{where}.cost {offer.cost.amount} is above the price "
                                 f"{product.price} and {product.sku} does not allow it")

    def _same(self, existing: Supplier, asked: Supplier, secrets: dict[str, str]) -> bool:
        fields = ("name", "adapter", "endpoint", "tenant")
        if any(getattr(existing, f) != getattr(asked, f) for f in fields):
            return False
        return self._vault.open(existing.id, existing.sealed_credentials) == secrets

    def _find(self, supplier_id: str) -> Supplier | None:
        if not isinstance(supplier_id, str) or not PART.match(supplier_id):
            return None
        return self._store.find(ids.supplier_id(supplier_id))


def check_supplier_id(value: object, field: str) -> str:
    """A supplier id names a ledger account (``liabilities:suppliers:<id>``)."""
    if not isinstance(value, str) or not PART.match(value):
        raise ValidationFailed(f"{field} must be 1-64 letters, digits, '.', '_' or '-', "
                               "starting with a letter or digit (it names a ledger account)")
    return value


def check_endpoint(value: object, *, allow_private: bool) -> str:
    """An http(s) URL with a host and nothing secret in it: no user, password or query
    (those belong in the sealed credentials; the endpoint is stored in clear); unless
    private addresses are allowed, a host that is not this machine nor a non-public
    address, however spelt (engine/kernel/addresses.py), since the supplier's key is sent there."""
    text = check_text(value, "endpoint")
    parts = _url_parts(text)
    if parts is None or parts.scheme not in ("http", "https") or not _is_host(parts.hostname):
        raise ValidationFailed(f"endpoint must be an http or https URL with a host "
                               f"(at most {MAX_ENDPOINT} characters, no spaces)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValidationFailed("endpoint must carry no user, password, query or fragment: "
                               "credentials go in credentials, where they are sealed")
    if not allow_private:
        check_host(parts.hostname or "", "endpoint")
    return text.rstrip("/")


def _url_parts(text: str) -> SplitResult | None:
    if len(text) > MAX_ENDPOINT or any(c.isspace() for c in text):
        return None
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - read for its check: a port beyond 65535 raises
    except ValueError:
        return None
    return parts


def _is_host(host: str | None) -> bool:
    """A DNS name or an IP address literal."""
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(HOST.match(host))


def _check_credentials(credentials: Mapping[str, str], required: Sequence[str]
                       ) -> dict[str, str]:
    if not isinstance(credentials, Mapping) or len(credentials) > MAX_CREDENTIALS:
        raise ValidationFailed(f"credentials: at most {MAX_CREDENTIALS} named values")
    for key, value in credentials.items():
        if not isinstance(key, str) or not CREDENTIAL_NAME.match(key):
            raise ValidationFailed("credentials: each name is 1-64 lower-case letters, "
                                   "digits or '_'")
        check_text(value, f"credentials.{key}")  # sealed as JSON: printable text only
        if not 1 <= len(value) <= MAX_CREDENTIAL:
            raise ValidationFailed(f"credentials.{key} must be 1-{MAX_CREDENTIAL} characters")
    missing = [name for name in required if name not in credentials]
    if missing:
        raise ValidationFailed(f"credentials must include {', '.join(missing)}")
    return dict(credentials)


def _check_name(name: object) -> str:
    text = check_text(name, "name")
    if not text.strip() or len(text) > MAX_NAME:
        raise ValidationFailed(f"name must be 1-{MAX_NAME} characters")
    return text


def _check_supplier_sku(value: object, field: str) -> str:
    text = check_text(value, field)
    if not text.strip() or len(text) > 64:
        raise ValidationFailed(f"{field} must be 1-64 characters")
    return text
