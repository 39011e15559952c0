"""Refunding a delivered order, wholly or code by code (docs/ledger.md, "Refund").

A refund gives back the price of whole *units*: a unit is one bought item, so one code, or
for a bundle (全家桶) one code of each component. A bundle unit is refunded only whole: its
codes are named together (or not at all), and its price is the bundle's unit price as the
order line charged it. A unit with a redeemed code is not refundable (409
``already_redeemed``); one already refunded answers 409 ``already_refunded``.

Each refunded code leaves the order: never revealed, it goes back on sale (its cost goes
back to its supplier); revealed, it is voided and its cost written off (the supplier is
still owed). The order, its codes and the refund's ledger transaction are saved in one
atomic save. The refund's id derives from the order, how many refunds it had and the codes,
so a retried command finds them refunded and cannot pay back twice.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from engine.catalog.products import Catalog, Product
from engine.codes.codes import AVAILABLE, Code
from engine.codes.reservations import Reservations
from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel.errors import (
    AlreadyRefunded,
    InvalidState,
    NotFound,
    QuanyiError,
    ValidationFailed,
)
from engine.kernel.fields import check_text
from engine.kernel.ids import NAMESPACE
from engine.kernel.money import Money
from engine.kernel.retry import retrying
from engine.ledger.distribution import Distribution, Distributor, clawback
from engine.ledger.payouts import books_drawn_down
from engine.ledger.transactions import (
    COMMISSION,
    COST_OF_SALES,
    DEFAULT_PROVIDER,
    SALES,
    WRITE_OFFS,
    LedgerTransaction,
    Leg,
    clearing,
    distributor_payable,
    supplier_payable,
    transaction_id,
)
from engine.sales.orders import Order

MAX_REASON = 500


@dataclass(frozen=True)
class Unit:
    """One bought item of an order line: its price and the codes that deliver it."""

    line: int
    price: Money
    code_ids: tuple[str, ...]


def units_of(order: Order, products: dict[str, Product]) -> list[Unit]:
    """The order's units, line by line, each given the next delivered codes of its SKUs
    (a bundle unit one of each component): the same order always splits the same way."""
    queues: dict[str, deque[str]] = defaultdict(deque)
    for code in order.delivered:
        queues[code["sku"]].append(code["code_id"])
    units = []
    for index, line in enumerate(order.lines):
        parts = products[line.sku].components or [{"sku": line.sku, "quantity": 1}]
        for _ in range(line.quantity):
            codes = tuple(queues[p["sku"]].popleft() for p in parts for _ in range(p["quantity"]))
            units.append(Unit(index, line.unit_price, codes))
    return units


def refund_id_for(order: Order, code_ids: list[str]) -> str:
    """The refund's id: the order, its refund ordinal and the codes, so a retry of the same
    refund names the same one."""
    ordinal = sum(1 for r in order.refunds if not r["automatic"]) + 1
    return str(uuid5(NAMESPACE, f"refund:{order.id}:{ordinal}:{','.join(sorted(code_ids))}"))


class Refunds:
    """The use case that pays back delivered units and takes their codes back."""

    def __init__(self, store: EventStore, writer: Writer, catalog: Catalog,
                 distribution: Distribution, reservations: Reservations) -> None:
        self._store = store
        self._writer = writer
        self._catalog = catalog
        self._distribution = distribution
        self._reservations = reservations

    def refund(self, *, order_id: UUID, code_ids: list[str] | None, reason: str, actor: str,
               owner: str | None = None) -> dict[str, Any]:
        """Refund the named codes (whole units), or every refundable one when none is
        named; with ``owner``, only that owner's order is found."""
        reason = check_text(reason, "reason")
        if not reason.strip() or len(reason) > MAX_REASON:
            raise ValidationFailed(f"reason must be 1-{MAX_REASON} characters")
        named = None if code_ids is None else [_code_id(c) for c in code_ids]
        return retrying(lambda: self._refund_once(order_id, named, reason, actor, owner),
                        what=f"order {order_id}")

    def _refund_once(self, order_id: UUID, named: list[str] | None, reason: str, actor: str,
                     owner: str | None) -> dict[str, Any]:
        order: Order = self._writer.load(order_id, f"order {order_id}")
        if not order.belongs_to(owner):
            raise NotFound(f"no order {order_id}")
        products = self._products(order, named)
        units = units_of(order, products)
        chosen, codes = self._chosen(order, units, named)
        ids = [i for unit in chosen for i in unit.code_ids]
        refund_id = refund_id_for(order, ids)
        accrued = self._accrued(order)
        for code in codes:
            code.refund(order_id=str(order.id), refund_id=refund_id, actor=actor)
        order.refund(refund_id=refund_id, code_ids=ids, reason=reason, actor=actor,
                     amount=sum((u.price for u in chosen), Money.zero(order.currency)))
        groups = _rate_groups(order, units, products)
        posting = self._posting(order, chosen, codes, refund_id, _Commission(groups, accrued),
                                actor)
        books = books_drawn_down(self._store, posting) if posting else []
        self._writer.save(order, *codes, posting, *books)
        self._reservations.released([c.id for c in codes if c.status == AVAILABLE])
        return refund_view(order, refund_id)

    # -- which units ------------------------------------------------------------------------

    def _products(self, order: Order, named: list[str] | None) -> dict[str, Product]:
        """The products of the order's lines, once the order is known to be refundable."""
        if named is not None:
            order.check_refundable(named)
        if not order.delivered:
            raise InvalidState(f"order {order.id} is {order.status}: it delivered nothing "
                               "to refund")
        # components and commission rates never change once a product is defined
        return {line.sku: self._catalog.get_recent(line.sku) for line in order.lines}

    def _chosen(self, order: Order, units: list[Unit],
                named: list[str] | None) -> tuple[list[Unit], list[Code]]:
        """The units to refund and their codes, loaded; every code checked refundable."""
        if named is not None:
            chosen = _units_named(units, named)
            codes = self._codes(chosen)
            for code in codes:
                code.check_refundable(str(order.id))
            return chosen, codes
        return self._every_refundable(order, units)

    def _every_refundable(self, order: Order, units: list[Unit]) -> tuple[list[Unit], list[Code]]:
        refunded = set(order.refunded_code_ids)
        open_units = [u for u in units if not refunded.intersection(u.code_ids)]
        if not open_units:
            raise AlreadyRefunded(f"every code of order {order.id} is already refunded")
        loaded = {str(c.id): c for c in self._codes(open_units)}
        chosen = [u for u in open_units
                  if all(_refundable(loaded[i], order) for i in u.code_ids)]
        if not chosen:  # say why not: the first unit's code that refuses
            for code_id in open_units[0].code_ids:
                loaded[code_id].check_refundable(str(order.id))
            raise InvalidState(f"order {order.id} has no refundable code")
        return chosen, [loaded[i] for u in chosen for i in u.code_ids]

    def _codes(self, units: list[Unit]) -> list[Code]:
        return [self._writer.load(UUID(i)) for unit in units for i in unit.code_ids]

    # -- what it posts ------------------------------------------------------------------------

    def _posting(self, order: Order, chosen: list[Unit], codes: list[Code], refund_id: str,
                 commission: _Commission, actor: str) -> LedgerTransaction | None:
        """The refund's transaction (None when it moves no money: free codes, no cost)."""
        payment = order.delivering_payment
        legs = [leg for unit in chosen for leg in _paid_back(unit, payment["provider"])]
        legs += [leg for code in codes for leg in self._cost_back(code)]
        legs += self._clawbacks(order, commission)
        if not any(leg.amount.amount for leg in legs):
            return None
        links = {"order_id": str(order.id), "refund_id": refund_id,
                 "payment_ref": payment["payment_ref"],
                 "provider": payment["provider"] or DEFAULT_PROVIDER}
        if order.distributor_id:
            links["distributor_id"] = order.distributor_id
        return LedgerTransaction.post(kind="refund", cause=refund_id, legs=legs, links=links,
                                      actor=actor, tenant=order.tenant)

    def _cost_back(self, code: Code) -> list[Leg]:
        """Back on sale: the supplier is owed nothing for it. Written off: the supplier is
        still owed, and the cost moves from cost of sales to write-offs."""
        batch = self._store.get(UUID(code.batch_id), f"batch {code.batch_id}")
        if not batch.supplier_id or not batch.unit_cost:
            return []  # a generated code costs nothing and is owed to nobody
        cost, code_id = Money(batch.unit_cost, batch.currency), str(code.id)
        if code.status == AVAILABLE:
            to, memo = supplier_payable(batch.supplier_id), "cost reversed: code back on sale"
        else:
            to, memo = WRITE_OFFS, "code written off: revealed before the refund"
        return [Leg(to, cost, memo, code_id), Leg(COST_OF_SALES, -cost, memo, code_id)]

    def _clawbacks(self, order: Order, commission: _Commission) -> list[Leg]:
        """Per level, what it holds on the order less what it earns on what stays paid
        (``clawback``), folded over the order's lines grouped by their commission rates:
        for an order of one set of rates, exactly ``clawback(P, refunded, accrued, r)``."""
        legs = []
        for level, distributor in enumerate(self._chain(order), start=1):
            keeps = commission.accrued.get(distributor.distributor_id,
                                           Money.zero(order.currency))
            for rates, (paid, refunded) in commission.groups.items():
                rate = rates[level - 1] if level <= len(rates) else 0
                keeps = clawback(paid, refunded, keeps, rate)
            back = max(keeps, Money.zero(order.currency))  # nothing accrued: nothing back
            memo = f"commission level {level} clawed back"
            legs += [Leg(distributor_payable(distributor.distributor_id), back, memo),
                     Leg(COMMISSION, -back, memo)]
        return legs

    def _chain(self, order: Order) -> list[Distributor]:
        if not order.distributor_id:
            return []
        try:
            return self._distribution.chain(order.distributor_id)
        except NotFound:
            return []  # never registered: no sale of it earned commission

    def _accrued(self, order: Order) -> dict[str, Money]:
        """What each distributor holds on this order now: its commission legs in the
        order's sale and earlier refunds, read from those transactions (never a projection)."""
        causes = [("sale", order.delivering_payment["payment_ref"])]
        causes += [("refund", r["refund_id"]) for r in order.refunds if not r["automatic"]]
        held: dict[str, Money] = {}
        for kind, cause in causes:
            posted: LedgerTransaction | None = self._store.find(transaction_id(kind, cause))
            for leg in posted.legs if posted is not None else []:
                if leg.account.startswith("liabilities:distributors:"):
                    distributor = leg.account.removeprefix("liabilities:distributors:")
                    held[distributor] = held.get(distributor, Money.zero(order.currency)) \
                        - leg.amount
        return held


