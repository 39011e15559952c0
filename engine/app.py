"""The engine: every use case, over one event store and one group-commit writer."""

from __future__ import annotations

from collections.abc import Callable

from engine.catalog.products import Catalog
from engine.codes.desk import CodeDesk
from engine.codes.imports import Imports
from engine.codes.redemptions import Redemptions
from engine.codes.reservations import CandidateSource, CodeAllocator, Reservations
from engine.eventstore.store import EventStore
from engine.topics import open_store
from engine.eventstore.writer import Writer
from engine.kernel.vault import Vault
from engine.keys import Keys
from engine.ledger.distribution import Distribution
from engine.ledger.payouts import BalanceSource, Payouts
from engine.sales.desk import Orders
from engine.sales.postings import Sales
from engine.settings import Settings
from engine.topups.breakers import CircuitBreakers
from engine.topups.desk import Topups, opened_by_payment
from engine.topups.supplier_port import AdapterRegistry, SupplierTimeouts
from engine.topups.suppliers import Suppliers
from engine.webhooks.endpoints import Webhooks

IN_FLIGHT_MARGIN_SECONDS = 1.0  # a placement's time on the wire beyond the adapter's timeouts


class Engine:
    """Holds the use-case services; built once at the edge and passed in."""

    def __init__(self, settings: Settings, store: EventStore, candidates: CandidateSource,
                 on_saved: Callable[[], None] | None = None, *,
                 balances: BalanceSource, adapters: AdapterRegistry | None = None,
                 enabled_webhooks_of: Callable[[str], int] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.vault = Vault(settings.secret_key)
        self.writer = Writer(store, max_group=settings.write_batch_size, on_saved=on_saved)
        self.catalog = Catalog(store, self.writer)
        self.imports = Imports(store, self.writer, self.vault, self.catalog)
        self.reservations = Reservations(store, self.writer, CodeAllocator(candidates, store.get_many),
                                         candidates)
        self.redemptions = Redemptions(store, self.writer, self.vault, self.catalog)
        self.codes = CodeDesk(store, self.writer, self.vault, self.catalog)
        self.keys = Keys(store, self.writer, self.vault)
        self.distribution = Distribution(store, self.writer)
        # one Sales for orders and top-ups: it keeps costs and commission chains per process
        self.sales = Sales(store, self.catalog, self.distribution)
        self.orders = Orders(store, self.writer, self.vault, self.catalog, self.reservations,
                             self.distribution, self.sales, settings.reservation_ttl_seconds,
                             opened_by_payment)
        self.suppliers = Suppliers(store, self.writer, self.vault, self.catalog,
                                   adapters or AdapterRegistry(), supplier_timeouts(settings),
                                   allow_private_urls=settings.supplier_allow_private_urls)
        self.payouts = Payouts(store, self.writer, balances, self.distribution, self.suppliers)
        self.webhooks = Webhooks(store, self.writer, self.vault,
                                 allow_private_urls=settings.webhook_allow_private_urls,
                                 max_endpoints=settings.webhook_max_endpoints,
                                 enabled_of=enabled_webhooks_of)
        self.topups = Topups(
            store, self.writer, self.vault, self.suppliers, self.sales,
            CircuitBreakers(settings.breaker_failures, settings.breaker_cooldown_seconds),
            deadline_seconds=settings.topup_deadline_seconds,
            query_seconds=settings.topup_query_seconds,
            query_max_seconds=settings.topup_query_max_seconds,
            in_flight_seconds=settings.supplier_connect_timeout_seconds
            + settings.supplier_timeout_seconds + IN_FLIGHT_MARGIN_SECONDS)

    @classmethod
    def open(cls, settings: Settings, candidates: CandidateSource,
             on_saved: Callable[[], None] | None = None, *,
             balances: BalanceSource, adapters: AdapterRegistry | None = None) -> "Engine":
        return cls(settings, open_store(settings), candidates, on_saved,
                   balances=balances, adapters=adapters)

    def close(self) -> None:
        self.suppliers.close()
        self.writer.close()
        self.store.close()


def supplier_timeouts(settings: Settings) -> SupplierTimeouts:
    """How long adapters wait on suppliers, from the QUANYI_SUPPLIER_* settings."""
    return SupplierTimeouts(settings.supplier_connect_timeout_seconds,
                            settings.supplier_timeout_seconds,
                            settings.supplier_callback_tolerance_seconds)
