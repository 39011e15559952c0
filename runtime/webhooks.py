"""The webhook dispatcher: follows the event log (the log is the outbox) and delivers to
every enabled endpoint, each from its own position, on a fixed pool of workers.

However many endpoints there are, the process spends ``QUANYI_WEBHOOK_WORKERS`` threads (and
as many read-side connections and HTTP connections) on them, plus one scheduler thread:

    scheduler ──roll call (every poll), new events──▶ due endpoints (a heap by due time)
    worker 1..N ──take the earliest due endpoint──▶ one step (runtime/webhook_courier.py)
                 ──▶ back in the heap at the time the step names, or idle until new events

An endpoint is in the heap, idle, or in one worker's hands, never two of these, so its steps
never overlap and its queue goes out in log order. A slow or dead receiver holds a worker
for at most one attempt's timeout: it delays others only when every worker is held so.

Stopping takes at most STOP_SECONDS: a worker still waiting on a receiver is left behind
(a daemon thread) with its endpoint's lease, which runs out by itself; every other lease
is let go at once, so another process takes over without waiting.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from typing import Any
from uuid import uuid4

import httpx

from engine.app import Engine
from engine.eventstore.store import EventStore
from engine.kernel.clock import utc_now
from engine.kernel.errors import Unavailable
from engine.settings import Settings
from projections.database import ReadDatabase
from projections.runner import ProjectionRunner
from projections.stock import StockAlerts
from projections.webhook_deliveries import DeliveryLog
from projections.webhooks import EndpointQueries
from runtime.webhook_courier import IDLE, EndpointCourier, StoreContext

log = logging.getLogger("quanyi.webhooks")

RETRY_SECONDS = 1.0  # after an unexpected error in a step
STOP_SECONDS = 2.0  # the longest stop() waits for workers in an attempt


class WebhookDispatcher:
    """Schedules every enabled endpoint's steps on a bounded pool of workers; the API's
    redelivery and enabling go through here."""

    def __init__(self, engine: Engine, store: EventStore, db: ReadDatabase,
                 runner: ProjectionRunner, settings: Settings) -> None:
        self.engine = engine
        self.store = store
        self.runner = runner
        self.settings = settings
        self.log = DeliveryLog(db)
        self.endpoints = EndpointQueries(db)
        self.alerts = StockAlerts(db)
        self.context = StoreContext(store)
        self.holder = uuid4().hex  # this process's name on the leases it holds
        self.client = self._new_client()
        self._couriers: dict[str, EndpointCourier] = {}
        self._due: list[tuple[float, str]] = []  # (monotonic due time, endpoint id)
        self._when: dict[str, float] = {}  # the valid heap entry of each endpoint in it
        self._idle: set[str] = set()
        self._busy: set[str] = set()
        self._woken: set[str] = set()  # woken while busy: due again as soon as done
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._stop.clear()
        if self.client.is_closed:
            self.client = self._new_client()
        self._threads = [threading.Thread(target=self._supervise, name="quanyi-webhooks",
                                          daemon=True)]
        self._threads += [threading.Thread(target=self._work, daemon=True,
                                           name=f"quanyi-webhook-worker-{n}")
                          for n in range(self.settings.webhook_workers)]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop within STOP_SECONDS, letting go of every lease not held by an attempt."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        deadline = time.monotonic() + STOP_SECONDS
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._changed:
            busy = sorted(self._busy)
        try:
            self.log.let_go_all(self.holder, keep=busy)
        except Exception:  # noqa: BLE001 - the leases run out by themselves
            log.exception("webhooks: could not let go of the endpoints' leases")
        if not busy:
            self.client.close()
        self._threads = []

    def wake(self) -> None:
        """Look for new or re-enabled endpoints now."""
        self._roll_call()

    def redeliver(self, endpoint_id: str, delivery_id: str) -> dict[str, Any]:
        """Queue a delivery again (same webhook-id and body), due now."""
        fresh = self.log.redeliver(endpoint_id, delivery_id, utc_now())
        with self._changed:
            self._due_now(endpoint_id)
        return fresh

    # -- the scheduler ------------------------------------------------------------------

    def _supervise(self) -> None:
        roll_call_at = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= roll_call_at:
                    self._roll_call()
                    roll_call_at = time.monotonic() + self.settings.webhook_poll_seconds
            except Unavailable:
                pass  # the store's watch says so, once; the next round retries
            except Exception:  # noqa: BLE001 - the next round retries; logged
                log.exception("webhook dispatcher could not read the endpoints")
            seen = self._wake_idle()
            self.runner.wait_beyond(seen, min(self.settings.webhook_poll_seconds,
                                              STOP_SECONDS / 4))

    def _roll_call(self) -> None:
        enabled = self.endpoints.enabled()
        with self._changed:
            for endpoint_id in set(self._couriers) - set(enabled):
                self._forget(endpoint_id)
            for endpoint_id, registered_at in enabled.items():
                if endpoint_id not in self._couriers and endpoint_id not in self._busy:
                    self._couriers[endpoint_id] = EndpointCourier(self, endpoint_id,
                                                                  registered_at)
                    self._due_now(endpoint_id)

    def _wake_idle(self) -> int:
        """Idle endpoints that have not seen the read models' position are due now; the
        position they were compared with."""
        position = self.runner.position()
        with self._changed:
            for endpoint_id in [e for e in self._idle if self._couriers[e].seen < position]:
                self._due_now(endpoint_id)
        return position

    # -- the pool -----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            courier = self._take()
            if courier is None:
                return
            try:
                after = courier.step()
            except Unavailable:
                after = RETRY_SECONDS  # the store's watch says so, once
            except Exception:  # noqa: BLE001 - keep delivering; the error is logged
                log.exception("webhook endpoint %s: delivery step failed", courier.endpoint_id)
                after = RETRY_SECONDS
            self._done(courier.endpoint_id, after)

    def _take(self) -> EndpointCourier | None:
        """The earliest due endpoint, now in this worker's hands; None once stopping."""
        with self._changed:
            while not self._stop.is_set():
                while self._due and self._when.get(self._due[0][1]) != self._due[0][0]:
                    heapq.heappop(self._due)  # superseded by a later scheduling
                wait = self._due[0][0] - time.monotonic() if self._due else None
                if wait is not None and wait <= 0:
                    _, endpoint_id = heapq.heappop(self._due)
                    del self._when[endpoint_id]
                    self._busy.add(endpoint_id)
                    return self._couriers[endpoint_id]
                self._changed.wait(wait)
        return None

    def _done(self, endpoint_id: str, after: float | None) -> None:
        with self._changed:
            self._busy.discard(endpoint_id)
            if endpoint_id in self._woken and after is not None:
                self._woken.discard(endpoint_id)
                after = 0.0
            if endpoint_id not in self._couriers:
                return
            if after is None:
                self._forget(endpoint_id)
            elif after == IDLE:
                self._idle.add(endpoint_id)
            else:
                self._schedule(endpoint_id, time.monotonic() + after)

    def _due_now(self, endpoint_id: str) -> None:
        if endpoint_id in self._busy:
            self._woken.add(endpoint_id)
        elif endpoint_id in self._couriers:
            self._idle.discard(endpoint_id)
            self._schedule(endpoint_id, time.monotonic())

    def _schedule(self, endpoint_id: str, at: float) -> None:
        self._when[endpoint_id] = at
        heapq.heappush(self._due, (at, endpoint_id))
        self._changed.notify()

    def _forget(self, endpoint_id: str) -> None:
        self._couriers.pop(endpoint_id, None)
        self._when.pop(endpoint_id, None)
        self._idle.discard(endpoint_id)
        self._woken.discard(endpoint_id)

    def _new_client(self) -> httpx.Client:
        workers = self.settings.webhook_workers
        return httpx.Client(timeout=self.settings.webhook_timeout_seconds,
                            follow_redirects=False,
                            limits=httpx.Limits(max_connections=workers,
                                                max_keepalive_connections=workers))
