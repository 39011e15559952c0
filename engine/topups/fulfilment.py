"""A paid top-up's fulfilment: every attempt at a supplier, recorded BEFORE the supplier is
called, then its outcome. One per order, opened in the payment's atomic save.

    open ──attempt started──▶ attempt open ──succeeded──▶ succeeded           (final)
      ▲                          │  │  └──unknown past the deadline──▶ needs_attention
      └─────failed (definite)────┘  └─(pending / unknown: query again)       │
      ▲                                                                       │
      └───────────── support: failed ◀─────────────────────── support: succeeded ─▶ succeeded
    open, no offer left untried ──▶ failed (the payment is refunded)           (final)

An attempt's ``reference`` is ours, derived from the order id and the attempt's number, and
is what the supplier de-duplicates on: after a crash, the attempt left open is resolved by
asking the supplier about that reference before anything else, and a new attempt (a new
reference) is started only once the open one has definitely failed. So a crash at any point
can neither lose a paid top-up nor credit the account twice.

An offer passed over when the next attempt starts (its supplier's circuit breaker is open:
engine/topups/breakers.py) is recorded as skipped, with why, in the same save as the attempt
started instead, so that the order's top-up detail explains why the first supplier was not
asked. A skipped offer is not tried-and-failed: it may still be tried for this order later.

What arrives for an attempt already decided (a duplicate or late callback) changes nothing
and is recorded, once: a callback saying what is already on record for that attempt (the
same outcome, supplier transaction and detail, heard by callback) records nothing more; a success for an attempt given up on (the supplier credited the account
after all) is recorded as a late success, whose cost the supplier is owed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from engine.kernel.errors import InvalidState, NotFound
from engine.kernel.ids import NAMESPACE
from engine.kernel.money import Money

OPEN, NEEDS_ATTENTION, SUCCEEDED, FAILED = "open", "needs_attention", "succeeded", "failed"


def fulfilment_id(order_id: UUID | str) -> UUID:
    return uuid5(NAMESPACE, f"fulfilment:{order_id}")


def reference_for(order_id: UUID | str, number: int) -> str:
    """Our reference for the order's ``number``-th attempt: the same on every retry."""
    return f"{order_id}-{number}"


def order_of(reference: str) -> UUID:
    """The order a reference of ours names (NotFound for one that is not ours)."""
    head, _, number = reference.rpartition("-")
    try:
        order_id = UUID(head)
    except ValueError:
        raise NotFound("no top-up attempt has this reference") from None
    if not number.isdigit() or reference_for(order_id, int(number)) != reference:
        raise NotFound("no top-up attempt has this reference")
    return order_id


def heard(reference: str, outcome: str, via: str, supplier_txn_id: str | None,
          detail: str | None) -> tuple[Any, ...]:
    """What makes two reports of an attempt the same. A failure's decision does not keep
    the supplier's transaction id, so failures compare without it."""
    return (reference, outcome, via, None if outcome == FAILED else supplier_txn_id, detail)


@dataclass(frozen=True)
class Attempt:
    """One call to one supplier, as far as it is known."""

    number: int
    reference: str
    supplier_id: str
    supplier_sku: str
    cost: Money
    started_at: datetime
    outcome: str | None = None  # succeeded | failed once decided
    supplier_txn_id: str | None = None
    late_success: bool = False  # credited after we had given up on it

    @property
    def is_open(self) -> bool:
        return self.outcome is None


@dataclass(frozen=True)
class Skip:
    """An offer passed over when attempt ``before_attempt`` started, and why."""

    supplier_id: str
    supplier_sku: str
    reason: str
    at: datetime
    before_attempt: int


