"""`quanyi serve` processes the campaign can kill -9 and start again on the same port, and
the API keys its clients use."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import ROOT, free_port, quanyi


class ServerProcess:
    """One `quanyi serve` on a fixed loopback port; its output goes to a log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self.spawn()
        self.wait()

    def spawn(self) -> None:
        with self._lock, self.log.open("ab") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port",
                 str(self.port)], cwd=ROOT, env={**os.environ, **self.env},
                stdout=out, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 240) -> None:
        """Until it answers /healthz (a start takes seconds: 20 and more on a busy machine);
        a process that exited instead is an error naming the end of its output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                tail = self.log.read_text(errors="replace").strip().splitlines()[-15:]
                raise RuntimeError(f"quanyi serve on port {self.port} exited "
                                   f"{self._proc.returncode}:\n" + "\n".join(tail))
            with contextlib.suppress(httpx.HTTPError):
                # 503 is up too: degraded while its projections catch up after a restart
                if httpx.get(f"{self.base}/healthz", timeout=5).status_code in (200, 503):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"quanyi serve did not answer at {self.base} in {timeout:.0f} s")

    def kill(self) -> None:
        """kill -9: no shutdown, no flush, whatever was in flight is cut."""
        with self._lock:
            if self._proc and self._proc.poll() is None:
                self._proc.send_signal(signal.SIGKILL)
                self._proc.wait(timeout=30)

    def stop(self) -> None:
        with self._lock:
            if self._proc and self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=30)


@dataclass(frozen=True)
class Keys:
    """The bearer keys of the roles the campaign acts as."""

    admin: str
    app: str
    finance: str
    merchants: tuple[str, ...]  # merchant key n redeems as merchant_id f"m{n}"


def admin_key(env: dict[str, str]) -> str:
    """The first key, made with the command line as an operator would (it creates the
    store)."""
    return quanyi("--init", "keys", "create", "--role", "admin", "--name", "campaign-admin",
                  env=env).split()[0]


def issue_keys(base: str, admin: str, merchants: int) -> Keys:
    """The other keys, issued by the admin through the API."""
    with httpx.Client(base_url=base, timeout=120,
                      headers={"Authorization": f"Bearer {admin}"}) as client:
        def key(role: str, name: str, **binding: str) -> str:
            issued = client.post("/v1/keys", json={"role": role, "name": name, **binding})
            issued.raise_for_status()
            return issued.json()["secret"]

        return Keys(admin=admin, app=key("app", "campaign-app"),
                    finance=key("finance", "campaign-finance"),
                    merchants=tuple(key("merchant", f"m{n}", merchant_id=f"m{n}")
                                    for n in range(merchants)))
