"""The webhook delivery log on both stores: one process at a time delivers to an endpoint,
a position moves once however many dispatchers race, and a redelivery queues beside the
event it repeats, ahead of later ones."""

from __future__ import annotations

from datetime import timedelta

from engine.kernel.clock import utc_now
from projections.webhook_deliveries import Attempt, Queued


def test_one_holder_at_a_time_until_the_lease_runs_out(runtime):
    log, now = runtime.webhooks.log, utc_now()
    log.position("ep-1", 0)
    assert log.hold("ep-1", "a", now, now + timedelta(seconds=30))
    assert not log.hold("ep-1", "b", now, now + timedelta(seconds=30))
    assert log.hold("ep-1", "a", now, now + timedelta(seconds=30))  # renewal
    assert log.hold("ep-1", "b", now + timedelta(seconds=31), now + timedelta(seconds=61))
    log.let_go("ep-1", "b")
    assert log.hold("ep-1", "c", now, now + timedelta(seconds=30))


def test_a_position_moves_once_when_two_dispatchers_queue_the_same_events(runtime):
    log, now = runtime.webhooks.log, utc_now()
    log.position("ep-2", 10)
    queued = [Queued(12, "msg_a", "order.delivered", '{"type":"order.delivered"}')]
    assert log.enqueue("ep-2", 10, 20, queued, now)
    assert not log.enqueue("ep-2", 10, 20, queued, now)
    assert log.position("ep-2", 10) == 20
    items, _ = log.listing("ep-2", None, 10)
    assert [d["message_id"] for d in items] == ["msg_a"]


def test_a_redelivery_goes_before_later_deliveries(runtime):
    log, now = runtime.webhooks.log, utc_now()
    log.position("ep-3", 0)
    log.enqueue("ep-3", 0, 9, [Queued(5, "msg_5", "t", "{}"), Queued(8, "msg_8", "t", "{}")],
                now)
    first = log.head("ep-3")
    log.record(first, Attempt(now, 200, None, 3), now)
    again = log.redeliver("ep-3", first.delivery_id, now)
    head = log.head("ep-3")
    assert (head.delivery_id, head.message_id) == (again["delivery_id"], "msg_5")
    assert again["redelivery_of"] == first.delivery_id


def test_failures_count_from_the_first_and_stop_counting_on_success(runtime):
    log, now = runtime.webhooks.log, utc_now()
    log.position("ep-4", 0)
    log.enqueue("ep-4", 0, 3, [Queued(2, "msg_2", "t", "{}")], now)
    head = log.head("ep-4")
    since = log.record(head, Attempt(now, 503, "answered HTTP 503", 4), now)
    later = log.record(log.head("ep-4"), Attempt(now + timedelta(seconds=5), None, "refused", 1),
                       now)
    assert since == later
    assert log.record(log.head("ep-4"), Attempt(now, 204, None, 2), now) is None
    assert log.head("ep-4") is None
