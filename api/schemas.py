"""Request and response bodies of the HTTP API (money: integer minor units).

Every text field is a `Text` and every instant an `Instant`: both apply engine/kernel/fields.py's
rules, so a 422 names the field and the API refuses exactly what the engine would. Every
money, quantity and count is a strict integer: JSON `true`, `"1990"` and `1990.0` are refused
rather than read as numbers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Query
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from engine.catalog.products import MAX_MONEY
from engine.kernel.errors import ValidationFailed
from engine.kernel.fields import check_digits, check_instant, check_text
from engine.kernel.tenancy import shown

MAX_POSITION = 2**62


def _pydantic(check: Callable[[Any, str], Any]) -> Callable[[Any, ValidationInfo], Any]:
    """An engine rule as a pydantic validator: its refusal becomes an error of the field."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        try:
            return check(value, info.field_name or "value")
        except ValidationFailed as exc:
            raise PydanticCustomError("field_rule", "{detail}", {"detail": exc.detail}) from None

    return validate


def _digits(maximum: int) -> BeforeValidator:
    """A query-string number read as plain ASCII digits up to ``maximum``, before pydantic's
    own int parsing (which admits '+5', ' 5' and '5_0')."""
    return BeforeValidator(_pydantic(lambda value, field: check_digits(value, field, maximum)))


Text = Annotated[str, AfterValidator(_pydantic(check_text))]
Instant = Annotated[AwareDatetime, AfterValidator(_pydantic(check_instant))]
Int = Annotated[int, Strict()]
AS_OF_EXAMPLE = "2026-11-23T10:00:00Z"


def as_of_query() -> Any:
    """The `as_of` query parameter every point-in-time read takes (replay/as_of.py)."""
    return Query(None, description="RFC 3339 with a timezone, years 2000-2199: the answer "
                                    "as the events stamped at or before it made it",
                 openapi_examples={"instant": {"summary": "an instant in UTC",
                                               "value": AS_OF_EXAMPLE}})


# Positions in the event log and the cursors that carry them; every route reads them so.
Position = Annotated[int, _digits(MAX_POSITION)]
Cursor = Annotated[int, _digits(MAX_POSITION),
                   WithJsonSchema({"type": "string", "pattern": "^[0-9]{1,19}$"})]
QueryMoney = Annotated[int, _digits(MAX_MONEY)]

Sku = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", examples=["VIP-1M"])
ShownSku = Annotated[str, BeforeValidator(shown)]  # a tenant's SKU as it named it
Money = Field(ge=0, le=MAX_MONEY, description="integer minor units (1990 = ¥19.90)")
Currency = Field(default="CNY", pattern=r"^[A-Z]{3}$")
ChannelPrice = Annotated[Int, Field(ge=0, le=MAX_MONEY)]
ChannelName = Annotated[Text, Field(min_length=1, max_length=64)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PurchaseLimitIn(Body):
    quantity: Int = Field(ge=1, le=100_000)
    window_seconds: Int | None = Field(default=None, ge=1, le=10 * 365 * 86400)


class ComponentIn(Body):
    sku: str = Sku
    quantity: Int = Field(default=1, ge=1, le=100)


class ProductIn(Body):
    sku: str = Sku
    name: Text = Field(min_length=1, max_length=200, examples=["Video VIP 1 month"])
    delivery: Literal["card", "code", "topup"]
    price: Int = Money
    currency: str = Currency
    purchase_limit: PurchaseLimitIn | None = None
    commission_rates_bp: list[Annotated[Int, Field(ge=0, le=10_000)]] = Field(
        default_factory=list, max_length=3)
    allow_below_cost: bool = False
    channel_prices: dict[ChannelName, ChannelPrice] = Field(default_factory=dict, max_length=50,
                                           examples=[{"wechat": 1890}])
    components: list[ComponentIn] = Field(default_factory=list, max_length=20,
                                          description="a bundle (全家桶): its component SKUs")
    case_sensitive: bool | None = Field(
        default=None, description="whether `abc` and `ABC` are two codes: default true for "
        "card products, false for code products; generated codes always ignore case")
    recharge_account_pattern: Text | None = Field(
        default=None, min_length=1, max_length=200, examples=["mobile_cn"],
        description="topup products only: a preset (`mobile_cn`, `game_id`) or a regex the "
        "whole recharge account must match, in RE2 syntax (matched in linear time; no "
        "back-references or look-around); default `game_id`")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "sku": "VIP-1M", "name": "Video VIP 1 month", "delivery": "card", "price": 1990,
        "currency": "CNY", "purchase_limit": {"quantity": 2, "window_seconds": 86400},
        "commission_rates_bp": [500, 200, 100]}]})


