"""The seeded mix of commands one client sends, and what that client knows of its orders.

Each client holds a few orders and moves them on: pays them (sometimes with the wrong amount
first, sometimes a second provider callback with the same payment_ref), cancels, reveals,
refunds one code or all, races three refunds of one code at once, redeems the codes it
revealed and rolls some back; now and then a payout. Every command goes to a server chosen
at random, so a follow-up often reaches the other process a moment after the first.
"""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.campaign.client import Exchange, Sender
from tests.campaign.servers import Keys

MAX_OPEN_ORDERS = 6
DISTRIBUTORS = ("d1", "d2")


@dataclass
class HeldCode:
    code_id: str
    secret: str | None = None  # known once revealed
    refunded: bool = False
    redemption_id: str | None = None  # while redeemed


@dataclass
class HeldOrder:
    order_id: str
    amount: int
    status: str
    codes: dict[str, HeldCode] = field(default_factory=dict)
    unsure: bool = False  # a command on it was never answered: read it back first

    def refundable(self) -> list[HeldCode]:
        return [c for c in self.codes.values() if not c.refunded and c.redemption_id is None]


class Client:
    """One client thread's world: its random generator, its orders, its history."""

    def __init__(self, number: int, seed: int, sender: Sender, keys: Keys, skus: list[str],
                 history: list[Exchange], history_lock: threading.Lock) -> None:
        self.number = number
        self.rng = random.Random(f"{seed}:{number}")
        self.sender = sender
        self.keys = keys
        self.skus = skus
        self.orders: dict[str, HeldOrder] = {}
        self.history = history
        self._history_lock = history_lock
        self.merchant = number % len(keys.merchants)

    def step(self) -> int:
        """One move, chosen among those possible now; the number of commands it sent."""
        for order in [o for o in self.orders.values() if o.unsure]:
            self._read_back(order)
        moves = self._moves()
        names, weights = zip(*moves)
        return getattr(self, names[self.rng.choices(range(len(names)), weights)[0]])()

    def _moves(self) -> list[tuple[str, int]]:
        live = [o for o in self.orders.values() if o.status not in ("cancelled", "refunded")]
        moves = [("pay_out", 1)]
        if len(live) < MAX_OPEN_ORDERS:
            moves.append(("place", 4))
        if self._pick(lambda o: o.status == "reserved"):
            moves += [("pay", 5), ("cancel", 1)]
        if self._pick(lambda o: o.status in ("delivered", "partially_refunded")):
            moves += [("reveal", 2), ("refund", 2), ("race_refunds", 1)]
        if self._codes(lambda c: c.secret and not c.refunded and c.redemption_id is None):
            moves.append(("redeem", 3))
        if self._codes(lambda c: c.redemption_id):
            moves.append(("roll_back", 1))
        return moves

    def _pick(self, wanted: Any) -> list[HeldOrder]:
        return [o for o in self.orders.values() if wanted(o) and not o.unsure]

    def _codes(self, wanted: Any) -> list[tuple[HeldOrder, HeldCode]]:
        return [(o, c) for o in self._pick(lambda o: o.status in (
            "delivered", "partially_refunded")) for c in o.codes.values() if wanted(c)]

    def _send(self, exchange: Exchange) -> Exchange:
        with self._history_lock:
            self.history.append(exchange)
        return self.sender.send(exchange, self.rng.randrange(len(self.sender.clients)))

    def _command(self, kind: str, path: str, body: dict[str, Any] | None, *,
                 token: str | None = None, order: HeldOrder | None = None,
                 **subject: Any) -> Exchange:
        exchange = Exchange(kind, "POST", path, body, token or self.keys.app,
                            order_id=order.order_id if order else None, subject=subject,
                            key=f"c{self.number}-{uuid.UUID(int=self.rng.getrandbits(128)).hex}")
        self._send(exchange)
        if order is not None and not exchange.acked:
            order.unsure = True  # unanswered or refused: what it is now, the server says
        return exchange

    def _ref(self, prefix: str) -> str:
        return f"{prefix}-{self.number}-{self.rng.getrandbits(48):012x}"

    def place(self) -> int:
        external_ref = self._ref("ext")
        body = {"buyer_id": f"buyer-{self.number}-{self.rng.randrange(20)}",
                "items": [{"sku": self.rng.choice(self.skus),
                           "quantity": self.rng.choice((1, 1, 2))}],
                "external_ref": external_ref}
        if self.rng.random() < 0.4:
            body["distributor_id"] = self.rng.choice(DISTRIBUTORS)
        done = self._command("place", "/v1/orders", body, external_ref=external_ref)
        if done.acked:
            self._learn(done.acked.body)
        return 1

    def pay(self) -> int:
        order = self.rng.choice(self._pick(lambda o: o.status == "reserved"))
        path = f"/v1/orders/{order.order_id}/payments"
        sent = 0
        if self.rng.random() < 0.15:
            wrong = self._ref("pay")
            self._command("pay_wrong", path, {"payment_ref": wrong, "amount": order.amount + 1,
                                              "currency": "CNY"}, order=order, payment_ref=wrong)
            sent += 1
        ref = self._ref("pay")
        body = {"payment_ref": ref, "amount": order.amount, "currency": "CNY"}
        done = self._command("pay", path, body, order=order, payment_ref=ref)
        if done.acked:
            self._learn(done.acked.body)
            if self.rng.random() < 0.1:  # the provider calls back again, another key
                self._command("pay_again", path, body, order=order, payment_ref=ref)
                sent += 1
        return sent + 1

    def cancel(self) -> int:
        order = self.rng.choice(self._pick(lambda o: o.status == "reserved"))
        done = self._command("cancel", f"/v1/orders/{order.order_id}/cancel", None,
                             order=order)
        if done.acked:
            self._learn(done.acked.body)
        return 1

    def reveal(self) -> int:
        order = self.rng.choice(self._pick(lambda o: o.status in (
            "delivered", "partially_refunded")))
        done = self._command("reveal", f"/v1/orders/{order.order_id}/reveal", None,
                             order=order)
        for shown in (done.acked.body["codes"] if done.acked else []):
            if shown["code_id"] in order.codes:
                order.codes[shown["code_id"]].secret = shown["code"]
        return 1

    def refund(self) -> int:
        order = self.rng.choice(self._pick(lambda o: o.status in (
            "delivered", "partially_refunded")))
        codes = order.refundable()
        body: dict[str, Any] = {"reason": "campaign"}
        if codes and self.rng.random() < 0.6:
            body["code_ids"] = [self.rng.choice(codes).code_id]
        done = self._command("refund", f"/v1/orders/{order.order_id}/refunds", body,
                             order=order, code_ids=body.get("code_ids"))
        self._refunded(order, done)
        return 1

    def race_refunds(self) -> int:
        """Three refunds of one code at once, each with its own key, on alternate servers:
        one refunds it, the others answer already_refunded."""
        order = self.rng.choice(self._pick(lambda o: o.status in (
            "delivered", "partially_refunded")))
        codes = order.refundable()
        if not codes:
            return self.refund()
        body = {"code_ids": [self.rng.choice(codes).code_id], "reason": "race"}
        racers = [Exchange("refund_race", "POST", f"/v1/orders/{order.order_id}/refunds", body,
                           self.keys.app, order_id=order.order_id,
                           subject={"code_ids": body["code_ids"]},
                           key=f"c{self.number}-{self.rng.getrandbits(64):016x}")
                  for _ in range(3)]
        with self._history_lock:
            self.history.extend(racers)
        threads = [threading.Thread(target=self.sender.send, args=(r, n % len(
            self.sender.clients))) for n, r in enumerate(racers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for racer in racers:
            self._refunded(order, racer)
        order.unsure = order.unsure or not any(r.acked for r in racers)
        return len(racers)

    def redeem(self) -> int:
        order, code = self.rng.choice(self._codes(
            lambda c: c.secret and not c.refunded and c.redemption_id is None))
        merchant = f"m{self.merchant}"
        done = self._command("redeem", "/v1/redemptions",
                             {"code": code.secret, "merchant_id": merchant},
                             token=self.keys.merchants[self.merchant], order=order,
                             code_id=code.code_id)
        if done.acked:
            code.redemption_id = done.acked.body["redemption_id"]
        elif done.refused and done.refused.code == "already_redeemed":
            code.redemption_id = done.refused.body.get("redemption_id")  # an earlier try's
        return 1

    def roll_back(self) -> int:
        order, code = self.rng.choice(self._codes(lambda c: c.redemption_id))
        done = self._command("roll_back", f"/v1/redemptions/{code.redemption_id}/rollback",
                             {"reason": "campaign"},
                             token=self.keys.merchants[self.merchant], order=order,
                             code_id=code.code_id, redemption_id=code.redemption_id)
        if done.acked:
            code.redemption_id = None
        return 1

    def pay_out(self) -> int:
        ref = self._ref("payout")
        body = {"distributor_id": self.rng.choice(DISTRIBUTORS),
                "amount": self.rng.randrange(1, 120), "currency": "CNY", "payout_ref": ref}
        self._command("payout", "/v1/payouts", body, token=self.keys.finance, payout_ref=ref)
        return 1

    def _refunded(self, order: HeldOrder, done: Exchange) -> None:
        if done.acked:
            for code_id in done.acked.body["code_ids"]:
                if code_id in order.codes:
                    order.codes[code_id].refunded = True
            if not order.refundable():
                order.unsure = True  # its status is for the server to say

    def _learn(self, answer: dict[str, Any]) -> None:
        """Take an order's answer (or its read-back) as what is known of it."""
        order = self.orders.setdefault(answer["order_id"], HeldOrder(
            answer["order_id"], answer["amount"], answer["status"]))
        order.status, order.unsure = answer["status"], False
        present = {c["code_id"]: c for c in answer["codes"]}
        for code_id, shown in present.items():
            held = order.codes.setdefault(code_id, HeldCode(code_id))
            if shown["status"] != "redeemed":
                held.redemption_id = None
        for code_id in set(order.codes) - set(present):
            order.codes[code_id].refunded = True

    def _read_back(self, order: HeldOrder) -> None:
        answer = self.sender.get(f"/v1/orders/{order.order_id}", self.keys.app,
                                 self.rng.randrange(len(self.sender.clients)))
        if answer is None:
            del self.orders[order.order_id]  # the servers never answered: leave it be
        else:
            self._learn(answer)
