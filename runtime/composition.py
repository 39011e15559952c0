"""The composition root: builds the store, the engine, the projections and their workers
from one Settings object. ``quanyi serve``, the CLI, replay, the benchmarks and the tests all
start here (replay needs only the list of projections: projections/live.py)."""

from __future__ import annotations

from engine.app import Engine
from engine.eventstore.store import EventStore
from engine import open_store
from engine.settings import Settings
from projections.database import ReadDatabase
from projections.ledger_queries import LedgerQueries
from projections.live import all_projections
from projections.queries import CodeQueries
from projections.runner import ProjectionRunner
from projections.topup_queries import TopupQueries
from replay.audit_log import AuditLog
from runtime.audit_follower import AuditFollower
from runtime.dispatcher import TopupDispatcher
from runtime.leases import ProcessLease
from runtime.sweepers import ExpirySweeper
from runtime.webhooks import WebhookDispatcher
from supplier_adapters import registry as supplier_adapters


class Runtime:
    """Everything one process needs, wired once."""

    def __init__(self, settings: Settings, store: EventStore) -> None:
        self.settings = settings
        self.store = store
        self.read_db = ReadDatabase.open(settings, watch=store.watch)
        self.lease = ProcessLease.take(settings)  # what this process's claims are held by
        self.runner = ProjectionRunner(store, self.read_db, all_projections(),
                                       listen_url=settings.database_url)
        self.codes = CodeQueries(self.read_db, self.runner)
        self.ledger = LedgerQueries(self.read_db, self.runner)
        self.audit = AuditLog.open(settings, store)
        self.audit_follower = AuditFollower(
            self.audit, head_every_events=settings.audit_head_every_events,
            head_every_seconds=settings.audit_head_every_seconds)
        self.engine = Engine(settings, store, self.codes, on_saved=self.runner.wake,
                             balances=self.ledger, adapters=supplier_adapters(),
                             enabled_webhooks_of=self._enabled_webhooks_of)
        self.topups = TopupQueries(self.read_db)
        self.dispatcher = TopupDispatcher(self.engine.topups, self.topups,
                                          workers=settings.topup_workers,
                                          poll_seconds=settings.topup_poll_seconds)
        self.sweeper = ExpirySweeper(self.engine, self.codes, self.runner, store,
                                     every=settings.expiry_sweep_seconds)
        self.webhooks = WebhookDispatcher(self.engine, store, self.read_db, self.runner,
                                          settings)

    @classmethod
    def open(cls, settings: Settings) -> "Runtime":
        return cls(settings, open_store(settings))

    def start(self) -> None:
        """Start the store's watch (PostgreSQL), the projection runner, the audit follower,
        the expiry sweeper, the webhook dispatcher and the top-up dispatcher."""
        if self.store.watch is not None:
            self.store.watch.start()
        self.runner.start()
        self.audit_follower.start()
        self.sweeper.start()
        self.webhooks.start()
        self.dispatcher.start()

    def read_your_writes(self, timeout: float = 5.0) -> bool:
        """Wait until the read models include every event written before this call."""
        return self.runner.wait_for(self.store.last_position(), timeout)

    def _enabled_webhooks_of(self, owner: str) -> int:
        """An owner's enabled webhook endpoints, once the read models hold every event
        written before (so that one registration after another is counted)."""
        self.read_your_writes()
        return self.webhooks.endpoints.enabled_of(owner)

    def sweep_expired_orders(self) -> int:
        """Expire unpaid orders past their reservation time, releasing their codes."""
        return self.sweeper.sweep_expired_orders()

    def sweep_expired(self) -> int:
        """Expire every code past its expiry; safe to run twice, or in two processes."""
        return self.sweeper.sweep_expired()

    def close(self) -> None:
        self.dispatcher.stop()
        self.webhooks.stop()
        self.sweeper.stop()
        self.audit_follower.stop()
        self.runner.stop()
        self.engine.close()
        self.audit.close()
        self.lease.close()
        self.read_db.close()
        if self.store.watch is not None:
            self.store.watch.stop()
