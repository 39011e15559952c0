"""Request and answer models of webhook endpoints, their deliveries and low-stock thresholds
(kept beside, not inside, api/schemas.py: one module per area as the API grows)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import Body, Int, Text, Timestamp
from engine.catalog.products import MAX_THRESHOLD
from engine.webhooks.endpoints import EVENT_TYPES, MAX_REASON
from engine.webhooks.urls import MAX_URL

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class WebhookIn(Body):
    url: str = Field(min_length=1, max_length=MAX_URL,
                     description="http(s) URL receiving POSTs signed per Standard Webhooks; "
                                 "a public host unless the server allows private ones")
    event_types: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))
    secret: str | None = Field(default=None, min_length=1, max_length=200,
                               description="`whsec_` and base64 of 24-64 bytes; generated "
                                           "when absent. Shown in the answer this once.")


class DisableIn(Body):
    reason: Text = Field(default="disabled by its owner", min_length=1, max_length=MAX_REASON)


class LowStockIn(Body):
    threshold: Int | None = Field(ge=1, le=MAX_THRESHOLD, description=(
        "stock.low fires once when the available count falls below it; null clears it"))


class WebhookOut(BaseModel):
    endpoint_id: str
    url: str
    event_types: list[str]
    owner: str
    status: Literal["enabled", "disabled"]
    disabled_reason: str | None
    disabled_at: Timestamp | None
    failing_since: Timestamp | None = Field(description="when the deliveries that disabled "
                                                        "it began to fail")
    created_at: Timestamp
    secret_rotated_at: Timestamp | None
    version: int


class WebhookSecretOut(WebhookOut):
    secret: str | None = Field(default=None, description=(
        "the signing secret: shown this once, never again; absent from the answer to a retry "
        "whose first answer was lost: the command committed, and the secret is not "
        "shown again (revoke or rotate if it never arrived)"))


class WebhookListOut(BaseModel):
    items: list[WebhookOut]
    next_cursor: str | None


class AttemptOut(BaseModel):
    attempt: int
    at: Timestamp
    status_code: int | None = Field(description="the receiver's answer; null: none came")
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    delivery_id: str
    message_id: str = Field(description="the `webhook-id` header: the same on every retry "
                                        "and redelivery")
    event_type: str
    position: int = Field(description="the event's position in the log")
    status: Literal["pending", "delivered"]
    attempts: list[AttemptOut]
    next_attempt_at: Timestamp | None
    last_status_code: int | None
    last_error: str | None
    created_at: Timestamp
    delivered_at: Timestamp | None
    redelivery_of: str | None
    payload: dict[str, Any]


class DeliveryListOut(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class LowStockOut(BaseModel):
    sku: str
    low_stock_threshold: int | None
    version: int


ENDPOINT_EXAMPLE: dict[str, Any] = {
    "endpoint_id": "3b1f6c1e-0d7a-4c55-9a6e-2f1d8c7b6a50",
    "url": "https://shop.example.com/hooks/quanyi",
    "event_types": ["order.delivered", "order.refunded", "stock.low"], "owner": "tenant:shop-1",
    "status": "enabled", "disabled_reason": None, "disabled_at": None, "failing_since": None,
    "created_at": "2026-11-23T10:22:23.123456Z", "secret_rotated_at": None, "version": 1}
DELIVERY_EXAMPLE: dict[str, Any] = {
    "delivery_id": "0c5e7d2a-6b1f-5c34-8e9d-1a2b3c4d5e6f",
    "message_id": "msg_5f0e8a3c9b7d41e6a2c4b8d0f1e3a5c7", "event_type": "order.delivered",
    "position": 4711, "status": "delivered", "attempts": [
        {"attempt": 1, "at": "2026-11-23T10:23:01.500000Z", "status_code": 503,
         "error": "answered HTTP 503", "duration_ms": 41},
        {"attempt": 2, "at": "2026-11-23T10:23:08.100000Z", "status_code": 200,
         "error": None, "duration_ms": 38}],
    "next_attempt_at": None, "last_status_code": 200, "last_error": None,
    "created_at": "2026-11-23T10:23:01.400000Z",
    "delivered_at": "2026-11-23T10:23:08.100000Z", "redelivery_of": None,
    "payload": {"type": "order.delivered", "timestamp": "2026-11-23T10:23:01.000002Z",
                "data": {"order_id": "9d2e4b61-7c3a-4f85-a0b9-1e2d3c4b5a69",
                         "external_ref": "shop-order-778", "payment_ref": "wx-4200001234",
                         "amount": 1990, "currency": "CNY", "late": False,
                         "codes": [{"code_id": "0b6c3f5e-8d7a-5c21-b9e4-7a1d2c3e4f50",
                                    "sku": "VIP-1M"}]}}}
EXAMPLES: dict[type[BaseModel], dict[str, Any]] = {
    WebhookIn: {"url": "https://shop.example.com/hooks/quanyi",
                "event_types": ["order.delivered", "order.refunded", "stock.low"]},
    DisableIn: {"reason": "maintenance of the receiving service"},
    LowStockIn: {"threshold": 50},
    WebhookOut: ENDPOINT_EXAMPLE,
    WebhookSecretOut: {**ENDPOINT_EXAMPLE, "secret": "whsec_<shown once>"},
    WebhookListOut: {"items": [ENDPOINT_EXAMPLE], "next_cursor": None},
    DeliveryOut: DELIVERY_EXAMPLE,
    DeliveryListOut: {"items": [DELIVERY_EXAMPLE], "next_cursor": "4711000"},
    LowStockOut: {"sku": "VIP-1M", "low_stock_threshold": 50, "version": 3},
}
