"""The webhook dispatcher: follows the event log (the log is the outbox) and delivers to
every enabled endpoint, each from its own position, in a thread of its own.

One endpoint's worker queues the messages its endpoint wants (in log order, up to what the
projections have applied, since low-stock crossings and new endpoints are read there) and
sends its queue head first: nothing later goes before it, so each endpoint hears events in
log order, and so per order. A head that fails waits (exponential backoff with jitter) and
holds back only its own endpoint; one failing past QUANYI_WEBHOOK_DISABLE_AFTER_SECONDS
disables the endpoint, saying why and since when. No command waits on any of this.

At least once: a delivery is marked delivered only after a 2xx answer, so a crash between
the answer and the mark sends it again, with the same ``webhook-id``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx

from engine.app import Engine
from engine.clock import utc_now
from engine.settings import Settings
from engine.store import EventStore
from engine.tenancy import tenant_of, visible
from engine.webhook_messages import (STOCK_LOW, Message, message_id, message_of, sign,
                                     stock_message, topics_for)
from engine.webhook_urls import resolves_publicly
from engine.webhooks import WebhookEndpoint
from projections.database import ReadDatabase
from projections.runner import ProjectionRunner
from projections.stock import StockAlerts
from projections.webhook_deliveries import Attempt, Delivery, DeliveryLog, Queued
from projections.webhooks import EndpointQueries

log = logging.getLogger("quanyi.webhooks")

BATCH = 200  # events read from the log at a time, per endpoint
RETRY_SECONDS = 1.0  # after an unexpected error in a worker
LEASE_SECONDS = 30.0  # beyond one attempt's timeout: how long a dead process holds an endpoint
USER_AGENT = "Quanyi-Webhooks/1.0"
KNOWN_ORDERS = 10_000


class StoreContext:
    """Orders' owners and references, codes' SKUs and orders, read from the store (an
    order's owner and reference never change, so they are remembered)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._orders: dict[str, dict[str, Any]] = {}

    def order(self, order_id: str) -> dict[str, Any] | None:
        known = self._orders.get(order_id)
        if known is None:
            order = self._find(order_id)
            if order is None:
                return None
            if len(self._orders) >= KNOWN_ORDERS:
                self._orders.clear()
            known = self._orders[order_id] = {"owner": order.owner,
                                              "external_ref": order.external_ref}
        return known

    def code(self, code_id: str) -> dict[str, Any] | None:
        code = self._find(code_id)
        return None if code is None else {"sku": code.sku, "order_id": code.order_id}

    def _find(self, aggregate_id: str) -> Any:
        try:
            return self.store.find(UUID(aggregate_id))
        except ValueError:
            return None


def backoff(attempts: int, settings: Settings) -> float:
    """Seconds before the next attempt after ``attempts`` failures: doubling from the base,
    capped, and jittered to between half and all of it so receivers are not hit in step."""
    delay = min(settings.webhook_retry_max_seconds,
                settings.webhook_retry_base_seconds * 2 ** min(attempts - 1, 40))
    return delay * random.uniform(0.5, 1.0)


class WebhookDispatcher:
    """Keeps one worker per enabled endpoint; the API's redelivery goes through here."""

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
        self._workers: dict[str, EndpointWorker] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._supervise, name="quanyi-webhooks",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=5)
        for worker in list(self._workers.values()):
            worker.stop()
        self._workers.clear()

    def wake(self) -> None:
        """Look for new or re-enabled endpoints now, and wake every worker."""
        self._wake.set()
        for worker in list(self._workers.values()):
            worker.wake()

    def redeliver(self, endpoint_id: str, delivery_id: str) -> dict[str, Any]:
        """Queue a delivery again (same webhook-id and body), due now."""
        fresh = self.log.redeliver(endpoint_id, delivery_id, utc_now())
        self.wake()
        return fresh

    def _supervise(self) -> None:
        while not self._stop.is_set():
            try:
                self._roll_call()
            except Exception:  # noqa: BLE001 - the next roll call retries; logged
                log.exception("webhook dispatcher could not read the endpoints")
            self._wake.wait(self.settings.webhook_poll_seconds)
            self._wake.clear()

    def _roll_call(self) -> None:
        enabled = self.endpoints.enabled()
        for endpoint_id in set(self._workers) - set(enabled):
            self._workers.pop(endpoint_id).stop()
        for endpoint_id, registered_at in enabled.items():
            worker = self._workers.get(endpoint_id)
            if worker is None or not worker.alive:
                self._workers[endpoint_id] = EndpointWorker(self, endpoint_id, registered_at)
                self._workers[endpoint_id].start()


