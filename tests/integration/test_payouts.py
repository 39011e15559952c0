"""Payouts and settlements from two runtimes on one store (two servers), at once: never
beyond what the payee is owed, whatever the interleaving."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.errors import InsufficientBalance
from engine.ledger import distributor_payable, supplier_payable
from engine.money import Money
from runtime import Runtime
from tests.conftest import caught_up
from tests.integration.test_ledger_projection import post_sale

OWED = 1000
ASK = 70  # 14 fit in 1000; 40 are asked for
ATTEMPTS_PER_THREAD = 5


@pytest.fixture
def second(settings):
    """Another runtime on the same store and read side: a second `quanyi serve`."""
    rt = Runtime.open(settings)
    rt.start()
    yield rt
    rt.close()


def pay(rt, kind: str, ref: str) -> bool:
    payouts = rt.engine.payouts
    try:
        if kind == "payout":
            payouts.pay_distributor(distributor_id="d-1", amount=Money(ASK, "CNY"),
                                    payout_ref=ref, actor="t")
        else:
            payouts.settle_supplier(supplier_id="sup-1", amount=Money(ASK, "CNY"),
                                    settlement_ref=ref, actor="t")
    except InsufficientBalance:
        return False
    return True


@pytest.mark.parametrize("kind", ["payout", "settlement"])
def test_concurrent_payments_from_two_servers_never_exceed_what_is_owed(runtime, second,
                                                                        kind):
    post_sale(runtime, commission=OWED, cost=OWED)
    caught_up(runtime)
    start = threading.Barrier(8)

    def fire(rt) -> list[bool]:
        start.wait()
        return [pay(rt, kind, uuid.uuid4().hex) for _ in range(ATTEMPTS_PER_THREAD)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        jobs = [pool.submit(fire, rt) for rt in (runtime, second) * 4]
        outcomes = [ok for job in jobs for ok in job.result()]
    paid = outcomes.count(True) * ASK
    assert paid == (OWED // ASK) * ASK  # every payment that fits, and no more
    caught_up(runtime)
    account = distributor_payable("d-1") if kind == "payout" else supplier_payable("sup-1")
    assert runtime.ledger.balance(account, "CNY") == -(OWED - paid) <= 0
    entries = runtime.ledger.entries(account, 100)
    assert len(entries) == 1 + OWED // ASK  # the sale's accrual, then each payment
    running = 0
    for entry in entries:  # in log order, what is owed never goes below zero
        running += entry["amount"]
        assert running <= 0
