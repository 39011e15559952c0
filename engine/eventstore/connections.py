"""PostgreSQL connections of one process: their budget, a watch on whether the database can
be reached, and the pool every store and read-side connection is taken from.

    reachable ──(the watch's probe fails, or a connection breaks under a request)──▶ lost
        ▲                                                                           │
        └──────────(a probe connects and answers; the pools are drained)────────────┘

While the database is lost, taking a connection fails at once with StoreUnavailable (the API
answers 503 ``store_unavailable`` with Retry-After) instead of waiting for a pool that keeps
reconnecting; each change of state is one log line, and the workers, which retry on their
next turn, log nothing of it. A probe runs every PROBE_SECONDS on a connection of its own, so
that an outage is seen without a request and the end of one within a second or two. When
the database is back, the pools drop the connections the outage broke and connect anew.

A process never holds more than QUANYI_DATABASE_MAX_CONNECTIONS: the event store's pool, the
read side's, the audit log's, the LISTEN connection and the probe share them (``Budget``).
Each pool keeps one connection and closes any other left idle QUANYI_DATABASE_IDLE_SECONDS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.postgres import ConnectionPool
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import PoolTimeout

from engine.eventstore.storage_full import disk_full, storage_full
from engine.kernel.errors import StoreUnavailable

log = logging.getLogger("quanyi.store")

PROBE_SECONDS = 0.5
PROBE_CONNECT_SECONDS = 2  # libpq's smallest connect_timeout
RETRY_AFTER_SECONDS = 2
WAIT_SECONDS = 5.0  # the longest a request waits for a connection of a busy pool
RECONNECT_SECONDS = 2.0  # a pool stops re-dialling a lost connection after this long
UNACKED_MILLISECONDS = 5000  # a connection whose sent bytes go unanswered this long breaks


@dataclass(frozen=True)
class Budget:
    """How one process's connections are shared: the LISTEN connection, the probe and the
    process lease (runtime/leases.py) take one each, the read side a third of the rest, the
    audit log two, the event store the others (its writes are one group commit at a time;
    its reads are short)."""

    store: int
    read: int
    audit: int

    @classmethod
    def of(cls, total: int) -> "Budget":
        read = max(2, (total - 3) // 3)
        return cls(store=total - 3 - read - 2, read=read, audit=2)


class StoreWatch:
    """Whether the PostgreSQL database at ``url`` can be reached, as this process's probe
    last saw. Only the probe changes it, one state at a time: a request whose connection
    broke wakes it (``suspect``) rather than deciding, so a late report of an outage that is
    already over changes nothing."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.reachable = True
        self._lost_at = 0.0
        self._pools: list[ConnectionPool[Any]] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, pool: ConnectionPool[Any]) -> None:
        """Drain ``pool`` of the connections an outage broke whenever the database is back."""
        self._pools.append(pool)

    def check(self) -> None:
        """Raise StoreUnavailable at once while the database is lost."""
        if not self.reachable:
            raise _unavailable()

    def suspect(self) -> None:
        """A connection broke: probe now rather than at the next turn."""
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._probe_loop, name="quanyi-store-watch",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=PROBE_CONNECT_SECONDS + 1)
            self._thread = None

    def _probe_loop(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        doubted = False  # a first connect that failed while the store was reachable
        while not self._stop.is_set():
            connecting = conn is None
            try:
                if conn is None:
                    conn = psycopg.connect(self.url, autocommit=True,
                                           **probe_options(self.url))
                conn.execute("SELECT 1")
            except psycopg.Error as exc:
                if conn is not None:
                    conn.close()
                conn = None
                if connecting and self.reachable and not doubted:
                    doubted = True  # one slow connect on a loaded machine is no outage:
                    continue        # try again at once before saying so
                self._lost(exc)
            else:
                doubted = False
                self._back()
            self._wake.wait(PROBE_SECONDS)
            self._wake.clear()
        if conn is not None:
            conn.close()

    def _lost(self, reason: BaseException) -> None:
        if self.reachable:
            self.reachable, self._lost_at = False, time.monotonic()
            log.warning("PostgreSQL store unreachable (%s); answering 503 until it is back",
                        _first_line(reason))

    def _back(self) -> None:
        if not self.reachable:
            for pool in self._pools:
                pool.drain()
            self.reachable = True
            log.warning("PostgreSQL store reachable again after %.1f s",
                        time.monotonic() - self._lost_at)


def probe_options(url: str) -> dict[str, Any]:
    """A connect timeout, unless the URL names its own."""
    given = conninfo_to_dict(url)
    return {} if "connect_timeout" in given else {"connect_timeout": PROBE_CONNECT_SECONDS}


def connection_options(url: str) -> dict[str, Any]:
    """Options of every pooled connection the URL leaves unset: a connection whose peer
    stopped answering breaks after UNACKED_MILLISECONDS rather than hanging a request."""
    given = conninfo_to_dict(url)
    return {**probe_options(url),
            **({} if "tcp_user_timeout" in given else {"tcp_user_timeout": UNACKED_MILLISECONDS})}


class GuardedPool(ConnectionPool[Any]):
    """A pool whose connections are refused at once while ``watch`` says the database is
    lost, and whose broken connections tell the watch so."""

    def __init__(self, watch: StoreWatch, conninfo: str, *, max_size: int,
                 idle_seconds: float, kwargs: dict[str, Any], **options: Any) -> None:
        super().__init__(conninfo, min_size=1, max_size=max_size, timeout=WAIT_SECONDS,
                         max_idle=idle_seconds, reconnect_timeout=RECONNECT_SECONDS,
                         kwargs={**connection_options(conninfo), **kwargs}, **options)
        self.store_watch = watch
        watch.watch(self)

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Any]:
        self.store_watch.check()
        try:
            with super().connection(timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            self.store_watch.suspect()  # busy, or the database is gone: the probe tells
            raise _unavailable("no connection to the PostgreSQL store came free") from exc
        except psycopg.Error as exc:
            if disk_full(exc):
                raise storage_full() from exc
            if not _broken(exc):
                raise
            self.store_watch.suspect()
            raise _unavailable() from exc


def _broken(exc: psycopg.Error) -> bool:
    """Whether the error is the connection's, not the statement's (a lock or statement
    timeout is an OperationalError too, on a connection that still works): no SQLSTATE
    (the socket failed), a connection exception (08) or an operator's shutdown (57P)."""
    if isinstance(exc, psycopg.InterfaceError):
        return True
    state = exc.sqlstate
    return isinstance(exc, psycopg.OperationalError) and (
        state is None or state.startswith(("08", "57P")))


def _unavailable(detail: str = "the PostgreSQL store cannot be reached") -> StoreUnavailable:
    return StoreUnavailable(f"{detail}; try again shortly",
                            retry_after_seconds=RETRY_AFTER_SECONDS)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
