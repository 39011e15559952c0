"""Distributors (分销) and the commission a sale owes them (docs/ledger.md).

Distributors form a tree of at most three levels: a distributor registered without a parent
is level 1, its children level 2, theirs level 3, and a level-3 distributor can have no
children. A distributor never moves or changes once registered, so the tree never changes
shape: a distributor's chain (itself, its parent, its grandparent) is read once per process
and kept.

    registered          (no other state: registering is not selling, so it earns nothing)

Registering posts no ledger transaction. Commission is earned only on sales, on the amount
actually paid, at the product's rates per level, floored per leg; what the floors leave
stays with the platform. A refund claws back what the order's commission exceeds on the net
paid amount. ``commission_legs`` and ``clawback`` are the one place this arithmetic lives.

Distributors are platform-wide, like products: every app key reads every distributor. A
registration is idempotent on its natural key: the same ``distributor_id`` with the same
name and parent answers the distributor as first registered; with another name or parent
it is refused (409 ``already_exists``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from uuid import UUID

from eventsourcing.domain import Aggregate

from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel import ids
from engine.kernel.errors import (
    AlreadyExists,
    ConcurrentUpdate,
    InvalidState,
    NotFound,
    ValidationFailed,
)
from engine.kernel.fields import check_text
from engine.kernel.money import BASIS_POINTS, Money
from engine.kernel.tenancy import shown, tenant_of
from engine.ledger.transactions import PART

MAX_LEVELS = 3
MAX_NAME = 200
MAX_CACHED = 50_000  # distributors whose chain a process keeps; the least used go first


class Distributor(Aggregate):
    """One distributor, placed in the tree for good when it is registered."""

    TOPIC = "quanyi:distributor"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:distributor.registered"
        distributor_id: str
        name: str
        parent_id: str | None
        level: int
        actor: str

    def __init__(self, *, id: UUID, distributor_id: str, name: str, parent_id: str | None,
                 level: int, actor: str) -> None:
        self.distributor_id = distributor_id
        self.name = name
        self.parent_id = parent_id
        self.level = level

    @classmethod
    def register(cls, *, distributor_id: str, name: str, parent: "Distributor | None",
                 actor: str) -> "Distributor":
        """A new distributor under ``parent`` (None: a root), refused below level 3."""
        check_distributor_id(distributor_id, "distributor_id")
        name = _check_name(name)
        if parent is not None and parent.level >= MAX_LEVELS:
            raise InvalidState(f"distributor {parent.distributor_id} is at level "
                               f"{parent.level}: a distributor tree has at most three levels")
        level = 1 if parent is None else parent.level + 1
        return cls(id=ids.distributor_id(distributor_id), distributor_id=distributor_id,
                   name=name, parent_id=parent.distributor_id if parent else None,
                   level=level, actor=actor)

    def is_registration(self, name: str, parent_id: str | None) -> bool:
        """Whether registering with these fields again would say what was registered."""
        return (self.name, self.parent_id) == (name, parent_id)

    def view(self) -> dict[str, object]:
        return {"distributor_id": self.distributor_id, "name": self.name,
                "parent_id": self.parent_id, "level": self.level,
                "registered_at": self.created_on}


def check_distributor_id(value: object, field: str) -> str:
    """A distributor id names a ledger account (``liabilities:distributors:<id>``), so it
    obeys the chart's rule for an account part; a tenant's distributor is stored under its
    tenant (``<tenant>:<id>``, engine/kernel/tenancy.py), one account part more."""
    if not _well_formed(value):
        raise ValidationFailed(f"{field} must be 1-64 letters, digits, '.', '_' or '-', "
                               "starting with a letter or digit (it names a ledger account)")
    return value


def _well_formed(value: object) -> bool:
    return isinstance(value, str) and PART.match(shown(value)) is not None \
        and PART.match(tenant_of(value) or "x") is not None


def _check_name(name: object) -> str:
    text = check_text(name, "name")
    if not text.strip() or len(text) > MAX_NAME:
        raise ValidationFailed(f"name must be 1-{MAX_NAME} characters")
    return text


class Distribution:
    """Register distributors and read them, with their chains of ancestors."""

    def __init__(self, store: EventStore, writer: Writer) -> None:
        self._store = store
        self._writer = writer
        self._known = _KnownDistributors(MAX_CACHED)

    def register(self, *, distributor_id: str, name: str, parent_id: str | None = None,
                 actor: str) -> Distributor:
        """Register a distributor under an existing parent, at most three levels deep; the
        same registration again answers the first one. Posts nothing to the ledger."""
        check_distributor_id(distributor_id, "distributor_id")
        if parent_id is not None:
            check_distributor_id(parent_id, "parent_id")
        parent = self.get(parent_id) if parent_id is not None else None
        distributor = Distributor.register(distributor_id=distributor_id, name=name,
                                           parent=parent, actor=actor)
        existing = self._find(distributor_id)
        if existing is not None:
            return self._repeated(existing, distributor)
        try:
            self._writer.save(distributor)
        except ConcurrentUpdate:  # registered meanwhile, by this request's twin or another
            return self._repeated(self.get(distributor_id), distributor)
        return distributor

    @staticmethod
    def _repeated(existing: Distributor, asked: Distributor) -> Distributor:
        if existing.is_registration(asked.name, asked.parent_id):
            return existing
        raise AlreadyExists(f"distributor {existing.distributor_id} is already registered "
                            "with another name or parent")

    def get(self, distributor_id: str) -> Distributor:
        """The distributor, or NotFound."""
        distributor = self._find(distributor_id)
        if distributor is None:
            raise NotFound(f"no distributor {shown(distributor_id)}"
                           if PART.match(shown(distributor_id)) else "no such distributor")
        return distributor

    def chain(self, distributor_id: str) -> list[Distributor]:
        """The distributor, its parent and its grandparent (as many as it has): the levels
        that earn commission on its sales, nearest first."""
        found = [self.get(distributor_id)]
        while found[-1].parent_id is not None and len(found) < MAX_LEVELS:
            found.append(self.get(found[-1].parent_id))
        return found

    def _find(self, distributor_id: str) -> Distributor | None:
        if not _well_formed(distributor_id):
            return None
        known = self._known.get(distributor_id)
        if known is not None:
            return known
        distributor = self._store.find(ids.distributor_id(distributor_id))
        if distributor is None:
            return None  # not kept: another process may register it any moment
        self._known.put(distributor)
        return distributor


class _KnownDistributors:
    """Distributors this process has read. Safe to keep: a registered distributor never
    changes. Bounded, least recently used first out."""

    def __init__(self, maxsize: int) -> None:
        self._items: OrderedDict[str, Distributor] = OrderedDict()
        self._lock = threading.Lock()
        self._maxsize = maxsize

    def get(self, distributor_id: str) -> Distributor | None:
        with self._lock:
            found = self._items.get(distributor_id)
            if found is not None:
                self._items.move_to_end(distributor_id)
            return found

    def put(self, distributor: Distributor) -> None:
        with self._lock:
            self._items[distributor.distributor_id] = distributor
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)


# -- commission arithmetic ----------------------------------------------------------------

def commission_legs(paid: Money, rates_bp: Sequence[int],
                    chain: Sequence[str]) -> list[tuple[str, int, Money]]:
    """``(distributor_id, level, amount)`` per level that earns on a sale of ``paid``: level
    i (1 = the order's distributor) earns floor(paid × rates_bp[i] / 10,000). Levels beyond
    the chain or the rates earn nothing; a zero amount is left out. The legs never sum to
    more than ``paid``: what the floors leave stays with the platform."""
    if paid.amount < 0:
        raise ValidationFailed("commission is on an amount paid, which is never negative")
    if sum(rates_bp) > BASIS_POINTS:
        raise ValidationFailed(f"commission rates sum to at most {BASIS_POINTS} bp")
    legs = []
    for level, (distributor, rate) in enumerate(zip(chain[:MAX_LEVELS], rates_bp), start=1):
        amount = paid.share_bp(rate)
        if amount.amount:
            legs.append((distributor, level, amount))
    return legs


def clawback(paid: Money, refunded_total: Money, accrued: Money, rate_bp: int) -> Money:
    """What one level gives back on a refund: ``accrued`` (what the level holds on the
    order now: its commission less earlier clawbacks) less what it earns on what remains
    paid, floor((paid − refunded_total) × rate_bp / 10,000), where ``refunded_total``
    counts every refund of the order so far, this one included. After each refund the
    level holds exactly the rate applied to the net paid amount, floored; after a full
    refund, nothing."""
    if not Money.zero(paid.currency) <= refunded_total <= paid:
        raise ValidationFailed("the refunded total lies between nothing and the amount paid")
    return accrued - (paid - refunded_total).share_bp(rate_bp)