Groups = dict[tuple[int, ...], tuple[Money, Money]]


@dataclass(frozen=True)
class _Commission:
    """What a refund's clawbacks are computed from."""

    groups: Groups  # (paid, refunded so far, this refund included) per set of rates
    accrued: dict[str, Money]  # what each distributor holds on the order before it


def _rate_groups(order: Order, units: list[Unit], products: dict[str, Product]) -> Groups:
    """The order's paid and refunded amounts (this refund included) per set of
    commission rates of its lines' products."""
    refunded = set(order.refunded_code_ids)
    zero = Money.zero(order.currency)
    lines = order.lines
    groups: Groups = {}
    for unit in units:
        rates = tuple(products[lines[unit.line].sku].commission_rates_bp)
        paid, back = groups.get(rates, (zero, zero))
        gone = refunded.issuperset(unit.code_ids)
        groups[rates] = (paid + unit.price, back + unit.price if gone else back)
    return groups


def _units_named(units: list[Unit], named: list[str]) -> list[Unit]:
    """The units the named codes make up; a bundle unit must be named whole."""
    wanted = set(named)
    chosen = [u for u in units if wanted.intersection(u.code_ids)]
    for unit in chosen:
        missing = [i for i in unit.code_ids if i not in wanted]
        if missing:
            raise ValidationFailed(f"codes {', '.join(unit.code_ids)} deliver one bundle "
                                   "unit: a bundle unit is refunded whole, name them all")
    return chosen


def _refundable(code: Code, order: Order) -> bool:
    try:
        code.check_refundable(str(order.id))
    except QuanyiError:
        return False
    return True


def _paid_back(unit: Unit, provider: str | None) -> list[Leg]:
    code_id = unit.code_ids[0] if len(unit.code_ids) == 1 else None  # a bundle: the unit
    return [Leg(SALES, unit.price, "refund paid back", code_id),
            Leg(clearing(provider), -unit.price, "refund paid back", code_id)]


def _code_id(value: object) -> str:
    try:
        return str(UUID(str(value)))
    except ValueError:
        raise ValidationFailed("code_ids are code ids (UUIDs)") from None


def refund_view(order: Order, refund_id: str) -> dict[str, Any]:
    """One refund of the order as the API answers it."""
    found = next(r for r in order.refunds if r["refund_id"] == refund_id)
    return {"refund_id": refund_id, "order_id": str(order.id), "amount": found["amount"],
            "currency": found["currency"], "code_ids": found["code_ids"],
            "reason": found["reason"], "refunded_at": found["at"]}
