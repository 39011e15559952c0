"""Configuration, read once from ``QUANYI_*`` environment variables.

Every bad value is one ``SettingsError`` naming its variable, so the command line can say it
in one line instead of a traceback.
"""

from __future__ import annotations

import base64
import math
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from engine.eventstore.data_dir import FILE_MODE, private_dir, private_file
from engine.kernel.errors import SettingsError, StoreMissing

SECRET_KEY_FILE = "secret.key"
AUDIT_KEY_FILE = "audit.key"
MAX_BODY_BYTES = 32 * 2**20  # a 100,000-code JSON import of long codes and PINs fits
SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Four server processes and a command line fit PostgreSQL's default max_connections (100,
# three of them reserved for superusers); engine/eventstore/connections.py shares them out.
DATABASE_MAX_CONNECTIONS = 16
DATABASE_MIN_CONNECTIONS = 9


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None
    secret_key: bytes
    database_schema: str = "public"
    database_max_connections: int = DATABASE_MAX_CONNECTIONS  # per process, every pool
    database_idle_seconds: float = 30.0  # a pool's connection idle this long is closed
    reservation_ttl_seconds: int = 900
    expiry_sweep_seconds: float = 5.0
    write_batch_size: int = 200
    max_body_bytes: int = MAX_BODY_BYTES
    health_max_lag: int = 10_000  # events the projections may trail before /healthz degrades
    miss_limit: int = 20
    miss_window_seconds: float = 60.0
    topup_workers: int = 64  # supplier calls in flight at once, per process
    topup_poll_seconds: float = 0.05  # how often the dispatcher looks for paid top-ups
    topup_query_seconds: float = 2.0  # first pause before querying an undecided attempt
    topup_query_max_seconds: float = 60.0  # the pauses double up to this
    topup_deadline_seconds: float = 300.0  # unknown this long: needs_attention
    breaker_failures: int = 5  # a supplier failing this many times in a row is skipped
    breaker_cooldown_seconds: float = 30.0  # for this long
    supplier_connect_timeout_seconds: float = 3.0
    supplier_timeout_seconds: float = 10.0  # an answer slower than this is UNKNOWN
    supplier_callback_tolerance_seconds: float = 300.0  # a callback's timestamp, at most
    supplier_allow_private_urls: bool = False  # see engine/kernel/addresses.py
    webhook_timeout_seconds: float = 10.0  # one delivery attempt, connect to last byte
    webhook_retry_base_seconds: float = 5.0  # first retry; doubles each failure, jittered
    webhook_retry_max_seconds: float = 3600.0
    webhook_disable_after_seconds: float = 86400.0  # failing this long disables an endpoint
    webhook_poll_seconds: float = 1.0  # how often an idle endpoint looks for new events
    webhook_allow_private_urls: bool = False  # see engine/webhooks/urls.py
    webhook_workers: int = 8  # deliveries in flight at once, whatever the number of endpoints
    webhook_max_endpoints: int = 50  # enabled endpoints per owner (a tenant, or a key)
    audit_key: bytes = b""  # the Ed25519 seed that signs the audit log's heads
    audit_head_every_events: int = 10_000  # sign a head once the tree grew this much
    audit_head_every_seconds: float = 60.0  # ... or this long after the last, if it grew

    @property
    def store(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *,
                 create_key: bool = True) -> "Settings":
        """The settings; ``create_key=False`` refuses to make a new secret key file."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("QUANYI_DATA_DIR") or "data").resolve()
        return cls(
            data_dir=data_dir,
            database_url=_database_url(env.get("QUANYI_DATABASE_URL") or None),
            secret_key=_secret_key(env.get("QUANYI_SECRET_KEY"), data_dir, create_key),
            database_schema=_schema(env.get("QUANYI_DATABASE_SCHEMA") or "public"),
            database_max_connections=_connections(env),
            database_idle_seconds=_positive(env, "QUANYI_DATABASE_IDLE_SECONDS", 30.0),
            reservation_ttl_seconds=_positive(env, "QUANYI_RESERVATION_TTL_SECONDS", 900),
            expiry_sweep_seconds=_positive(env, "QUANYI_EXPIRY_SWEEP_SECONDS", 5.0),
            write_batch_size=_positive(env, "QUANYI_WRITE_BATCH_SIZE", 200),
            max_body_bytes=_positive(env, "QUANYI_MAX_BODY_BYTES", MAX_BODY_BYTES),
            health_max_lag=_positive(env, "QUANYI_HEALTH_MAX_LAG", 10_000),
            miss_limit=_positive(env, "QUANYI_MISS_LIMIT", 20),
            miss_window_seconds=_positive(env, "QUANYI_MISS_WINDOW_SECONDS", 60.0),
            topup_workers=_positive(env, "QUANYI_TOPUP_WORKERS", 64),
            topup_poll_seconds=_positive(env, "QUANYI_TOPUP_POLL_SECONDS", 0.05),
            topup_query_seconds=_positive(env, "QUANYI_TOPUP_QUERY_SECONDS", 2.0),
            topup_query_max_seconds=_positive(env, "QUANYI_TOPUP_QUERY_MAX_SECONDS", 60.0),
            topup_deadline_seconds=_positive(env, "QUANYI_TOPUP_DEADLINE_SECONDS", 300.0),
            breaker_failures=_positive(env, "QUANYI_SUPPLIER_BREAKER_FAILURES", 5),
            breaker_cooldown_seconds=_positive(env, "QUANYI_SUPPLIER_BREAKER_COOLDOWN_SECONDS",
                                               30.0),
            supplier_connect_timeout_seconds=_positive(
                env, "QUANYI_SUPPLIER_CONNECT_TIMEOUT_SECONDS", 3.0),
            supplier_timeout_seconds=_positive(env, "QUANYI_SUPPLIER_TIMEOUT_SECONDS", 10.0),
            supplier_callback_tolerance_seconds=_positive(
                env, "QUANYI_SUPPLIER_CALLBACK_TOLERANCE_SECONDS", 300.0),
            supplier_allow_private_urls=_flag(env, "QUANYI_SUPPLIER_ALLOW_PRIVATE_URLS"),
            webhook_timeout_seconds=_positive(env, "QUANYI_WEBHOOK_TIMEOUT_SECONDS", 10.0),
            webhook_retry_base_seconds=_positive(env, "QUANYI_WEBHOOK_RETRY_BASE_SECONDS", 5.0),
            webhook_retry_max_seconds=_positive(env, "QUANYI_WEBHOOK_RETRY_MAX_SECONDS",
                                                3600.0),
            webhook_disable_after_seconds=_positive(
                env, "QUANYI_WEBHOOK_DISABLE_AFTER_SECONDS", 86400.0),
            webhook_poll_seconds=_positive(env, "QUANYI_WEBHOOK_POLL_SECONDS", 1.0),
            webhook_allow_private_urls=_flag(env, "QUANYI_WEBHOOK_ALLOW_PRIVATE_URLS"),
            webhook_workers=_positive(env, "QUANYI_WEBHOOK_WORKERS", 8),
            webhook_max_endpoints=_positive(env, "QUANYI_WEBHOOK_MAX_ENDPOINTS", 50),
            audit_key=_audit_key(env.get("QUANYI_AUDIT_KEY"), data_dir, create_key),
            audit_head_every_events=_positive(env, "QUANYI_AUDIT_HEAD_EVERY_EVENTS", 10_000),
            audit_head_every_seconds=_positive(env, "QUANYI_AUDIT_HEAD_EVERY_SECONDS", 60.0),
        )

    def where(self) -> str:
        """Where the data lives, for operators: never the password."""
        if not self.database_url:
            return f"SQLite data directory {self.data_dir}"
        params = _conninfo(self.database_url)
        host = params.get("host") or "local socket"
        return (f"PostgreSQL database {params.get('dbname') or '(default)'} on "
                f"{host}:{params.get('port') or 5432}, schema {self.database_schema}")

    def postgres_params(self) -> dict[str, str]:
        """The eventsourcing library's POSTGRES_* settings for the URL (the event store
        connects with the whole URL; these satisfy the library and name the schema)."""
        if self.database_url is None:
            raise SettingsError("QUANYI_DATABASE_URL is not set")
        parts = urlsplit(self.database_url)
        return {
            "POSTGRES_DBNAME": parts.path.lstrip("/") or "quanyi",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": self.database_schema,
        }


def _positive(env: Mapping[str, str], name: str, default: float) -> Any:
    """A positive number of the default's type, or SettingsError naming the variable."""
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        value = type(default)(text)
    except ValueError:
        value = 0
    if not (value > 0 and math.isfinite(value)):
        kind = "a positive whole number" if isinstance(default, int) else "a positive number"
        raise SettingsError(f"{name} must be {kind}, not {text!r}")
    return value


