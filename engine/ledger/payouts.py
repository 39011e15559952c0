"""Money paid out of the platform: payouts of commission to distributors and settlements
with suppliers, each never beyond what the ledger says the payee is owed (docs/ledger.md).

A payment belongs to the tenant of the key that made it (None: the platform's) and pays
only that tenant's payees: a tenant's distributor (stored ``<tenant>:<id>``) or a supplier it
registered; any other is unknown to it. Each payment is an aggregate keyed by its tenant and
reference (a retried command finds it, the store refuses a second one, and two tenants'
same reference are two payments that never meet), saved in one atomic save with its ledger transaction and the
payee's ``PayoutBook``. Every payment to one payee bumps that book, so two payments to the
same payee, from any two processes, cannot both be saved on the same balance: the second
clashes on the book's version and is decided again, after the first is counted. A refund
that draws a payable down (``books_drawn_down``) bumps the book too, so a payment deciding
on the balance before the refund clashes with it in the same way.

    load book ─▶ wait for the ledger projection up to the log's end ─▶ check balance
        ─▶ save book + payment + transaction ──clash──▶ again
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel.errors import (
    ConcurrentUpdate,
    InsufficientBalance,
    NaturalKeyReused,
    NotFound,
    PayoutRefReused,
    SettlementRefReused,
    ValidationFailed,
)
from engine.kernel.fields import check_text
from engine.kernel.ids import NAMESPACE
from engine.kernel.money import Money
from engine.kernel.retry import retrying
from engine.kernel.tenancy import tenant_of
from engine.ledger.distribution import Distribution
from engine.ledger.transactions import (
    BANK,
    LedgerTransaction,
    Leg,
    distributor_payable,
    supplier_payable,
)

ATTEMPTS = 8
CATCH_UP_SECONDS = 5.0
MAX_REF = 128
QUEUES = 64
PAYABLES = ("liabilities:distributors:", "liabilities:suppliers:")  # what payments draw down


class BalanceSource(Protocol):
    """Where a payout reads what a payee is owed (the ledger read model)."""

    def posted_balance(self, account: str, currency: str, book: str | None) -> int: ...

    def holds(self, account: str, book: str) -> bool: ...

    def wait_for(self, position: int, timeout: float) -> bool: ...


class PayoutBook(Aggregate):
    """One payee's payments, in order: the point at which payments to it serialise."""

    TOPIC = "quanyi:payout_book"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:payout_book.opened"
        account: str

    def __init__(self, *, id: UUID, account: str) -> None:
        self.account = account
        self.payments = 0

    @event("Paid", topic="quanyi:payout_book.paid")
    def record(self, kind: str, ref: str, amount: Money) -> None:
        self.payments += 1

    @event("DrawnDown", topic="quanyi:payout_book.drawn_down")
    def draw_down(self, transaction_id: str, amount: Money) -> None:
        """Something other than a payment lowered what the payee is owed (a refund)."""


class Payout(Aggregate):
    """Commission paid out to a distributor, once per payout_ref of its tenant."""

    TOPIC = "quanyi:payout"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:payout.paid"
        class_version = 2
        payee_id: str
        amount: Money
        ref: str
        actor: str
        tenant: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Payments made before tenants kept books are the platform's."""
            state["tenant"] = None

    def __init__(self, *, id: UUID, payee_id: str, amount: Money, ref: str,
                 actor: str, tenant: str | None) -> None:
        self.payee_id = payee_id
        self.amount = amount
        self.ref = ref
        self.tenant = tenant


class Settlement(Payout):
    """What a supplier was owed, paid, once per settlement_ref."""

    TOPIC = "quanyi:settlement"

    class Created(Payout.Created):
        TOPIC = "quanyi:settlement.paid"


@dataclass(frozen=True)
class Payment:
    """A payment asked for: to whom (a stored id), how much, its ref, by whom, for which
    tenant's book."""

    payee_id: str
    amount: Money
    ref: str
    actor: str
    tenant: str | None


