"""Stored events name stable, registered topics, so moving a class never breaks decoding."""

from engine.codes.codes import Code
from tests.integration.helpers import codes_for, define_product, import_codes


def test_every_stored_topic_is_a_registered_quanyi_topic(runtime):
    sku = define_product(runtime)
    import_codes(runtime, sku, codes_for(2))
    runtime.engine.reservations.reserve(sku=sku, quantity=1, order_id="o", holder="b",
                                        actor="test")
    topics = {n.topic for n in runtime.store.notifications(0, 100)}
    assert topics >= {"quanyi:product.defined", "quanyi:batch.opened", "quanyi:code.imported",
                      "quanyi:batch.completed", "quanyi:code.reserved"}
    assert all(t.startswith("quanyi:") and "." in t and "engine" not in t for t in topics)


def test_stored_events_decode_into_the_registered_classes(runtime):
    sku = define_product(runtime)
    import_codes(runtime, sku, codes_for(1))
    notifications = [n for n in runtime.store.notifications(0, 100)
                     if n.topic == "quanyi:code.imported"]
    event = runtime.store.mapper.to_domain_event(notifications[0])
    assert type(event) is Code.Created and event.sku == sku
    assert event.timestamp.tzinfo is not None