def _connections(env: Mapping[str, str]) -> int:
    name = "QUANYI_DATABASE_MAX_CONNECTIONS"
    count = _positive(env, name, DATABASE_MAX_CONNECTIONS)
    if count < DATABASE_MIN_CONNECTIONS:
        raise SettingsError(f"{name} must be at least {DATABASE_MIN_CONNECTIONS}, not {count}")
    return count


def _flag(env: Mapping[str, str], name: str) -> bool:
    """A yes/no setting: true/1/yes or false/0/no (unset: no)."""
    text = (env.get(name) or "false").strip().lower()
    if text not in ("true", "1", "yes", "false", "0", "no"):
        raise SettingsError(f"{name} must be true or false, not {text!r}")
    return text in ("true", "1", "yes")


def _schema(name: str) -> str:
    if not SCHEMA_NAME.fullmatch(name):
        raise SettingsError("QUANYI_DATABASE_SCHEMA must be a plain identifier "
                            "(letters, digits, underscores)")
    return name


def _database_url(url: str | None) -> str | None:
    if url is None:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise SettingsError("QUANYI_DATABASE_URL must be a postgresql:// URL")
    _conninfo(url)
    return url


def _conninfo(url: str) -> dict[str, Any]:
    """The URL's libpq parameters; libpq itself judges the query parameters."""
    from psycopg import Error
    from psycopg.conninfo import conninfo_to_dict

    try:
        return conninfo_to_dict(url)
    except Error as exc:
        reason = without_password(str(exc), url)
        raise SettingsError(f"QUANYI_DATABASE_URL is not a valid PostgreSQL URL: {reason}") \
            from None


