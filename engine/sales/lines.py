"""An order line as a value: a SKU, how many units, and the price of one unit.

Stored ``Order.Created`` events keep their items as plain dicts (``{"sku", "quantity",
"unit_price"}`` with the currency on the order): events are forever. ``OrderLine`` is how the
engine reads them, and how new events (the ledger's) carry lines, through the transcoder's
``order_line`` envelope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.kernel.errors import ValidationFailed
from engine.kernel.money import Money


@dataclass(frozen=True, slots=True)
class OrderLine:
    """``OrderLine("GIFT-100", 2, Money(9500, "CNY"))``: two units at ¥95.00 each."""

    sku: str
    quantity: int
    unit_price: Money

    def __post_init__(self) -> None:
        if not isinstance(self.sku, str) or not self.sku:
            raise ValidationFailed("an order line names its SKU")
        if type(self.quantity) is not int or self.quantity < 1:  # noqa: E721 - bool refused
            raise ValidationFailed("an order line's quantity is a positive whole number")
        if not isinstance(self.unit_price, Money):
            raise ValidationFailed("an order line's unit price is money")

    @property
    def total(self) -> Money:
        return self.unit_price * self.quantity

    @classmethod
    def from_item(cls, item: dict[str, Any], currency: str) -> "OrderLine":
        """The line of a stored order's item (its currency is the order's)."""
        return cls(item["sku"], item["quantity"], Money(item["unit_price"], currency))

    def to_json(self) -> dict[str, Any]:
        return {"sku": self.sku, "quantity": self.quantity,
                "unit_price": self.unit_price.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "OrderLine":
        return cls(data["sku"], data["quantity"], Money.from_json(data["unit_price"]))
