"""The invariants, checked after the faults: the clients' history against the event log.

Kinds of violation (each a list of examples):

- `stale_copy_decided`: an answer that only a stale copy could give: a refund, reveal,
  redemption or rollback refused as if the order or code were still where it was before an
  acknowledged step (a delivery, a reveal, a redemption), a payment refused for an order
  placed and acknowledged, a cancel accepted after the delivery was acknowledged.
- `race_refusal`: of refunds of one order racing each other, one refused with anything but
  the documented `already_refunded` / `already_redeemed` (and not as if still reserved,
  which is a stale copy's answer).
- `idempotency_key_reused`: the same key and the same body answered as if reused (the
  campaign never sends a key with another body).
- `idempotency_answer_differs`: two copies of one request (same key, same body) given
  different answers.
- `concurrent_update`: that code reached a client.
- `refusal_acted`: a refused command whose effect is in the log.
- `wrong_amount_accepted`: a payment with the wrong amount taken.
- `acked_lost`: an acknowledged command whose effect is not in the log.
- `acted_twice`: one command acting twice (two ids for one key; one external_ref, payment_ref
  or payout_ref acted on twice).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from tests.campaign.client import Exchange
from tests.campaign.feed import FeedFacts

IDS = ("order_id", "refund_id", "redemption_id", "payout_id")
REFUNDS = ("refund", "refund_race")


class Violations(defaultdict):
    def __init__(self) -> None:
        super().__init__(list)

    def add(self, kind: str, exchange: Exchange | None, what: str) -> None:
        where = f"{exchange.kind} {exchange.path} key {exchange.key}: " if exchange else ""
        self[kind].append(where + what)


def _detail(exchange: Exchange) -> str:
    final = exchange.finals[0]
    detail = final.body.get("detail") if isinstance(final.body, dict) else final.body
    return f"{final.status} {final.code}: {detail}"


class Timeline:
    """When each step was acknowledged, as the clients saw it."""

    def __init__(self, history: list[Exchange]) -> None:
        self.placed: dict[str, float] = {}
        self.delivered: dict[str, float] = {}
        self.revealed: dict[str, float] = {}  # code -> first reveal answered
        self.redeemed: dict[str, float] = {}  # redemption -> answered
        self.refunds = defaultdict(list)  # order -> its refund exchanges
        self.rollbacks = Counter()  # redemption -> rollback exchanges sent
        for exchange in history:
            self._take(exchange)

    def _take(self, ex: Exchange) -> None:
        ack = ex.acked
        if ex.kind in REFUNDS:
            self.refunds[ex.order_id].append(ex)
        if ex.kind == "roll_back":
            self.rollbacks[ex.subject["redemption_id"]] += 1
        if ack is None:
            return
        if ex.kind == "place":
            _first(self.placed, ack.body["order_id"], ack.answered)
        elif ex.kind in ("pay", "pay_again") and ack.body["status"] == "delivered":
            _first(self.delivered, ex.order_id, ack.answered)
        elif ex.kind == "reveal":
            for code in ack.body["codes"]:
                _first(self.revealed, code["code_id"], ack.answered)
        elif ex.kind == "redeem":
            _first(self.redeemed, ack.body["redemption_id"], ack.answered)

    def refund_touching(self, order_id: str, code_id: str | None, before: float) -> bool:
        """A refund of this code (or of the whole order) was sent before `before`."""
        return any(r.sent < before and (r.subject.get("code_ids") is None
                                        or code_id is None or code_id in r.subject["code_ids"])
                   for r in self.refunds[order_id])

    def racing(self, exchange: Exchange) -> bool:
        return any(r is not exchange and r.sent < exchange.answered and r.answered > exchange.sent
                   for r in self.refunds[exchange.order_id])


def check_history(history: list[Exchange], facts: FeedFacts) -> Violations:
    found = Violations()
    timeline = Timeline(history)
    for exchange in history:
        _check_answers(exchange, found)
        _check_stale(exchange, timeline, found)
        _check_effect(exchange, facts, found)
    _check_counts(history, facts, found)
    return found


def _check_answers(ex: Exchange, found: Violations) -> None:
    codes = {a.code for a in ex.attempts}
    if "idempotency_key_reused" in codes:
        found.add("idempotency_key_reused", ex, "the same key and body answered 422 reused")
    if "concurrent_update" in codes:
        found.add("concurrent_update", ex, "a 409 concurrent_update reached the client")
    answers = {(f.status, _id_of(f.body)) for f in ex.finals}
    if ex.kind != "reveal" and len(answers) > 1:
        found.add("idempotency_answer_differs", ex, f"copies answered {sorted(answers)}")


def _id_of(body: Any) -> str | None:
    if isinstance(body, dict):
        return next((str(body[k]) for k in IDS if body.get(k)), body.get("code"))
    return None


def _check_stale(ex: Exchange, timeline: Timeline, found: Violations) -> None:
    refused = ex.refused
    if refused and refused.code == "idempotency_key_reused":
        return  # counted as that: the request never reached the rule
    if ex.kind == "cancel" and ex.acked and timeline.delivered.get(ex.order_id, 1e18) < ex.sent:
        found.add("stale_copy_decided", ex, "cancelled an order whose delivery was "
                                            "acknowledged before the cancel was sent")
    if refused is None:
        return
    order, code, sent = ex.order_id, ex.subject.get("code_id"), ex.sent
    if ex.kind in REFUNDS and refused.code not in ("already_refunded", "already_redeemed") \
            and timeline.delivered.get(order, 1e18) < sent:
        stale = "reserved" in _detail(ex) or not timeline.racing(ex)
        kind = "stale_copy_decided" if stale else "race_refusal"
        found.add(kind, ex, f"refused after the delivery was acknowledged: {_detail(ex)}")
    elif ex.kind == "reveal" and timeline.delivered.get(order, 1e18) < sent \
            and not timeline.refund_touching(order, None, ex.answered):
        found.add("stale_copy_decided", ex, f"refused after the delivery was acknowledged: "
                                            f"{_detail(ex)}")
    elif ex.kind == "pay" and refused.code in ("invalid_state", "not_found") \
            and timeline.placed.get(order, 1e18) < sent:
        found.add("stale_copy_decided", ex, f"refused after the order was acknowledged: "
                                            f"{_detail(ex)}")
    elif ex.kind == "redeem" and refused.code in ("invalid_state", "not_found") \
            and timeline.revealed.get(code, 1e18) < sent \
            and not timeline.refund_touching(order, code, ex.answered):
        found.add("stale_copy_decided", ex, f"refused after the code was revealed: "
                                            f"{_detail(ex)}")
    elif ex.kind == "roll_back" and timeline.rollbacks[ex.subject["redemption_id"]] == 1 \
            and timeline.redeemed.get(ex.subject["redemption_id"], 1e18) < sent:
        found.add("stale_copy_decided", ex, f"refused after the redemption was acknowledged: "
                                            f"{_detail(ex)}")


def _check_effect(ex: Exchange, facts: FeedFacts, found: Violations) -> None:
    """An acknowledged command's effect is in the log; a refused one's is not."""
    present = _effect_present(ex, facts)
    if present is None:
        return
    if ex.acked and not present:
        found.add("acked_lost", ex, "acknowledged, but the log does not show it")
    if ex.refused and present and ex.kind in ("place", "pay", "payout"):
        found.add("refusal_acted", ex, f"answered {_detail(ex)} and yet acted")
    if ex.kind == "pay_wrong" and present:
        found.add("wrong_amount_accepted", ex, f"a wrong amount was taken ({_detail(ex)})"
                  if ex.finals else "a wrong amount was taken")


def _effect_present(ex: Exchange, facts: FeedFacts) -> bool | None:
    ack = ex.acked
    if ex.kind == "place":
        if ack:
            return ack.body["order_id"] in facts.placed
        return facts.external_refs[ex.subject["external_ref"]] > 0
    if ex.kind in ("pay", "pay_again", "pay_wrong"):
        return ex.subject["payment_ref"] in facts.payments.get(ex.order_id, [])
    if ex.kind == "payout":
        return facts.payout_refs[ex.subject["payout_ref"]] > 0
    if ex.kind == "cancel" and ack:
        return facts.cancelled[ex.order_id] > 0
    if ex.kind in REFUNDS and ack:
        return ack.body["refund_id"] in facts.refunds.get(ex.order_id, [])
    if ex.kind == "redeem" and ack:
        return ack.body["redemption_id"] in facts.redemptions
    if ex.kind == "roll_back" and ack:
        return ex.subject["redemption_id"] in facts.rolled_back
    return None


def _check_counts(history: list[Exchange], facts: FeedFacts, found: Violations) -> None:
    """Per order and per code: no more effects than commands acknowledged or left
    unanswered, and no natural key acted on twice."""
    could = Counter()
    for ex in history:
        if ex.acked or ex.unknown:
            could[(ex.kind if ex.kind not in REFUNDS else "refund", ex.order_id,
                   ex.subject.get("code_id"))] += 1
    for order_id, refund_ids in facts.refunds.items():
        if len(refund_ids) > could[("refund", order_id, None)]:
            found.add("refusal_acted", None, f"order {order_id} has {len(refund_ids)} refunds "
                      f"for {could[('refund', order_id, None)]} acknowledged or unanswered")
    for order_id, times in facts.cancelled.items():
        if times > could[("cancel", order_id, None)]:
            found.add("refusal_acted", None, f"order {order_id} cancelled without an "
                                             "acknowledged or unanswered cancel")
    redeemed = Counter(facts.redemptions.values())
    allowed = Counter({key[2]: n for key, n in could.items() if key[0] == "redeem"})
    for code_id, times in redeemed.items():
        if times > allowed[code_id]:
            found.add("refusal_acted", None, f"code {code_id} redeemed {times} times for "
                                             f"{allowed[code_id]} acknowledged or unanswered")
    for name, counter in (("external_ref", facts.external_refs),
                          ("payment_ref", facts.payment_refs), ("payout_ref", facts.payout_refs)):
        for ref, times in counter.items():
            if times > 1:
                found.add("acted_twice", None, f"{name} {ref} acted on {times} times")
    for ex in history:
        ids = {_id_of(f.body) for f in ex.finals if 200 <= f.status < 300}
        if ex.kind != "reveal" and len(ids) > 1:
            found.add("acted_twice", ex, f"one key, several results: {sorted(map(str, ids))}")


def _first(times: dict[str, float], key: str, at: float) -> None:
    times[key] = min(times.get(key, at), at)
