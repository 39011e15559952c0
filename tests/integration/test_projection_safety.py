"""Whatever the store accepted, the projections apply: extreme instants, NUL and control
characters, very long text, the largest integers, None where optional. Events are written
straight through the event store (no API, no validation in the way)."""

import dataclasses
import itertools
import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.catalog.products import Product
from engine.codes.codes import Batch, Code
from engine.kernel.money import MAX_MINOR, Money
from engine.ledger.transactions import LedgerTransaction, Leg
from engine.sales.orders import Order
from engine.topups.fulfilment import Fulfilment
from engine.webhooks.endpoints import WebhookEndpoint
from projections.live import all_projections
from projections.projection import iso
from replay.rebuild import rebuild
from replay.verify import Outcome, verify
from tests.conftest import caught_up
from tests.integration.helpers import define_product

LAST_INSTANT = datetime.fromisoformat("9999-12-31T23:59:59-01:00")  # UTC: year 10000
FIRST_INSTANT = datetime.fromisoformat("0001-01-01T00:00:00+05:00")  # UTC: year 0
HOSTILE = "a\x00b\x01\x1f\x7f\u200b\ufeff\n\t"
LONG = "長" * 5000 + "\x00"  # ~15 kB of UTF-8: more than any PostgreSQL index entry holds


def save(rt, *aggregates) -> None:
    rt.store.save(*aggregates)


def hostile_code_story(rt) -> tuple[Batch, Code, Order]:
    """A batch, a code taken through reserve, sell, redeem, roll back and void, and an
    order paid, all carrying values no validation would let through."""
    batch = Batch(id=uuid.uuid4(), sku=HOSTILE, origin="import\x00", supplier_id=LONG,
                  unit_cost=2 ** 64 - 1, currency="\x00", expires_at=LAST_INSTANT, actor="")
    code = Code(id=uuid.uuid4(), sku=HOSTILE, batch_id=str(batch.id), sealed="sealed",
                origin="import", expires_at=LAST_INSTANT, actor=HOSTILE)
    order = Order(id=uuid.uuid4(), buyer_id=LONG, items=[{"sku": HOSTILE, "quantity": 2 ** 64 - 1},
                                                           {"sku": "x", "quantity": 2 ** 63}],
                  needs=[], amount=2 ** 64 - 1, currency="C\x00", channel="\x00",
                  distributor_id=None, external_ref=LONG, expires_at=FIRST_INSTANT, codes=[],
                  actor=HOSTILE, owner=HOSTILE)
    code.reserve(order_id=LONG, holder=HOSTILE, now=datetime.now(timezone.utc), actor="\x00")
    code.sell(order_id=LONG, actor="\x00")
    code.redeem(redemption_id=LONG, merchant_id=HOSTILE, terminal_id=None, location=LONG,
                now=datetime.now(timezone.utc), actor="")
    code.roll_back(redemption_id=LONG, reason=HOSTILE, actor="")
    # Past the code's and the order's own guards (a sold code is voided only by a refund),
    # as a hostile writer would store them.
    code._voided(reason=LONG, actor=HOSTILE)
    order.trigger_event(Order.Paid, payment_ref=HOSTILE, amount=-(2 ** 63), currency="",
                        provider=LONG, codes=[], late=True, actor="")
    batch.complete(1, [{"code": HOSTILE}])
    save(rt, batch, code, order)
    return batch, code, order


def test_hostile_values_leave_the_runner_caught_up_without_error(runtime, settings):
    batch, code, order = hostile_code_story(runtime)
    caught_up(runtime)
    assert runtime.runner.lag() == 0
    assert not runtime.runner.health.failing and runtime.runner.health.errors == 0
    assert runtime.codes.code(code.id)["expires_at"] == "9999-12-31T23:59:59.999999Z"
    assert runtime.codes.inventory(HOSTILE)["voided"] == 1
    assert [c["code_id"] for c in runtime.codes.codes_of_order(LONG)] == [str(code.id)]
    assert rebuild(settings) == runtime.store.last_position()
    assert verify(settings).outcome is Outcome.AGREE
    caught_up(runtime)
    assert runtime.runner.health.errors == 0


def test_the_history_of_a_hostile_code_reads_back(runtime):
    _, code, _ = hostile_code_story(runtime)
    caught_up(runtime)
    history = runtime.codes.history(code.id)
    assert [h["type"] for h in history] == [
        "code.imported", "code.reserved", "code.sold", "code.redeemed",
        "code.redemption_rolled_back", "code.voided"]
    assert history[0]["sku"].startswith("a") and history[0]["sku"].endswith("\n\t")


