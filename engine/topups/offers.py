"""A supplier's offer to fulfil a top-up SKU: its own SKU, what it costs us, and its place
in the order of suppliers tried (lower priority first). A value, carried in events as is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.kernel.errors import ValidationFailed
from engine.kernel.money import Money

MAX_PRIORITY = 1_000_000


@dataclass(frozen=True, slots=True)
class TopupOffer:
    """``TopupOffer("sup-1", "CM-100", Money(9800, "CNY"), 10)``: sup-1 tops up 100 for ¥98."""

    supplier_id: str
    supplier_sku: str
    cost: Money
    priority: int

    def __post_init__(self) -> None:
        if not isinstance(self.cost, Money) or self.cost.amount < 0:
            raise ValidationFailed("an offer's cost is a non-negative amount of money")
        whole = type(self.priority) is int  # noqa: E721 - bool is an int, and is refused
        if not whole or not 0 <= self.priority <= MAX_PRIORITY:
            raise ValidationFailed(f"an offer's priority is a whole number 0-{MAX_PRIORITY}")

    def to_json(self) -> dict[str, Any]:
        return {"supplier_id": self.supplier_id, "supplier_sku": self.supplier_sku,
                "cost": self.cost.to_json(), "priority": self.priority}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TopupOffer":
        cost = data["cost"]
        return cls(data["supplier_id"], data["supplier_sku"],
                   cost if isinstance(cost, Money) else Money.from_json(cost), data["priority"])
