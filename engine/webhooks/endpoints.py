"""Webhook endpoints: where a backend app wants to be told what happened, and how to sign it.

An endpoint's signing secret (``whsec_`` and base64, as Standard Webhooks spells it) is
sealed with the vault, bound to the endpoint's id, before it enters any event; it is shown
in clear once, in the answer that made or rotated it, and opened again only to sign.

    enabled ──disable──▶ disabled ──enable──▶ enabled
       └──give up (failing past the limit: reason, failing since)──▶ disabled

Which events an endpoint hears is fixed when it is registered: those of its owner's orders
(an app key's tenant, or the key), or of every owner for an admin's endpoint.

An owner has at most ``QUANYI_WEBHOOK_MAX_ENDPOINTS`` enabled endpoints: registering or
enabling one more is refused (TooManyWebhooks); disabling one frees its place. The count is
read from the endpoints read model once it holds every event written before, so requests
one after another are held to the cap exactly, and requests racing each other may pass it
by at most their number.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel.errors import (
    InvalidState,
    NotFound,
    TooManyWebhooks,
    ValidationFailed,
)
from engine.kernel.retry import retrying
from engine.kernel.tenancy import owner_tenant
from engine.kernel.vault import Vault
from engine.keys import Principal
from engine.webhooks.urls import check_url

EVENT_TYPES = ("order.delivered", "order.refunded", "order.expired", "topup.succeeded",
               "topup.failed", "code.redeemed", "code.redemption_rolled_back", "stock.low")
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
MAX_REASON = 500
GIVER_UP = "webhooks"  # the actor of an automatic disabling


class WebhookEndpoint(Aggregate):
    TOPIC = "quanyi:webhook_endpoint"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:webhook_endpoint.registered"
        url: str
        event_types: list[str]
        sealed: str  # the signing secret, sealed (engine/kernel/vault.py)
        owner: str  # who sees and manages it: a tenant or a key
        scope: str | None  # whose orders it hears about; None: every owner's
        actor: str

    def __init__(self, *, id: UUID, url: str, event_types: list[str], sealed: str, owner: str,
                 scope: str | None, actor: str) -> None:
        self.url = url
        self.event_types = list(event_types)
        self.sealed = sealed
        self.owner = owner
        self.scope = scope
        self.enabled = True
        self.disabled_reason: str | None = None
        self.disabled_at: datetime | None = None
        self.failing_since: datetime | None = None
        self.secret_rotated_at: datetime | None = None
        self.enabled_at: datetime | None = None  # when last enabled again after disabling

    @property
    def tenant(self) -> str | None:
        return owner_tenant(self.owner)

    def visible_to(self, principal: Principal) -> bool:
        return principal.scope is None or principal.owner == self.owner

    def disable(self, *, reason: str, actor: str, failing_since: datetime | None = None) -> None:
        if not self.enabled:
            raise InvalidState(f"webhook endpoint {self.id} is already disabled")
        self.trigger_event(self.Disabled, reason=reason, failing_since=failing_since,
                           actor=actor)

    class Disabled(Aggregate.Event):
        TOPIC = "quanyi:webhook_endpoint.disabled"
        reason: str
        failing_since: datetime | None  # set when deliveries failed for too long
        actor: str

        def apply(self, endpoint: "WebhookEndpoint") -> None:
            endpoint.enabled = False
            endpoint.disabled_reason = self.reason
            endpoint.failing_since = self.failing_since
            endpoint.disabled_at = self.timestamp

    def enable(self, *, actor: str) -> None:
        if self.enabled:
            raise InvalidState(f"webhook endpoint {self.id} is already enabled")
        self.trigger_event(self.Enabled, actor=actor)

    class Enabled(Aggregate.Event):
        TOPIC = "quanyi:webhook_endpoint.enabled"
        actor: str

        def apply(self, endpoint: "WebhookEndpoint") -> None:
            endpoint.enabled = True
            endpoint.enabled_at = self.timestamp
            endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None

    class SecretRotated(Aggregate.Event):
        TOPIC = "quanyi:webhook_endpoint.secret_rotated"
        sealed: str
        actor: str

        def apply(self, endpoint: "WebhookEndpoint") -> None:
            endpoint.sealed = self.sealed
            endpoint.secret_rotated_at = self.timestamp

    def rotate_secret(self, *, sealed: str, actor: str) -> None:
        self.trigger_event(self.SecretRotated, sealed=sealed, actor=actor)

    def view(self) -> dict[str, Any]:
        """What may be shown of an endpoint: never its secret, sealed or not."""
        return {"endpoint_id": str(self.id), "url": self.url,
                "event_types": list(self.event_types), "owner": self.owner,
                "status": "enabled" if self.enabled else "disabled",
                "disabled_reason": self.disabled_reason, "disabled_at": self.disabled_at,
                "failing_since": self.failing_since, "created_at": self.created_on,
                "secret_rotated_at": self.secret_rotated_at, "version": self.version}


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_secret(secret: str) -> str:
    """A signing secret as Standard Webhooks spells it: ``whsec_`` and 24-64 bytes base64."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValidationFailed(f"secret must start with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed(f"secret must be {SECRET_PREFIX} and base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValidationFailed(f"secret must hold {MIN_SECRET_BYTES}-{MAX_SECRET_BYTES} bytes")
    return secret


def check_event_types(event_types: list[str]) -> list[str]:
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(f"unknown event type {unknown[0]!r}; known: "
                               f"{', '.join(EVENT_TYPES)}")
    if not event_types:
        raise ValidationFailed("event_types names at least one event type")
    return list(dict.fromkeys(event_types))


class Webhooks:
    """Register, show, disable, enable and re-key webhook endpoints."""

    def __init__(self, store: EventStore, writer: Writer, vault: Vault, *,
                 allow_private_urls: bool, max_endpoints: int,
                 enabled_of: Callable[[str], int] | None = None) -> None:
        self._store = store
        self._writer = writer
        self._vault = vault
        self._allow_private = allow_private_urls
        self._max_endpoints = max_endpoints
        self._enabled_of = enabled_of  # an owner's enabled endpoints, counted

    def register(self, *, url: str, event_types: list[str], secret: str | None,
                 who: Principal) -> tuple[WebhookEndpoint, str]:
        """Register an endpoint; the answer carries its secret, in clear this once."""
        url = check_url(url, allow_private=self._allow_private)
        types = check_event_types(event_types)
        secret = check_secret(secret) if secret is not None else new_secret()
        self._check_room(who.owner)
        endpoint_id = uuid4()
        endpoint = WebhookEndpoint(id=endpoint_id, url=url, event_types=types,
                                   sealed=self._seal(endpoint_id, secret), owner=who.owner,
                                   scope=who.scope, actor=who.actor)
        self._writer.save(endpoint)
        return endpoint, secret

    def get(self, endpoint_id: UUID, who: Principal | None = None) -> WebhookEndpoint:
        """The endpoint, if ``who`` may see it (an app key: only its owner's)."""
        endpoint: WebhookEndpoint = self._store.get(endpoint_id, f"webhook endpoint {endpoint_id}")
        if who is not None and not endpoint.visible_to(who):
            raise NotFound(f"no webhook endpoint {endpoint_id}")
        return endpoint

    def many(self, endpoint_ids: list[UUID]) -> list[WebhookEndpoint]:
        """Endpoints by id, in the order given (ids not found are left out)."""
        found = {e.id: e for e in self._store.get_many(endpoint_ids)}
        return [found[i] for i in endpoint_ids if i in found]

    def disable(self, endpoint_id: UUID, *, reason: str, who: Principal) -> WebhookEndpoint:
        """Stop deliveries to an endpoint; they resume where they stopped when enabled."""
        reason = _check_reason(reason)
        return self._change(endpoint_id, who, lambda e: e.disable(reason=reason,
                                                                  actor=who.actor))

    def enable(self, endpoint_id: UUID, *, who: Principal) -> WebhookEndpoint:
        """Resume deliveries to a disabled endpoint, from the first one not delivered."""
        def enable(endpoint: WebhookEndpoint) -> None:
            if not endpoint.enabled:
                self._check_room(endpoint.owner)
            endpoint.enable(actor=who.actor)
        return self._change(endpoint_id, who, enable)

    def rotate_secret(self, endpoint_id: UUID, *, who: Principal) -> tuple[WebhookEndpoint, str]:
        """Replace an endpoint's secret; the new one is shown this once."""
        secret = new_secret()
        endpoint = self._change(endpoint_id, who, lambda e: e.rotate_secret(
            sealed=self._seal(e.id, secret), actor=who.actor))
        return endpoint, secret

    def give_up(self, endpoint_id: UUID, *, reason: str, failing_since: datetime) -> None:
        """Disable an endpoint that kept failing (the dispatcher's decision), saying why."""
        endpoint = self.get(endpoint_id)
        if endpoint.enabled:
            endpoint.disable(reason=reason[:MAX_REASON], failing_since=failing_since,
                             actor=GIVER_UP)
            self._writer.save(endpoint)

    def secret(self, endpoint: WebhookEndpoint) -> str:
        """The endpoint's secret in clear, to sign a delivery with."""
        return str(self._vault.open(endpoint.id, endpoint.sealed)["secret"])

    def _check_room(self, owner: str) -> None:
        if self._enabled_of is not None and self._enabled_of(owner) >= self._max_endpoints:
            raise TooManyWebhooks(f"{owner} already has {self._max_endpoints} enabled webhook "
                                  "endpoints, the most one may have: disable one first")

    def _seal(self, endpoint_id: UUID, secret: str) -> str:
        return self._vault.seal(endpoint_id, {"secret": secret})

    def _change(self, endpoint_id: UUID, who: Principal, change: Any) -> WebhookEndpoint:
        def attempt() -> WebhookEndpoint:
            endpoint = self.get(endpoint_id, who)
            change(endpoint)
            self._writer.save(endpoint)
            return endpoint
        return retrying(attempt, attempts=5, what=f"webhook endpoint {endpoint_id}")


def _check_reason(reason: str) -> str:
    if not reason.strip() or len(reason) > MAX_REASON:
        raise ValidationFailed(f"reason must be 1-{MAX_REASON} characters")
    return reason