class ChannelPriceIn(Body):
    price: Int = Money


class CodeIn(Body):
    code: Any = None
    pin: Any = None


class BatchIn(Body):
    supplier_id: Text = Field(min_length=1, max_length=64)
    unit_cost: Int = Money
    expires_at: Instant | None = None
    codes: list[CodeIn] = Field(max_length=100_000)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "supplier_id": "sup-1", "unit_cost": 1500,
        "codes": [{"code": "AQZX-7781-KKP0", "pin": "440921"}]}]})


class Rejected(BaseModel):
    index: int
    reason: Literal["duplicate", "invalid"]


class BatchOut(BaseModel):
    batch_id: str
    sku: ShownSku
    imported: int
    rejected: list[Rejected]


class GenerateIn(Body):
    count: Int = Field(ge=1, le=100_000)
    length: Int | None = Field(default=None, ge=1, le=128)
    charset: Text | None = Field(default=None, min_length=2, max_length=128)
    prefix: str = Field(default="", max_length=32, pattern=r"^[!-~]*$")
    postfix: str = Field(default="", max_length=32, pattern=r"^[!-~]*$")
    pattern: str | None = Field(default=None, min_length=1, max_length=128,
                                pattern=r"^[!-~]+$", examples=["####-####-####"])
    expires_at: Instant | None = None


class GeneratedOut(BaseModel):
    batch_id: str
    sku: ShownSku
    generated: int


class InventoryOut(BaseModel):
    sku: ShownSku
    total: int
    available: int
    reserved: int
    sold: int
    redeemed: int
    voided: int
    expired: int


class LookupIn(Body):
    code: Text = Field(min_length=1, max_length=256)


class CodeOut(BaseModel):
    code_id: str
    sku: ShownSku
    status: str
    batch_id: str
    origin: str
    order_id: str | None
    holder: str | None
    expires_at: datetime | None
    redemption_id: str | None
    redeemed_at: datetime | None
    redeemed_by: str | None
    terminal_id: str | None
    location: str | None
    version: int
    updated_at: datetime


class MerchantCodeOut(BaseModel):
    """A code as a merchant's counter sees it: enough to redeem, nothing of the buyer."""

    code_id: str
    sku: ShownSku
    status: str
    redeemed_at: datetime | None
    redeemed_by: str | None


class ReasonIn(Body):
    reason: Text = Field(min_length=1, max_length=500)


class RedeemIn(Body):
    code: Text = Field(min_length=1, max_length=256)
    merchant_id: Text = Field(min_length=1, max_length=64)
    terminal_id: Text | None = Field(default=None, max_length=64)
    location: Text | None = Field(default=None, max_length=200)


class RedemptionOut(BaseModel):
    redemption_id: str
    code_id: str
    sku: ShownSku
    redeemed_at: datetime
    merchant_id: str
    terminal_id: str | None
    location: str | None


class ItemIn(Body):
    sku: str = Sku
    quantity: Int = Field(ge=1, le=10_000)


class OrderIn(Body):
    buyer_id: Text = Field(min_length=1, max_length=128)
    items: list[ItemIn] = Field(min_length=1, max_length=50)
    channel: Text | None = Field(default=None, min_length=1, max_length=64)
    distributor_id: Text | None = Field(default=None, min_length=1, max_length=64)
    external_ref: Text | None = Field(default=None, min_length=1, max_length=128)
    recharge_account: Text | None = Field(
        default=None, min_length=1, max_length=64, examples=["13812345678"],
        description="a direct top-up (one unit of a topup product): the account the "
                    "supplier credits, matched against the product's pattern; kept sealed, "
                    "shown masked")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "buyer_id": "u-1001", "items": [{"sku": "VIP-1M", "quantity": 1}],
        "channel": "wechat", "external_ref": "shop-order-778"}, {
        "buyer_id": "u-1001", "items": [{"sku": "MOBILE-100", "quantity": 1}],
        "recharge_account": "13812345678", "external_ref": "shop-order-779"}]})


class PaymentIn(Body):
    payment_ref: Text = Field(min_length=1, max_length=128)
    amount: Int = Money
    currency: str = Currency
    provider: Text | None = Field(default=None, max_length=64)


class CancelIn(Body):
    reason: Text = Field(default="cancelled", max_length=500)


