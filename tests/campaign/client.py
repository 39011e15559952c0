"""Sending a command as a careful client does, and keeping what happened.

An `Exchange` is one command: one Idempotency-Key, one body. Its attempts go out until one
gets a final answer: a transport error, a timeout (some first attempts are cut short on
purpose, 5–40 ms) or a 5xx is retried with the same key, sometimes to the other process;
409 `idempotency_key_in_progress` and 429 are waited out. Some exchanges are sent twice at
once (a duplicate send): each copy retries on its own and both answers are kept.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

RETRIED_CODES = frozenset({"idempotency_key_in_progress", "rate_limited"})
TIMEOUT = 30.0


@dataclass
class Attempt:
    server: int
    sent: float  # seconds since the campaign began
    answered: float
    status: int | None  # None: no answer (transport error or timeout)
    code: str | None = None
    error: str | None = None
    cut_short: bool = False
    duplicate: bool = False


@dataclass
class Final:
    """A copy's final answer."""

    status: int
    code: str | None
    body: Any
    answered: float


@dataclass
class Exchange:
    kind: str
    method: str
    path: str
    body: dict[str, Any] | None
    token: str
    order_id: str | None = None
    subject: dict[str, Any] = field(default_factory=dict)
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: list[Attempt] = field(default_factory=list)
    finals: list[Final] = field(default_factory=list)

    @property
    def sent(self) -> float:
        return min(a.sent for a in self.attempts)

    @property
    def answered(self) -> float:
        return max((f.answered for f in self.finals), default=float("inf"))

    @property
    def acked(self) -> Final | None:
        """The first 2xx answer, if any copy got one."""
        return next((f for f in self.finals if 200 <= f.status < 300), None)

    @property
    def refused(self) -> Final | None:
        """The refusal when every copy that was answered was refused (4xx)."""
        if self.finals and self.acked is None:
            return self.finals[0]
        return None

    @property
    def unknown(self) -> bool:
        return not self.finals


class Sender:
    """Sends exchanges to the servers, retrying them with their key; counts what it did."""

    def __init__(self, bases: list[str], clock: Any, rng: random.Random, *, cut_rate: float,
                 duplicate_rate: float, give_up_seconds: float) -> None:
        self.clients = [httpx.Client(base_url=b, timeout=TIMEOUT) for b in bases]
        self.clock = clock
        self.rng = rng
        self.cut_rate = cut_rate
        self.duplicate_rate = duplicate_rate
        self.give_up_seconds = give_up_seconds
        self._lock = threading.Lock()

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def send(self, exchange: Exchange, server: int) -> Exchange:
        """Send until answered (or given up); with duplicate_rate, a second copy goes to
        the other server at the same moment."""
        if len(self.clients) > 1 and self.rng.random() < self.duplicate_rate:
            twin = threading.Thread(target=self._deliver,
                                    args=(exchange, 1 - server, True,
                                          random.Random(self.rng.random())))
            twin.start()
            self._deliver(exchange, server, False, self.rng)
            twin.join()
        else:
            self._deliver(exchange, server, False, self.rng)
        return exchange

    def _deliver(self, exchange: Exchange, server: int, duplicate: bool,
                 rng: random.Random) -> None:
        give_up = time.monotonic() + self.give_up_seconds
        cut = not duplicate and rng.random() < self.cut_rate
        for attempt_no in range(200):
            attempt, answer = self._attempt(exchange, server, cut, duplicate, rng)
            cut = False
            if not self._retried(attempt) or time.monotonic() > give_up:
                if attempt.status is not None and not self._retried(attempt):
                    with self._lock:
                        exchange.finals.append(Final(attempt.status, attempt.code, answer,
                                                     attempt.answered))
                return
            time.sleep(min(2.0, 0.05 * 2 ** min(attempt_no, 6)) * (0.5 + rng.random()))
            if len(self.clients) > 1 and (attempt.status is None or rng.random() < 0.5):
                server = 1 - server

    def _attempt(self, exchange: Exchange, server: int, cut: bool, duplicate: bool,
                 rng: random.Random) -> tuple[Attempt, Any]:
        headers = {"Authorization": f"Bearer {exchange.token}",
                   "Idempotency-Key": exchange.key}
        timeout = rng.uniform(0.005, 0.040) if cut else TIMEOUT
        sent = self.clock()
        try:
            response = self.clients[server].request(exchange.method, exchange.path,
                                                    json=exchange.body, headers=headers,
                                                    timeout=timeout)
        except httpx.HTTPError as exc:
            attempt = Attempt(server, sent, self.clock(), None, error=type(exc).__name__,
                              cut_short=cut, duplicate=duplicate)
            answer = None
        else:
            answer = _json(response)
            code = answer.get("code") if isinstance(answer, dict) else None
            attempt = Attempt(server, sent, self.clock(), response.status_code, code,
                              cut_short=cut, duplicate=duplicate)
        with self._lock:
            exchange.attempts.append(attempt)
        return attempt, answer

    @staticmethod
    def _retried(attempt: Attempt) -> bool:
        return attempt.status is None or attempt.status >= 500 or attempt.code in RETRIED_CODES

    def get(self, path: str, token: str, server: int = 0) -> Any:
        """A read, retried on any failure for up to give_up_seconds; None if never answered."""
        give_up = time.monotonic() + self.give_up_seconds
        while time.monotonic() < give_up:
            try:
                response = self.clients[server].get(path, headers={
                    "Authorization": f"Bearer {token}"})
                if response.status_code == 200:
                    return response.json()
            except httpx.HTTPError:
                pass
            server = (server + 1) % len(self.clients)
            time.sleep(0.2)
        return None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
