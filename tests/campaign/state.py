"""The invariants of the final state, read through the API and the command line: no code in
two orders, inventory that adds up, a trial balance that balances, no payout beyond what was
owed, `quanyi replay verify` and `quanyi audit verify` passing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from typing import Any

from bench.common import ROOT
from tests.campaign.checks import Violations
from tests.campaign.feed import FeedFacts

STATUSES = ("available", "reserved", "sold", "redeemed", "voided", "expired")


def check_state(get: Any, facts: FeedFacts, imported: dict[str, int],
                found: Violations) -> None:
    """`get(path)` reads as the admin; `imported` is how many codes each SKU received."""
    for problem in facts.double_sales:
        found.add("code_in_two_orders", None, problem)
    for problem in facts.overpaid:
        found.add("payout_beyond_owed", None, problem)
    held = _codes_held(get, facts, found)
    for sku, count in imported.items():
        _check_inventory(sku, count, get(f"/v1/products/{sku}/inventory"), held[sku], found)
    balance = get("/v1/ledger/trial-balance")
    totals = balance and (balance["total_debits"], balance["total_credits"])
    if totals is None or totals[0] != totals[1]:
        found.add("trial_balance", None, f"debits and credits are {totals}")


def _codes_held(get: Any, facts: FeedFacts, found: Violations) -> dict[str, Counter[str]]:
    """Per SKU, how many codes the orders hold in each status; a code held by two orders
    is a violation."""
    owners: dict[str, str] = {}
    held: dict[str, Counter[str]] = {}
    for order_id in facts.placed:
        order = get(f"/v1/orders/{order_id}")
        if order is None:
            found.add("acked_lost", None, f"order {order_id} is in the log but not readable")
            continue
        for code in order["codes"]:
            held.setdefault(code["sku"], Counter())[code["status"]] += 1
            if code["status"] in ("sold", "redeemed"):
                if code["code_id"] in owners:
                    found.add("code_in_two_orders", None, f"code {code['code_id']} is in "
                              f"orders {owners[code['code_id']]} and {order_id}")
                owners[code["code_id"]] = order_id
    return held


def _check_inventory(sku: str, imported: int, stock: dict[str, Any] | None,
                     held: Counter[str] | None, found: Violations) -> None:
    if stock is None:
        found.add("inventory", None, f"no inventory for {sku}")
        return
    held = held or Counter()
    counted = sum(stock[s] for s in STATUSES)
    problems = []
    if stock["total"] != imported or counted != imported:
        problems.append(f"{imported} imported, total {stock['total']}, statuses sum {counted}")
    if stock["reserved"] != held["reserved"]:
        problems.append(f"{stock['reserved']} reserved, orders hold {held['reserved']}")
    for status in ("sold", "redeemed"):
        if stock[status] != held[status]:
            problems.append(f"{stock[status]} {status}, orders hold {held[status]}")
    if problems:
        found.add("inventory", None, f"{sku}: " + "; ".join(problems))


def check_cli(env: dict[str, str], found: Violations) -> None:
    """`quanyi replay verify` and `quanyi audit verify` on the store, servers stopped."""
    for kind, args in (("replay_verify", ("replay", "verify")),
                       ("audit_verify", ("audit", "verify"))):
        done = subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT,
                              capture_output=True, text=True, env={**os.environ, **env},
                              timeout=900)
        if done.returncode != 0:
            found.add(kind, None, f"exit {done.returncode}: "
                      f"{(done.stdout + done.stderr).strip()[-600:]}")
