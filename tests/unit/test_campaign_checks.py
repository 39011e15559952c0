"""The fault campaign's checks (tests/campaign) can fail: each kind of violation is found in
a history made to show it, and a clean history shows none."""

from __future__ import annotations

from tests.campaign.checks import check_history
from tests.campaign.client import Attempt, Exchange, Final
from tests.campaign.feed import FeedFacts

ORDER = "o-1"


def sent(kind: str, path: str, *, at: float, answer: tuple[int, str | None, dict],
         order_id: str | None = ORDER, took: float = 0.5, **subject) -> Exchange:
    """A command sent at `at`, its first attempt cut short, its retry answered."""
    status, code, body = answer
    exchange = Exchange(kind, "POST", path, None, "token", order_id=order_id, subject=subject)
    exchange.attempts = [Attempt(0, at, at + 0.01, None, error="ReadTimeout", cut_short=True),
                         Attempt(1, at + 0.1, at + took, status, code)]
    exchange.finals = [Final(status, code, body, at + took)]
    return exchange


def feed(*items: tuple[str, str, dict]) -> FeedFacts:
    facts = FeedFacts()
    for position, (kind, stream, data) in enumerate(items, 1):
        facts.take({"position": position, "type": kind, "stream_id": stream, "data": data})
    return facts


PLACED = ("order.placed", ORDER, {"external_ref": "e-1"})
PAID = ("order.paid", ORDER, {"payment_ref": "p-1"})


def placed_and_paid() -> list[Exchange]:
    return [sent("place", "/v1/orders", at=0, external_ref="e-1",
                 answer=(201, None, {"order_id": ORDER, "status": "reserved"})),
            sent("pay", f"/v1/orders/{ORDER}/payments", at=1, payment_ref="p-1",
                 answer=(200, None, {"order_id": ORDER, "status": "delivered"}))]


def refusal(detail: str, code: str = "invalid_state") -> tuple[int, str, dict]:
    return 409, code, {"code": code, "detail": detail}


def test_a_clean_history_shows_no_violation():
    history = [*placed_and_paid(),
               sent("refund", f"/v1/orders/{ORDER}/refunds", at=3, code_ids=None,
                    answer=(201, None, {"refund_id": "r-1", "code_ids": ["c-1"]})),
               sent("refund", f"/v1/orders/{ORDER}/refunds", at=5, code_ids=None,
                    answer=refusal("every code is already refunded", "already_refunded"))]
    facts = feed(PLACED, PAID, ("order.refunded", ORDER, {"refund_id": "r-1"}))
    assert dict(check_history(history, facts)) == {}


def test_a_refund_refused_as_reserved_after_the_delivery_is_a_stale_copy_deciding():
    history = [*placed_and_paid(), sent(
        "refund", f"/v1/orders/{ORDER}/refunds", at=3, code_ids=None,
        answer=refusal(f"order {ORDER} is reserved: only a delivered order is refunded"))]
    found = check_history(history, feed(PLACED, PAID))
    assert list(found) == ["stale_copy_decided"]


def test_a_cancel_accepted_after_the_delivery_is_a_stale_copy_deciding():
    history = [*placed_and_paid(), sent(
        "cancel", f"/v1/orders/{ORDER}/cancel", at=3,
        answer=(200, None, {"order_id": ORDER, "status": "cancelled"}))]
    found = check_history(history, feed(PLACED, PAID, ("order.cancelled", ORDER, {})))
    assert list(found) == ["stale_copy_decided"]


def test_a_racing_refund_refused_with_invalid_state_is_a_race_refusal():
    race = {"code_ids": ["c-1"]}
    history = [*placed_and_paid(),
               sent("refund_race", f"/v1/orders/{ORDER}/refunds", at=3, **race,
                    answer=(201, None, {"refund_id": "r-1", "code_ids": ["c-1"]})),
               sent("refund_race", f"/v1/orders/{ORDER}/refunds", at=3.1, **race,
                    answer=refusal("cannot refund code c-1: it is available"))]
    facts = feed(PLACED, PAID, ("order.refunded", ORDER, {"refund_id": "r-1"}))
    assert list(check_history(history, facts)) == ["race_refusal"]


def test_the_same_key_and_body_answered_reused_is_found():
    history = placed_and_paid()
    history[0].attempts.insert(0, Attempt(0, 0, 0.1, 422, "idempotency_key_reused"))
    assert list(check_history(history, feed(PLACED, PAID))) == ["idempotency_key_reused"]


def test_a_refused_order_that_was_placed_is_a_refusal_that_acted():
    history = [sent("place", "/v1/orders", at=0, order_id=None, external_ref="e-1",
                    answer=refusal("order kept changing; retry", "concurrent_update"))]
    found = check_history(history, feed(PLACED))
    assert sorted(found) == ["concurrent_update", "refusal_acted"]


def test_a_refund_in_the_log_beyond_those_acknowledged_is_a_refusal_that_acted():
    history = [*placed_and_paid(), sent(
        "refund", f"/v1/orders/{ORDER}/refunds", at=3, code_ids=None,
        answer=refusal("every code is already refunded", "already_refunded"))]
    facts = feed(PLACED, PAID, ("order.refunded", ORDER, {"refund_id": "r-1"}))
    assert list(check_history(history, facts)) == ["refusal_acted"]


def test_an_acknowledged_payout_missing_from_the_log_is_lost():
    history = [sent("payout", "/v1/payouts", at=0, order_id=None, payout_ref="po-1",
                    answer=(201, None, {"payout_id": "x"}))]
    assert list(check_history(history, feed())) == ["acked_lost"]


def test_one_payment_ref_paid_twice_is_acting_twice():
    history = placed_and_paid()
    assert list(check_history(history, feed(PLACED, PAID, PAID))) == ["acted_twice"]


def test_a_wrong_amount_taken_is_found():
    history = [*placed_and_paid()[:1], sent(
        "pay_wrong", f"/v1/orders/{ORDER}/payments", at=1, payment_ref="p-1",
        answer=(200, None, {"order_id": ORDER, "status": "delivered"}))]
    assert "wrong_amount_accepted" in check_history(history, feed(PLACED, PAID))


def test_the_feed_finds_a_code_sold_to_two_orders_and_a_payout_beyond_what_was_owed():
    commission = {"kind": "sale", "legs": [
        {"account": "liabilities:distributors:d1", "amount": {"amount": -100}}]}
    payout = {"kind": "payout", "legs": [
        {"account": "liabilities:distributors:d1", "amount": {"amount": 150}}]}
    facts = feed(("code.sold", "c-1", {"order_id": "o-1"}),
                 ("code.sold", "c-1", {"order_id": "o-2"}),
                 ("ledger.posted", "l-1", commission), ("ledger.posted", "l-2", payout))
    assert len(facts.double_sales) == 1 and len(facts.overpaid) == 1
    resold = feed(("code.sold", "c-1", {"order_id": "o-1"}),
                  ("code.returned", "c-1", {"order_id": "o-1"}),
                  ("code.sold", "c-1", {"order_id": "o-2"}),
                  ("ledger.posted", "l-1", commission))
    assert resold.double_sales == [] and resold.overpaid == []