class OrderCodeOut(BaseModel):
    code_id: str
    sku: ShownSku
    status: str
    masked: str = Field(examples=["AQ********0"])


class ReleasedCodeOut(BaseModel):
    """A code the order held once and let go: expired, cancelled or refunded."""

    code_id: str
    sku: ShownSku
    why: Literal["expired", "cancelled", "refunded"]


class TopupAttemptOut(BaseModel):
    number: int
    reference: str = Field(description="ours, sent to the supplier: `<order_id>-<number>`")
    supplier_id: str
    outcome: Literal["succeeded", "failed"] | None = Field(
        description="none while the attempt might still succeed")
    started_at: datetime
    late_success: bool = Field(description="credited after we had given up on it")


class TopupSkipOut(BaseModel):
    """An offer passed over when an attempt started, and why."""

    supplier_id: str
    supplier_sku: str
    reason: str = Field(examples=[("circuit breaker open: 5 failed or unknown answers in a "
                                   "row from this supplier; skipped for 23 s more")])
    at: datetime
    before_attempt: int = Field(description="the number of the attempt started instead")


class TopupOut(BaseModel):
    """A direct top-up's fulfilment: every attempt at a supplier, and every offer skipped."""

    status: Literal["open", "needs_attention", "succeeded", "failed"]
    supplier_id: str | None = Field(description="the supplier that credited the account")
    attempts: list[TopupAttemptOut]
    skipped: list[TopupSkipOut] = Field(
        default=[], description="offers passed over, in priority order, each with why (a "
                                "skipped offer may still be tried later for this order)")


class OrderOut(BaseModel):
    order_id: str
    status: Literal["reserved", "delivered", "partially_refunded", "refunded", "cancelled",
                    "expired", "fulfilling", "needs_attention"]
    buyer_id: str
    amount: int
    currency: str
    items: list[dict[str, Any]]
    channel: str | None
    distributor_id: str | None
    external_ref: str | None
    expires_at: datetime
    placed_at: datetime
    codes: list[OrderCodeOut] = Field(description="the codes the order holds now")
    released: list[ReleasedCodeOut] = Field(description="codes it held once, and why not now")
    payments: list[dict[str, Any]]
    refunds: list[dict[str, Any]]
    recharge_account: str | None = Field(default=None, examples=["13****78"],
                                         description="a top-up's account, masked")
    topup: TopupOut | None = Field(default=None, description="a paid top-up's fulfilment")


MAX_REFUND_CODES = 10_000  # an order's units at most


class RefundIn(Body):
    code_ids: list[UUID] | None = Field(
        default=None, min_length=1, max_length=MAX_REFUND_CODES,
        description="codes to refund (a bundle unit's codes together); none: every "
                    "refundable code")
    reason: Text = Field(min_length=1, max_length=500)


class RefundOut(BaseModel):
    refund_id: str
    order_id: str
    amount: int
    currency: str
    code_ids: list[str]
    reason: str
    refunded_at: datetime


class RevealedCodeOut(BaseModel):
    code_id: str
    sku: ShownSku
    code: str
    pin: str | None


class RevealOut(BaseModel):
    order_id: str
    codes: list[RevealedCodeOut]


# -- Answers named in the OpenAPI contract -------------------------------------------------
# Kept apart from the request bodies above. Timestamps are serialised by `rfc3339`, the same
# function the orjson answers use, so every answer spells time one way.

from datetime import timezone  # noqa: E402

from pydantic import PlainSerializer, WithJsonSchema, field_validator  # noqa: E402

from api.responses import rfc3339  # noqa: E402

Timestamp = Annotated[
    datetime, PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time",
                    "examples": ["2026-11-23T10:22:23.123456Z"]}, mode="serialization")]
UUID_EXAMPLE = "6f1c2a9e-3b7d-5e2a-9c41-0d8b7e6f5a31"


def _example(**fields: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [fields]})


class Problem(BaseModel):
    """An error answer (RFC 9457 application/problem+json); `code` is stable."""

    type: str
    title: str
    status: int
    detail: str
    code: str

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "https://quanyi.dev/problems/already_redeemed", "title": "Conflict",
        "status": 409, "detail": f"code {UUID_EXAMPLE} was already redeemed",
        "code": "already_redeemed", "redeemed_at": "2026-11-23T10:22:23.123456Z",
        "merchant_id": "m-7", "redemption_id": UUID_EXAMPLE}]})


class PurchaseLimitOut(BaseModel):
    quantity: int
    window_seconds: int | None = None