def test_instants_keep_their_order_as_text_across_the_whole_range():
    moments = [FIRST_INSTANT, datetime(1, 1, 1, tzinfo=timezone.utc),
               datetime(999, 5, 1, tzinfo=timezone(timedelta(hours=-3))),
               datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=8))),
               datetime(2026, 1, 1, 12, tzinfo=timezone.utc),
               datetime.max.replace(tzinfo=timezone.utc), LAST_INSTANT]
    texts = [iso(m) for m in moments]
    assert len({len(t) for t in texts}) == 1
    assert texts == sorted(texts)
    assert texts[2] == "0999-05-01T03:00:00.000000Z"


# -- every field of every event the projections handle, generated ------------------------

OFFSETS = st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                            max_value=timedelta(hours=23, minutes=59)))
INSTANTS = st.datetimes(timezones=OFFSETS)
# Any text but lone surrogates: UTF-8 cannot encode them, so the store cannot hold them.
TEXT = st.one_of(st.text(st.characters(codec="utf-8"), max_size=40),
                 st.builds(lambda c, n: c * n, st.characters(codec="utf-8"),
                           st.integers(1000, 4000)))
INTS = st.integers(-(2 ** 63), 2 ** 64 - 1)  # what the store's JSON can hold
# Money checks itself when made, so only amounts and currencies it admits can be stored.
MONEY = st.builds(Money, st.integers(-MAX_MINOR, MAX_MINOR), st.from_regex(r"[A-Z]{3}",
                                                                          fullmatch=True))
LEGS = st.lists(st.builds(Leg, TEXT, MONEY, TEXT, st.none() | TEXT), max_size=4)
BY_TYPE = {
    "str": TEXT, "str | None": st.none() | TEXT, "int": INTS, "bool": st.booleans(),
    "datetime": INSTANTS, "datetime | None": st.none() | INSTANTS,
    "list[str]": st.lists(TEXT, max_size=2),
    "list[dict[str, str]]": st.lists(st.dictionaries(TEXT, TEXT, max_size=2), max_size=2),
    "list[dict[str, Any]]": st.lists(st.fixed_dictionaries({"sku": TEXT, "quantity": INTS}),
                                     max_size=3),
    "list[Leg]": LEGS, "Money": MONEY, "int | None": st.none() | INTS,
    "list[int]": st.lists(INTS, max_size=3),
    "dict[str, int]": st.dictionaries(TEXT, INTS, max_size=2),
    "dict[str, Any] | None": st.none() | st.fixed_dictionaries(
        {"quantity": INTS, "window_seconds": st.none() | INTS}),
    "dict[str, str]": st.dictionaries(st.sampled_from(("order_id", "payout_id", "provider"))
                                      | TEXT, TEXT, max_size=3),
}
STANDARD = {"originator_id", "originator_version", "originator_topic"}
CODE_TRANSITIONS = (Code.Reserved, Code.Released, Code.Sold, Code.Redeemed,
                    Code.RedemptionRolledBack, Code.Revealed, Code.Voided, Code.Expired)
ORDER_CHANGES = (Order.Expired, Order.Cancelled, Order.Paid, Order.PaymentRefunded,
                 Order.Revealed, Order.Refunded, Order.RechargeAccountNamed, Order.TopupPaid,
                 Order.TopupDelivered, Order.TopupNeedsAttention, Order.TopupResumed,
                 Order.TopupRefunded)
PRODUCT_CHANGES = (Product.ChannelPriceSet, Product.LowStockThresholdSet)
WEBHOOK_CHANGES = (WebhookEndpoint.Disabled, WebhookEndpoint.Enabled,
                   WebhookEndpoint.SecretRotated)
FULFILMENT_CHANGES = (Fulfilment.AttemptStarted, Fulfilment.AttemptFailed,
                      Fulfilment.NeedsAttention, Fulfilment.OutcomeRecorded,
                      Fulfilment.Succeeded, Fulfilment.Failed, Fulfilment.LateSuccess)


def events_of(aggregate_class, event_classes, draw) -> list:
    """One aggregate's events: its Created, then the given ones, every field generated."""
    originator, events = uuid.uuid4(), []
    for version, cls in enumerate((aggregate_class.Created, *event_classes), start=1):
        fields = {f.name: draw(BY_TYPE[f.type]) for f in dataclasses.fields(cls)
                  if f.name not in STANDARD}
        if cls is aggregate_class.Created:
            fields["originator_topic"] = aggregate_class.TOPIC
        events.append(cls(originator_id=originator, originator_version=version, **fields))
    return events


