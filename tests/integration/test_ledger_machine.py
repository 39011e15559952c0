"""A Hypothesis state machine over sales, refunds, payouts and settlements on the real store,
checked against a model computed independently of the ledger after every step:

- the trial balance totals zero;
- a distributor's balance is what it accrued, less clawbacks, less payouts, where what it
  keeps on an order is floor(net paid × rate) (the model never reads a commission leg);
- a supplier is owed the cost of every code delivered and not taken back into stock, less
  settlements;
- a payout or settlement succeeds exactly when the model says the balance covers it;
- a refused operation appends nothing to the log;
- at the end, a ledger rebuilt aside equals the live one.
"""

import uuid
from collections import defaultdict
from uuid import UUID

from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine.codes.imports import CodeRow
from engine.kernel.errors import QuanyiError
from engine.kernel.money import Money
from engine.ledger.transactions import distributor_payable, supplier_payable
from replay.verify import Outcome, verify
from runtime import Runtime
from tests.conftest import caught_up

PRICE = 1999
RATES = [1000, 500, 250]
COSTS = {"a": 700, "b": 800}  # per supplier (named afresh for every example)
STOCK = 6  # codes per supplier


class LedgerMachine(RuleBasedStateMachine):
    rt: Runtime
    checks = 0

    @initialize()
    def open_shop(self):
        tag = uuid.uuid4().hex[:8]
        self.sku = f"LEDGER-{tag}"
        self.rt.engine.catalog.define_product(sku=self.sku, name="Ledger", delivery="card",
                                              price=PRICE, commission_rates_bp=RATES,
                                              actor="t")
        self.cost_of_batch: dict[str, tuple[str, int]] = {}
        self.suppliers = {name: f"sup-{name}-{tag}" for name in COSTS}
        for name, cost in COSTS.items():
            supplier = self.suppliers[name]
            rows = [CodeRow(f"{tag}-{supplier}-{n}", "0000") for n in range(STOCK)]
            result = self.rt.engine.imports.import_batch(
                sku=self.sku, rows=rows, supplier_id=supplier, unit_cost=cost,
                expires_at=None, actor="t")
            self.cost_of_batch[str(result.batch_id)] = (supplier, cost)
        self.chain = [f"d3-{tag}", f"d2-{tag}", f"d1-{tag}"]  # leaf first: levels 1, 2, 3
        parent = None
        for distributor in reversed(self.chain):
            self.rt.engine.distribution.register(distributor_id=distributor, name=distributor,
                                                 parent_id=parent, actor="t")
            parent = distributor
        caught_up(self.rt)
        self.orders: list[UUID] = []
        self.net: dict[UUID, int] = {}  # paid − refunded, per order with a distributor
        self.paid_out: dict[str, int] = defaultdict(int)
        self.owed_cost: dict[str, int] = defaultdict(int)
        self.settled: dict[str, int] = defaultdict(int)
        self.serial = 0

    def _next(self, what: str) -> str:
        self.serial += 1
        return f"{what}-{uuid.uuid4().hex[:6]}-{self.serial}"

    def _refused(self, operation) -> bool:
        """Run it; a refusal must append nothing to the log."""
        before = self.rt.store.last_position()
        try:
            operation()
        except QuanyiError:
            assert self.rt.store.last_position() == before
            return True
        return False

    # -- rules ------------------------------------------------------------------------------

    @rule(quantity=st.integers(1, 2), distributed=st.booleans(), reveal=st.booleans())
    def sell(self, quantity, distributed, reveal):
        try:
            order = self.rt.engine.orders.place(
                buyer_id=self._next("b"), items=[{"sku": self.sku, "quantity": quantity}],
                distributor_id=self.chain[0] if distributed else None, actor="key:app")
        except QuanyiError:
            return  # sold out
        self.rt.engine.orders.pay(order_id=order.id, payment_ref=self._next("pay"),
                                  amount=order.amount, currency="CNY", provider="wechat",
                                  actor="key:app")
        self.orders.append(order.id)
        if distributed:
            self.net[order.id] = order.amount
        for code in self.rt.engine.orders.get(order.id).codes:
            supplier, cost = self._cost(code["code_id"])
            self.owed_cost[supplier] += cost
        if reveal:
            self.rt.engine.orders.reveal(order_id=order.id, actor="key:app",
                                         client_address="127.0.0.1")

    @rule(data=st.data(), everything=st.booleans())
    def refund(self, data, everything):
        if not self.orders:
            return
        order = self.rt.engine.orders.get(data.draw(st.sampled_from(self.orders)))
        held = [c["code_id"] for c in order.codes]
        chosen = None if everything or not held else [data.draw(st.sampled_from(held))]
        codes = {c: self.rt.engine.codes.get(UUID(c)) for c in (chosen or held)}
        answer: dict = {}

        def run():
            answer.update(self.rt.engine.orders.refund(order_id=order.id, code_ids=chosen,
                                                       reason="buyer", actor="key:app"))
        if self._refused(run):
            return
        refunded = [str(c) for c in answer["code_ids"]]
        if order.id in self.net:
            self.net[order.id] -= PRICE * len(refunded)
        for code_id in refunded:
            if codes[code_id].reveals == 0:  # back on sale: the supplier is owed no more
                supplier, cost = self._cost(code_id)
                self.owed_cost[supplier] -= cost

    @rule(level=st.integers(0, 2), amount=st.integers(1, 250))
    def pay_out(self, level, amount):
        distributor = self.chain[level]
        available = self._distributor_balance(distributor)
        refused = self._refused(lambda: self.rt.engine.payouts.pay_distributor(
            distributor_id=distributor, amount=Money(amount, "CNY"),
            payout_ref=self._next("po"), actor="key:finance", tenant=None))
        assert refused == (amount > available)
        if not refused:
            self.paid_out[distributor] += amount

    @rule(name=st.sampled_from(sorted(COSTS)), amount=st.integers(1, 2000))
    def settle(self, name, amount):
        supplier = self.suppliers[name]
        owed = self.owed_cost[supplier] - self.settled[supplier]
        refused = self._refused(lambda: self.rt.engine.payouts.settle_supplier(
            supplier_id=supplier, amount=Money(amount, "CNY"),
            settlement_ref=self._next("st"), actor="key:finance", tenant=None))
        assert refused == (amount > owed)
        if not refused:
            self.settled[supplier] += amount

    # -- the model ----------------------------------------------------------------------------

    def _cost(self, code_id: str) -> tuple[str, int]:
        return self.cost_of_batch[self.rt.engine.codes.get(UUID(code_id)).batch_id]

    def _distributor_balance(self, distributor: str) -> int:
        rate = RATES[self.chain.index(distributor)]
        kept = sum(net * rate // 10_000 for net in self.net.values())
        return kept - self.paid_out[distributor]

    @invariant()
    def books_agree_with_the_model(self):
        LedgerMachine.checks += 1
        caught_up(self.rt)
        trial = self.rt.ledger.trial_balance()
        assert trial["total_debits"] == trial["total_credits"]
        for distributor in self.chain:
            owed = -self.rt.ledger.balance(distributor_payable(distributor), "CNY")
            assert owed == self._distributor_balance(distributor), distributor
        for supplier in self.suppliers.values():
            owed = -self.rt.ledger.balance(supplier_payable(supplier), "CNY")
            assert owed == self.owed_cost[supplier] - self.settled[supplier], supplier


def test_the_books_hold_under_random_sales_refunds_payouts_and_settlements(settings):
    rt = Runtime.open(settings)
    rt.start()
    try:
        LedgerMachine.rt = rt
        LedgerMachine.checks = 0
        case = LedgerMachine.TestCase
        case.settings = hsettings(max_examples=10, stateful_step_count=20, deadline=None,
                                  suppress_health_check=list(HealthCheck))
        case().runTest()
        assert LedgerMachine.checks >= 100
        caught_up(rt)
        assert verify(settings).outcome is Outcome.AGREE  # a rebuilt ledger equals the live one
    finally:
        rt.close()