def without_password(message: str, url: str) -> str:
    """A driver's message on one line, with the URL's password (as written or decoded) cut."""
    password = urlsplit(url).password
    for secret in {password, unquote(password or "")} - {None, ""}:
        message = message.replace(str(secret), "***")
    return " ".join(message.split())


def _secret_key(configured: str | None, data_dir: Path, create: bool) -> bytes:
    if configured:
        return _decode_key(configured, "QUANYI_SECRET_KEY")
    path = data_dir / SECRET_KEY_FILE
    if path.exists():
        private_file(path)
    elif create:
        private_dir(data_dir)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(32)).decode())
    else:
        raise StoreMissing(f"no secret key in {data_dir} ({SECRET_KEY_FILE}) and "
                           "QUANYI_SECRET_KEY is not set: run `quanyi init` to create a "
                           "new store there, or set QUANYI_DATA_DIR to the existing one")
    return _decode_key(path.read_text().strip(), str(path))


def _audit_key(configured: str | None, data_dir: Path, create: bool) -> bytes:
    """The audit key's 32-byte Ed25519 seed: QUANYI_AUDIT_KEY, else the data directory's file,
    made on first use (also beside the secret key of a store older than the audit log).
    Empty when there is none and none may be made: opening the audit log then says so, after
    the command line has said whether the store itself exists."""
    if configured:
        return _decode_seed(configured, "QUANYI_AUDIT_KEY")
    path = data_dir / AUDIT_KEY_FILE
    if path.exists():
        private_file(path)
    elif create or (data_dir / SECRET_KEY_FILE).exists():
        _write_new_key(path)
    else:
        return b""
    return _decode_seed(path.read_text().strip(), str(path))


def _write_new_key(path: Path) -> None:
    """A fresh 32-byte key, base64, 0600; written aside and linked in, so that two processes
    starting at once agree on one key and neither reads a half-written file."""
    private_dir(path.parent)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(secrets.token_bytes(32)).decode())
    try:
        os.link(aside, path)
    except FileExistsError:
        pass  # another process made it first: use theirs
    finally:
        aside.unlink()


def _decode_seed(text: str, source: str) -> bytes:
    key = _decode_key(text, source)
    if len(key) != 32:
        raise SettingsError(f"{source} must be the base64 of exactly 32 bytes "
                            "(an Ed25519 private seed)")
    return key


def _decode_key(text: str, source: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError:
        raise SettingsError(f"{source} must be base64") from None
    if len(key) < 32:
        raise SettingsError(f"{source} must hold at least 32 bytes")
    return key