class ComponentOut(BaseModel):
    sku: ShownSku
    quantity: int


class ProductOut(BaseModel):
    sku: ShownSku
    name: str
    delivery: Literal["card", "code", "topup"]
    price: int
    currency: str
    purchase_limit: PurchaseLimitOut | None
    commission_rates_bp: list[int]
    allow_below_cost: bool
    channel_prices: dict[str, int]
    components: list[ComponentOut]
    case_sensitive: bool = Field(description="whether codes are told apart by letter case")
    recharge_account_pattern: str | None = Field(
        default=None, description="topup products: what a recharge account must match")
    tenant: str | None = Field(default=None, description="the tenant it belongs to; none: "
                                                         "the platform's")
    created_at: Timestamp
    version: int

    model_config = _example(
        sku="VIP-1M", name="Video VIP 1 month", delivery="card", price=1990, currency="CNY",
        purchase_limit={"quantity": 2, "window_seconds": 86400},
        commission_rates_bp=[500, 200, 100], allow_below_cost=False,
        channel_prices={"wechat": 1890}, components=[], case_sensitive=True,
        recharge_account_pattern=None, created_at="2026-11-23T10:22:23.123456Z", version=2)


class BatchSummaryOut(BaseModel):
    batch_id: str
    origin: Literal["imported", "generated"]
    supplier_id: str | None
    unit_cost: int
    currency: str
    expires_at: Timestamp | None
    opened_at: Timestamp
    completed_at: Timestamp | None
    total: int
    available: int
    reserved: int
    sold: int
    redeemed: int
    voided: int
    expired: int


class BatchListOut(BaseModel):
    items: list[BatchSummaryOut]
    next_cursor: str | None

    model_config = _example(items=[{
        "batch_id": UUID_EXAMPLE, "origin": "imported", "supplier_id": "sup-1",
        "unit_cost": 1500, "currency": "CNY", "expires_at": None,
        "opened_at": "2026-11-23T10:22:23.123456Z", "completed_at": "2026-11-23T10:22:24.5Z",
        "total": 3, "available": 1, "reserved": 0, "sold": 1, "redeemed": 1, "voided": 0,
        "expired": 0}], next_cursor=None)


class HistoryEventOut(BaseModel):
    """One fact about a code; the event's own fields (never a secret) follow `actor`."""

    position: int
    type: str = Field(examples=["code.redeemed"])
    at: Timestamp
    actor: str | None

    model_config = ConfigDict(extra="allow")


class HistoryOut(BaseModel):
    """The code's events (`events`) and, apart, the ledger legs that name it (`postings`),
    each oldest first."""

    code_id: str
    events: list[HistoryEventOut]
    postings: list[EntryOut] = []

    model_config = _example(code_id=UUID_EXAMPLE, events=[
        {"position": 12, "type": "code.imported", "at": "2026-11-23T10:22:23.123456Z",
         "actor": "import", "sku": "VIP-1M", "batch_id": UUID_EXAMPLE, "origin": "imported",
         "expires_at": None},
        {"position": 40, "type": "code.redeemed", "at": "2026-11-24T08:01:02.000001Z",
         "actor": "key:1a2b3c4d5e6f", "redemption_id": UUID_EXAMPLE, "merchant_id": "m-7",
         "terminal_id": "t-1", "location": "Shanghai"}], postings=[
        {"txn_id": UUID_EXAMPLE, "leg": 4, "position": 31, "kind": "sale",
         "account_id": "expenses:cost_of_sales", "amount": 1000, "currency": "CNY",
         "memo": "cost", "code_id": UUID_EXAMPLE, "order_id": UUID_EXAMPLE,
         "refund_id": None, "payout_id": None, "settlement_id": None,
         "payment_ref": "wx-4200001234", "provider": "wechat",
         "at": "2026-11-23T10:23:01.000002Z"}])


