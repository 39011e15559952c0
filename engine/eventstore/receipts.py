"""Command receipts: what an Idempotency-Key's command committed, committed with it.

An HTTP command runs under its key (the API sets ``under_key`` around it); every save it
makes through the writer carries one more event of its ``CommandReceipt``, in the same
atomic append as the command's own events:

    first save   ──▶ CommandReceipt.Created (request digest, the aggregates saved)
    each further ──▶ CommandReceipt.Extended (the aggregates that save added)

So a receipt exists exactly when some of the command's events committed, whatever happened
to its answer afterwards (a kill -9 before it was kept), and it names what the command
made or changed: a retry of the key answers from it instead of acting again. The receipt
holds no secret: its id derives from the caller's scope and the keyed digest of the key,
and the request digest is keyed too. Receipts are bookkeeping, not business facts: the
feed does not show them; exports, imports, `replay verify` and the audit log carry them as
any other event.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

if TYPE_CHECKING:  # the store imports every aggregate's module, this one too
    from engine.eventstore.store import EventStore


class CommandReceipt(Aggregate):
    """The aggregates one command saved, as [kind, id] pairs in the order it saved them."""

    TOPIC = "quanyi:command_receipt"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:command_receipt.recorded"
        request_digest: str
        saved: list[list[str]]

    def __init__(self, *, id: UUID, request_digest: str, saved: list[list[str]]) -> None:
        self.request_digest = request_digest
        self.saved = saved

    @event("Extended", topic="quanyi:command_receipt.extended")
    def extend(self, saved: list[list[str]]) -> None:
        self.saved = [*self.saved, *saved]

    def ids_of(self, kind: str) -> list[UUID]:
        """The ids of the saved aggregates of one kind (``order``, ``code``, ...), first
        saved first, each once."""
        found = dict.fromkeys(UUID(i) for k, i in self.saved if k == kind)
        return list(found)


@dataclass
class Command:
    """A command under way under an Idempotency-Key: its receipt as last stored (None
    until its first save commits)."""

    receipt_id: UUID
    request_digest: str
    stored: CommandReceipt | None = None

    def receipt_of(self, aggregates: Sequence[Any]) -> CommandReceipt:
        """The receipt as it will be once these aggregates are saved, its event pending;
        ``stored`` is left as it is until the save commits (``saved``)."""
        saved = [[kind_of(a), str(a.id)] for a in aggregates]
        if self.stored is None:
            return CommandReceipt(id=self.receipt_id, request_digest=self.request_digest,
                                  saved=saved)
        draft = copy.deepcopy(self.stored)
        draft.extend(saved)
        return draft

    def saved(self, receipt: CommandReceipt) -> None:
        self.stored = receipt


_UNDER_WAY: ContextVar[Command | None] = ContextVar("quanyi_command", default=None)


@contextmanager
def under_key(command: Command) -> Iterator[None]:
    """Run what follows as this command: the writer adds its receipt to every save (a
    thread started from a thread pool that copies the context, as Starlette's does)."""
    token = _UNDER_WAY.set(command)
    try:
        yield
    finally:
        _UNDER_WAY.reset(token)


def command_under_way() -> Command | None:
    return _UNDER_WAY.get()


def is_receipt(topic: str) -> bool:
    """Whether a stored event's topic is a receipt's."""
    return topic.startswith(CommandReceipt.TOPIC + ".")


def kind_of(aggregate: Any) -> str:
    """An aggregate's kind, as its topic names it (``quanyi:order`` -> ``order``)."""
    return str(getattr(type(aggregate), "TOPIC", type(aggregate).__name__)).removeprefix(
        "quanyi:")


def find_receipt(store: "EventStore", receipt_id: UUID) -> CommandReceipt | None:
    return store.find(receipt_id)  # type: ignore[no-any-return]
