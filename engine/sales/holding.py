"""The codes an order holds: taking them from the pools, giving them back, and reading
them again before they change hands (shared by placing, paying and releasing orders)."""

from __future__ import annotations

from typing import Any

from engine.codes.codes import Code
from engine.codes.reservations import Reservations
from engine.eventstore.writer import Writer
from engine.kernel.errors import ConcurrentUpdate, SoldOut
from engine.sales.orders import Order


class OrderCodes:
    """Codes held for orders, over the SKUs' pools."""

    def __init__(self, writer: Writer, reservations: Reservations) -> None:
        self._writer = writer
        self._reservations = reservations

    def take(self, needs: list[dict[str, Any]], order_id: str, holder: str,
             actor: str) -> list[Code]:
        """Reserve every needed unit for ``order_id``, or none (SoldOut)."""
        taken: list[Code] = []
        try:
            for need in needs:
                taken += self._reservations.take(sku=need["sku"], quantity=need["quantity"],
                                                 order_id=order_id, holder=holder, actor=actor)
        except SoldOut:
            self.give_back(taken)
            raise
        return taken

    def give_back(self, codes: list[Code], *, clashed: bool = False) -> None:
        """Return codes this process took but did not save to their pools."""
        by_sku: dict[str, list[Code]] = {}
        for code in codes:
            by_sku.setdefault(code.sku, []).append(code)
        for sku, group in by_sku.items():
            self._reservations.give_back(sku, group, clashed=clashed)

    def held(self, order: Order) -> list[Code]:
        """The codes a reserved order holds; if they moved on, the order was read stale."""
        codes = [self._writer.load(i) for i in order.code_ids]
        if any(c.status != "reserved" or c.order_id != str(order.id) for c in codes):
            self._writer.recent.forget([order.id, *order.code_ids])
            raise ConcurrentUpdate(f"order {order.id} changed while it was being read")
        return codes

    def released(self, codes: list[Code]) -> None:
        """Codes saved back to available: the pools may hand them out again."""
        self._reservations.released([c.id for c in codes])