@st.composite
def event_logs(draw) -> list:
    batch = events_of(Batch, [Batch.Completed], draw)
    code = events_of(Code, draw(st.lists(st.sampled_from(CODE_TRANSITIONS), max_size=4)), draw)
    order = events_of(Order, draw(st.lists(st.sampled_from(ORDER_CHANGES), max_size=3)), draw)
    ledger = events_of(LedgerTransaction, [], draw)
    product = events_of(Product, draw(st.lists(st.sampled_from(PRODUCT_CHANGES), max_size=3)),
                        draw)
    webhook = events_of(WebhookEndpoint,
                        draw(st.lists(st.sampled_from(WEBHOOK_CHANGES), max_size=3)), draw)
    fulfilment = events_of(Fulfilment,
                           draw(st.lists(st.sampled_from(FULFILMENT_CHANGES), max_size=4)), draw)
    return product + batch + code + order + ledger + webhook + fulfilment


POSITIONS = itertools.count(1)


@given(log=event_logs())
@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
def test_every_projection_applies_any_value_an_event_field_can_hold(runtime, log):
    mapper = runtime.store.mapper
    # Through the store's own encoding and back, as the runner reads them.
    stored = [mapper.to_domain_event(mapper.to_stored_event(e)) for e in log]
    with runtime.read_db.transaction() as cursor:
        for projection in all_projections():
            projection.apply(cursor, [(next(POSITIONS), e) for e in stored])


def test_a_code_created_with_no_expiry_and_an_order_at_the_edges_project(runtime):
    """None where optional, the smallest instant, empty text."""
    code = Code(id=uuid.uuid4(), sku="", batch_id="", sealed="", origin="", expires_at=None,
                actor="")
    order = Order(id=uuid.uuid4(), buyer_id="", items=[], needs=[], amount=0, currency="",
                  channel=None, distributor_id=None, external_ref=None,
                  expires_at=datetime.min.replace(tzinfo=timezone(timedelta(hours=1))),
                  codes=[], actor="", owner="")
    save(runtime, code, order)
    caught_up(runtime)
    assert runtime.codes.code(code.id)["expires_at"] is None
    assert runtime.runner.health.errors == 0



def test_a_low_stock_threshold_beyond_a_bigint_projects_held_at_its_ceiling(runtime):
    """The API caps a threshold; a stored event may hold up to 2**64 - 1 all the same."""
    sku = define_product(runtime)
    product = runtime.engine.catalog.get(sku)
    product.set_low_stock_threshold(sku=sku, threshold=2 ** 64 - 1, actor="")
    save(runtime, product)
    caught_up(runtime)
    assert not runtime.runner.health.failing and runtime.runner.health.errors == 0
    with runtime.read_db.transaction() as cursor:
        cursor.execute("SELECT threshold, low FROM stock_levels WHERE sku = %s", (sku,))
        assert cursor.fetchall() == [(2 ** 63 - 1, 1)]


def test_ledger_sums_beyond_a_bigint_and_hostile_names_project_and_verify(runtime, settings):
    """Legs stored without the ledger's checks: unbalanced, hostile account names, and
    debits whose total passes a BIGINT (held at its ceiling, as a rebuild holds it)."""
    huge = Leg(HOSTILE, Money(MAX_MINOR, "CNY"), HOSTILE, code_id=HOSTILE)
    for n in range(3):
        long_leg = Leg(LONG, Money(-1, "CNY"), LONG, code_id=LONG)
        save(runtime, LedgerTransaction(id=uuid.uuid4(), kind=HOSTILE,
                                        legs=[huge] * 400 + [long_leg] * (n == 0),
                                        links={"order_id": LONG, "provider": "\x00"},
                                        actor="", tenant=None))
    caught_up(runtime)
    assert not runtime.runner.health.failing and runtime.runner.health.errors == 0
    hostile, long = sorted(runtime.ledger.accounts(), key=lambda a: len(a["account_id"]))
    assert hostile["debits"] == 2 ** 63 - 1 and hostile["credits"] == 0
    assert long["balance"] == -1
    assert len(runtime.ledger.entries(HOSTILE, 2000)) == 1200
    assert verify(settings).outcome is Outcome.AGREE
