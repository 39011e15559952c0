"""What a sale posts to the ledger, and whether it may be made at all (docs/ledger.md).

A payment that delivers codes posts one ``sale`` transaction, saved with the order, the
payment and the sold codes: the capture, the revenue, the cost of each code (its batch's
unit cost, owed to the batch's supplier) and each distributor level's commission on the
amount paid. A late payment that no stock (or no price above cost) can honour posts the
capture and the refund paid back, in one transaction: the money came and went.

Price inversion (价格倒挂): a unit whose codes cost more than the price charged for it (the
channel price included; for a bundle, the bundle's price against its component codes' costs
summed) is refused with ``PriceBelowCost`` unless the product allows selling below cost; an
allowed one still posts, and its transaction's links say ``price_inverted``.

A batch never changes its cost or supplier, so both are read once per process and kept:
the hot path reads nothing more per code than the code itself.
"""

from __future__ import annotations

import functools
import threading
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from engine.catalog.products import Catalog, Product
from engine.codes.codes import Batch, Code
from engine.kernel.errors import NotFound, PriceBelowCost
from engine.kernel.money import Money
from engine.ledger.distribution import MAX_CACHED, Distribution, commission_legs
from engine.ledger.transactions import (
    COMMISSION,
    COST_OF_SALES,
    SALES,
    UNEARNED,
    LedgerTransaction,
    Leg,
    clearing,
    distributor_payable,
    supplier_payable,
)
from engine.sales.orders import Order

SALE = "sale"
REFUND_PAID_BACK = "refund paid back"


def sale_cause(payment_ref: str) -> str:
    """The natural key of the sale a payment posts (``transaction_id(SALE, cause)``)."""
    return payment_ref


@dataclass(frozen=True, slots=True)
class UnitCost:
    """What one code of a batch cost and to whom it is owed (a generated batch: no one),
    with the credit and account its cost legs post to, worked out once per batch."""

    supplier_id: str | None
    cost: Money
    credit: Money
    payable: str | None

    @classmethod
    def of(cls, batch: Batch) -> "UnitCost":
        cost = Money(batch.unit_cost, batch.currency)
        owed = batch.supplier_id is not None and cost.amount != 0
        return cls(batch.supplier_id, cost, -cost,
                   supplier_payable(batch.supplier_id) if owed and batch.supplier_id else None)


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit of an order line: the price charged for it and the codes it delivers."""

    sku: str
    price: Money
    codes: tuple[Code, ...]


class BatchCosts:
    """Batches' unit costs and suppliers, read once per process: a batch never changes
    them."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._known: dict[str, UnitCost] = {}
        self._lock = threading.Lock()

    def of(self, code: Code) -> UnitCost:
        known = self._known.get(code.batch_id)
        if known is None:
            batch: Batch = self._store.get(UUID(code.batch_id), f"batch {code.batch_id}")
            known = UnitCost.of(batch)
            with self._lock:
                self._known[code.batch_id] = known
        return known


