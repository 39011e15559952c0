"""Money as a value: an integer of minor units with its ISO 4217 currency.

Arithmetic is checked: amounts of different currencies never mix, results stay within
``MAX_MINOR`` (what a PostgreSQL BIGINT and every JSON reader hold exactly), and a share of an
amount is taken in basis points and rounded down, so splits are deterministic and the
remainder is named by the caller (FACTS of every ledger: round once, in one place).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engine.kernel.errors import ValidationFailed

MAX_MINOR = 2**53 - 1  # exact in every JSON reader and in a BIGINT
BASIS_POINTS = 10_000
CURRENCY = re.compile(r"^[A-Z]{3}$")
_CHECKED: set[str] = set()  # currencies that passed CURRENCY (at most 26^3 of them)


@dataclass(frozen=True, slots=True)
class Money:
    """``Money(1990, "CNY")`` is ¥19.90. Negative amounts are allowed (a credit leg)."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount) is not int:  # noqa: E721 - bool is an int, and is refused
            raise ValidationFailed("an amount of money is a whole number of minor units")
        if abs(self.amount) > MAX_MINOR:
            raise ValidationFailed(f"an amount of money is at most {MAX_MINOR} minor units")
        if type(self.currency) is str and self.currency in _CHECKED:  # noqa: E721 - a sale
            return  # makes a dozen amounts of one currency: check it once per process
        if not isinstance(self.currency, str) or not CURRENCY.match(self.currency):
            raise ValidationFailed("a currency is an ISO 4217 code such as CNY")
        if len(_CHECKED) < 1000:
            _CHECKED.add(self.currency)

    @classmethod
    def zero(cls, currency: str) -> "Money":
        return cls(0, currency)

    def _same(self, other: "Money") -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine money with {type(other).__name__}")
        if other.currency != self.currency:
            raise ValidationFailed(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> "Money":
        return Money(-self.amount, self.currency)

    def __mul__(self, times: int) -> "Money":
        if type(times) is not int:  # noqa: E721
            raise TypeError("money is multiplied by whole numbers only")
        return Money(self.amount * times, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: "Money") -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: "Money") -> bool:
        self._same(other)
        return self.amount <= other.amount

    def share_bp(self, basis_points: int) -> "Money":
        """``basis_points``/10,000 of this amount, rounded down (toward zero)."""
        if type(basis_points) is not int or not 0 <= basis_points <= BASIS_POINTS:  # noqa: E721
            raise ValidationFailed("a rate is 0-10,000 basis points")
        whole = abs(self.amount) * basis_points // BASIS_POINTS
        return Money(whole if self.amount >= 0 else -whole, self.currency)

    def to_json(self) -> dict[str, Any]:
        return {"amount": self.amount, "currency": self.currency}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Money":
        return cls(data["amount"], data["currency"])
