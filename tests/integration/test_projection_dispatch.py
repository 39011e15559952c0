"""Projections dispatch on the event type: an event a projection has no handler for changes
none of its tables, and every event of an aggregate a projection follows has a handler, so
that a new event class cannot go unprojected without a test failing here."""

import dataclasses
import importlib
import pkgutil
import uuid
from datetime import UTC, datetime

import pytest
from eventsourcing.domain import Aggregate

import engine
from engine.catalog.products import Product
from engine.codes.codes import Batch, Code
from engine.ledger.transactions import LedgerTransaction
from engine.sales.orders import Order
from engine.topups.fulfilment import Fulfilment
from engine.webhooks.endpoints import WebhookEndpoint
from projections.codes import CodeProjection
from projections.ledger import LedgerProjection
from projections.orders import OrderProjection
from projections.projection import Chunk, Projection, event_handlers
from projections.stock import StockProjection
from projections.topups import TopupProjection
from projections.webhooks import WebhookEndpointProjection

# The engine's aggregates whose events each projection must see ...
FOLLOWED = {Code: CodeProjection, Batch: CodeProjection, Order: OrderProjection,
            LedgerTransaction: LedgerProjection, Product: StockProjection,
            WebhookEndpoint: WebhookEndpointProjection, Fulfilment: TopupProjection}
# ... and those no projection reads (yet). A new aggregate must be put in one of the two.
UNFOLLOWED = {"ApiKey", "BuyerQuota", "Payment", "Redemption",
              "Distributor", "Payout", "Settlement", "PayoutBook", "Supplier", "TopupOffers",
              "CommandReceipt"}  # read by the Idempotency-Key middleware from the store


def subclasses(cls: type) -> set[type]:
    direct = set(cls.__subclasses__())
    return direct.union(*(subclasses(c) for c in direct))


def engine_aggregates() -> set[type]:
    for module in pkgutil.walk_packages(engine.__path__, "engine."):
        importlib.import_module(module.name)
    return {cls for cls in subclasses(Aggregate) if cls.__module__.startswith("engine.")}


def event_classes(aggregate: type) -> set[type]:
    """The event classes an aggregate declares (its ``Event`` base aside)."""
    return {value for value in vars(aggregate).values()
            if isinstance(value, type) and issubclass(value, aggregate.Event)
            and value is not aggregate.Event}


def test_every_engine_aggregate_is_followed_by_a_projection_or_named_unfollowed():
    names = {aggregate.__name__ for aggregate in engine_aggregates()}
    assert names == {aggregate.__name__ for aggregate in FOLLOWED} | UNFOLLOWED


@pytest.mark.parametrize("aggregate", list(FOLLOWED), ids=lambda a: a.__name__)
def test_a_projection_has_a_handler_for_every_event_of_the_aggregates_it_follows(aggregate):
    events = event_classes(aggregate)
    assert Aggregate.Created in {base for cls in events for base in cls.__mro__}  # found
    missing = {cls.__qualname__ for cls in events - FOLLOWED[aggregate].handled()}
    assert not missing, f"{FOLLOWED[aggregate].__name__} has no handler for {missing}"


def test_each_projection_keeps_its_own_handlers():
    """A handler registered by one projection must not leak into another or the base."""
    assert Projection.handled() == frozenset()
    assert not CodeProjection.handled() & OrderProjection.handled()
    assert Order.Created not in CodeProjection.handled()


# -- an event with no handler is skipped --------------------------------------------------


class CodesOnly(Projection):
    """Counts the code imports it is given, and has no handler for anything else."""

    name = "codes_only"
    tables = ()
    project = event_handlers()

    def __init__(self) -> None:
        self.seen: list[int] = []

    @project.register
    def _imported(self, event: Code.Created, position: int, chunk: Chunk) -> None:
        self.seen.append(position)


def new_code() -> Code:
    return Code(id=uuid.uuid4(), sku="SKU", batch_id=str(uuid.uuid4()), sealed="sealed",
                origin="import", expires_at=None, actor="test")


def new_order() -> Order:
    return Order(id=uuid.uuid4(), buyer_id="buyer", items=[{"sku": "SKU", "quantity": 1}],
                 needs=[], amount=990, currency="EUR", channel=None, distributor_id=None,
                 external_ref=None, expires_at=datetime.now(UTC), codes=[],
                 actor="test", owner="buyer")


@dataclasses.dataclass(frozen=True)
class Noted(Code.Event):
    """A code event that no projection has a handler for."""


def noted(code: Code) -> Noted:
    return Noted(originator_id=code.id, originator_version=code.version + 1,
                 timestamp=datetime.now(UTC))


def test_a_projection_skips_the_events_it_has_no_handler_for():
    code, order = new_code(), new_order()
    chunk = [(1, *order.collect_events()), (2, *code.collect_events()), (3, noted(code))]
    projection = CodesOnly()
    projection.apply(None, chunk)
    assert projection.seen == [2]


def test_events_a_projection_has_no_handler_for_change_none_of_its_tables(runtime):
    code, order = new_code(), new_order()
    code_created, (order_created,) = code.collect_events(), order.collect_events()
    code.reserve(order_id=str(order.id), holder="buyer", now=datetime.now(UTC),
                 actor="test")
    code_events = [*code_created, *code.collect_events(), noted(code)]
    codes, orders = CodeProjection(), OrderProjection()
    with runtime.read_db.transaction() as cursor:
        codes.apply(cursor, [(10 ** 9 + i, e) for i, e in enumerate(code_events[:2])])
        orders.apply(cursor, [(10 ** 9 + 2, order_created)])
        before = codes.rows(cursor), orders.rows(cursor)
        codes.apply(cursor, [(10 ** 9 + 3, order_created), (10 ** 9 + 4, code_events[2])])
        orders.apply(cursor, [(10 ** 9 + 5, e) for e in code_events])
        assert (codes.rows(cursor), orders.rows(cursor)) == before
        assert before[0]["code_index"] and before[1]["orders"]  # there was something to keep
