"""The expiry sweeper: every ``QUANYI_EXPIRY_SWEEP_SECONDS`` it expires unpaid orders past
their reservation time (releasing their codes) and codes past their expiry. Each expiry is a
compare-and-set on the aggregate, so a sweep run twice, or in two processes, expires a thing
once."""

from __future__ import annotations

import logging
import threading

from engine.app import Engine
from engine.eventstore.store import EventStore
from engine.kernel.errors import Unavailable
from projections.queries import CodeQueries, iso_now
from projections.runner import ProjectionRunner

log = logging.getLogger("quanyi.runtime")


class ExpirySweeper:
    """Expires what is due: on demand, or in a thread of its own between start and stop."""

    def __init__(self, engine: Engine, codes: CodeQueries, runner: ProjectionRunner,
                 store: EventStore, every: float) -> None:
        self.engine = engine
        self.codes = codes
        self.runner = runner
        self.store = store
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="quanyi-expiry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

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

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.sweep_expired_orders()
                self.sweep_expired()
            except Unavailable:
                pass  # the store's watch says so, once; the next turn retries
            except Exception:  # noqa: BLE001 - the next sweep retries; the error is logged
                log.exception("expiry sweep failed")
