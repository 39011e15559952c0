"""What the event log says happened, read through `GET /v1/events` and folded into facts the
checks compare with the clients' history."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

PAYMENTS = ("order.paid", "order.payment_refunded")


@dataclass
class FeedFacts:
    placed: dict[str, str | None] = field(default_factory=dict)  # order -> external_ref
    external_refs: Counter[str] = field(default_factory=Counter)
    payments: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    payment_refs: Counter[str] = field(default_factory=Counter)
    cancelled: Counter[str] = field(default_factory=Counter)
    refunds: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    revealed: Counter[str] = field(default_factory=Counter)
    redemptions: dict[str, str] = field(default_factory=dict)  # redemption -> code
    rolled_back: set[str] = field(default_factory=set)
    payout_refs: Counter[str] = field(default_factory=Counter)
    double_sales: list[str] = field(default_factory=list)
    overpaid: list[str] = field(default_factory=list)
    _owner: dict[str, str] = field(default_factory=dict)  # code -> the order it is sold to
    _owed: Counter[str] = field(default_factory=Counter)  # payable account -> owed

    def take(self, item: dict[str, Any]) -> None:
        kind, stream, data = item["type"], item["stream_id"], item["data"]
        if kind == "order.placed":
            self.placed[stream] = data.get("external_ref")
            if data.get("external_ref"):
                self.external_refs[data["external_ref"]] += 1
        elif kind in PAYMENTS:
            self.payments[stream].append(data["payment_ref"])
            self.payment_refs[data["payment_ref"]] += 1
        elif kind == "order.cancelled":
            self.cancelled[stream] += 1
        elif kind == "order.refunded":
            self.refunds[stream].append(data["refund_id"])
        elif kind == "order.revealed":
            self.revealed[stream] += 1
        elif kind == "redemption.recorded":
            self.redemptions[stream] = data["code_id"]
        elif kind == "code.redemption_rolled_back":
            self.rolled_back.add(data["redemption_id"])
        elif kind == "payout.paid":
            self.payout_refs[data["ref"]] += 1
        elif kind in ("code.sold", "code.returned"):
            self._sale(item)
        elif kind == "ledger.posted":
            self._posting(item)

    def _sale(self, item: dict[str, Any]) -> None:
        code, order = item["stream_id"], item["data"]["order_id"]
        if item["type"] == "code.returned":
            self._owner.pop(code, None)
            return
        if self._owner.get(code, order) != order:
            self.double_sales.append(f"code {code} sold to order {self._owner[code]} and then "
                                     f"to {order} (position {item['position']})")
        self._owner[code] = order

    def _posting(self, item: dict[str, Any]) -> None:
        """Each payable account's running balance; a payout may not take it below zero."""
        for leg in item["data"]["legs"]:
            account = leg["account"]
            if account.startswith("liabilities:distributors:"):
                owed = self._owed[account]
                self._owed[account] -= leg["amount"]["amount"]  # credits are negative
                if item["data"]["kind"] == "payout" and self._owed[account] < 0:
                    self.overpaid.append(f"{account} was owed {owed} and paid "
                                         f"{leg['amount']['amount']} (position "
                                         f"{item['position']})")


def read_feed(get: Any) -> FeedFacts:
    """Every event, oldest first, 1,000 at a time; `get(path)` answers a page."""
    facts, cursor = FeedFacts(), 0
    while True:
        page = get(f"/v1/events?after={cursor}&limit=1000")
        if page is None:
            raise RuntimeError("the event feed did not answer")
        for item in page["items"]:
            facts.take(item)
        if not page["items"] or page["next_cursor"] is None:
            return facts
        cursor = page["items"][-1]["position"]
