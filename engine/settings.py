"""Configuration, read once from ``QUANYI_*`` environment variables."""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from engine.errors import ValidationFailed

SECRET_KEY_FILE = "secret.key"
MAX_BODY_BYTES = 32 * 2**20  # a 100,000-code JSON import of long codes and PINs fits


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None
    secret_key: bytes
    database_schema: str = "public"
    reservation_ttl_seconds: int = 900
    expiry_sweep_seconds: float = 5.0
    write_batch_size: int = 200
    max_body_bytes: int = MAX_BODY_BYTES
    health_max_lag: int = 10_000  # events the projections may trail before /healthz degrades
    miss_limit: int = 20
    miss_window_seconds: float = 60.0

    @property
    def store(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("QUANYI_DATA_DIR") or "data").resolve()
        url = env.get("QUANYI_DATABASE_URL") or None
        if url and not url.startswith(("postgresql://", "postgres://")):
            raise ValidationFailed("QUANYI_DATABASE_URL must be a postgresql:// URL")
        return cls(
            data_dir=data_dir,
            database_url=url,
            secret_key=_secret_key(env.get("QUANYI_SECRET_KEY"), data_dir),
            database_schema=env.get("QUANYI_DATABASE_SCHEMA") or "public",
            reservation_ttl_seconds=int(env.get("QUANYI_RESERVATION_TTL_SECONDS", "900")),
            expiry_sweep_seconds=float(env.get("QUANYI_EXPIRY_SWEEP_SECONDS", "5")),
            write_batch_size=int(env.get("QUANYI_WRITE_BATCH_SIZE", "200")),
            max_body_bytes=int(env.get("QUANYI_MAX_BODY_BYTES", str(MAX_BODY_BYTES))),
            health_max_lag=int(env.get("QUANYI_HEALTH_MAX_LAG", "10000")),
            miss_limit=int(env.get("QUANYI_MISS_LIMIT", "20")),
            miss_window_seconds=float(env.get("QUANYI_MISS_WINDOW_SECONDS", "60")),
        )

    def postgres_params(self) -> dict[str, str]:
        """The eventsourcing library's POSTGRES_* settings for the URL."""
        assert self.database_url is not None
        parts = urlsplit(self.database_url)
        return {
            "POSTGRES_DBNAME": parts.path.lstrip("/") or "quanyi",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": self.database_schema,
        }


def _secret_key(configured: str | None, data_dir: Path) -> bytes:
    if configured:
        return _decode_key(configured)
    path = data_dir / SECRET_KEY_FILE
    if not path.exists():
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(32)).decode())
    return _decode_key(path.read_text().strip())


def _decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ValidationFailed("QUANYI_SECRET_KEY must be base64") from exc
    if len(key) < 32:
        raise ValidationFailed("QUANYI_SECRET_KEY must hold at least 32 bytes")
    return key
