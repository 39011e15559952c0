"""Reconciliation of one order against its ledger legs, and the daily statement.

An order reconciles when its three books agree:

- money: what was captured less what was paid back equals the revenue it kept;
- commission: each level holds floor(net paid × its rate / 10,000), the product's rate;
- codes: codes delivered less codes taken back equals the codes its buyer still holds.

A direct top-up's payment waits in ``liabilities:unearned`` until a supplier answers, so
money agrees when what was paid, less what was paid back, is revenue plus what is still
unearned. A top-up a supplier credited after we had given up on its attempt (its cost is
posted as a write-off) is flagged ``topup_credited_after_giving_up``.

Everything here is computed from legs (projections/ledger_reads.py) and facts the caller
reads from the order and its products; nothing is stored.
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.kernel.money import BASIS_POINTS
from engine.ledger.transactions import COST_OF_SALES, SALES, UNEARNED, WRITE_OFFS
from engine.topups.postings import LATE_MEMO, TOPUP
from projections.ledger_reads import Entry

CLEARING = "assets:clearing"
SUPPLIERS = "liabilities:suppliers"
DISTRIBUTORS = "liabilities:distributors"
LEVEL_IN_MEMO = re.compile(r"level\D{0,3}([1-9])", re.IGNORECASE)


@dataclass(frozen=True)
class OrderFacts:
    """What reconciliation needs of an order: its lines, distributor and product rates."""

    order_id: str
    currency: str
    distributor_id: str | None
    items: Sequence[dict[str, Any]]  # {sku, quantity, unit_price}
    rates_bp: dict[str, Sequence[int]]  # per sku of the order's lines
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)  # code index, by id
    units_kept: int = 0
    components: dict[str, Sequence[dict[str, Any]]] = field(default_factory=dict)  # by bundle sku


def reconcile_order(facts: OrderFacts, entries: Sequence[Entry]) -> dict[str, Any]:
    """The order's money, cost, commission and margin, and whether its books agree."""
    paid = sum(e.amount for e in entries if e.under(CLEARING) and e.amount > 0)
    refunded = -sum(e.amount for e in entries if e.under(CLEARING) and e.amount < 0)
    revenue = -sum(e.amount for e in entries if e.account == SALES)
    unearned = -sum(e.amount for e in entries if e.account == UNEARNED)  # a top-up, waiting
    cost = sum(e.amount for e in entries if e.account in (COST_OF_SALES, WRITE_OFFS))
    commissions = _commissions(entries, facts.distributor_id)
    flags = _commission_flags(facts, commissions, paid - refunded)
    if paid - refunded != revenue + unearned:
        flags.append("revenue_mismatch")
    if any(e.memo == LATE_MEMO for e in entries):
        flags.append("topup_credited_after_giving_up")
    if _units_delivered(entries) - _units_taken_back(entries) != facts.units_kept:
        flags.append("units_mismatch")
    if _price_inverted(facts, entries, commissions):
        flags.append("price_inverted")
    total_commission = sum(c["amount"] for c in commissions)
    return {"order_id": facts.order_id, "currency": facts.currency, "paid": paid,
            "refunded": refunded, "revenue": revenue, "cost": cost,
            "commissions": commissions, "margin": revenue - cost - total_commission,
            "consistent": not set(flags) & INCONSISTENT, "flags": flags}


INCONSISTENT = {"revenue_mismatch", "commission_mismatch", "units_mismatch"}


def _commissions(entries: Sequence[Entry], order_distributor: str | None) -> list[dict[str, Any]]:
    """Per distributor: commission less clawbacks, at its level. The level is the one a
    leg's memo names; else the order's own distributor is level 1 and the others follow in
    the order their legs were posted (the chain's order, nearest first)."""
    net: dict[str, int] = {}
    named: dict[str, int] = {}
    for entry in entries:
        distributor = entry.under(DISTRIBUTORS)
        if distributor is None:
            continue
        net[distributor] = net.get(distributor, 0) - entry.amount
        found = LEVEL_IN_MEMO.search(entry.memo or "")
        if found and distributor not in named:
            named[distributor] = int(found.group(1))
    ordered = sorted(net, key=lambda d: d != order_distributor)  # stable: posting order
    levels = {d: named.get(d, n) for n, d in enumerate(ordered, start=1)}
    return [{"distributor_id": d, "level": levels[d], "amount": net[d]}
            for d in sorted(net, key=lambda d: (levels[d], d))]


def _commission_flags(facts: OrderFacts, commissions: list[dict[str, Any]],
                      net_paid: int) -> list[str]:
    """Each level's commission against the product's rate on the net paid amount. Lines of
    products with different rates cannot be told apart in the legs: flagged, not judged."""
    rates = {tuple(r) for r in facts.rates_bp.values()}
    if len(rates) > 1:
        return ["mixed_commission_rates"]
    rate_list = list(rates.pop()) if rates else []
    if facts.distributor_id is None:
        return ["commission_mismatch"] if any(c["amount"] for c in commissions) else []
    held = {c["level"]: c["amount"] for c in commissions}
    levels = set(held) | {1}
    for level in levels:
        rate = rate_list[level - 1] if level <= len(rate_list) else 0
        if held.get(level, 0) != net_paid * rate // BASIS_POINTS:
            return ["commission_mismatch"]
    return []


