"""One endpoint's deliveries, taken one step at a time by whichever worker of the dispatcher's
pool is free (runtime/webhooks.py); no two steps of one endpoint ever run at once.

A step does the next thing the endpoint needs, and says when the next one is due:

    lease held elsewhere ──▶ look again in ELSEWHERE_SECONDS
    disabled ──▶ no more steps (None)
    queue empty ──▶ queue the messages after its position (again at once), or, with no new
                    events, IDLE until the read models move past what it saw
    head not yet due ──▶ when it is due (its backoff)
    head due ──▶ one attempt, recorded (again at once: the next head, or its retry)

The endpoint's queue is sent head first, in log order; a failing head holds back only its
own endpoint. At least once: a delivery is marked delivered only after a 2xx answer.
"""

from __future__ import annotations

import logging
import math
import random
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx

from engine.eventstore.store import EventStore
from engine.kernel.addresses import pin
from engine.kernel.clock import utc_now
from engine.kernel.errors import AddressRefused
from engine.kernel.tenancy import tenant_of, visible
from engine.settings import Settings
from engine.webhooks.endpoints import WebhookEndpoint
from engine.webhooks.messages import (
    STOCK_LOW,
    Message,
    message_id,
    message_of,
    sign,
    stock_message,
    topics_for,
)
from projections.webhook_deliveries import Attempt, Delivery, Queued

if TYPE_CHECKING:
    from runtime.webhooks import WebhookDispatcher

log = logging.getLogger("quanyi.webhooks")

BATCH = 200  # events read from the log at a time, per endpoint
LEASE_SECONDS = 30.0  # beyond one attempt's timeout: how long a dead process holds an endpoint
ELSEWHERE_SECONDS = 5.0  # between looks at an endpoint another process delivers to
IDLE = math.inf  # due once the read models have moved past what the endpoint saw
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


class EndpointCourier:
    """Delivers one endpoint's queue, in order, from its own position in the log."""

    def __init__(self, dispatcher: "WebhookDispatcher", endpoint_id: str,
                 registered_at: int) -> None:
        self.d = dispatcher
        self.endpoint_id = endpoint_id
        self.registered_at = registered_at
        self.seen = 0  # the read models' position when the queue was last filled
        self._held_until: datetime | None = None

    def step(self) -> float | None:
        """The endpoint's next step; seconds until the one after (IDLE: once the read
        models move past ``seen``; None: the endpoint is not to be served any more)."""
        if not self._hold():
            return ELSEWHERE_SECONDS
        endpoint = self._endpoint()
        if not endpoint.enabled:
            return None
        head = self.d.log.head(self.endpoint_id)
        if head is None:
            return 0.0 if self._fill(endpoint) else IDLE
        wait = (datetime.fromisoformat(head.next_attempt_at) - utc_now()).total_seconds()
        if wait > 0:
            return wait
        return 0.0 if self._deliver(endpoint, head) else None

    def _hold(self) -> bool:
        """Take this process's lease on the endpoint, or renew it once half of it has run;
        forgive old failures on first taking it."""
        now = utc_now()
        lease = timedelta(seconds=self.d.settings.webhook_timeout_seconds + LEASE_SECONDS)
        if self._held_until is not None and now < self._held_until - lease / 2:
            return True
        if self._held_until is None:
            self.d.log.position(self.endpoint_id, self.registered_at)  # the row to hold
        if not self.d.log.hold(self.endpoint_id, self.d.holder, now, now + lease):
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

    # -- queueing: from the log to the endpoint's queue ---------------------------------

    def _fill(self, endpoint: WebhookEndpoint) -> bool:
        """Queue the next messages after the endpoint's position; False when there were
        no new events to look at."""
        was = self.d.log.position(self.endpoint_id, self.registered_at)
        upto = self.seen = self.d.runner.position()
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

    def _deliver(self, endpoint: WebhookEndpoint, head: Delivery) -> bool:
        """One attempt at the head, recorded; False when the endpoint was disabled for
        failing too long."""
        attempt = self._attempt(endpoint, head)
        retry_at = attempt.at + timedelta(seconds=backoff(head.attempts + 1, self.d.settings))
        failing_since = self.d.log.record(head, attempt, retry_at)
        if failing_since is None:
            return True
        since = datetime.fromisoformat(failing_since)
        if (attempt.at - since).total_seconds() < self.d.settings.webhook_disable_after_seconds:
            return True
        reason = (f"every delivery failed since {failing_since}; last: "
                  f"{attempt.error or attempt.status_code}")
        self.d.engine.webhooks.give_up(endpoint.id, reason=reason, failing_since=since)
        return False

    def _attempt(self, endpoint: WebhookEndpoint, head: Delivery) -> Attempt:
        started, clock = utc_now(), time.monotonic()
        try:  # resolved once: the connection goes to the address checked
            target = pin(endpoint.url, allow_private=self.d.settings.webhook_allow_private_urls)
        except AddressRefused as exc:
            return Attempt(started, None, f"not sent: {exc.detail}", _elapsed_ms(clock))
        body = head.payload.encode()
        timestamp = int(time.time())
        headers = {"webhook-id": head.message_id, "webhook-timestamp": str(timestamp),
                   "webhook-signature": sign(self.d.engine.webhooks.secret(endpoint),
                                             head.message_id, timestamp, body),
                   "content-type": "application/json", "user-agent": USER_AGENT,
                   **target.headers}
        try:
            answer = self.d.client.post(target.url, content=body, headers=headers,
                                        extensions=target.extensions)
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
