"""The port through which the engine asks an upstream supplier to top up a buyer's account.

Every supplier speaks some protocol; an adapter turns it into these few calls and values.
The engine never sees HTTP: it hands an adapter a ``TopupRequest`` and gets back an
``AttemptReport`` whose ``Outcome`` says what is known of that one attempt.

    place(request) ──▶ SUCCEEDED   the supplier credited the account
                   ├─▶ FAILED      a definite refusal: nothing was or will be credited
                   ├─▶ PENDING     accepted; the outcome comes later (query or callback)
                   └─▶ UNKNOWN     no answer we can trust (timeout, 5xx, transport error):
                                   the attempt may still succeed, so never fail over on it

An adapter never raises for what the network or the supplier does: every such failure is
UNKNOWN, and only an answer that proves nothing was credited is FAILED. Only a callback that
cannot be trusted raises (CallbackRejected), because then nobody should act on it.

Adapters are chosen by name (a supplier's ``adapter``): ``AdapterRegistry`` maps each name
to a factory taking a ``SupplierLink``. Adding a supplier with another protocol means
writing one adapter class and registering it (supplier_adapters/__init__.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from engine.kernel.errors import ValidationFailed
from engine.kernel.fields import check_text
from engine.kernel.money import Money

# Our references travel in URLs and suppliers' databases: a plain, bounded alphabet.
REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_ACCOUNT = 128
# A callback is one small report; anyone may send one, so no more is ever read of it.
MAX_CALLBACK_BYTES = 64 * 1024


@dataclass(frozen=True)
class TopupRequest:
    """One attempt to top up: ``reference`` is OURS, one per attempt, and idempotent at the
    supplier (placing it twice never credits twice); ``amount`` is the face value charged to
    the buyer's line."""

    reference: str
    supplier_sku: str
    recharge_account: str
    amount: Money

    def __post_init__(self) -> None:
        check_reference(self.reference)
        check_text(self.supplier_sku, "supplier_sku")
        account = check_text(self.recharge_account, "recharge_account")
        if not account or len(account) > MAX_ACCOUNT:
            raise ValidationFailed(f"recharge_account must be 1-{MAX_ACCOUNT} characters")
        if not isinstance(self.amount, Money) or self.amount.amount <= 0:
            raise ValidationFailed("a top-up's amount is a positive amount of money")


def check_reference(value: object) -> str:
    """An attempt's reference: 1-64 letters, digits, '.', '_' or '-'."""
    if not isinstance(value, str) or not REFERENCE.match(value):
        raise ValidationFailed("a reference is 1-64 letters, digits, '.', '_' or '-', "
                               "starting with a letter or digit")
    return value


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PENDING = "pending"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        """Whether the supplier has decided for good (a decided attempt never changes)."""
        return self in (Outcome.SUCCEEDED, Outcome.FAILED)


@dataclass(frozen=True)
class AttemptReport:
    """What is known of one attempt. ``detail`` is for people (never a secret)."""

    reference: str
    outcome: Outcome
    supplier_txn_id: str | None = None
    detail: str | None = None


class SupplierAdapter(Protocol):
    """One supplier's protocol, behind the engine's three questions."""

    def place(self, request: TopupRequest) -> AttemptReport:
        """Ask for the top-up. Timeout, transport error or 5xx: UNKNOWN, never raises;
        a definite refusal: FAILED."""
        ...

    def query(self, reference: str) -> AttemptReport:
        """What the supplier knows of the attempt; UNKNOWN when it cannot tell."""
        ...

    def read_callback(self, headers: Mapping[str, str], body: bytes) -> AttemptReport:
        """The report a callback carries; raises engine.errors.CallbackRejected when its
        signature or body is missing, bad or stale."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class SupplierTimeouts:
    """How long an adapter waits on a supplier (QUANYI_SUPPLIER_* settings)."""

    connect_seconds: float = 3.0
    read_seconds: float = 10.0
    callback_tolerance_seconds: float = 300.0  # a callback's timestamp may be this old


@dataclass(frozen=True)
class SupplierLink:
    """What an adapter is built from: where the supplier is and the opened credentials.
    The credentials never show in a repr, a log line or an error. Unless
    ``allow_private_addresses``, the adapter connects only to public addresses
    (engine/kernel/addresses.py: resolved once, checked, pinned)."""

    supplier_id: str
    endpoint: str
    credentials: Mapping[str, str] = field(repr=False)
    timeouts: SupplierTimeouts = SupplierTimeouts()
    allow_private_addresses: bool = False


AdapterFactory = Callable[[SupplierLink], SupplierAdapter]


@dataclass(frozen=True)
class AdapterKind:
    """A registered protocol: its factory and the credentials it needs."""

    factory: AdapterFactory
    credentials: tuple[str, ...]


class AdapterRegistry:
    """Adapter kinds by name; the composition root fills it and hands it to the engine."""

    def __init__(self) -> None:
        self._kinds: dict[str, AdapterKind] = {}

    def register(self, name: str, factory: AdapterFactory, *,
                 credentials: tuple[str, ...] = ()) -> None:
        self._kinds[name] = AdapterKind(factory, credentials)

    def kind(self, name: str) -> AdapterKind:
        """The kind, or ValidationFailed naming the ones there are."""
        found = self._kinds.get(name)
        if found is None:
            known = ", ".join(sorted(self._kinds)) or "none"
            raise ValidationFailed(f"adapter must be one of: {known}")
        return found

    def build(self, name: str, link: SupplierLink) -> SupplierAdapter:
        return self.kind(name).factory(link)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._kinds))
