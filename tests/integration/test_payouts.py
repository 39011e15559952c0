"""Payouts and settlements from two runtimes on one store (two servers), at once: never
beyond what the payee is owed, whatever the interleaving."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.kernel.errors import InsufficientBalance
from engine.kernel.money import Money
from engine.ledger.transactions import distributor_payable, supplier_payable
from runtime import Runtime
from tests.conftest import caught_up
from tests.integration.test_ledger_projection import post_sale
from tests.integration.test_refunds import chain, refund, sold, stocked

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
                                    payout_ref=ref, actor="t", tenant=None)
        else:
            payouts.settle_supplier(supplier_id="sup-1", amount=Money(ASK, "CNY"),
                                    settlement_ref=ref, actor="t", tenant=None)
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


class RefundWhileDeciding:
    """The ledger read model, through which a payout reads the payee's balance; on the first
    read a refund, in another thread, clawing the commission back is saved before the payout
    is (the interleaving of two servers, made certain)."""

    def __init__(self, balances, refund) -> None:
        self._balances, self._refund, self.refunds = balances, refund, []

    def posted_balance(self, account: str, currency: str, book: str | None) -> int:
        balance = self._balances.posted_balance(account, currency, book)
        if not self.refunds:
            worker = threading.Thread(target=lambda: self.refunds.append(self._refund()))
            worker.start()
            worker.join(30)
        return balance

    def wait_for(self, position: int, timeout: float) -> bool:
        return self._balances.wait_for(position, timeout)


def test_a_refund_clawing_back_while_a_payout_decides_is_counted_before_it_pays(runtime):
    sku = stocked(runtime, 1, price=10_000, commission_rates_bp=[1000])
    order = sold(runtime, sku, distributor_id=chain(runtime, "c"))
    caught_up(runtime)
    payouts = runtime.engine.payouts
    deciding = RefundWhileDeciding(payouts._balances, lambda: refund(runtime, order))
    payouts._balances = deciding
    with pytest.raises(InsufficientBalance):
        payouts.pay_distributor(distributor_id="c3", amount=Money(1000, "CNY"),
                                payout_ref="p-1", actor="t", tenant=None)
    assert len(deciding.refunds) == 1  # the refund was saved, the payout was not
    caught_up(runtime)
    assert runtime.ledger.balance(distributor_payable("c3"), "CNY") == 0
