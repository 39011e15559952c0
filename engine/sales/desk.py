"""The sales path's use cases: place, pay, cancel, expire, reveal and refund orders.

Every use case loads what it needs, asks the order (which guards its own transitions, see
engine/sales/orders.py), and hands all changed aggregates to the writer as one atomic save; a
version clash (another process got there first) re-runs the decision on fresh state
(engine/kernel/retry.py). No lock in this process is relied on for correctness. Placing lives in
engine/sales/placing.py, paying in engine/sales/paying.py and refunding in engine/sales/refunds.py;
``Orders`` is the one door to all of them.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from engine.catalog.products import Catalog
from engine.codes.codes import LISTED_FIELDS, Code
from engine.codes.reservations import Reservations
from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel.clock import utc_now
from engine.kernel.code_strings import mask
from engine.kernel.errors import NotFound
from engine.kernel.ids import quota_id
from engine.kernel.retry import retrying
from engine.kernel.vault import Vault
from engine.ledger.distribution import Distribution
from engine.sales.holding import OrderCodes
from engine.sales.orders import Order
from engine.sales.paying import Paying, TopupOpening
from engine.sales.placing import Placing
from engine.sales.postings import Sales
from engine.sales.refunds import Refunds


class Orders:
    """Use cases of the storefront's backend on orders."""

    def __init__(self, store: EventStore, writer: Writer, vault: Vault, catalog: Catalog,
                 reservations: Reservations, distribution: Distribution, sales: Sales,
                 reservation_ttl_seconds: int, open_topup: TopupOpening) -> None:
        self._store = store
        self._writer = writer
        self._vault = vault
        self._codes = OrderCodes(writer, reservations)
        self._placing = Placing(store, writer, vault, catalog, self._codes, sales,
                                distribution, reservation_ttl_seconds)
        self._paying = Paying(store, writer, self._codes, sales, open_topup)
        self._refunds = Refunds(store, writer, catalog, distribution, reservations)

    # -- reads ----------------------------------------------------------------------------

    def get(self, order_id: UUID, owner: str | None = None) -> Order:
        """The order; with ``owner``, only if it belongs to that owner (another owner's
        order is answered as missing, so its existence does not leak)."""
        order: Order = self._store.get(order_id, f"order {order_id}")
        if not order.belongs_to(owner):
            raise NotFound(f"no order {order_id}")
        return order

    def codes_of(self, order: Order) -> list[Code]:
        return [self._store.repository.get(i) for i in order.code_ids]

    def masked_codes(self, order: Order, *, just_saved: bool = False) -> list[dict[str, Any]]:
        """The order's codes, masked; ``just_saved`` takes them as this process last
        wrote them (the answer to the command that wrote them) instead of re-reading."""
        codes = [self._writer.recent.recall(i) for i in order.code_ids] if just_saved else []
        if not codes or None in codes:
            codes = self.codes_of(order)
        return self.masked(codes)

    def masked(self, codes: list[Code]) -> list[dict[str, Any]]:
        """Codes as an order lists them: id, SKU, status and the code masked."""
        return [{**c.view(LISTED_FIELDS),
                 "masked": mask(self._vault.open(c.id, c.sealed)["code"])} for c in codes]

    # -- place, pay -----------------------------------------------------------------------

    def place(self, *, buyer_id: str, items: list[dict[str, Any]], channel: str | None = None,
              distributor_id: str | None = None, external_ref: str | None = None,
              actor: str, owner: str | None = None,
              recharge_account: str | None = None, request_key: str | None = None) -> Order:
        """Reserve every unit of every item, or nothing (see engine/sales/placing.py)."""
        return self._placing.place(buyer_id=buyer_id, items=items, channel=channel,
                                   distributor_id=distributor_id, external_ref=external_ref,
                                   actor=actor, owner=owner,
                                   recharge_account=recharge_account, request_key=request_key)

    def pay(self, *, order_id: UUID, payment_ref: str, amount: int, currency: str,
            provider: str | None, actor: str, owner: str | None = None) -> Order:
        """Capture a payment and deliver in the same step (see engine/sales/paying.py)."""
        return self._paying.pay(order_id=order_id, payment_ref=payment_ref, amount=amount,
                                currency=currency, provider=provider, actor=actor,
                                owner=owner)

    def refund(self, *, order_id: UUID, code_ids: list[str] | None, reason: str, actor: str,
               owner: str | None = None) -> dict[str, Any]:
        """Pay back whole units of a delivered order and take their codes back (see
        engine/sales/refunds.py); the refund as answered."""
        return self._refunds.refund(order_id=order_id, code_ids=code_ids, reason=reason,
                                    actor=actor, owner=owner)

    # -- cancel, expire -------------------------------------------------------------------

    def cancel(self, *, order_id: UUID, reason: str, actor: str,
               owner: str | None = None) -> Order:
        """Cancel an unpaid order and release its reservations (with ``owner``, only
        that owner's)."""
        def attempt() -> Order:
            order = self.get(order_id, owner)
            order.check_open()
            codes = self._codes.held(order)  # before the order lets go of them
            order.cancel(reason=reason, actor=actor)
            return self._released(order, codes, "cancelled", actor)
        return retrying(attempt, what=f"order {order_id}")

    def expire(self, order_id: UUID, actor: str = "system:expiry") -> bool:
        """Expire an unpaid order past its time; safe to run twice, and beside a payment."""
        def attempt() -> bool:
            order = self.get(order_id)
            now = utc_now()
            if not order.is_due(now):
                return False
            codes = self._codes.held(order)  # before the order lets go of them
            order.expire(actor=actor, now=now)
            self._released(order, codes, "expired", actor)
            return True
        return retrying(attempt, what=f"order {order_id}")

    def _released(self, order: Order, codes: list[Code], reason: str, actor: str) -> Order:
        for code in codes:
            code.release(order_id=str(order.id), reason=reason, actor=actor)
        quotas = [q for q in (self._store.find(quota_id(order.buyer_id, item["sku"]))
                              for item in order.items)
                  if q is not None and str(order.id) in q.entries]
        for quota in quotas:
            quota.release(order_id=str(order.id))
        self._writer.save(order, *codes, *quotas)
        self._codes.released(codes)
        return order

    # -- reveal ---------------------------------------------------------------------------

    def reveal(self, *, order_id: UUID, actor: str, client_address: str | None,
               owner: str | None = None) -> list[dict[str, Any]]:
        """Show the codes of a delivered order (with ``owner``, only that owner's); each
        code's history records who and where."""
        def attempt() -> list[dict[str, Any]]:
            order = self.get(order_id, owner)
            order.record_reveal(actor=actor, client_address=client_address)
            codes = self.codes_of(order)
            for code in codes:
                code.record_reveal(order_id=str(order_id), actor=actor,
                                   client_address=client_address)
            self._writer.save(order, *codes)
            return [{"code_id": str(c.id), "sku": c.sku, **self._vault.open(c.id, c.sealed)}
                    for c in codes]
        return retrying(attempt, what=f"order {order_id}")
