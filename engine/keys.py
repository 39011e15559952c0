"""API keys: issued once in clear, stored only as a keyed hash, each with one role.

A key may be bound: a merchant key to the merchant it redeems for (its ``merchant_id``,
by default its name), and a key of any role to a tenant (engine/kernel/tenancy.py): it then sees
and changes only that tenant's things, and a tenant's admin manages only its tenant's keys.
A key may carry an expiry, and may be revoked; both take effect on every process at once,
because each authentication reads the key's (one or two) events instead of trusting a
per-process cache.

    issued ──revoke──▶ revoked        (an expiry ends a key without an event)
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel.clock import utc_now
from engine.kernel.errors import (
    ConcurrentUpdate,
    Forbidden,
    InvalidState,
    NotFound,
    ValidationFailed,
)
from engine.kernel.ids import api_key_id
from engine.kernel.tenancy import check_tenant, check_visible
from engine.kernel.vault import Vault

ROLES = ("admin", "app", "merchant", "support", "finance")
SEES_EVERY_OWNER = ("admin", "support", "finance")
PREFIX = "qy"
MAX_DAYS = 3650
MAX_BINDING = 64  # a merchant_id or tenant; a redemption's merchant_id has the same bound


class ApiKey(Aggregate):
    TOPIC = "quanyi:api_key"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:api_key.issued"
        class_version = 2
        key_id: str
        name: str
        role: str
        secret_hash: str
        actor: str
        merchant_id: str | None
        tenant: str | None
        expires_at: datetime | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Keys issued before bindings: a merchant key redeems as its name."""
            state["merchant_id"] = state["name"] if state["role"] == "merchant" else None
            state["tenant"] = None
            state["expires_at"] = None

    def __init__(self, *, id: UUID, key_id: str, name: str, role: str, secret_hash: str,
                 actor: str, merchant_id: str | None, tenant: str | None,
                 expires_at: datetime | None) -> None:
        self.key_id = key_id
        self.name = name
        self.role = role
        self.secret_hash = secret_hash
        self.merchant_id = merchant_id
        self.tenant = tenant
        self.expires_at = expires_at
        self.revoked = False

    @event("Revoked", topic="quanyi:api_key.revoked")
    def revoke(self, actor: str) -> None:
        self.revoked = True

    def valid_at(self, now: datetime) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)

    def principal(self) -> "Principal":
        return Principal(self.key_id, self.name, self.role, self.merchant_id, self.tenant)

    def view(self) -> dict[str, Any]:
        """What may be shown of a key: never its secret, nor the secret's hash."""
        return {"key_id": self.key_id, "name": self.name, "role": self.role,
                "merchant_id": self.merchant_id, "tenant": self.tenant,
                "created_at": self.created_on, "expires_at": self.expires_at,
                "revoked": self.revoked}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id (the actor named in events), name, role and bindings."""

    key_id: str
    name: str
    role: str
    merchant_id: str | None = None
    tenant: str | None = None

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"

    @property
    def owner(self) -> str:
        """Who owns what this key creates: its tenant if it has one, else the key itself."""
        return f"tenant:{self.tenant}" if self.tenant else self.actor

    @property
    def scope(self) -> str | None:
        """The only owner whose orders this key may see: its tenant's for any role of a
        tenant; None for the platform's roles that see all."""
        if self.tenant:
            return self.owner
        return None if self.role in SEES_EVERY_OWNER else self.owner

    def acting_in(self, tenant: str | None) -> "Principal":
        """A platform key acting in the tenant it names: it then sees and changes what a
        key of that tenant (and its role) would. A tenant's key always acts in its own."""
        if self.tenant or tenant is None:
            return self
        return Principal(self.key_id, self.name, self.role, self.merchant_id,
                         check_tenant(tenant))

    def check_redeems_as(self, merchant_id: str) -> None:
        """A merchant key redeems only in its own merchant's name (admin in any)."""
        if self.role == "merchant" and merchant_id != self.merchant_id:
            raise Forbidden(f"this key redeems only as merchant {self.merchant_id}")


@dataclass(frozen=True)
class IssuedKey:
    principal: Principal
    secret: str  # shown once, never stored
    key: ApiKey