@dataclass(frozen=True)
class Payee:
    """What differs between paying a distributor and settling with a supplier."""

    kind: str  # the ledger transaction's kind, and the ids' prefix
    payable: Callable[[str], str]  # the liability account the payment draws down
    payee_link: str  # the transaction link naming the payee
    aggregate: type[Payout]
    reused: type[NaturalKeyReused]  # its ref sent again for another payment


DISTRIBUTOR = Payee("payout", distributor_payable, "distributor_id", Payout, PayoutRefReused)
SUPPLIER = Payee("settlement", supplier_payable, "supplier_id", Settlement,
                 SettlementRefReused)


def payment_id(payee: Payee, ref: str, tenant: str | None) -> UUID:
    """The one payment a ref names in a tenant's book (the platform's ids are as they
    always were; a tenant's kind reads ``payout@<tenant>``, which no platform ref makes)."""
    kind = payee.kind if tenant is None else f"{payee.kind}@{tenant}"
    return uuid5(NAMESPACE, f"{kind}:{ref}")


def book_id(account: str) -> UUID:
    return uuid5(NAMESPACE, f"payout-book:{account}")


def books_drawn_down(store: EventStore, transaction: LedgerTransaction) -> list[PayoutBook]:
    """The books of the payees whose payable the transaction draws down (a refund clawing
    commission back, or the cost of a code back on sale), each bumped, to be saved with it:
    a payment deciding meanwhile on the balance before it then clashes on the book and is
    decided again, after the draw-down is counted."""
    drawn: dict[str, Money] = {}
    for leg in transaction.legs:
        if leg.account.startswith(PAYABLES) and leg.amount.amount > 0:
            drawn[leg.account] = drawn.get(leg.account, Money.zero(leg.amount.currency)) \
                + leg.amount
    books = []
    for account, amount in sorted(drawn.items()):
        book = (store.find(book_id(account))
                or PayoutBook(id=book_id(account), account=account))
        book.draw_down(transaction_id=str(transaction.id), amount=amount)
        books.append(book)
    return books


class SupplierDirectory(Protocol):
    """Where a settlement finds its supplier (engine/topups/suppliers.py): the ledger does
    not build on top-ups, so the directory is handed in."""

    def get(self, supplier_id: str, *, viewer: str | None = None) -> Any: ...