def _in_utc(value: Any) -> Any:
    """The same value with every datetime in it moved to UTC (events keep what they got)."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value
    if isinstance(value, dict):
        return {key: _in_utc(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_in_utc(item) for item in value]
    return value


class EventOut(BaseModel):
    position: int
    type: str = Field(examples=["order.placed"])
    at: Timestamp
    stream_id: str
    version: int
    data: dict[str, Any] = Field(description="the event's own fields; never a secret")

    @field_validator("data")
    @classmethod
    def _utc(cls, data: dict[str, Any]) -> dict[str, Any]:
        return _in_utc(data)


class EventFeedOut(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")

    model_config = _example(items=[{
        "position": 41, "type": "code.redeemed", "at": "2026-11-24T08:01:02.000001Z",
        "stream_id": UUID_EXAMPLE, "version": 4,
        "data": {"redemption_id": UUID_EXAMPLE, "merchant_id": "m-7", "terminal_id": None,
                 "location": None, "actor": "key:1a2b3c4d5e6f"}}], next_cursor="41")


class ProjectionFailureOut(BaseModel):
    """The event the projection runner (or the audit follower) cannot get past."""

    position: int | None
    error: str = Field(description="the error's class")
    consecutive_failures: int
    last_success: datetime | None


class HealthOut(BaseModel):
    """Liveness; `degraded` (503) names the event a projection cannot get past."""

    status: str = Field(examples=["ok", "degraded", "unavailable"])
    store: Literal["sqlite", "postgres"]
    projection_lag: int | None = Field(default=None, description="events written but not yet "
                                       "projected (absent while `unavailable`)")
    position: int | None = Field(default=None, description="the last position in the event "
                                 "log (absent while `unavailable`)")
    detail: str | None = Field(default=None, description="why the store is `unavailable`")
    projection_failure: ProjectionFailureOut | None = None
    max_lag: int | None = Field(default=None, description="present when the lag exceeds it "
                                                          "(QUANYI_HEALTH_MAX_LAG)")
    audit_lag: int | None = Field(default=None, description="events written but not yet in "
                                                            "the audit tree")
    audit_failure: ProjectionFailureOut | None = None

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "ok", "store": "postgres", "projection_lag": 0, "position": 1042,
         "audit_lag": 0},
        {"status": "degraded", "store": "postgres", "projection_lag": 17, "position": 1059,
         "projection_failure": {"position": 1043, "error": "DataError",
                                "consecutive_failures": 12,
                                "last_success": "2026-11-23T10:22:23.123456Z"}}]})


# -- API keys (admin) ----------------------------------------------------------------

from engine.keys import MAX_BINDING, MAX_DAYS  # noqa: E402

Role = Literal["admin", "app", "merchant", "support", "finance"]


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    name: str = Field(min_length=1, max_length=100)
    merchant_id: str | None = Field(default=None, min_length=1, max_length=MAX_BINDING,
                                    description="merchant keys only; default: the name")
    tenant: str | None = Field(default=None, min_length=1, max_length=MAX_BINDING,
                               description="the tenant the key belongs to, whatever its role: it "
                                           "sees and changes only that tenant's things")
    expires_in_days: int | None = Field(default=None, ge=1, le=MAX_DAYS)
    expires_at: AwareDatetime | None = None


class KeyOut(BaseModel):
    key_id: str
    name: str
    role: str
    merchant_id: str | None
    tenant: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


class IssuedKeyOut(KeyOut):
    secret: str | None = Field(default=None, description=(
        "the API key itself: shown this once, never again; absent from the answer to a retry "
        "whose first answer was lost: the command committed, and the secret is not "
        "shown again (revoke or rotate if it never arrived)"))


class KeyListOut(BaseModel):
    items: list[KeyOut]
    next_cursor: str | None


# -- Distributors (分销) ----------------------------------------------------------------

from engine.ledger.distribution import MAX_NAME as MAX_DISTRIBUTOR_NAME  # noqa: E402
from engine.ledger.transactions import PART  # noqa: E402

DistributorId = Annotated[Text, Field(min_length=1, max_length=64, pattern=PART.pattern,
                                      description="names a ledger account: letters, digits, "
                                      "'.', '_' or '-'", examples=["shop-1"])]


class DistributorIn(Body):
    distributor_id: DistributorId
    name: Text = Field(min_length=1, max_length=MAX_DISTRIBUTOR_NAME)
    parent_id: DistributorId | None = Field(
        default=None, description="a registered distributor at level 1 or 2; none: a root")


class DistributorOut(BaseModel):
    distributor_id: str
    name: str
    parent_id: str | None
    level: int = Field(ge=1, le=3, description="1: a root; a tree has at most three levels")
    registered_at: Timestamp


# -- The ledger, payouts and settlements (finance) -----------------------------------------


PayeeId = Annotated[str, Field(min_length=1, max_length=64, pattern=PART.pattern,
                               examples=["d-1"])]
Ref = Annotated[Text, Field(min_length=1, max_length=128)]
Positive = Annotated[Int, Field(ge=1, le=MAX_MONEY, description="integer minor units")]
# An entries cursor: the last entry's log position and leg number.
EntryCursor = Annotated[str, Field(pattern=r"^[0-9]{1,18}\.[0-9]{1,9}$", examples=["41.3"])]
ACCOUNT_EXAMPLE = {"account_id": "liabilities:distributors:d-1", "type": "liabilities",
                   "currency": "CNY", "debits": 500, "credits": 2990, "balance": -2490}


class AccountOut(BaseModel):
    """An account's totals in one currency; balance = debits − credits."""

    account_id: str
    type: str = Field(description="assets, liabilities, equity, income or expenses")
    currency: str
    debits: int
    credits: int
    balance: int

    model_config = _example(**ACCOUNT_EXAMPLE)


