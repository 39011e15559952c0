"""Fulfilling paid top-ups: the use cases the dispatcher (runtime/dispatcher.py), supplier
callbacks and support drive (engine/topups/fulfilment.py draws the states).

No supplier is ever called inside a save: an attempt is saved first (so a crash right after
leaves it on record, open), then its supplier is called, then its outcome is saved with
whatever it decides (the order's status, the ledger). Every outcome, however it arrives
(the supplier's answer, a query, a callback, support), goes through ``report``, which
decides on fresh state and retries on a version clash, so two of them racing decide once.

Failover only ever follows a definite failure: an attempt that might still succeed
(pending, or unknown after a timeout or a 5xx) is queried again with exponential backoff
(the pause is the attempt's age so far, within ``query_seconds`` and ``query_max_seconds``:
derived from the stored start, so the same after a restart and on every process) and
escalated to support past ``deadline_seconds``, the last query falling just after it; it is
never left behind for another supplier. An open attempt this process did not place (another
process is placing it, or this one was before a restart) is asked about only once its
placement can no longer be on its way (``in_flight_seconds``, the adapter's timeouts): a
supplier asked about a reference it has not received closes it, and the placement still
coming would then be refused, failing an attempt that was about to succeed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any
from dataclasses import replace
from datetime import timedelta
from uuid import UUID

from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel.clock import utc_now
from engine.kernel.errors import (
    InvalidState,
    NotFound,
    SignatureInvalid,
    ValidationFailed,
)
from engine.kernel.fields import check_text
from engine.kernel.retry import retrying
from engine.kernel.vault import Vault
from engine.sales.orders import NEEDS_ATTENTION, Order
from engine.sales.postings import Sales
from engine.topups import postings as topup_ledger
from engine.topups.breakers import CircuitBreakers
from engine.topups.fulfilment import (
    FAILED,
    OPEN,
    SUCCEEDED,
    Attempt,
    Fulfilment,
    fulfilment_id,
    order_of,
)
from engine.topups.offers import TopupOffer
from engine.topups.supplier_port import AttemptReport, Outcome, TopupRequest
from engine.topups.suppliers import Suppliers

log = logging.getLogger("quanyi.topups")


def opened_by_payment(order: Order, paid: dict[str, Any]) -> tuple[Any, ...]:
    """What a top-up's payment opens in the same save as the order: its fulfilment and the
    capture posting (no supplier is called there; the dispatcher does that afterwards)."""
    fulfilment = Fulfilment.open(order_id=order.id, sku=order.items[0]["sku"],
                                 amount=order.total)
    return fulfilment, topup_ledger.captured(order, paid)
SYSTEM = "system:topup"
ANSWER, QUERY, CALLBACK, SUPPORT = "answer", "query", "callback", "support"
ALL_FAILED = "every supplier offer failed"
NO_OFFER = "no supplier offers this SKU"
MAX_NOTE = 500
UNTRUSTED_CALLBACK = ("the callback's signature is missing, stale or wrong, or no such "
                      "supplier: it was not read")
PAST_DEADLINE_SECONDS = 0.01  # the last query of an undecided attempt: just past its deadline


class Topups:
    """Take a paid top-up to an outcome, and take in what suppliers and support report."""

    def __init__(self, store: EventStore, writer: Writer, vault: Vault, suppliers: Suppliers,
                 sales: Sales, breakers: CircuitBreakers, *, deadline_seconds: float,
                 query_seconds: float, query_max_seconds: float,
                 in_flight_seconds: float) -> None:
        self._store = store
        self._writer = writer
        self._vault = vault
        self._suppliers = suppliers
        self._sales = sales
        self.breakers = breakers
        self._deadline = timedelta(seconds=deadline_seconds)
        self.query_seconds = query_seconds
        self.query_max_seconds = query_max_seconds
        # the longest a placement may still be on its way to the supplier (its timeouts)
        self._in_flight = timedelta(seconds=in_flight_seconds)
        self._answered: set[str] = set()  # attempts this process placed and heard back on
        self._lock = threading.Lock()

    def get(self, order_id: UUID) -> Fulfilment:
        fulfilment: Fulfilment = self._store.get(fulfilment_id(order_id),
                                                 f"top-up of order {order_id}")
        return fulfilment

    def find(self, order_id: UUID) -> Fulfilment | None:
        """The order's fulfilment; None before its payment opened one."""
        found: Fulfilment | None = self._store.find(fulfilment_id(order_id))
        return found

    def take_callback(self, *, supplier_id: str, headers: Mapping[str, str],
                      body: bytes) -> tuple[AttemptReport, Fulfilment | None]:
        """A supplier's callback: its signature checked by the supplier's adapter
        (CallbackRejected), then decided on like any other report of the attempt. An
        unknown supplier, or any fault in the signature, is one answer (SignatureInvalid,
        always saying the same), so that nobody learns which supplier ids exist. A signed
        callback naming no attempt of this supplier changes nothing and is logged (None):
        the supplier is told so, and has nothing to send again."""
        try:
            report = self._suppliers.adapter_for(supplier_id).read_callback(headers, body)
        except (NotFound, SignatureInvalid) as exc:
            log.info("supplier callback to %r refused: %s", supplier_id[:64], exc.detail)
            raise SignatureInvalid(UNTRUSTED_CALLBACK) from None
        try:
            return report, self.report(supplier_id=supplier_id, report=report, via=CALLBACK)
        except NotFound:
            log.warning("supplier %s called back about %s, which is no attempt of its: "
                        "ignored", supplier_id, report.reference)
            return report, None

    # -- the dispatcher's step --------------------------------------------------------------

    def advance(self, order_id: UUID) -> float | None:
        """Take the order's top-up one step: resolve its open attempt at the supplier
        first, else start the next offer, else refund. Seconds until the next step
        (None: nothing more for the dispatcher to do)."""
        fulfilment = self.get(order_id)
        if fulfilment.status != OPEN:
            return None
        attempt = fulfilment.open_attempt
        if attempt is not None:
            wait = self._still_in_flight(attempt)
            if wait:
                return wait
            report = self._suppliers.adapter_for(attempt.supplier_id).query(attempt.reference)
            return self._settle(attempt, report, QUERY)
        return self._start_next(fulfilment)

    def _still_in_flight(self, attempt: Attempt) -> float:
        """Seconds until an attempt placed by another process (or by this one before a
        restart) can no longer be on its way: asked about sooner, a supplier would answer
        "never received" and close it while the placement is still coming."""
        with self._lock:
            if attempt.reference in self._answered:
                return 0.0
        age = utc_now() - attempt.started_at
        return max(0.0, (self._in_flight - age).total_seconds())

    def _start_next(self, fulfilment: Fulfilment) -> float | None:
        # giving up refunds the order: never on offers read up to a second ago, which may
        # predate offers another process has just set
        offers = self._untried(fulfilment) or self._untried(fulfilment, fresh=True)
        if not offers:
            self._give_up(UUID(fulfilment.order_id),
                          ALL_FAILED if fulfilment.attempts else NO_OFFER)
            return None
        waits = [self.breakers.wait(o.supplier_id) for o in offers]
        if min(waits) > 0:
            return min(waits)  # every offer left is cooling down: try again after
        offer = self._pass_over_cooling(fulfilment, offers, waits)
        attempt = fulfilment.start(supplier_id=offer.supplier_id,
                                   supplier_sku=offer.supplier_sku, cost=offer.cost)
        self._writer.save(fulfilment)  # on record (with what it skipped) before the call
        # the account and the total never change: a copy remembered at payment will do
        order: Order = self._writer.load(UUID(fulfilment.order_id), "order")
        request = TopupRequest(attempt.reference, offer.supplier_sku,
                               self._account(order), order.total)
        report = self._suppliers.adapter_for(offer.supplier_id).place(request)
        with self._lock:
            self._answered.add(attempt.reference)
        return self._settle(attempt, report, ANSWER)

    def _untried(self, fulfilment: Fulfilment, *, fresh: bool = False) -> list[TopupOffer]:
        return [o for o in self._suppliers.offers_for(fulfilment.sku, fresh=fresh)
                if (o.supplier_id, o.supplier_sku) not in fulfilment.tried()]

    def _pass_over_cooling(self, fulfilment: Fulfilment, offers: list[TopupOffer],
                           waits: list[float]) -> TopupOffer:
        """The first offer whose supplier's breaker is closed; every one before it is
        recorded on the fulfilment as skipped, and why."""
        chosen = waits.index(0.0)
        for passed, wait in zip(offers[:chosen], waits):
            fulfilment.skip(supplier_id=passed.supplier_id, supplier_sku=passed.supplier_sku,
                            reason=self.breakers.why_skipped(wait))
        return offers[chosen]

    def _account(self, order: Order) -> str:
        if order.recharge is None:
            raise InvalidState(f"order {order.id} is not a top-up")
        return str(self._vault.open(order.id, order.recharge["sealed"])["account"])

    def _settle(self, attempt: Attempt, report: AttemptReport, via: str) -> float | None:
        """Act on what the supplier said of ``attempt``."""
        report = replace(report, reference=attempt.reference)  # ours, whatever it echoed
        if report.outcome == Outcome.SUCCEEDED:
            self.breakers.succeeded(attempt.supplier_id)
        elif report.outcome in (Outcome.FAILED, Outcome.UNKNOWN):
            self.breakers.failed(attempt.supplier_id)
        if report.outcome.is_final:
            fulfilment = self.report(supplier_id=attempt.supplier_id, report=report, via=via)
            return 0.0 if fulfilment.status == OPEN else None
        if utc_now() - attempt.started_at > self._deadline:
            self._forget(attempt)
            self._escalate(attempt, f"no definite answer within "
                                    f"{self._deadline.total_seconds():g} s")
            return None
        return self._next_query_in(attempt)

    def _next_query_in(self, attempt: Attempt) -> float:
        """Seconds until an undecided attempt is asked about again: as long as it has been
        open (so the pauses double), within [query_seconds, query_max_seconds], and never
        beyond the deadline, so that it is escalated on time."""
        age = (utc_now() - attempt.started_at).total_seconds()
        pause = min(max(self.query_seconds, age), self.query_max_seconds)
        left = self._deadline.total_seconds() - age
        return max(0.0, min(pause, left + PAST_DEADLINE_SECONDS))

    def _forget(self, attempt: Attempt) -> None:
        with self._lock:
            self._answered.discard(attempt.reference)

    # -- outcomes, however they arrive ------------------------------------------------------

    def report(self, *, supplier_id: str | None, report: AttemptReport, via: str,
               actor: str = SYSTEM) -> Fulfilment:
        """Decide on what is reported of one attempt (``supplier_id``: only that
        supplier's). Open attempt: a success delivers, a failure frees the next offer.
        Decided attempt: recorded, changing nothing, except that a success for an attempt
        given up on posts its cost, owed to that supplier."""
        order_id = order_of(report.reference)
        if report.outcome.is_final:
            with self._lock:
                self._answered.discard(report.reference)
        return retrying(lambda: self._report_once(order_id, supplier_id, report, via, actor),
                        what=f"top-up of order {order_id}")

    def _report_once(self, order_id: UUID, supplier_id: str | None, report: AttemptReport,
                     via: str, actor: str) -> Fulfilment:
        # read from the store, never a remembered copy: a copy remembered by the payment's
        # thread a moment late may predate the attempt this report is about
        fulfilment = self.get(order_id)
        attempt = fulfilment.attempt(report.reference)
        if supplier_id is not None and attempt.supplier_id != supplier_id:
            raise NotFound("no top-up attempt of this supplier has this reference")
        if attempt.is_open:
            if report.outcome == Outcome.SUCCEEDED:
                return self._succeed(fulfilment, attempt, report, via, actor)
            if report.outcome == Outcome.FAILED:
                return self._fail(fulfilment, attempt, report, via)
            if via != CALLBACK:
                return fulfilment  # still undecided: nothing to record
        heard = {"reference": attempt.reference, "outcome": str(report.outcome), "via": via,
                 "supplier_txn_id": report.supplier_txn_id, "detail": report.detail}
        if via == CALLBACK and fulfilment.has_heard(**heard):
            return fulfilment  # the same callback again: on record once is enough
        fulfilment.record(**heard)
        posting = None
        if report.outcome == Outcome.SUCCEEDED and attempt.outcome == FAILED \
                and not attempt.late_success:
            fulfilment.credit_late(reference=attempt.reference,
                                   supplier_txn_id=report.supplier_txn_id)
            posting = topup_ledger.credited_late(self._order(order_id), attempt, actor)
        self._writer.save(fulfilment, posting)
        return fulfilment

    def _succeed(self, fulfilment: Fulfilment, attempt: Attempt, report: AttemptReport,
                 via: str, actor: str) -> Fulfilment:
        order = self._order(UUID(fulfilment.order_id))
        fulfilment.succeed(reference=attempt.reference, supplier_txn_id=report.supplier_txn_id,
                           via=via, detail=report.detail)
        order.deliver_topup(supplier_id=attempt.supplier_id, reference=attempt.reference)
        posting = topup_ledger.delivered(order, attempt, self._sales.commission(order), actor)
        self._writer.save(fulfilment, order, posting)
        return fulfilment

    def _fail(self, fulfilment: Fulfilment, attempt: Attempt, report: AttemptReport,
              via: str) -> Fulfilment:
        order = self._order(UUID(fulfilment.order_id))
        fulfilment.fail_attempt(reference=attempt.reference, via=via, detail=report.detail)
        if order.status == NEEDS_ATTENTION:
            order.resume_topup()
        self._writer.save(fulfilment, order)
        return fulfilment

    def _escalate(self, attempt: Attempt, reason: str) -> None:
        def once() -> None:
            fulfilment = self.get(order_of(attempt.reference))
            if fulfilment.status != OPEN or fulfilment.open_attempt != attempt:
                return  # decided meanwhile (a callback): nothing to escalate
            order = self._order(UUID(fulfilment.order_id))
            fulfilment.escalate(reference=attempt.reference, reason=reason)
            order.escalate_topup(reason=reason)
            self._writer.save(fulfilment, order)
        retrying(once, what=f"top-up attempt {attempt.reference}")

    def _give_up(self, order_id: UUID, reason: str) -> None:
        """No offer left: the top-up failed and the payment is refunded, in one save."""
        def once() -> None:
            fulfilment = self.get(order_id)
            if fulfilment.status != OPEN or fulfilment.open_attempt is not None:
                return
            order = self._order(order_id)
            refund_id = f"topup-{order_id}"
            fulfilment.give_up(reason=reason)
            order.refund_topup(refund_id=refund_id, reason=reason)
            self._writer.save(fulfilment, order,
                              topup_ledger.refunded(order, refund_id, SYSTEM))
        retrying(once, what=f"top-up of order {order_id}")

    def _order(self, order_id: UUID) -> Order:
        # from the store, never a remembered copy: a decision such as _fail may leave the
        # order unsaved, and only a save would catch a copy another process changed since
        order: Order = self._store.get(order_id, f"order {order_id}")
        return order

    # -- support ----------------------------------------------------------------------------

    def resolve(self, *, order: Order, outcome: str, note: str, actor: str) -> Fulfilment:
        """Support's decision on a top-up that needs attention: ``succeeded`` delivers it
        (the attempt's supplier is owed), ``failed`` lets the next offer be tried."""
        note = check_text(note, "note")
        if not note.strip() or len(note) > MAX_NOTE:
            raise ValidationFailed(f"note must be 1-{MAX_NOTE} characters")
        if outcome not in (SUCCEEDED, FAILED):
            raise ValidationFailed("outcome must be succeeded or failed")
        if order.status != NEEDS_ATTENTION:
            raise InvalidState(f"order {order.id} is {order.status}, not needs_attention")
        attempt = self.get(order.id).open_attempt
        if attempt is None:
            raise InvalidState(f"order {order.id} has no open top-up attempt")
        report = AttemptReport(attempt.reference, Outcome(outcome), detail=f"{actor}: {note}")
        return self.report(supplier_id=None, report=report, via=SUPPORT, actor=actor)