class Keys:
    """Issue, check, list and revoke API keys."""

    def __init__(self, store: EventStore, writer: Writer, vault: Vault) -> None:
        self._store = store
        self._writer = writer
        self._vault = vault

    def issue(self, *, role: str, name: str, actor: str = "cli",
              merchant_id: str | None = None, tenant: str | None = None,
              expires_at: datetime | None = None) -> IssuedKey:
        """Create a key; its secret is returned once and kept only as a keyed hash."""
        _check_issue(role, name, merchant_id, tenant, expires_at)
        if role == "merchant" and merchant_id is None:
            merchant_id = name
            _check_binding("merchant_id (by default the key's name)", merchant_id)
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(id=api_key_id(key_id), key_id=key_id, name=name, role=role,
                     secret_hash=self._vault.hash_api_secret(secret), actor=actor,
                     merchant_id=merchant_id, tenant=tenant, expires_at=expires_at)
        self._writer.save(key)
        return IssuedKey(key.principal(), f"{PREFIX}_{key_id}_{secret}", key)

    def authenticate(self, presented: str) -> Principal | None:
        """The principal a presented key belongs to, or None (unknown, wrong secret,
        revoked or expired). Reads the key from the store every time: a revocation by
        any process counts from the next request."""
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 12:
            return None
        key = self._find(parts[1])
        if key is None or not key.valid_at(utc_now()):
            return None
        if not hmac.compare_digest(key.secret_hash, self._vault.hash_api_secret(parts[2])):
            return None
        return key.principal()

    def revoke(self, key_id: str, actor: str, tenant: str | None = None) -> ApiKey:
        """Revoke a key for good; a second revocation is refused. An admin of ``tenant``
        revokes only that tenant's keys (another's is unknown to it)."""
        key = self._find(key_id)
        if key is None:
            raise NotFound(f"no key {key_id}")
        check_visible(tenant, key.tenant, f"no key {key_id}")
        if key.revoked:
            raise InvalidState(f"key {key_id} is already revoked")
        key.revoke(actor=actor)
        try:
            self._writer.save(key)
        except ConcurrentUpdate as exc:  # revocation is the only change a key can see
            raise InvalidState(f"key {key_id} is already revoked") from exc
        return key

    def listing(self, after: int, limit: int,
                tenant: str | None = None) -> tuple[list[ApiKey], int | None]:
        """Keys in the order they were issued, from the log's position ``after``; and the
        position to continue from, if there are more (of ``tenant`` only, when given). The
        ids are random, so the keys are found in the notification log by topic: a scan of
        the log, fine for an admin's occasional listing but not for a request path."""
        found: Sequence[Any] = self._store.recorder.select_notifications(
            start=after, limit=limit + 1, topics=[ApiKey.Created.TOPIC],
            inclusive_of_start=False)
        page = list(found[:limit])
        keys = self._store.get_many([n.originator_id for n in page])
        by_id = {k.id: k for k in keys}
        more = page[-1].id if len(found) > limit else None
        return [by_id[n.originator_id] for n in page if n.originator_id in by_id
                and (tenant is None or by_id[n.originator_id].tenant == tenant)], more

    def _find(self, key_id: str) -> ApiKey | None:
        if len(key_id) != 12:
            return None
        try:
            found: ApiKey | None = self._store.find(api_key_id(key_id))
        except ValueError:  # not an id a key could have
            return None
        return found


def expiry(*, in_days: int | None = None, at: datetime | None = None) -> datetime | None:
    """A key's expiry given as days from now or as an instant (at most one of them)."""
    if in_days is not None and at is not None:
        raise ValidationFailed("give expires_in_days or expires_at, not both")
    if in_days is not None:
        if not 1 <= in_days <= MAX_DAYS:
            raise ValidationFailed(f"expires_in_days must be 1-{MAX_DAYS}")
        return utc_now() + timedelta(days=in_days)
    return at


def _check_issue(role: str, name: str, merchant_id: str | None, tenant: str | None,
                 expires_at: datetime | None) -> None:
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}")
    if not name.strip() or len(name) > 100:
        raise ValidationFailed("name must be 1-100 characters")
    if merchant_id is not None:
        if role != "merchant":
            raise ValidationFailed("only a merchant key has a merchant_id")
        _check_binding("merchant_id", merchant_id)
    if tenant is not None:
        check_tenant(tenant)
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ValidationFailed("expires_at needs a timezone (UTC)")
        if expires_at <= utc_now():
            raise ValidationFailed("expires_at must be in the future")


def _check_binding(what: str, value: str) -> None:
    if not value.strip() or len(value) > MAX_BINDING or not value.isprintable():
        raise ValidationFailed(f"{what} must be 1-{MAX_BINDING} printable characters")
