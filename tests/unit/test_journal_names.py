"""Beancount spellings of ledger accounts and amounts (projections/journal.py)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from engine.ledger.transactions import PART, distributor_payable, supplier_payable
from projections.journal import beancount_account, decimal

COMPONENT = re.compile(r"^[A-Z0-9][A-Za-z0-9-]*$")
parts = st.from_regex(PART, fullmatch=True)


def test_chart_accounts_read_as_beancount_names():
    assert beancount_account("liabilities:suppliers:sup-1") == "Liabilities:Suppliers:Sup-1"
    assert beancount_account("expenses:cost_of_sales") == "Expenses:CostOfSales"
    assert beancount_account("expenses:write_offs") == "Expenses:WriteOffs"
    assert beancount_account("assets:clearing:wechat") == "Assets:Clearing:Wechat"


def test_a_part_changed_by_more_than_its_capital_gets_a_digest():
    names = {beancount_account(supplier_payable(part))
             for part in ("sup-1", "Sup-1", "sup.1", "sup_1", "sup--1")}
    assert len(names) == 5
    assert beancount_account(supplier_payable("Sup-1")).startswith(
        "Liabilities:Suppliers:Sup-1--")


@given(parts, parts)
def test_distinct_accounts_get_distinct_valid_names(a, b):
    name_a, name_b = beancount_account(distributor_payable(a)), beancount_account(
        distributor_payable(b))
    assert all(COMPONENT.match(c) for c in name_a.split(":")), name_a
    assert (name_a == name_b) == (a == b)


def test_amounts_use_the_currencys_minor_unit_exponent():
    assert decimal(1990, "CNY") == "19.90"
    assert decimal(-5, "USD") == "-0.05"
    assert decimal(0, "CNY") == "0.00"
    assert decimal(1990, "JPY") == "1990"
    assert decimal(-1, "KWD") == "-0.001"


def test_an_account_opens_on_the_earliest_day_it_is_used_whatever_the_posting_order():
    from projections.journal import beancount
    from projections.ledger_reads import Entry

    def leg(txn: str, n: int, account: str, amount: int, at: str) -> Entry:
        return Entry(txn, n, 1, "payout", account, amount, "CNY", None, None, None, None,
                     None, None, None, None, at)

    text = beancount([leg("t2", 0, "assets:bank", -1, "2026-11-24T00:00:00.000001Z"),
                      leg("t2", 1, "expenses:commission", 1, "2026-11-24T00:00:00.000001Z"),
                      leg("t1", 0, "assets:bank", -1, "2026-11-23T23:59:59.999999Z"),
                      leg("t1", 1, "expenses:commission", 1, "2026-11-23T23:59:59.999999Z")])
    assert text.startswith("2026-11-23 open Assets:Bank\n2026-11-23 open Expenses:Commission\n")