def _units_delivered(entries: Sequence[Entry]) -> int:
    return len({e.code_id for e in entries
                if e.account == COST_OF_SALES and e.amount > 0 and e.code_id})


def _units_taken_back(entries: Sequence[Entry]) -> int:
    """Refunded codes: their cost left cost of sales (back on sale, or written off)."""
    return len({e.code_id for e in entries
                if e.account == COST_OF_SALES and e.amount < 0 and e.code_id})


def _price_inverted(facts: OrderFacts, entries: Sequence[Entry],
                    commissions: list[dict[str, Any]]) -> bool:
    """Whether a delivered unit cost more than its line's price net of the commission the
    order's levels earn on it (a sale posted with the ``price_inverted`` link always does).
    A unit is one code of its SKU, or for a bundle one code of each component, its costs
    summed; codes go to units in the order they were costed, as the sale took them."""
    earning = {c["level"] for c in commissions if c["amount"] > 0}
    pools = _costs_by_sku(facts, entries)
    for item in facts.items:
        sku, price = item["sku"], item["unit_price"]
        taken = sum(price * rate // BASIS_POINTS for level, rate
                    in enumerate(facts.rates_bp.get(sku, ()), start=1) if level in earning)
        parts = facts.components.get(sku) or [{"sku": sku, "quantity": 1}]
        for _ in range(item["quantity"]):
            costs = [pools[p["sku"]].popleft() for p in parts for _ in range(p["quantity"])
                     if pools[p["sku"]]]
            if costs and sum(costs) > price - taken:
                return True
    return False


def _costs_by_sku(facts: OrderFacts, entries: Sequence[Entry]) -> dict[str, deque[int]]:
    """Each delivered code's cost, per the SKU of the code, in the order they were costed."""
    pools: dict[str, deque[int]] = defaultdict(deque)
    for entry in entries:
        if entry.account == COST_OF_SALES and entry.amount > 0 and entry.code_id:
            sku = (facts.codes.get(entry.code_id) or {}).get("sku")
            if sku is not None:
                pools[sku].append(entry.amount)
    return pools


# -- the daily statement ------------------------------------------------------------------

SUPPLIER_FIGURES = ("units_delivered", "units_returned", "topups_delivered", "cost_owed",
                    "settled")
DISTRIBUTOR_FIGURES = ("commission", "clawback", "paid_out")
PROVIDER_FIGURES = ("captured", "refunded")


def daily_statement(entries: Iterable[Entry]) -> dict[str, Any]:
    """Per supplier, distributor and payment provider (each per currency) the day's
    figures, and their totals per currency."""
    tables: dict[str, dict[tuple[str, str], dict[str, int]]] = {
        "suppliers": defaultdict(lambda: dict.fromkeys(SUPPLIER_FIGURES, 0)),
        "distributors": defaultdict(lambda: dict.fromkeys(DISTRIBUTOR_FIGURES, 0)),
        "providers": defaultdict(lambda: dict.fromkeys(PROVIDER_FIGURES, 0))}
    for entry in entries:
        _count(tables, entry)
    names = {"suppliers": "supplier_id", "distributors": "distributor_id",
             "providers": "provider"}
    out: dict[str, Any] = {
        section: [{names[section]: party, "currency": currency, **figures}
                  for (party, currency), figures in sorted(rows.items())]
        for section, rows in tables.items()}
    out["totals"] = _totals(out)
    return out


def _count(tables: dict[str, Any], entry: Entry) -> None:
    amount, currency = entry.amount, entry.currency
    if (supplier := entry.under(SUPPLIERS)) is not None:
        row = tables["suppliers"][(supplier, currency)]
        if entry.kind == "settlement":
            row["settled"] += amount
        else:
            row["cost_owed"] -= amount
            if entry.code_id and entry.kind == "sale" and amount < 0:
                row["units_delivered"] += 1
            elif entry.kind == TOPUP and amount < 0:
                row["topups_delivered"] += 1
            elif entry.code_id and entry.kind == "refund" and amount > 0:
                row["units_returned"] += 1
    elif (distributor := entry.under(DISTRIBUTORS)) is not None:
        row = tables["distributors"][(distributor, currency)]
        figure = {"payout": "paid_out", "refund": "clawback"}.get(entry.kind)
        if figure:
            row[figure] += amount
        else:
            row["commission"] -= amount
    elif (provider := entry.under(CLEARING)) is not None:
        row = tables["providers"][(provider, currency)]
        row["captured" if amount > 0 else "refunded"] += abs(amount)


def _totals(sections: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    figures = SUPPLIER_FIGURES + DISTRIBUTOR_FIGURES + PROVIDER_FIGURES
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(figures, 0))
    for rows in sections.values():
        for row in rows:
            for figure in figures:
                totals[row["currency"]][figure] += row.get(figure, 0)
    return [{"currency": currency, **sums} for currency, sums in sorted(totals.items())]