class EndpointWorker:
    """Delivers one endpoint's queue, in order, with its own position in the log."""

    def __init__(self, dispatcher: WebhookDispatcher, endpoint_id: str,
                 registered_at: int) -> None:
        self.d = dispatcher
        self.endpoint_id = endpoint_id
        self.registered_at = registered_at
        self.holder = uuid4().hex  # this worker's name on the endpoint's lease
        self._held_until: datetime | None = None
        self._seen = 0  # the read models' position when the queue was last filled
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"quanyi-webhook-{endpoint_id[:8]}")
        self._client = httpx.Client(timeout=dispatcher.settings.webhook_timeout_seconds,
                                    follow_redirects=False)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.d.settings.webhook_timeout_seconds + 5)

    def wake(self) -> None:
        self._wake.set()

    def _pause(self, seconds: float) -> None:
        self._wake.wait(max(0.0, seconds))
        self._wake.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._hold():
                    self._step()
                else:  # another process delivers to this endpoint
                    self._pause(self.d.settings.webhook_poll_seconds)
            except Exception:  # noqa: BLE001 - keep delivering; the error is logged
                log.exception("webhook endpoint %s: delivery step failed", self.endpoint_id)
                self._stop.wait(RETRY_SECONDS)
        self._client.close()
        try:
            self.d.log.let_go(self.endpoint_id, self.holder)
        except Exception:  # noqa: BLE001 - the lease runs out by itself
            log.exception("webhook endpoint %s: could not let go of the lease", self.endpoint_id)

    def _hold(self) -> bool:
        """Take this worker's lease, or renew it once half of it has run; forgive old
        failures on first taking it."""
        now = utc_now()
        lease = timedelta(seconds=self.d.settings.webhook_timeout_seconds + LEASE_SECONDS)
        if self._held_until is not None and now < self._held_until - lease / 2:
            return True
        if self._held_until is None:
            self.d.log.position(self.endpoint_id, self.registered_at)  # the row to hold
        if not self.d.log.hold(self.endpoint_id, self.holder, now, now + lease):
            self._held_until = None
            return False
        if self._held_until is None:
            self._forgive_if_enabled_again()
        self._held_until = now + lease
        return True

    def _endpoint(self) -> WebhookEndpoint:
        return self.d.engine.webhooks.get(UUID(self.endpoint_id))

    def _forgive_if_enabled_again(self) -> None:
        """Failures from before the endpoint was last enabled count no more."""
        endpoint = self._endpoint()
        if endpoint.enabled and endpoint.enabled_at is not None:
            self.d.log.forgive(self.endpoint_id, endpoint.enabled_at, utc_now())

    def _step(self) -> None:
        endpoint = self._endpoint()
        if not endpoint.enabled:
            self._stop.set()
            return
        head = self.d.log.head(self.endpoint_id)
        if head is None:
            if not self._fill(endpoint):  # nothing new: until the read models move on
                self.d.runner.wait_beyond(self._seen, self.d.settings.webhook_poll_seconds)
            return
        wait = (datetime.fromisoformat(head.next_attempt_at) - utc_now()).total_seconds()
        if wait > 0:
            self._pause(min(wait, self.d.settings.webhook_poll_seconds))
            return
        self._deliver(endpoint, head)

    # -- queueing: from the log to the endpoint's queue ---------------------------------

    def _fill(self, endpoint: WebhookEndpoint) -> bool:
        """Queue the next messages after the endpoint's position; False when there were
        no new events to look at."""
        was = self.d.log.position(self.endpoint_id, self.registered_at)
        upto = self._seen = self.d.runner.position()
        if upto <= was:
            return False
        messages, end = self._messages(endpoint, was, upto)
        queued = [Queued(m.position, message_id(self.endpoint_id, m.position, m.type), m.type,
                         m.payload().decode()) for m in messages if _heard_by(endpoint, m)]
        self.d.log.enqueue(self.endpoint_id, was, end, queued, utc_now())
        return True

    def _messages(self, endpoint: WebhookEndpoint, was: int,
                  upto: int) -> tuple[list[Message], int]:
        topics = topics_for(endpoint.event_types)
        notes = self.d.store.recorder.select_notifications(
            start=was, limit=BATCH, stop=upto, topics=topics,
            inclusive_of_start=False) if topics else []
        end = notes[-1].id if len(notes) == BATCH else upto
        decode = self.d.store.mapper.transcoder.decode
        messages = []
        for note in notes:
            state = {**decode(note.state), "originator_id": note.originator_id}
            try:
                message = message_of(note.topic, state, note.id, self.d.context)
            except (KeyError, TypeError, ValueError, AttributeError):
                # an event no payload can be made of would hold the queue for ever
                log.exception("webhook endpoint %s: event at position %s (%s) cannot be "
                              "told; skipped", self.endpoint_id, note.id, note.topic)
                continue
            if message is not None:
                messages.append(message)
        if STOCK_LOW in endpoint.event_types:
            messages += [stock_message(a) for a in self.d.alerts.between(was, end)]
        return sorted(messages, key=lambda m: m.position), end

    # -- sending ------------------------------------------------------------------------

    def _deliver(self, endpoint: WebhookEndpoint, head: Delivery) -> None:
        attempt = self._attempt(endpoint, head)
        retry_at = attempt.at + timedelta(seconds=backoff(head.attempts + 1, self.d.settings))
        failing_since = self.d.log.record(head, attempt, retry_at)
        if failing_since is None:
            return
        since = datetime.fromisoformat(failing_since)
        if (attempt.at - since).total_seconds() >= self.d.settings.webhook_disable_after_seconds:
            reason = (f"every delivery failed since {failing_since}; last: "
                      f"{attempt.error or attempt.status_code}")
            self.d.engine.webhooks.give_up(endpoint.id, reason=reason, failing_since=since)
            self._stop.set()

    def _attempt(self, endpoint: WebhookEndpoint, head: Delivery) -> Attempt:
        started, clock = utc_now(), time.monotonic()
        if not self.d.settings.webhook_allow_private_urls and not resolves_publicly(endpoint.url):
            return Attempt(started, None, "the URL's host does not resolve to a public address", 0)
        body = head.payload.encode()
        timestamp = int(time.time())
        headers = {"webhook-id": head.message_id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(self.d.engine.webhooks.secret(endpoint),
                                             head.message_id, timestamp, body),
                   "content-type": "application/json", "user-agent": USER_AGENT}
        try:
            answer = self._client.post(endpoint.url, content=body, headers=headers)
            status, error = answer.status_code, None
            if not 200 <= status < 300:
                error = f"answered HTTP {status}"
        except httpx.HTTPError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        return Attempt(started, status, error, _elapsed_ms(clock))


def _elapsed_ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)


def _heard_by(endpoint: WebhookEndpoint, message: Message) -> bool:
    """Whether the endpoint may hear of it: an app's endpoint hears of its owner's orders
    only; low stock concerns every seller of the SKU, within the SKU's tenant."""
    if message.type == STOCK_LOW:
        return visible(endpoint.tenant, tenant_of(message.data["sku"]))
    return endpoint.scope is None or message.owner == endpoint.scope

