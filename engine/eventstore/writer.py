"""The group-commit writer: concurrent commands' events are saved together in one
transaction, because the event store writes serially (FACTS.md: ~1k events/s one save per
command, ~12k/s batched). Each caller still gets its own answer: when a group fails on a
version clash, its commands are saved one by one so only the clashing one fails. A clash
with the group's own events (its commit succeeded, the answer was lost, the write was sent
again) is the success it was.

Every event is checked against engine/kernel/fields.py's rules in the caller's thread, before it
is queued: a value no projection could ever apply fails its own command (ValidationFailed)
and never reaches, or poisons, a group commit.

A write that raises is read back before its callers hear of it: one that committed after
all (the error came once it was stored) is answered as saved, never as failed; one that did
not is StorageFull when the disk is full (nothing of it was stored), else its error.

A save made by a command under an Idempotency-Key (engine/eventstore/receipts.py) carries one more
event, of that command's receipt, in the same append: a group is one transaction, and a
group that falls back one by one still appends each command's events with its receipt."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError

from engine.eventstore.receipts import command_under_way
from engine.eventstore.recent import RecentAggregates
from engine.eventstore.storage_full import disk_full, storage_full
from engine.eventstore.store import EventStore
from engine.kernel import reads
from engine.kernel.errors import ConcurrentUpdate
from engine.kernel.fields import check_event

log = logging.getLogger("quanyi.writer")


@dataclass
class _Request:
    events: list[Any]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class Writer:
    """Saves aggregates' pending events; returns once they are durable."""

    def __init__(self, store: EventStore, *, max_group: int = 200,
                 on_saved: Callable[[], None] | None = None) -> None:
        self._store = store
        self._max_group = max_group
        self._on_saved = on_saved or (lambda: None)
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._full = False  # whether the last write found the disk full (logged once)
        self._thread = threading.Thread(target=self._run, name="quanyi-writer", daemon=True)
        self._thread.start()
        self.recent = RecentAggregates()

    def save(self, *aggregates: Any, remember: bool = False) -> None:
        """Save the pending events of the given aggregates atomically, or raise. With
        ``remember``, keep them for ``load`` to return (as copies) without reading the store:
        the caller then hands them over and must not change them again."""
        present = [a for a in aggregates if a is not None]
        events = [e for a in present for e in a.collect_events()]
        if not events:
            return
        command = command_under_way()
        receipt = command.receipt_of(present) if command is not None else None
        if receipt is not None:
            events += receipt.collect_events()
        for pending in events:
            check_event(pending)
        request = _Request(events)
        self._queue.put(request)
        request.done.wait()
        if isinstance(request.error, ConcurrentUpdate):
            self.recent.forget([a.id for a in present])
        if request.error is not None:
            raise request.error
        if command is not None and receipt is not None:
            command.saved(receipt)
        if remember:
            self.recent.remember(present)
        else:
            self.recent.forget([a.id for a in present])  # what is remembered stays current

    def load(self, aggregate_id: Any, what: str | None = None) -> Any:
        """An aggregate remembered from a recent save, else read from the store (a missing
        one is NotFound naming ``what``, when given). A decision that must read the store
        (engine/kernel/reads.py) lets go of the remembered copy instead."""
        if reads.fresh():
            self.recent.forget([aggregate_id])
        else:
            remembered = self.recent.recall(aggregate_id)
            if remembered is not None:
                reads.note(self._store, aggregate_id, remembered.version)
                return remembered
        if what is not None:
            return self._store.get(aggregate_id, what)
        return self._store.repository.get(aggregate_id)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            count = len(first.events)
            while count < self._max_group:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                group.append(more)
                count += len(more.events)
            self._write(group)

    def _write(self, group: list[_Request]) -> None:
        error = self._append([e for r in group for e in r.events])
        if isinstance(error, ConcurrentUpdate) and len(group) > 1:
            for request in group:
                request.error = self._append(request.events)
        else:
            for request in group:
                request.error = error
        self._on_saved()
        for request in group:
            request.done.set()

    def _append(self, events: list[Any]) -> BaseException | None:
        """Store the events in one transaction: None once they are stored, else the error
        for their callers. A refusal by the unique key is a clash (ConcurrentUpdate) unless
        the events refused are these very events, already stored: a commit whose answer was
        lost, sent again by the library (engine/eventstore/store.py). Any other failure after which
        the events are found stored is a commit whose acknowledgement failed."""
        try:
            self._store.append(events)
        except IntegrityError:
            if self._store.already_stored(events):
                return None
            return ConcurrentUpdate("another command changed the same record")
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting callers
            if self._store.holds(events[-1]):
                return None  # it committed; only the acknowledgement failed
            if disk_full(exc):
                self._disk_is_full(True)
                return storage_full()
            return exc
        self._disk_is_full(False)
        return None

    def _disk_is_full(self, full: bool) -> None:
        if full != self._full:
            self._full = full
            log.warning("the event store's disk is full: writes answer 507 until space is "
                        "freed" if full else "the event store's disk takes writes again")
