"""Codes (卡密 / 兑换码) and the batches they arrive in.

A code is one aggregate whose id is derived from a keyed hash of its string, so the store's
unique (id, version) key makes every code unique platform-wide and every state change a
compare-and-set on the code's version: two writers can never both reserve, sell or redeem it.

    available ──reserve──▶ reserved ──sell──▶ sold ──redeem──▶ redeemed
        ▲                     │                 ▲                  │
        └──────release────────┘                 └────rollback──────┘
    available ──void──▶ voided             available / sold ──expire──▶ expired
    sold ──refund──▶ available (never revealed: back on sale) | voided (revealed: written off)

A sold code is voided only through a refund of its order: a void then can never leave the
buyer's money without a way back (the refund writes off a revealed code, and puts an unseen
one back on sale, where it can be voided).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from engine.kernel.errors import (
    AlreadyRedeemed,
    AlreadyRolledBack,
    CodeExpired,
    CodeVoided,
    InvalidState,
    NotFound,
)
from engine.kernel.tenancy import tenant_of

AVAILABLE, RESERVED, SOLD, REDEEMED, VOIDED, EXPIRED = (
    "available", "reserved", "sold", "redeemed", "voided", "expired")
STATUSES = (AVAILABLE, RESERVED, SOLD, REDEEMED, VOIDED, EXPIRED)

# The parts of ``Code.state()`` other readers see: an order's list of its codes (with a mask
# beside them) and a merchant's counter (nothing of the buyer, order or batch).
LISTED_FIELDS = ("code_id", "sku", "status")
MERCHANT_FIELDS = ("code_id", "sku", "status", "redeemed_at", "redeemed_by")
REFUNDED_AFTER_REVEAL = "refunded after reveal"


class Code(Aggregate):
    TOPIC = "quanyi:code"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:code.imported"
        sku: str
        batch_id: str
        sealed: str
        origin: str
        expires_at: datetime | None
        actor: str

    def __init__(self, *, id: UUID, sku: str, batch_id: str, sealed: str, origin: str,
                 expires_at: datetime | None, actor: str) -> None:
        self.sku = sku
        self.batch_id = batch_id
        self.sealed = sealed
        self.origin = origin
        self.expires_at = expires_at
        self.status = AVAILABLE
        self.order_id: str | None = None
        self.holder: str | None = None
        self.redemption: dict[str, Any] | None = None
        self.redemptions = 0
        self.rolled_back: dict[str, str] = {}
        self.reveals = 0

    @property
    def tenant(self) -> str | None:
        """The tenant whose stock the code is (None: the platform's), from its stock key."""
        return tenant_of(self.sku)

    # -- checks -------------------------------------------------------------------------

    def is_expired_at(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def _refuse_unless(self, *statuses: str, action: str) -> None:
        if self.status in statuses:
            return
        if self.status == VOIDED:
            raise CodeVoided(f"code {self.id} is voided")
        if self.status == EXPIRED:
            raise CodeExpired(f"code {self.id} has expired")
        if self.status == REDEEMED and self.redemption:
            raise AlreadyRedeemed(
                f"code {self.id} was already redeemed",
                redeemed_at=self.redemption["at"], merchant_id=self.redemption["merchant_id"],
                redemption_id=self.redemption["redemption_id"])
        raise InvalidState(f"cannot {action} code {self.id}: it is {self.status}")

    # -- commands -----------------------------------------------------------------------

    def reserve(self, *, order_id: str, holder: str, now: datetime, actor: str) -> None:
        self._refuse_unless(AVAILABLE, action="reserve")
        if self.is_expired_at(now):
            raise CodeExpired(f"code {self.id} has expired")
        self._reserved(order_id=order_id, holder=holder, actor=actor)

    def release(self, *, order_id: str, reason: str, actor: str) -> None:
        if self.status != RESERVED or self.order_id != order_id:
            raise InvalidState(f"code {self.id} is not reserved for order {order_id}")
        self._released(order_id=order_id, reason=reason, actor=actor)

    def sell(self, *, order_id: str, actor: str) -> None:
        if self.status != RESERVED or self.order_id != order_id:
            raise InvalidState(f"code {self.id} is not reserved for order {order_id}")
        self._sold(order_id=order_id, actor=actor)

    def redeem(self, *, redemption_id: str, merchant_id: str, terminal_id: str | None,
               location: str | None, now: datetime, actor: str) -> None:
        self._refuse_unless(SOLD, action="redeem")
        if self.is_expired_at(now):
            raise CodeExpired(f"code {self.id} has expired")
        self.trigger_event(self.Redeemed, redemption_id=redemption_id,
                           merchant_id=merchant_id, terminal_id=terminal_id,
                           location=location, actor=actor)

    def roll_back(self, *, redemption_id: str, reason: str, actor: str) -> None:
        if redemption_id in self.rolled_back:
            raise AlreadyRolledBack(f"redemption {redemption_id} was already rolled back",
                                    rolled_back_at=self.rolled_back[redemption_id])
        if self.status != REDEEMED or not self.redemption \
                or self.redemption["redemption_id"] != redemption_id:
            raise NotFound(f"redemption {redemption_id} is not the code's current redemption")
        self.trigger_event(self.RedemptionRolledBack, redemption_id=redemption_id,
                           reason=reason, actor=actor)

    def record_reveal(self, *, order_id: str, actor: str, client_address: str | None) -> None:
        """Note that the secret was shown: who asked, from where, for which order."""
        self._refuse_unless(SOLD, REDEEMED, action="reveal")  # voided, expired: 410
        if self.order_id != order_id:
            raise InvalidState(f"code {self.id} is not delivered to order {order_id}")
        self._revealed(order_id=order_id, actor=actor, client_address=client_address)

    def check_refundable(self, order_id: str) -> None:
        """Refuse a refund unless the code is sold to ``order_id`` and not redeemed (a
        redeemed one answers when and where, as a second redemption does)."""
        self._refuse_unless(SOLD, action="refund")
        if self.order_id != order_id:
            raise InvalidState(f"code {self.id} is not delivered to order {order_id}")

    def refund(self, *, order_id: str, refund_id: str, actor: str) -> None:
        """Take the code back from a refunded order: never shown, it goes back on sale;
        shown, nobody can be sure it is unused, so it is voided and written off."""
        self.check_refundable(order_id)
        if self.reveals:
            self.trigger_event(self.WrittenOff, order_id=order_id, refund_id=refund_id,
                               reason=REFUNDED_AFTER_REVEAL, actor=actor)
        else:
            self.trigger_event(self.Returned, order_id=order_id, refund_id=refund_id,
                               actor=actor)

    def void(self, *, reason: str, actor: str) -> None:
        if self.status in (SOLD, REDEEMED):
            raise InvalidState(f"code {self.id} is sold: it is voided only by refunding its "
                               "order")
        self._refuse_unless(AVAILABLE, action="void")
        self._voided(reason=reason, actor=actor)

    def expire(self, *, now: datetime, actor: str) -> None:
        self._refuse_unless(AVAILABLE, SOLD, action="expire")
        if not self.is_expired_at(now):
            raise InvalidState(f"code {self.id} is not yet due to expire")
        self._expired(actor=actor)

    # -- events -------------------------------------------------------------------------

    @event("Reserved", topic="quanyi:code.reserved")
    def _reserved(self, order_id: str, holder: str, actor: str) -> None:
        self.status, self.order_id, self.holder = RESERVED, order_id, holder

    @event("Released", topic="quanyi:code.released")
    def _released(self, order_id: str, reason: str, actor: str) -> None:
        self.status, self.order_id, self.holder = AVAILABLE, None, None

    @event("Sold", topic="quanyi:code.sold")
    def _sold(self, order_id: str, actor: str) -> None:
        self.status = SOLD

    class Redeemed(Aggregate.Event):
        TOPIC = "quanyi:code.redeemed"
        redemption_id: str
        merchant_id: str
        terminal_id: str | None
        location: str | None
        actor: str

        def apply(self, code: "Code") -> None:
            code.status = REDEEMED
            code.redemptions += 1
            code.redemption = {"redemption_id": self.redemption_id,
                               "merchant_id": self.merchant_id,
                               "terminal_id": self.terminal_id, "location": self.location,
                               "actor": self.actor, "at": self.timestamp}

    class RedemptionRolledBack(Aggregate.Event):
        TOPIC = "quanyi:code.redemption_rolled_back"
        redemption_id: str
        reason: str
        actor: str

        def apply(self, code: "Code") -> None:
            code.status = SOLD
            code.redemption = None
            code.rolled_back[self.redemption_id] = self.timestamp.isoformat()

    @event("Revealed", topic="quanyi:code.revealed")
    def _revealed(self, order_id: str, actor: str, client_address: str | None) -> None:
        self.reveals += 1

    class Returned(Aggregate.Event):
        """Refunded before anyone saw it: no order, no holder, on sale again."""

        TOPIC = "quanyi:code.returned"
        order_id: str
        refund_id: str
        actor: str

        def apply(self, code: "Code") -> None:
            code.status, code.order_id, code.holder = AVAILABLE, None, None

    class WrittenOff(Aggregate.Event):
        """Refunded after it was revealed: voided, its cost a write-off."""

        TOPIC = "quanyi:code.written_off"
        order_id: str
        refund_id: str
        reason: str
        actor: str

        def apply(self, code: "Code") -> None:
            code.status = VOIDED

    @event("Voided", topic="quanyi:code.voided")
    def _voided(self, reason: str, actor: str) -> None:
        self.status = VOIDED

    @event("Expired", topic="quanyi:code.expired")
    def _expired(self, actor: str) -> None:
        self.status = EXPIRED

    def view(self, fields: tuple[str, ...]) -> dict[str, Any]:
        """Part of the public state, for a reader that may see only ``fields`` of it."""
        state = self.state()
        return {name: state[name] for name in fields}

    def state(self) -> dict[str, Any]:
        """The code's public state: never its secret (every other view is a part of it)."""
        redemption = self.redemption or {}
        return {
            "code_id": str(self.id), "sku": self.sku, "status": self.status,
            "batch_id": self.batch_id, "origin": self.origin, "order_id": self.order_id,
            "holder": self.holder, "expires_at": self.expires_at,
            "redemption_id": redemption.get("redemption_id"),
            "redeemed_at": redemption.get("at"), "redeemed_by": redemption.get("merchant_id"),
            "terminal_id": redemption.get("terminal_id"), "location": redemption.get("location"),
            "version": self.version, "updated_at": self.modified_on,
        }


class Batch(Aggregate):
    """One import or generation of codes: opened first, completed once every code is stored."""

    TOPIC = "quanyi:batch"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:batch.opened"
        sku: str
        origin: str
        supplier_id: str | None
        unit_cost: int
        currency: str
        expires_at: datetime | None
        actor: str

    def __init__(self, *, id: UUID, sku: str, origin: str, supplier_id: str | None,
                 unit_cost: int, currency: str, expires_at: datetime | None,
                 actor: str) -> None:
        self.sku = sku
        self.origin = origin
        self.supplier_id = supplier_id
        self.unit_cost = unit_cost
        self.currency = currency
        self.expires_at = expires_at
        self.completed = False
        self.imported = 0
        self.rejected: list[dict[str, Any]] = []

    @property
    def tenant(self) -> str | None:
        return tenant_of(self.sku)

    @event("Completed", topic="quanyi:batch.completed")
    def complete(self, imported: int, rejected: list[dict[str, Any]]) -> None:
        self.completed = True
        self.imported = imported
        self.rejected = rejected
