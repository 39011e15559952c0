"""The composition root: builds the store, the engine, the projections and their workers
from one Settings object. ``quanyi serve``, the CLI and the tests all start here."""

from __future__ import annotations

import logging
import threading

from engine.app import Engine
from engine.settings import Settings
from engine.store import EventStore, open_event_store
from projections.codes import CodeProjection
from projections.ledger import LedgerProjection
from projections.orders import OrderProjection
from projections.database import ReadDatabase
from projections.projection import Projection
from projections.queries import CodeQueries, iso_now
from projections.runner import ProjectionRunner

log = logging.getLogger("quanyi.runtime")


def all_projections() -> list[Projection]:
    """Every live projection, in the order the runner applies them."""
    return [CodeProjection(), OrderProjection(), LedgerProjection()]


class Runtime:
    """Everything one process needs, wired once."""

    def __init__(self, settings: Settings, store: EventStore) -> None:
        self.settings = settings
        self.store = store
        self.read_db = ReadDatabase.open(settings)
        self.runner = ProjectionRunner(store, self.read_db, all_projections(),
                                       listen_url=settings.database_url)
        self.codes = CodeQueries(self.read_db, self.runner)
        self.engine = Engine(settings, store, self.codes, on_saved=self.runner.wake)
        self._stop = threading.Event()
        self._sweeper: threading.Thread | None = None

    @classmethod
    def open(cls, settings: Settings) -> "Runtime":
        return cls(settings, open_event_store(settings))

    def start(self) -> None:
        """Start the projection runner and the expiry sweeper."""
        self.runner.start()
        self._stop.clear()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="quanyi-expiry",
                                         daemon=True)
        self._sweeper.start()

    def read_your_writes(self, timeout: float = 5.0) -> bool:
        """Wait until the read models include every event written before this call."""
        return self.runner.wait_for(self.store.last_position(), timeout)

    def sweep_expired_orders(self) -> int:
        """Expire unpaid orders past their reservation time, releasing their codes."""
        expired = 0
        for order_id in self.codes.orders_due(iso_now()):
            expired += self.engine.orders.expire(order_id)
        return expired

    def sweep_expired(self) -> int:
        """Expire every code past its expiry; safe to run twice, or in two processes."""
        total = 0
        while due := self.codes.due_for_expiry(iso_now()):
            expired = self.engine.codes.expire(due)
            total += expired
            if expired == 0:
                break
            self.runner.wait_for(self.store.last_position(), 5.0)
        return total

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.settings.expiry_sweep_seconds):
            try:
                self.sweep_expired_orders()
                self.sweep_expired()
            except Exception:  # noqa: BLE001 - the next sweep retries; the error is logged
                log.exception("expiry sweep failed")

    def close(self) -> None:
        self._stop.set()
        if self._sweeper:
            self._sweeper.join(timeout=5)
        self.runner.stop()
        self.engine.close()
        self.read_db.close()
