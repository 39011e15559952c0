"""The engine's domain errors.

    QuanyiError
    ├── NotFound
    ├── Conflict
    │   ├── AlreadyExists
    │   ├── InvalidState
    │   ├── SoldOut
    │   ├── AlreadyRedeemed        (carries when and by whom)
    │   ├── AlreadyRolledBack
    │   ├── DuplicateCode
    │   ├── PurchaseLimitExceeded
    │   ├── OrderExpired
    │   ├── AlreadyRefunded
    │   ├── InsufficientBalance    (a payout or settlement beyond what is owed)
    │   ├── PriceBelowCost         (价格倒挂: a cost above the price, not allowed)
    │   ├── NaturalKeyReused       (a natural key sent again with another request)
    │   │   ├── ExternalRefReused
    │   │   ├── PaymentRefReused
    │   │   ├── PayoutRefReused
    │   │   └── SettlementRefReused
    │   └── ConcurrentUpdate       (clashed on every retry: nothing changed; 503 busy)
    ├── Gone
    │   ├── CodeExpired
    │   └── CodeVoided
    ├── AmountMismatch
    ├── ValidationFailed
    │   ├── PatternTooSmall
    │   ├── AddressRefused         (a URL the server may not call: not a public address)
    │   └── IdempotencyKeyReused   (an order's Idempotency-Key sent with another request)
    ├── Forbidden
    ├── TooManyWebhooks            (an owner's enabled webhook endpoints are at the cap)
    ├── CallbackRejected           (a supplier callback whose body cannot be read)
    │   └── SignatureInvalid       (its signature is missing, wrong or stale)
    ├── UnbalancedTransaction      (ledger legs that do not sum to zero: a defect, never stored)
    ├── Unavailable                (the store cannot take a request now: retry after a while)
    │   ├── StoreUnavailable       (PostgreSQL cannot be reached, or every connection is busy)
    │   └── StorageFull            (the disk is full: nothing of the request was stored)
    └── SettingsError              (a bad QUANYI_* setting: the process does not start)
        └── StoreMissing           (no store or secret key where the settings point)

The API maps each class to one problem+json answer in one place (api/problems.py);
SettingsError never reaches it: the command line turns it into one line and exit status 2.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


class QuanyiError(Exception):
    """Base class of every error the engine raises on purpose."""

    code = "error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(QuanyiError):
    code = "not_found"


class ValidationFailed(QuanyiError):
    code = "validation_error"


class AddressRefused(ValidationFailed):
    """A URL whose host resolves to no address, or to one that is not public."""


class Forbidden(QuanyiError):
    code = "forbidden"


class TooManyWebhooks(QuanyiError):
    """An owner already has as many enabled webhook endpoints as one may have."""

    code = "too_many_webhooks"


class Conflict(QuanyiError):
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class InvalidState(Conflict):
    code = "invalid_state"


class SoldOut(Conflict):
    code = "sold_out"


class AlreadyRedeemed(Conflict):
    code = "already_redeemed"

    def __init__(self, detail: str, *, redeemed_at: datetime, merchant_id: str,
                 redemption_id: str) -> None:
        # a datetime, not text: the API spells every answer's time in one form
        super().__init__(detail, redeemed_at=redeemed_at, merchant_id=merchant_id,
                         redemption_id=redemption_id)


class AlreadyRolledBack(Conflict):
    code = "already_rolled_back"


class DuplicateCode(Conflict):
    code = "duplicate_code"


class PurchaseLimitExceeded(Conflict):
    code = "purchase_limit_exceeded"


class OrderExpired(Conflict):
    code = "order_expired"


class AlreadyRefunded(Conflict):
    code = "already_refunded"


class InsufficientBalance(Conflict):
    code = "insufficient_balance"


class UnbalancedTransaction(QuanyiError):
    """Legs that do not sum to zero per currency: a defect, never stored."""

    code = "unbalanced_transaction"


class CallbackRejected(QuanyiError):
    """A supplier's callback nobody may act on: its body is missing or unreadable."""

    code = "callback_rejected"


class SignatureInvalid(CallbackRejected):
    """A supplier's callback whose signature is missing, wrong or too old."""

    code = "signature_invalid"


class AmountMismatch(QuanyiError):
    code = "amount_mismatch"


class ConcurrentUpdate(Conflict):
    """A version clash: use cases retry on fresh state (engine/kernel/retry.py). One that clashed
    on every attempt has changed nothing, and the client is told to come back later."""

    code = "busy"


class NaturalKeyReused(Conflict):
    """A natural key sent again with another request: the first result stands, and the
    client is told which key it reused (the same request again answers the first result)."""

    code = "natural_key_reused"


class ExternalRefReused(NaturalKeyReused):
    code = "external_ref_reused"


class PaymentRefReused(NaturalKeyReused):
    code = "payment_ref_reused"


class PayoutRefReused(NaturalKeyReused):
    code = "payout_ref_reused"


class SettlementRefReused(NaturalKeyReused):
    code = "settlement_ref_reused"


class Gone(QuanyiError):
    code = "gone"


class CodeExpired(Gone):
    code = "code_expired"


class CodeVoided(Gone):
    code = "code_voided"


class PriceBelowCost(Conflict):
    code = "price_below_cost"


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"


class PatternTooSmall(ValidationFailed):
    code = "pattern_too_small"


class Unavailable(QuanyiError):
    code = "unavailable"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class StoreUnavailable(Unavailable):
    code = "store_unavailable"


class StorageFull(Unavailable):
    code = "storage_full"


class SettingsError(QuanyiError):
    """A QUANYI_* setting is missing or invalid, or its database cannot be reached."""

    code = "settings_error"


class StoreMissing(SettingsError):
    """No store (or no secret key) where the settings point, and none may be created."""

    code = "store_missing"