class AccountListOut(BaseModel):
    items: list[AccountOut]
    next_cursor: str | None

    model_config = _example(items=[ACCOUNT_EXAMPLE], next_cursor=None)


class BalanceOut(BaseModel):
    account_id: str
    balance: int = Field(description="debits − credits: negative when owed (a liability)")
    currency: str
    as_of: Timestamp | None

    model_config = _example(account_id="liabilities:distributors:d-1", balance=-2490,
                            currency="CNY", as_of="2026-11-23T10:22:23.123456Z")


class EntryOut(BaseModel):
    """One leg: + debit, − credit; what caused its transaction in the link fields."""

    txn_id: str
    leg: int
    position: int
    kind: str
    account_id: str
    amount: int
    currency: str
    memo: str
    code_id: str | None
    order_id: str | None
    refund_id: str | None
    payout_id: str | None
    settlement_id: str | None
    payment_ref: str | None
    provider: str | None
    at: str = Field(examples=["2026-11-23T10:22:23.123456Z"])


ENTRY_EXAMPLE = {
    "txn_id": UUID_EXAMPLE, "leg": 7, "position": 41, "kind": "sale",
    "account_id": "liabilities:distributors:d-1", "amount": -99, "currency": "CNY",
    "memo": "commission", "code_id": None, "order_id": UUID_EXAMPLE, "refund_id": None,
    "payout_id": None, "settlement_id": None, "payment_ref": "wx-4200001234",
    "provider": "wechat", "at": "2026-11-23T10:22:23.123456Z"}


class EntryListOut(BaseModel):
    items: list[EntryOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")

    model_config = _example(items=[ENTRY_EXAMPLE], next_cursor="41.7")


class TrialBalanceOut(BaseModel):
    """Every account's balance; the debit balances' total always equals the credits'."""

    accounts: list[AccountOut]
    total_debits: int
    total_credits: int
    as_of: Timestamp | None

    model_config = _example(accounts=[ACCOUNT_EXAMPLE, {
        **ACCOUNT_EXAMPLE, "account_id": "expenses:commission", "type": "expenses",
        "debits": 2490, "credits": 0, "balance": 2490}], total_debits=2490,
        total_credits=2490, as_of=None)


class PayoutIn(Body):
    distributor_id: PayeeId
    amount: Positive
    currency: str = Currency
    payout_ref: Ref

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "distributor_id": "d-1", "amount": 2000, "currency": "CNY",
        "payout_ref": "bank-2026-11-23-001"}]})


class PayoutOut(BaseModel):
    payout_id: str
    distributor_id: str
    amount: int
    currency: str
    payout_ref: str
    paid_at: Timestamp

    model_config = _example(payout_id=UUID_EXAMPLE, distributor_id="d-1", amount=2000,
                            currency="CNY", payout_ref="bank-2026-11-23-001",
                            paid_at="2026-11-23T10:22:23.123456Z")


class SettlementIn(Body):
    amount: Positive
    currency: str = Currency
    settlement_ref: Ref

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "amount": 150000, "currency": "CNY", "settlement_ref": "bank-2026-11-23-002"}]})


class SettlementOut(BaseModel):
    settlement_id: str
    supplier_id: str
    amount: int
    currency: str
    settlement_ref: str
    paid_at: Timestamp

    model_config = _example(settlement_id=UUID_EXAMPLE, supplier_id="sup-1", amount=150000,
                            currency="CNY", settlement_ref="bank-2026-11-23-002",
                            paid_at="2026-11-23T10:22:23.123456Z")


# -- reconciliation and the journal (finance) ----------------------------------------------

class CommissionOut(BaseModel):
    distributor_id: str
    level: int = Field(description="1: the order's distributor; 2, 3: its parent, grandparent")
    amount: int = Field(description="commission less clawbacks, minor units")