class Fulfilment(Aggregate):
    """The attempts to credit one order's recharge account."""

    TOPIC = "quanyi:fulfilment"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:topup.opened"
        order_id: str
        sku: str
        amount: Money

    def __init__(self, *, id: UUID, order_id: str, sku: str, amount: Money) -> None:
        self.order_id = order_id
        self.sku = sku
        self.amount = amount
        self.status = OPEN
        self.attempts: list[Attempt] = []
        self.skipped: list[Skip] = []
        self.supplier_id: str | None = None  # the one that succeeded
        self.heard: set[tuple[Any, ...]] = set()  # each distinct report on record (heard())

    @classmethod
    def open(cls, *, order_id: UUID, sku: str, amount: Money) -> "Fulfilment":
        return cls(id=fulfilment_id(order_id), order_id=str(order_id), sku=sku,
                   amount=amount)

    @property
    def open_attempt(self) -> Attempt | None:
        return next((a for a in self.attempts if a.is_open), None)

    @property
    def decided(self) -> bool:
        return self.status in (SUCCEEDED, FAILED)

    def attempt(self, reference: str) -> Attempt:
        found = next((a for a in self.attempts if a.reference == reference), None)
        if found is None:
            raise NotFound("no top-up attempt has this reference")
        return found

    def has_heard(self, reference: str, outcome: str, via: str, supplier_txn_id: str | None,
                  detail: str | None) -> bool:
        """Whether this very report of the attempt is already on record."""
        return heard(reference, outcome, via, supplier_txn_id, detail) in self.heard

    def tried(self) -> set[tuple[str, str]]:
        """(supplier, supplier SKU) of every attempt so far: an offer is tried once."""
        return {(a.supplier_id, a.supplier_sku) for a in self.attempts}

    def _replace(self, reference: str, **changes: Any) -> None:
        self.attempts = [replace(a, **changes) if a.reference == reference else a
                         for a in self.attempts]

    # -- commands -------------------------------------------------------------------------

    def start(self, *, supplier_id: str, supplier_sku: str, cost: Money) -> Attempt:
        """Record the next attempt before its supplier is called."""
        self._check_between_attempts()
        number = len(self.attempts) + 1
        self.trigger_event(self.AttemptStarted, number=number,
                           reference=reference_for(self.order_id, number),
                           supplier_id=supplier_id, supplier_sku=supplier_sku, cost=cost)
        return self.attempts[-1]

    class AttemptStarted(Aggregate.Event):
        TOPIC = "quanyi:topup.attempt_started"
        number: int
        reference: str
        supplier_id: str
        supplier_sku: str
        cost: Money

        def apply(self, fulfilment: "Fulfilment") -> None:
            fulfilment.attempts.append(Attempt(
                self.number, self.reference, self.supplier_id, self.supplier_sku, self.cost,
                self.timestamp))

    def skip(self, *, supplier_id: str, supplier_sku: str, reason: str) -> None:
        """Record that the next attempt passes over this offer, and why (saved with it)."""
        self._check_between_attempts()
        self.trigger_event(self.OfferSkipped, supplier_id=supplier_id,
                           supplier_sku=supplier_sku, reason=reason,
                           before_attempt=len(self.attempts) + 1)

    class OfferSkipped(Aggregate.Event):
        TOPIC = "quanyi:topup.offer_skipped"
        supplier_id: str
        supplier_sku: str
        reason: str
        before_attempt: int

        def apply(self, fulfilment: "Fulfilment") -> None:
            fulfilment.skipped.append(Skip(self.supplier_id, self.supplier_sku, self.reason,
                                           self.timestamp, self.before_attempt))

    def fail_attempt(self, *, reference: str, via: str, detail: str | None) -> None:
        """The supplier (or support) says the open attempt credited nothing."""
        self._check_open(reference)
        self._attempt_failed(reference=reference, via=via, detail=detail)

    @event("AttemptFailed", topic="quanyi:topup.attempt_failed")
    def _attempt_failed(self, reference: str, via: str, detail: str | None) -> None:
        self._replace(reference, outcome=FAILED)
        self.heard.add(heard(reference, FAILED, via, None, detail))
        self.status = OPEN

    def escalate(self, *, reference: str, reason: str) -> None:
        """The attempt stayed unknown past the deadline: support decides."""
        self._check_open(reference)
        if self.status != OPEN:
            raise InvalidState(f"top-up of order {self.order_id} is {self.status}")
        self._escalated(reference=reference, reason=reason)

    @event("NeedsAttention", topic="quanyi:topup.needs_attention")
    def _escalated(self, reference: str, reason: str) -> None:
        self.status = NEEDS_ATTENTION

    def succeed(self, *, reference: str, supplier_txn_id: str | None, via: str,
                detail: str | None = None) -> Attempt:
        """The supplier credited the account on the open attempt."""
        attempt = self._check_open(reference)
        self.trigger_event(self.Succeeded, order_id=self.order_id,
                           supplier_id=attempt.supplier_id, reference=reference,
                           supplier_txn_id=supplier_txn_id, cost=attempt.cost, via=via,
                           detail=detail)
        return attempt

    class Succeeded(Aggregate.Event):
        TOPIC = "quanyi:topup.succeeded"
        order_id: str
        supplier_id: str
        reference: str
        supplier_txn_id: str | None
        cost: Money
        via: str  # answer, query, callback or support
        detail: str | None = None

        def apply(self, fulfilment: "Fulfilment") -> None:
            fulfilment._replace(self.reference, outcome=SUCCEEDED,
                                supplier_txn_id=self.supplier_txn_id)
            fulfilment.status = SUCCEEDED
            fulfilment.supplier_id = self.supplier_id
            fulfilment.heard.add(heard(self.reference, SUCCEEDED, self.via,
                                       self.supplier_txn_id, self.detail))

    def give_up(self, *, reason: str) -> None:
        """No offer is left untried: the payment is refunded in the same save."""
        self._check_between_attempts()
        last = self.attempts[-1].supplier_id if self.attempts else None
        self.trigger_event(self.Failed, order_id=self.order_id, supplier_id=last,
                           reason=reason)

    class Failed(Aggregate.Event):
        TOPIC = "quanyi:topup.failed"
        order_id: str
        supplier_id: str | None  # the last supplier tried (None: no offer at all)
        reason: str

        def apply(self, fulfilment: "Fulfilment") -> None:
            fulfilment.status = FAILED

    @event("OutcomeRecorded", topic="quanyi:topup.outcome_recorded")
    def record(self, reference: str, outcome: str, via: str, supplier_txn_id: str | None,
               detail: str | None) -> None:
        """What arrived for an attempt already decided: kept, and changes nothing."""
        self.heard.add(heard(reference, outcome, via, supplier_txn_id, detail))

    def credit_late(self, *, reference: str, supplier_txn_id: str | None) -> Attempt:
        """A success for an attempt given up on: its cost is owed (posted with it)."""
        attempt = self.attempt(reference)
        if attempt.outcome != FAILED or attempt.late_success:
            raise InvalidState(f"attempt {reference} was not given up on")
        self._late_success(reference=reference, supplier_id=attempt.supplier_id,
                           supplier_txn_id=supplier_txn_id, cost=attempt.cost)
        return attempt

    @event("LateSuccess", topic="quanyi:topup.late_success")
    def _late_success(self, reference: str, supplier_id: str, supplier_txn_id: str | None,
                      cost: Money) -> None:
        self._replace(reference, late_success=True, supplier_txn_id=supplier_txn_id)

    def _check_between_attempts(self) -> None:
        """Open, with no attempt open: the next one may start, or the top-up end."""
        if self.status != OPEN or self.open_attempt is not None:
            raise InvalidState(f"top-up of order {self.order_id} is {self.status} with an "
                               "attempt open")

    def _check_open(self, reference: str) -> Attempt:
        attempt = self.attempt(reference)
        if not attempt.is_open or self.decided:
            raise InvalidState(f"attempt {reference} is already decided")
        return attempt

    def view(self) -> dict[str, Any]:
        """The fulfilment as answers show it (no recharge account: that is the order's)."""
        return {"status": self.status, "supplier_id": self.supplier_id,
                "attempts": [{"number": a.number, "reference": a.reference,
                              "supplier_id": a.supplier_id, "outcome": a.outcome,
                              "started_at": a.started_at, "late_success": a.late_success}
                             for a in self.attempts],
                "skipped": [{"supplier_id": k.supplier_id, "supplier_sku": k.supplier_sku,
                             "reason": k.reason, "at": k.at,
                             "before_attempt": k.before_attempt} for k in self.skipped]}
