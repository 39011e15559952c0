"""Taking codes out of a SKU's pool for an owner, and giving them back or selling them.

Which code to try comes from a read model (the caller's ``CandidateSource``); whether the code
is really free is decided by the code aggregate itself and its version in the store. A stale
candidate costs one read; it can never produce two owners.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol
from uuid import UUID

from engine.codes.codes import AVAILABLE, Code
from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel.clock import utc_now
from engine.kernel.errors import ConcurrentUpdate, InvalidState, SoldOut
from engine.kernel.retry import retrying

REFILL = 256
RECENT_SECONDS = 3.0  # the read model lags by milliseconds; a stale pick costs a read
CATCH_UP_SECONDS = 15.0  # a sold-out refusal waits this long for a lagging read model
RETRIES = 8


class CandidateSource(Protocol):
    """Where allocation looks for codes that are probably available (a read model)."""

    def available_code_ids(self, sku: str, limit: int, start_slot: int,
                           exclude: set[UUID]) -> list[UUID]: ...

    def wait_for(self, position: int, timeout: float) -> bool: ...


class CodeAllocator:
    """Hands out candidate code ids so that concurrent commands in one process never try
    the same code; processes spread over the pool from random starting slots."""

    def __init__(self, source: CandidateSource,
                 load_many: Callable[[list[UUID]], list[Code]]) -> None:
        self._source = source
        self._load_many = load_many
        self._lock = threading.Lock()
        self._pools: dict[str, deque[UUID]] = {}
        self._prefetched: dict[UUID, Code] = {}  # read with the refill, in one query
        self._recent: dict[UUID, float] = {}  # handed out lately: the read model may lag

    def claim(self, sku: str, count: int) -> list[UUID]:
        with self._lock:
            pool = self._pools.setdefault(sku, deque())
            if len(pool) < count:
                self._refill(sku, pool, count)
            claimed = [pool.popleft() for _ in range(min(count, len(pool)))]
            now = time.monotonic()
            for code_id in claimed:
                self._recent[code_id] = now
            return claimed

    def prefetched(self, code_id: UUID) -> Code | None:
        """The candidate as read at refill time, if not handed out before."""
        with self._lock:
            return self._prefetched.pop(code_id, None)

    def distrust(self, sku: str) -> None:
        """Another writer took codes this process had read ahead: read them afresh."""
        with self._lock:
            for code_id in [i for i, c in self._prefetched.items() if c.sku == sku]:
                del self._prefetched[code_id]

    def give_back(self, sku: str, code_ids: list[UUID]) -> None:
        """Candidates a command did not keep, still worth offering again."""
        with self._lock:
            for code_id in code_ids:
                self._recent.pop(code_id, None)
            self._pools.setdefault(sku, deque()).extendleft(code_ids)

    def released(self, code_ids: list[UUID]) -> None:
        """Codes that went back to the pool: forget that they were handed out."""
        with self._lock:
            for code_id in code_ids:
                self._recent.pop(code_id, None)

    def _refill(self, sku: str, pool: deque[UUID], count: int) -> None:
        now = time.monotonic()
        self._recent = {k: t for k, t in self._recent.items() if now - t < RECENT_SECONDS}
        exclude = set(self._recent) | set(pool)
        found = self._source.available_code_ids(sku, max(REFILL, count),
                                                random.randrange(1024), exclude)
        if not found and self._recent:
            # Codes handed out lately may have been released by another process since.
            self._recent.clear()
            found = self._source.available_code_ids(sku, max(REFILL, count),
                                                    random.randrange(1024), set(pool))
        pool.extend(found)
        if len(self._prefetched) > 4 * REFILL * max(1, len(self._pools)):
            self._prefetched.clear()
        for code in self._load_many(found):
            self._prefetched[code.id] = code


class Reservations:
    """Reserve, release and sell codes: one code, one owner."""

    def __init__(self, store: EventStore, writer: Writer, allocator: CodeAllocator,
                 source: CandidateSource) -> None:
        self._store = store
        self._writer = writer
        self._allocator = allocator
        self._source = source

    def take(self, *, sku: str, quantity: int, order_id: str, holder: str,
             actor: str) -> list[Code]:
        """Reserve ``quantity`` codes of ``sku`` in memory, not yet saved; the caller saves
        them (with its own aggregates) in one transaction, or gives them back."""
        taken: list[Code] = []
        # Examined by this command: each code is tried once, and once more from the store
        # after the read model has caught up (it may have been released in between).
        seen: set[UUID] = set()
        caught_up = False
        while len(taken) < quantity:
            candidates = [c for c in self._allocator.claim(sku, quantity - len(taken))
                          if c not in seen]
            if not candidates:
                horizon = self._store.last_position()
                if not caught_up and self._source.wait_for(horizon, CATCH_UP_SECONDS):
                    caught_up = True
                    seen = {code.id for code in taken}
                    continue
                self.give_back(sku, taken)
                raise SoldOut(f"{sku} has fewer than {quantity} codes available")
            now = utc_now()
            for code_id in candidates:
                seen.add(code_id)
                code = self._allocator.prefetched(code_id)
                if code is None or code.status != AVAILABLE:
                    code = self._store.repository.get(code_id)  # the read ahead may be stale
                if code.status == AVAILABLE and not code.is_expired_at(now):
                    code.reserve(order_id=order_id, holder=holder, now=now, actor=actor)
                    taken.append(code)
        return taken

    def give_back(self, sku: str, codes: list[Code], *, clashed: bool = False) -> None:
        """Return codes taken by ``take`` whose save did not happen; ``clashed`` when the
        save lost to another writer, so what was read ahead is suspect."""
        self._allocator.give_back(sku, [c.id for c in codes])
        if clashed:
            self._allocator.distrust(sku)

    def released(self, code_ids: list[UUID]) -> None:
        """Codes another use case returned to the pool."""
        self._allocator.released(code_ids)

    def reserve(self, *, sku: str, quantity: int, order_id: str, holder: str,
                actor: str) -> list[Code]:
        """Reserve and save ``quantity`` codes for ``order_id``: all of them or none."""
        return self._retrying(lambda: self._reserve_once(sku, quantity, order_id, holder, actor))

    def _reserve_once(self, sku: str, quantity: int, order_id: str, holder: str,
                      actor: str) -> list[Code]:
        codes = self.take(sku=sku, quantity=quantity, order_id=order_id, holder=holder,
                          actor=actor)
        try:
            self._writer.save(*codes)
        except ConcurrentUpdate:
            self.give_back(sku, codes, clashed=True)
            raise
        return codes

    def release(self, *, code_ids: list[UUID], order_id: str, reason: str,
                actor: str) -> list[Code]:
        """Give reserved codes back to the pool."""
        codes = self._retrying(lambda: self._change(
            code_ids, lambda c: c.release(order_id=order_id, reason=reason, actor=actor)))
        self.released(code_ids)
        return codes

    def sell(self, *, code_ids: list[UUID], order_id: str, actor: str) -> list[Code]:
        """Turn codes reserved for ``order_id`` into sold ones."""
        return self._retrying(lambda: self._change(
            code_ids, lambda c: c.sell(order_id=order_id, actor=actor)))

    def _change(self, code_ids: list[UUID], change: Callable[[Code], None]) -> list[Code]:
        codes = [self._store.repository.get(i) for i in code_ids]
        for code in codes:
            change(code)
        self._writer.save(*codes)
        return codes

    @staticmethod
    def _retrying(attempt: Callable[[], list[Code]]) -> list[Code]:
        # Callers have always been told InvalidState when the codes would not hold still.
        try:
            return retrying(attempt, attempts=RETRIES, what="the codes", max_pause=0.005)
        except ConcurrentUpdate as exc:
            raise InvalidState("the codes kept changing under this command; retry") from exc
