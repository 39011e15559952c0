"""Request and response bodies of the HTTP API (money: integer minor units)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Sku = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", examples=["VIP-1M"])
Money = Field(ge=0, le=10**12, description="integer minor units (1990 = ¥19.90)")
Currency = Field(default="CNY", pattern=r"^[A-Z]{3}$")
ChannelPrice = Annotated[int, Field(ge=0, le=10**12)]
ChannelName = Annotated[str, Field(min_length=1, max_length=64)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PurchaseLimitIn(Body):
    quantity: int = Field(ge=1, le=100_000)
    window_seconds: int | None = Field(default=None, ge=1, le=10 * 365 * 86400)


class ComponentIn(Body):
    sku: str = Sku
    quantity: int = Field(default=1, ge=1, le=100)


class ProductIn(Body):
    sku: str = Sku
    name: str = Field(min_length=1, max_length=200, examples=["Video VIP 1 month"])
    delivery: Literal["card", "code", "topup"]
    price: int = Money
    currency: str = Currency
    purchase_limit: PurchaseLimitIn | None = None
    commission_rates_bp: list[Annotated[int, Field(ge=0, le=10_000)]] = Field(
        default_factory=list, max_length=3)
    allow_below_cost: bool = False
    channel_prices: dict[ChannelName, ChannelPrice] = Field(default_factory=dict, max_length=50,
                                           examples=[{"wechat": 1890}])
    components: list[ComponentIn] = Field(default_factory=list, max_length=20,
                                          description="a bundle (全家桶): its component SKUs")
    case_sensitive: bool | None = Field(
        default=None, description="whether `abc` and `ABC` are two codes: default true for "
        "card products, false for code products; generated codes always ignore case")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "sku": "VIP-1M", "name": "Video VIP 1 month", "delivery": "card", "price": 1990,
        "currency": "CNY", "purchase_limit": {"quantity": 2, "window_seconds": 86400},
        "commission_rates_bp": [500, 200, 100]}]})


class ChannelPriceIn(Body):
    price: int = Money


class CodeIn(Body):
    code: Any = None
    pin: Any = None


class BatchIn(Body):
    supplier_id: str = Field(min_length=1, max_length=64)
    unit_cost: int = Money
    expires_at: AwareDatetime | None = None
    codes: list[CodeIn] = Field(max_length=100_000)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "supplier_id": "sup-1", "unit_cost": 1500,
        "codes": [{"code": "AQZX-7781-KKP0", "pin": "440921"}]}]})


class Rejected(BaseModel):
    index: int
    reason: Literal["duplicate", "invalid"]


class BatchOut(BaseModel):
    batch_id: str
    sku: str
    imported: int
    rejected: list[Rejected]


class GenerateIn(Body):
    count: int = Field(ge=1, le=100_000)
    length: int | None = Field(default=None, ge=1, le=128)
    charset: str | None = Field(default=None, min_length=2, max_length=128)
    prefix: str = Field(default="", max_length=32, pattern=r"^[!-~]*$")
    postfix: str = Field(default="", max_length=32, pattern=r"^[!-~]*$")
    pattern: str | None = Field(default=None, min_length=1, max_length=128,
                                pattern=r"^[!-~]+$", examples=["####-####-####"])
    expires_at: AwareDatetime | None = None


class GeneratedOut(BaseModel):
    batch_id: str
    sku: str
    generated: int


class InventoryOut(BaseModel):
    sku: str
    total: int
    available: int
    reserved: int
    sold: int
    redeemed: int
    voided: int
    expired: int


class LookupIn(Body):
    code: str = Field(min_length=1, max_length=256)


class CodeOut(BaseModel):
    code_id: str
    sku: str
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
    sku: str
    status: str
    redeemed_at: datetime | None
    redeemed_by: str | None


class ReasonIn(Body):
    reason: str = Field(min_length=1, max_length=500)


class RedeemIn(Body):
    code: str = Field(min_length=1, max_length=256)
    merchant_id: str = Field(min_length=1, max_length=64)
    terminal_id: str | None = Field(default=None, max_length=64)
    location: str | None = Field(default=None, max_length=200)


class RedemptionOut(BaseModel):
    redemption_id: str
    code_id: str
    sku: str
    redeemed_at: datetime
    merchant_id: str
    terminal_id: str | None
    location: str | None


class ItemIn(Body):
    sku: str = Sku
    quantity: int = Field(ge=1, le=10_000)


class OrderIn(Body):
    buyer_id: str = Field(min_length=1, max_length=128)
    items: list[ItemIn] = Field(min_length=1, max_length=50)
    channel: str | None = Field(default=None, min_length=1, max_length=64)
    distributor_id: str | None = Field(default=None, min_length=1, max_length=64)
    external_ref: str | None = Field(default=None, min_length=1, max_length=128)

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "buyer_id": "u-1001", "items": [{"sku": "VIP-1M", "quantity": 1}],
        "channel": "wechat", "external_ref": "shop-order-778"}]})


class PaymentIn(Body):
    payment_ref: str = Field(min_length=1, max_length=128)
    amount: int = Money
    currency: str = Currency
    provider: str | None = Field(default=None, max_length=64)


class CancelIn(Body):
    reason: str = Field(default="cancelled", max_length=500)


class OrderCodeOut(BaseModel):
    code_id: str
    sku: str
    status: str
    masked: str = Field(examples=["AQ********0"])


class OrderOut(BaseModel):
    order_id: str
    status: Literal["reserved", "delivered", "partially_refunded", "refunded", "cancelled",
                    "expired"]
    buyer_id: str
    amount: int
    currency: str
    items: list[dict[str, Any]]
    channel: str | None
    distributor_id: str | None
    external_ref: str | None
    expires_at: datetime
    placed_at: datetime
    codes: list[OrderCodeOut]
    payments: list[dict[str, Any]]
    refunds: list[dict[str, Any]]


class RevealedCodeOut(BaseModel):
    code_id: str
    sku: str
    code: str
    pin: str | None


class RevealOut(BaseModel):
    order_id: str
    codes: list[RevealedCodeOut]
