"""`quanyi audit code`: a code's whole story as a table, found by id or by its string, on
both stores; never the code string or its PIN in what it prints."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.conftest import caught_up
from tests.integration.helpers import codes_for, define_product, import_codes
from tests.integration.test_cli import quanyi


@pytest.fixture
def story(runtime):
    """A code imported, sold, revealed, redeemed, rolled back and refunded (written off):
    its row (code, PIN), id and order."""
    sku = define_product(runtime)
    row = codes_for(1)[0]
    import_codes(runtime, sku, [row], supplier_id="sup-9", unit_cost=1200)
    caught_up(runtime)
    engine = runtime.engine
    order = engine.orders.place(buyer_id="buyer-7", actor="key:app",
                                items=[{"sku": sku, "quantity": 1}])
    engine.orders.pay(order_id=order.id, payment_ref="wx-77", amount=order.amount,
                      currency=order.currency, provider="wechat", actor="key:app")
    engine.orders.reveal(order_id=order.id, actor="key:app", client_address="203.0.113.9")
    _, redemption = engine.redemptions.redeem(code=row.code, merchant_id="m-5",
                                              terminal_id="till-3", location="Suzhou",
                                              actor="key:merchant")
    engine.redemptions.roll_back(redemption_id=redemption.id, reason="wrong till",
                                 actor="key:merchant")
    engine.orders.refund(order_id=order.id, code_ids=None, reason="buyer asked",
                         actor="key:app")
    caught_up(runtime)
    return row, engine.codes.look_up(row.code).id, str(order.id), redemption.id


def rows_of(output: str) -> list[str]:
    """The table's body rows, each folded back onto one line and squeezed: a row starts
    with a timestamp, and a line whose first cell is empty continues the row above."""
    rows: list[list[str]] = []
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) != 4:
            continue
        if re.match(r"^\d{4}-\d\d-\d\dT", cells[0]):
            rows.append(cells)
        elif rows and not cells[0]:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells)]
    return [" ".join(" ".join(row).split()) for row in rows]


def test_audit_code_by_id_prints_the_whole_story(quanyi_env, story):
    row, code_id, order_id, redemption_id = story
    done = quanyi("audit", "code", str(code_id), env=quanyi_env)
    assert done.returncode == 0, done.stderr
    rows = rows_of(done.stdout)
    told = [r.split(" ", 1)[1] for r in rows]
    events = [t for t in told if not t.startswith("posting")]
    assert [e.split(" ")[0] for e in events] == [
        "imported", "reserved", "sold", "revealed", "redeemed", "redemption", "refunded"]
    assert any("batch" in t and "supplier sup-9" in t and "unit cost 1200 CNY" in t
               for t in told)
    assert any(t.startswith("sold") and order_id in t and "buyer buyer-7" in t
               and "wx-77 (wechat)" in t for t in told)
    assert any(t.startswith("revealed key:app") and "client 203.0.113.9" in t for t in told)
    assert any(t.startswith("redeemed key:merchant") and f"redemption {redemption_id}" in t
               and "merchant m-5" in t and "terminal till-3" in t for t in told)
    assert any(t.startswith("redemption rolled back") and "wrong till" in t for t in told)
    assert any(t.startswith("refunded") and "written off" in t for t in told)
    postings = [t for t in told if t.startswith("posting")]
    assert any(t.startswith("posting (sale)") and "expenses:cost_of_sales +1200 CNY" in t
               and f"order {order_id}" in t for t in postings)
    assert any(t.startswith("posting (refund)") and "expenses:write_offs +1200 CNY" in t
               for t in postings)
    assert f"code {code_id}" in done.stdout and "voided now" in done.stdout
    assert row.code not in done.stdout + done.stderr
    assert row.pin not in done.stdout + done.stderr


def test_audit_code_by_string_prints_the_same_story_and_never_the_string(quanyi_env, story):
    row, code_id, _, _ = story
    by_id = quanyi("audit", "code", str(code_id), env=quanyi_env)
    by_string = quanyi("audit", "code", "--code", row.code, env=quanyi_env)
    assert by_string.returncode == 0, by_string.stderr
    assert rows_of(by_string.stdout) == rows_of(by_id.stdout) and rows_of(by_id.stdout)
    assert str(code_id) in by_string.stdout
    everything = by_string.stdout + by_string.stderr
    assert row.code not in everything and row.pin not in everything
    assert row.code.lower() not in everything.lower()


def test_an_unknown_code_string_is_one_line_without_the_string(quanyi_env, story):
    done = quanyi("audit", "code", "--code", "NOPE-SECRET-123", env=quanyi_env)
    assert done.returncode == 2
    assert "no such code" in done.stderr
    assert "NOPE-SECRET-123" not in done.stdout + done.stderr


@pytest.mark.parametrize("args", [[], ["not-a-uuid"], [str(uuid.uuid4()), "--code", "X-1"]])
def test_a_missing_or_malformed_id_is_refused(quanyi_env, story, args):
    done = quanyi("audit", "code", *args, env=quanyi_env)
    assert done.returncode == 2, done.stdout
    assert "X-1" not in done.stdout + done.stderr


def test_an_unknown_code_id_is_not_found(quanyi_env, story):
    done = quanyi("audit", "code", str(uuid.uuid4()), env=quanyi_env)
    assert done.returncode == 2 and "no code" in done.stderr
