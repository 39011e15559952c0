"""The code read models: exactly-once application, and invariants under random operations."""

import contextlib
from collections import Counter

from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine.kernel.errors import QuanyiError
from projections.live import all_projections
from projections.projection import Projection
from projections.runner import ProjectionRunner
from runtime import Runtime
from tests.conftest import caught_up
from tests.integration.helpers import (
    codes_for,
    define_product,
    import_codes,
    set_up_beside_a_writer,
)


def test_two_runners_on_one_read_model_apply_each_event_once(runtime, settings):
    sku = define_product(runtime)
    runtime.runner.stop()  # let both runners race over the same backlog
    for _ in range(3):
        import_codes(runtime, sku, codes_for(400))
    other = Runtime.open(settings)
    try:
        other.runner.start()
        runtime.runner.start()
        caught_up(runtime)
        caught_up(other)
    finally:
        other.close()
    stock = runtime.codes.inventory(sku)
    assert stock["total"] == stock["available"] == 1200


def index_counts(rt: Runtime, sku: str) -> Counter:
    with rt.read_db.transaction(write=False) as cursor:
        cursor.execute("SELECT status, COUNT(*) FROM code_index WHERE sku = %s GROUP BY status",
                       (sku,))
        return Counter({status: int(n) for status, n in cursor.fetchall()})


class CodeLifecycle(RuleBasedStateMachine):
    """Random reserve / release / sell / redeem / roll back / void against the real store."""

    rt: Runtime
    steps = 0

    @initialize()
    def stock(self):
        self.sku = define_product(self.rt)
        self.rows = codes_for(12)
        import_codes(self.rt, self.sku, self.rows)
        caught_up(self.rt)
        self.orders: dict[str, list] = {}
        self.redemptions: list = []
        self.serial = 0

    @rule(quantity=st.integers(1, 4))
    def reserve(self, quantity):
        self.serial += 1
        order = f"o{self.serial}"
        try:
            codes = self.rt.engine.reservations.reserve(sku=self.sku, quantity=quantity,
                                                        order_id=order, holder="h",
                                                        actor="t")
        except QuanyiError:
            return
        self.orders[order] = [c.id for c in codes]

    @rule(data=st.data(), sell=st.booleans())
    def settle(self, data, sell):
        if not self.orders:
            return
        order = data.draw(st.sampled_from(sorted(self.orders)))
        ids = self.orders.pop(order)
        try:
            if sell:
                self.rt.engine.reservations.sell(code_ids=ids, order_id=order, actor="t")
            else:
                self.rt.engine.reservations.release(code_ids=ids, order_id=order,
                                                    reason="cancel", actor="t")
        except QuanyiError:
            pass  # a code of the order was voided meanwhile: the rest stays as it was

    @rule(index=st.integers(0, 11))
    def redeem(self, index):
        try:
            _, redemption = self.rt.engine.redemptions.redeem(
                code=self.rows[index].code, merchant_id="m", terminal_id=None, location=None,
                actor="t")
            self.redemptions.append(redemption.id)
        except QuanyiError:
            pass

    @rule()
    def roll_back(self):
        if self.redemptions:
            try:
                self.rt.engine.redemptions.roll_back(redemption_id=self.redemptions.pop(),
                                                     reason="r", actor="t")
            except QuanyiError:
                pass

    @rule(index=st.integers(0, 11))
    def void(self, index):
        try:
            code = self.rt.engine.codes.look_up(self.rows[index].code)
            self.rt.engine.codes.void(code_id=code.id, reason="v", actor="t")
        except QuanyiError:
            pass

    @invariant()
    def read_models_agree_with_the_codes(self):
        CodeLifecycle.steps += 1
        caught_up(self.rt)
        stock = self.rt.codes.inventory(self.sku)
        parts = sum(stock[s] for s in ("available", "reserved", "sold", "redeemed",
                                       "voided", "expired"))
        assert parts == stock["total"] == 12
        counts = index_counts(self.rt, self.sku)
        for status, n in counts.items():
            assert stock[status] == n
        holders = Counter()
        for order, ids in self.orders.items():
            for code_id in ids:
                code = self.rt.engine.codes.get(code_id)
                if code.status == "reserved":
                    assert code.order_id == order
                    holders[code_id] += 1
        assert all(n == 1 for n in holders.values())


def test_inventory_always_sums_to_total_and_matches_the_index(runtime):
    CodeLifecycle.rt = runtime
    machine = CodeLifecycle.TestCase
    machine.settings = hsettings(max_examples=8, stateful_step_count=12, deadline=None,
                                 suppress_health_check=list(HealthCheck))
    CodeLifecycle.steps = 0
    machine().runTest()
    assert CodeLifecycle.steps >= 40  # the machine really ran its random programs


class FailsAt(Projection):
    """A projection with a bug that one event sets off."""

    name = "fails_at"
    tables = ()

    def __init__(self, position: int) -> None:
        self.position = position

    def apply(self, cursor, events) -> None:
        if any(position == self.position for position, _ in events):
            raise RuntimeError("cannot apply this one")


def test_a_failing_runner_comes_to_rest_on_the_first_event_it_cannot_apply(runtime):
    runtime.runner.stop()
    import_codes(runtime, define_product(runtime), codes_for(300))
    following = runtime.store.notifications(runtime.runner.position(), 500)
    bad = following[123].id
    runner = ProjectionRunner(runtime.store, runtime.read_db, [*all_projections(), FailsAt(bad)])
    for _ in range(60):
        with contextlib.suppress(RuntimeError):
            runner.run_until()
    health = runner.health
    assert health.failing and health.failing_position == bad
    assert health.error == "RuntimeError" and health.message == "cannot apply this one"
    assert runner.position() == following[122].id  # everything before it is applied
    assert health.consecutive_failures >= 1 and health.errors >= health.consecutive_failures


def test_a_runner_takes_a_tracked_position_lowered_under_it(runtime):
    """What a rebuild's swap does to a running server: the runner follows it down."""
    import_codes(runtime, define_product(runtime), codes_for(10))
    caught_up(runtime)
    top = runtime.runner.position()
    with runtime.read_db.transaction() as cursor:
        cursor.execute("UPDATE projection_tracking SET position = %s WHERE name = 'main'",
                       (top - 5,))
    runtime.runner.refresh()
    assert runtime.runner.position() == top - 5


def test_a_runner_starting_beside_one_applying_a_chunk_does_not_deadlock(runtime):
    """A server restarted beside a running one sets up its tables while the other applies a
    chunk: the tracking row is taken before any table, by both, so neither waits on the
    other in a circle (PostgreSQL's CREATE INDEX IF NOT EXISTS locks an existing table)."""
    import_codes(runtime, define_product(runtime), codes_for(5))
    caught_up(runtime)
    runtime.runner.stop()
    failures = set_up_beside_a_writer(
        runtime.read_db, "UPDATE projection_tracking SET position = position WHERE name = 'main'",
        "UPDATE code_index SET status = status WHERE sku = 'none'",
        lambda: ProjectionRunner(runtime.store, runtime.read_db, all_projections()))
    assert failures == []
