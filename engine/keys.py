"""API keys: issued once in clear, stored only as a keyed hash, each with one role."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event

from engine.errors import InvalidState, NotFound, ValidationFailed
from engine.ids import api_key_id
from engine.store import EventStore
from engine.vault import Vault
from engine.writer import Writer

ROLES = ("admin", "app", "merchant", "support", "finance")
PREFIX = "qy"
CACHE_SECONDS = 30.0


class ApiKey(Aggregate):
    TOPIC = "quanyi:api_key"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:api_key.issued"
        key_id: str
        name: str
        role: str
        secret_hash: str
        actor: str

    def __init__(self, *, id: UUID, key_id: str, name: str, role: str, secret_hash: str,
                 actor: str) -> None:
        self.key_id = key_id
        self.name = name
        self.role = role
        self.secret_hash = secret_hash
        self.revoked = False

    @event("Revoked", topic="quanyi:api_key.revoked")
    def revoke(self, actor: str) -> None:
        self.revoked = True


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id (the actor named in events), name and role."""

    key_id: str
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"


@dataclass(frozen=True)
class IssuedKey:
    principal: Principal
    secret: str  # shown once, never stored


class Keys:
    """Issue, check and revoke API keys."""

    def __init__(self, store: EventStore, writer: Writer, vault: Vault) -> None:
        self._store = store
        self._writer = writer
        self._vault = vault
        self._cache: dict[str, tuple[float, ApiKey]] = {}
        self._lock = threading.Lock()

    def issue(self, *, role: str, name: str, actor: str = "cli") -> IssuedKey:
        """Create a key; its secret is returned once and kept only as a keyed hash."""
        if role not in ROLES:
            raise ValidationFailed(f"role must be one of {', '.join(ROLES)}")
        if not name.strip() or len(name) > 100:
            raise ValidationFailed("name must be 1-100 characters")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(id=api_key_id(key_id), key_id=key_id, name=name, role=role,
                     secret_hash=self._vault.hash_api_secret(secret), actor=actor)
        self._writer.save(key)
        return IssuedKey(Principal(key_id, name, role), f"{PREFIX}_{key_id}_{secret}")

    def authenticate(self, presented: str) -> Principal | None:
        """The principal a presented key belongs to, or None."""
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 12:
            return None
        key = self._cached(parts[1])
        if key is None or key.revoked:
            return None
        if not hmac.compare_digest(key.secret_hash, self._vault.hash_api_secret(parts[2])):
            return None
        return Principal(key.key_id, key.name, key.role)

    def revoke(self, key_id: str, actor: str) -> None:
        try:
            key: ApiKey = self._store.repository.get(api_key_id(key_id))
        except AggregateNotFoundError as exc:
            raise NotFound(f"no key {key_id}") from exc
        if key.revoked:
            raise InvalidState(f"key {key_id} is already revoked")
        key.revoke(actor=actor)
        self._writer.save(key)
        with self._lock:
            self._cache.pop(key_id, None)

    def _cached(self, key_id: str) -> ApiKey | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        try:
            key = self._store.repository.get(api_key_id(key_id))
        except (AggregateNotFoundError, ValueError):
            return None
        with self._lock:
            self._cache[key_id] = (now, key)
        return key
