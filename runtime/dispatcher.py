"""The top-up dispatcher: follows the top-up list (a projection of the log) and drives each
paid top-up to an outcome (engine/topups/desk.py), on a pool of ``QUANYI_TOPUP_WORKERS`` threads,
never inside a request or a database transaction.

It keeps only a schedule in memory: which open top-ups to look at, and when. After a
restart the schedule is empty, so every open top-up is looked at at once, and a top-up with
an attempt left open is first resolved at its supplier (Topups.advance queries it before it
would ever start another). A top-up is driven by one thread at a time in this process; two
processes may race on one, and the store's version check lets one decision win.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

from engine.kernel.errors import ConcurrentUpdate, Unavailable
from engine.topups.desk import Topups
from projections.topup_queries import TopupQueries

log = logging.getLogger("quanyi.topups")
BATCH = 1000
RETRY_AFTER_ERROR = 1.0


class TopupDispatcher:
    """Drives open top-ups: between start and stop, in threads of its own."""

    def __init__(self, topups: Topups, queries: TopupQueries, *, workers: int,
                 poll_seconds: float) -> None:
        self._topups = topups
        self._queries = queries
        self._workers = workers
        self._poll = poll_seconds
        self._seen = 0  # the top-up list's seq followed so far
        self._due: dict[UUID, float] = {}  # open top-ups: when to look at each next
        self._busy: set[UUID] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._stop.clear()
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="quanyi-topup")
        self._thread = threading.Thread(target=self._loop, name="quanyi-dispatcher",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._pool:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self._follow()
                self._dispatch()
            except Unavailable:
                pass  # the store's watch says so, once; the next turn retries
            except Exception:  # noqa: BLE001 - the next turn retries; the error is logged
                log.exception("top-up dispatch failed")

    def _follow(self) -> None:
        """Schedule, for now, every top-up opened or reopened since the last look."""
        while rows := self._queries.open_after(self._seen, BATCH):
            with self._lock:
                for seq, order_id in rows:
                    self._due[UUID(order_id)] = 0.0
            self._seen = rows[-1][0]
            if len(rows) < BATCH:
                break

    def _dispatch(self) -> None:
        now = time.monotonic()
        with self._lock:
            ready = [o for o, at in self._due.items() if at <= now and o not in self._busy]
            ready = ready[:max(0, 2 * self._workers - len(self._busy))]
            self._busy.update(ready)
        pool = self._pool
        for order_id in ready if pool is not None else []:
            pool.submit(self._advance, order_id)

    def _advance(self, order_id: UUID) -> None:
        try:
            later = self._topups.advance(order_id)
        except ConcurrentUpdate:
            later = 0.0  # another process moved it: look again on fresh state
        except Unavailable:
            later = RETRY_AFTER_ERROR  # the store's watch says so, once
        except Exception:  # noqa: BLE001 - kept scheduled; logged without the account
            log.exception("top-up of order %s could not advance", order_id)
            later = RETRY_AFTER_ERROR
        with self._lock:
            self._busy.discard(order_id)
            if later is None:
                self._due.pop(order_id, None)
            else:
                self._due[order_id] = time.monotonic() + later

    def pending(self) -> int:
        """Open top-ups this process is following."""
        with self._lock:
            return len(self._due)