class OrderReconciliationOut(BaseModel):
    """An order's money from its ledger legs, and whether its books agree."""

    order_id: str
    currency: str
    paid: int = Field(description="captured on the provider's clearing account")
    refunded: int = Field(description="paid back from the clearing account")
    revenue: int = Field(description="net credit on income:sales")
    cost: int = Field(description="net debit on cost of sales and write-offs")
    commissions: list[CommissionOut]
    margin: int = Field(description="revenue − cost − commissions")
    consistent: bool = Field(description="paid − refunded = revenue (+ a top-up's unearned "
                                         "payment), each level's commission "
                                         "= floor(net paid × rate), codes delivered − taken "
                                         "back = codes kept")
    flags: list[str] = Field(description="revenue_mismatch, commission_mismatch, "
                                         "units_mismatch, mixed_commission_rates, "
                                         "price_inverted, topup_credited_after_giving_up")


class SupplierDayOut(BaseModel):
    supplier_id: str
    currency: str
    units_delivered: int
    units_returned: int = Field(description="refunded codes put back on sale")
    topups_delivered: int = Field(default=0, description="direct top-ups it credited")
    cost_owed: int = Field(description="cost of codes and top-ups delivered less cost "
                                       "reversed")
    settled: int


class DistributorDayOut(BaseModel):
    distributor_id: str
    currency: str
    commission: int
    clawback: int
    paid_out: int


class ProviderDayOut(BaseModel):
    provider: str
    currency: str
    captured: int
    refunded: int


class DayTotalOut(BaseModel):
    currency: str
    units_delivered: int
    units_returned: int
    topups_delivered: int = 0
    cost_owed: int
    settled: int
    commission: int
    clawback: int
    paid_out: int
    captured: int
    refunded: int


class DailyStatementOut(BaseModel):
    """One UTC day of the ledger per supplier, distributor and payment provider."""

    date: str
    suppliers: list[SupplierDayOut]
    distributors: list[DistributorDayOut]
    providers: list[ProviderDayOut]
    totals: list[DayTotalOut]


class StatementLineOut(BaseModel):
    payment_ref: str | None
    type: Literal["capture", "refund"]
    amount: int


class AmountDifferenceOut(BaseModel):
    payment_ref: str
    type: Literal["capture", "refund"]
    statement: int
    ledger: int


class ProviderReconciliationOut(BaseModel):
    """A provider's statement against its clearing account over the statement's period."""

    provider: str
    period_from: str
    period_to: str
    matched: int
    missing_in_ledger: list[StatementLineOut]
    missing_in_statement: list[StatementLineOut]
    amount_differences: list[AmountDifferenceOut]


# -- Suppliers of direct top-ups (直充) -------------------------------------------------

from engine.topups.offers import MAX_PRIORITY  # noqa: E402
from engine.topups.suppliers import (  # noqa: E402
    MAX_CREDENTIAL,
    MAX_CREDENTIALS,
    MAX_ENDPOINT,
    MAX_OFFERS,  # noqa: E402
)
from engine.topups.suppliers import MAX_NAME as MAX_SUPPLIER_NAME  # noqa: E402

SupplierId = Annotated[Text, Field(min_length=1, max_length=64, pattern=PART.pattern,
                                   description="names a ledger account: letters, digits, "
                                   "'.', '_' or '-'", examples=["sup-1"])]
CredentialName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Credential = Annotated[Text, Field(min_length=1, max_length=MAX_CREDENTIAL)]


class SupplierIn(Body):
    supplier_id: SupplierId
    name: Text = Field(min_length=1, max_length=MAX_SUPPLIER_NAME)
    adapter: Text = Field(min_length=1, max_length=64,
                          description="the protocol it speaks (docs/suppliers.md): http-json")
    endpoint: Text = Field(min_length=1, max_length=MAX_ENDPOINT,
                           description="http(s) base URL; no user, password or query")
    credentials: dict[CredentialName, Credential] = Field(
        max_length=MAX_CREDENTIALS, description="sealed at once; never shown again. "
        "http-json needs api_key and callback_secret")


class SupplierOut(BaseModel):
    """A supplier as shown: its credentials' names, never their values."""

    supplier_id: str
    name: str
    adapter: str
    endpoint: str
    credential_names: list[str]
    registered_at: Timestamp


class OfferIn(Body):
    supplier_id: SupplierId
    supplier_sku: Text = Field(min_length=1, max_length=64,
                               description="the supplier's own SKU for this top-up")
    cost: Int = Field(ge=0, le=MAX_MONEY, description="what the supplier charges us")
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$",
                          description="the product's currency")
    priority: Int = Field(ge=0, le=MAX_PRIORITY, description="lower is tried first")


