"""What the benchmarks share: a fresh PostgreSQL database, QUANYI_* settings for a run, a
`quanyi serve` subprocess with an admin key, and percentiles."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("QUANYI_BENCH_ADMIN_URL",
                           "postgresql://quanyi:quanyi@127.0.0.1:5432/postgres")


def fresh_postgres_database(name: str) -> str:
    """Drop and create a database; its URL. The server is the one scripts/postgres starts."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def bench_env(database_url: str | None) -> dict[str, str]:
    """Settings for one run: a temporary data dir, a fresh key, the store chosen."""
    env = {"QUANYI_DATA_DIR": tempfile.mkdtemp(prefix="quanyi-bench-"),
           "QUANYI_SECRET_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
           "QUANYI_EXPIRY_SWEEP_SECONDS": "3600"}
    if database_url:
        env["QUANYI_DATABASE_URL"] = database_url
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def quanyi(*args: str, env: dict[str, str]) -> str:
    """Run the `quanyi` command line with the given settings; its standard output."""
    done = subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, check=True,
                          capture_output=True, text=True, env={**os.environ, **env})
    return done.stdout


@contextlib.contextmanager
def serve_subprocess(env: dict[str, str], workers: int = 1,
                     stderr: IO[str] | None = None) -> Iterator[tuple[str, str]]:
    """`quanyi serve` on a free loopback port (its standard error to ``stderr``, when given);
    yields (base URL, admin API key) and the process is stopped afterwards."""
    key = quanyi("--init", "keys", "create", "--role", "admin", "--name", "bench",
                 env=env).split()[0]
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", str(workers)], cwd=ROOT,
                            env={**os.environ, **env}, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base)
        SERVERS[base] = proc.pid
        yield base, key
    finally:
        proc.terminate()
        proc.wait(timeout=30)


SERVERS: dict[str, int] = {}  # base URL -> pid of the running `quanyi serve`


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_until_up(base: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"quanyi serve did not answer at {base}")


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]