class Sales:
    """Prices against costs, and the ledger transaction of each payment."""

    def __init__(self, store: Any, catalog: Catalog, distribution: Distribution) -> None:
        self._catalog = catalog
        self._distribution = distribution
        self.costs = BatchCosts(store)
        # a distributor's chain never changes: its accounts are worked out once (bounded)
        self._known_payables = functools.lru_cache(maxsize=MAX_CACHED)(self._read_payables)

    # -- price inversion ------------------------------------------------------------------

    def check_price(self, order: Order, codes: Sequence[Code],
                    products: dict[str, Product] | None = None) -> None:
        """Refuse (PriceBelowCost) codes that cost more than their unit's price, unless the
        unit's product allows selling below cost."""
        products = products or self._products(order)
        for unit in self.inverted(order, codes, products):
            if not products[unit.sku].allow_below_cost:
                raise PriceBelowCost(
                    f"a unit of {unit.sku} costs {self._cost(unit.codes).amount}, more than "
                    f"its price {unit.price.amount}, and the product does not allow selling "
                    "below cost")

    def inverted(self, order: Order, codes: Sequence[Code],
                 products: dict[str, Product]) -> list[Unit]:
        """The units whose codes cost more than the price charged for them."""
        return [u for u in units(order, codes, products)
                if self._cost(u.codes).amount > u.price.amount]

    def _cost(self, codes: Iterable[Code]) -> Money:
        costs = [self.costs.of(c).cost for c in codes]
        return Money(sum(c.amount for c in costs), costs[0].currency if costs else "CNY")

    def _products(self, order: Order) -> dict[str, Product]:
        return {item["sku"]: self._catalog.get_recent(item["sku"]) for item in order.items}

    # -- postings -------------------------------------------------------------------------

    def sale(self, order: Order, codes: Sequence[Code], paid: dict[str, Any]) -> \
            LedgerTransaction | None:
        """The transaction of a payment that delivers ``codes``: capture, revenue, cost per
        code, commission per distributor level (None when every leg is zero)."""
        products = self._products(order)
        amount = Money(paid["amount"], paid["currency"])
        legs = [Leg(clearing(paid["provider"]), amount, "capture"), Leg(SALES, -amount, "revenue"),
                *(leg for code in codes for leg in self._cost_legs(code)),
                *self._commission(order, products)]
        links = _links(order, paid)
        # only a product that allows it can have been placed below cost (check_price)
        if any(p.allow_below_cost for p in products.values()) \
                and self.inverted(order, codes, products):
            links["price_inverted"] = "true"
        return _post(paid["payment_ref"], legs, links, paid["actor"], order.tenant)

    @staticmethod
    def refunded_on_arrival(order: Order, paid: dict[str, Any]) -> LedgerTransaction | None:
        """The transaction of a late payment kept and paid back at once: capture and
        refund in one."""
        amount = Money(paid["amount"], paid["currency"])
        account = clearing(paid["provider"])
        legs = [Leg(account, amount, "capture"), Leg(UNEARNED, -amount, "capture"),
                Leg(UNEARNED, amount, REFUND_PAID_BACK), Leg(account, -amount, REFUND_PAID_BACK)]
        return _post(paid["payment_ref"], legs, _links(order, paid), paid["actor"],
                     order.tenant)

    def _cost_legs(self, code: Code) -> list[Leg]:
        unit = self.costs.of(code)
        if unit.payable is None:
            return []  # a generated code costs nothing and is owed to no one
        code_id = str(code.id)
        return [Leg(COST_OF_SALES, unit.cost, "cost", code_id),
                Leg(unit.payable, unit.credit, "cost", code_id)]

    def commission(self, order: Order) -> list[Leg]:
        """The commission legs of the order's sale (a top-up's, posted on delivery)."""
        return self._commission(order, self._products(order))

    def _commission(self, order: Order, products: dict[str, Product]) -> list[Leg]:
        """Each level's commission on what was paid, one leg pair per level and per set of
        rates (an order's lines of one product, or of products with the same rates, share
        a leg: floored once on their sum)."""
        payables = self._payables(order.distributor_id)
        if not payables:
            return []
        paid_at: dict[tuple[int, ...], int] = defaultdict(int)
        for line in order.lines:
            paid_at[tuple(products[line.sku].commission_rates_bp)] += line.total.amount
        legs, expense = [], Money(0, order.currency)
        for rates, amount in paid_at.items():
            for _, level, earned in commission_legs(
                    Money(amount, order.currency), rates, [d for d, _ in payables]):
                legs.append(Leg(payables[level - 1][1], -earned, f"commission level {level}"))
                expense += earned
        return [Leg(COMMISSION, expense, "commission"), *legs] if legs else []

    def _payables(self, distributor_id: str | None) -> tuple[tuple[str, str], ...]:
        """(distributor, its commission account) per level of the order's distributor."""
        if distributor_id is None:
            return ()
        try:
            return self._known_payables(distributor_id)
        except NotFound:
            return ()  # an order placed before distributors had to be registered

    def _read_payables(self, distributor_id: str) -> tuple[tuple[str, str], ...]:
        return tuple((d.distributor_id, distributor_payable(d.distributor_id))
                     for d in self._distribution.chain(distributor_id))


def units(order: Order, codes: Sequence[Code], products: dict[str, Product]) -> list[Unit]:
    """The order's units, each with the codes it delivers: a plain unit one code of its
    SKU, a bundle unit its components' codes. Codes of a SKU go to units in order."""
    pools: dict[str, deque[Code]] = defaultdict(deque)
    for code in codes:
        pools[code.sku].append(code)
    found = []
    for line in order.lines:
        product = products[line.sku]
        parts = product.components or [{"sku": product.sku, "quantity": 1}]
        for _ in range(line.quantity):
            taken = tuple(pools[p["sku"]].popleft() for p in parts for _ in range(p["quantity"])
                          if pools[p["sku"]])
            found.append(Unit(line.sku, line.unit_price, taken))
    return found


def _links(order: Order, paid: dict[str, Any]) -> dict[str, str]:
    links = {"order_id": str(order.id), "payment_ref": paid["payment_ref"],
             "provider": clearing(paid["provider"]).rsplit(":", 1)[1]}
    if order.distributor_id:
        links["distributor_id"] = order.distributor_id
    return links


def _post(payment_ref: str, legs: list[Leg], links: dict[str, str], actor: str,
          tenant: str | None) -> LedgerTransaction | None:
    if not any(leg.amount.amount for leg in legs):
        return None  # a free order moves no money and costs nothing: nothing to post
    return LedgerTransaction.post(kind=SALE, cause=sale_cause(payment_ref), legs=legs,
                                  links=links, actor=actor, tenant=tenant)