class OffersIn(Body):
    offers: list[OfferIn] = Field(max_length=MAX_OFFERS)


class OfferOut(BaseModel):
    supplier_id: str
    supplier_sku: str
    cost: int
    currency: str
    priority: int


class OffersOut(BaseModel):
    """A top-up SKU's offers, in the order suppliers are tried."""

    sku: ShownSku
    offers: list[OfferOut]


# -- Direct top-ups ------------------------------------------------------------------------

class ResolveTopupIn(Body):
    outcome: Literal["succeeded", "failed"] = Field(
        description="succeeded: the supplier credited the account (it is owed); failed: "
                    "it did not, and the next offer is tried")
    note: Text = Field(min_length=1, max_length=500, examples=["supplier confirmed by phone"])


class SupplierCallbackIn(BaseModel):
    """An http-json supplier's callback body (docs/suppliers.md), signed in its headers.
    Documentation only: the supplier's adapter reads the raw body and checks the signature
    over exactly those bytes."""

    reference: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="our attempt reference, as placed: `<order_id>-<number>` (the order's "
                    "UUID, a hyphen, the attempt's number from 1)")
    status: Literal["succeeded", "failed", "pending"]
    supplier_txn_id: str | None = Field(default=None, description="the supplier's own id")
    message: str | None = Field(default=None, description="for people; 200 characters kept")
    sequence: int | None = Field(
        default=None, ge=0, description="grows with every change of the top-up's status, "
        "so a receiver can tell the newer of two states; optional, and when sent a whole "
        "number of at least 0 (anything else: 400)")

    model_config = _example(reference="9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69-1",
                            status="succeeded", supplier_txn_id="sim-42", message=None,
                            sequence=2)


class SupplierCallbackOut(BaseModel):
    """What a supplier's callback did: it is acknowledged however often it comes, and
    needs sending only until it gets a 2xx."""

    reference: str
    outcome: str = Field(description="what the callback reported")
    result: Literal["recorded", "ignored"] = Field(
        description="recorded: kept on the attempt (deciding it if it was open); ignored: "
                    "no attempt of this supplier has this reference, nothing was kept, and "
                    "there is nothing to send again")
    topup_status: Literal["open", "needs_attention", "succeeded", "failed"] | None = Field(
        description="the top-up's status after it; null when ignored")

    model_config = _example(reference="9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69-1",
                            outcome="succeeded", result="recorded", topup_status="succeeded")


# -- dispute bundles (docs/audit.md, "The bundle") ------------------------------------------

class BundleSubjectOut(BaseModel):
    kind: Literal["order", "code"]
    id: str


class SignedHeadOut(BaseModel):
    """The log's size and root when the bundle was made, signed by the audit key."""

    tree_size: int
    root_hash: str = Field(description="SHA-256 root of the log's Merkle tree, hex")
    signed_at: str = Field(description="as signed: RFC 3339 UTC")
    signature: str = Field(description="Ed25519 signature of the head's message, base64")


class BundleStreamOut(BaseModel):
    originator_id: str
    versions: int = Field(description="how many events the stream holds: the bundle "
                                      "carries each of 1..versions")


class BundleEventOut(BaseModel):
    """One stored event exactly as the store holds it, and its proof of inclusion."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    state: str = Field(description="the stored bytes, base64 (secrets stay sealed)")
    leaf_index: int
    proof: list[str] = Field(description="RFC 9162 inclusion proof, leaf side first, hex")


class BundleClaimsOut(BaseModel):
    order: dict[str, Any] | None = Field(None, description="the order as GET /v1/orders/{id} "
                                                            "shows it, without masks")
    code: dict[str, Any] | None = Field(None, description="the code as GET /v1/codes/{id} "
                                                           "shows it")
    postings: list[EntryOut] = Field(description="the ledger read model's legs of it")


class BundleOut(BaseModel):
    """An order's or a code's events, proven in a signed head, and what the projections
    claim of it: checked offline by `quanyi audit verify-bundle`."""

    format: Literal["quanyi-dispute-bundle/1"]
    subject: BundleSubjectOut
    exported_at: datetime
    public_key: str = Field(description="the audit key's raw Ed25519 public key, base64")
    head: SignedHeadOut
    streams: list[BundleStreamOut]
    events: list[BundleEventOut]
    claims: BundleClaimsOut