class Payouts:
    """Pay distributors and settle with suppliers, within what each is owed."""

    def __init__(self, store: EventStore, writer: Writer, balances: BalanceSource,
                 distribution: Distribution, suppliers: SupplierDirectory) -> None:
        self._store = store
        self._writer = writer
        self._balances = balances
        self._distribution = distribution
        self._suppliers = suppliers
        # Payments to one payee queue in this process rather than clash in the store (a
        # fixed set of locks, shared by payees whose names hash alike); the book's version
        # still orders them against other processes.
        self._queues = [threading.Lock() for _ in range(QUEUES)]

    def pay_distributor(self, *, distributor_id: str, amount: Money, payout_ref: str,
                        actor: str, tenant: str | None) -> Payout:
        """Pay out commission in ``tenant``'s book (its distributor's stored id); the same
        payout_ref again answers the same, and pays once."""
        return self._pay(DISTRIBUTOR, Payment(distributor_id, amount, payout_ref, actor,
                                              tenant))

    def settle_supplier(self, *, supplier_id: str, amount: Money, settlement_ref: str,
                        actor: str, tenant: str | None) -> Payout:
        """Settle with a supplier of ``tenant``; the same settlement_ref again answers the
        same."""
        return self._pay(SUPPLIER, Payment(supplier_id, amount, settlement_ref, actor, tenant))

    def _pay(self, payee: Payee, asked: Payment) -> Payout:
        _check(payee, asked.amount, asked.ref)
        if asked.tenant is not None:
            self._check_payee(payee, asked)
        account = payee.payable(asked.payee_id)
        queue = self._queues[hash(account) % QUEUES]

        def attempt() -> Payout:
            with queue:
                return self._attempt(payee, account, asked)
        return retrying(attempt, attempts=ATTEMPTS, what=f"the payments to {account}")

    def _attempt(self, payee: Payee, account: str, asked: Payment) -> Payout:
        """Pay once, or answer the payment already made with this ref."""
        done = self._store.find(payment_id(payee, asked.ref, asked.tenant))
        if done is not None:
            return _same(done, payee, asked)
        book = self._book(account)
        self._check_owed(account, asked)
        book.record(kind=payee.kind, ref=asked.ref, amount=asked.amount)
        paid = payee.aggregate(id=payment_id(payee, asked.ref, asked.tenant),
                               payee_id=asked.payee_id, amount=asked.amount, ref=asked.ref,
                               actor=asked.actor, tenant=asked.tenant)
        self._writer.save(book, paid, _transaction(payee, paid, account, asked.actor))
        return paid

    def _check_payee(self, payee: Payee, asked: Payment) -> None:
        """NotFound, as for an unknown id, unless the payee is the tenant's own: its
        distributor (stored under its name), a supplier it registered, or a supplier no
        one registered that its own batches made it owe. The platform may pay any payee
        the ledger owes, as it always could."""
        if payee is DISTRIBUTOR:
            if tenant_of(asked.payee_id) != asked.tenant:
                raise NotFound("no such distributor")
            self._distribution.get(asked.payee_id)
            return
        try:
            self._suppliers.get(asked.payee_id, viewer=asked.tenant)
        except NotFound:
            if not self._owed_unregistered(payee, asked):
                raise

    def _owed_unregistered(self, payee: Payee, asked: Payment) -> bool:
        """Whether the supplier is registered by no one and the tenant's book has owed
        it."""
        try:
            self._suppliers.get(asked.payee_id)
            return False
        except NotFound:
            return asked.tenant is not None and self._balances.holds(
                payee.payable(asked.payee_id), asked.tenant)

    def _check_owed(self, account: str, asked: Payment) -> None:
        # Every payment saved before the book was loaded is in the log by now; once the
        # projection has applied the log's end, the balance counts all of them. A tenant
        # pays what its own book owes (another tenant's batches may name the same
        # supplier id, whose account then holds both tenants' legs).
        if not self._balances.wait_for(self._store.last_position(), CATCH_UP_SECONDS):
            raise ConcurrentUpdate("the ledger is still catching up; retry")
        amount = asked.amount
        owed = -self._balances.posted_balance(account, amount.currency, asked.tenant)
        if amount.amount > owed:
            raise InsufficientBalance(
                f"{account} is owed {max(owed, 0)} {amount.currency}; cannot pay "
                f"{amount.amount}", owed=max(owed, 0), currency=amount.currency)

    def _book(self, account: str) -> PayoutBook:
        return (self._store.find(book_id(account))
                or PayoutBook(id=book_id(account), account=account))


def _check(payee: Payee, amount: Money, ref: str) -> None:
    check_text(ref, f"{payee.kind}_ref")
    if not 1 <= len(ref) <= MAX_REF:
        raise ValidationFailed(f"{payee.kind}_ref must be 1-{MAX_REF} characters")
    if amount.amount <= 0:
        raise ValidationFailed("amount must be more than zero")


def _same(done: Payout, payee: Payee, asked: Payment) -> Payout:
    """The payment already made with this ref, if it is the one asked for again."""
    if done.payee_id != asked.payee_id or done.amount != asked.amount:
        raise payee.reused(f"{payee.kind}_ref {done.ref} was used for another {payee.kind}")
    return done


def _transaction(payee: Payee, paid: Payout, account: str, actor: str) -> LedgerTransaction:
    links: dict[str, Any] = {f"{payee.kind}_id": str(paid.id), f"{payee.kind}_ref": paid.ref,
                             payee.payee_link: paid.payee_id}
    # the platform's transactions keep the ids they always had; a tenant's derives from
    # its payment's id, which already names the tenant
    cause = paid.ref if paid.tenant is None else str(paid.id)
    return LedgerTransaction.post(
        kind=payee.kind, cause=cause,
        legs=[Leg(account, paid.amount, payee.kind), Leg(BANK, -paid.amount, payee.kind)],
        links=links, actor=actor, tenant=paid.tenant)
