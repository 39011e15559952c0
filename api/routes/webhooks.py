"""Webhook endpoints (admin, app): register, list, show, disable, enable, rotate the secret;
each endpoint's delivery log and manual redelivery. A secret is shown once, when made."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from api.auth import require
from api.receipt_answers import answers_from_receipt, saved
from api.responses import OrjsonResponse
from api.schemas import Cursor
from api.webhook_schemas import (
    DeliveryListOut,
    DeliveryOut,
    DisableIn,
    LowStockIn,
    LowStockOut,
    WebhookIn,
    WebhookListOut,
    WebhookOut,
    WebhookSecretOut,
)
from engine.eventstore.receipts import CommandReceipt
from engine.kernel.tenancy import stock_key
from engine.keys import Principal

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
stock_router = APIRouter(prefix="/v1/products", tags=["catalog"])
OWNERS = require("app")


def _endpoint_saved(request: Request, receipt: CommandReceipt) -> dict[str, Any]:
    """The endpoint as it is now; a secret made or rotated was shown once, and is not
    shown again."""
    return saved(request, receipt, "webhook_endpoint").view()


@router.post("", status_code=201, response_model=WebhookSecretOut)
@answers_from_receipt(_endpoint_saved, model=WebhookOut)
def register_webhook(body: WebhookIn, request: Request,
                     who: Principal = Depends(OWNERS)) -> OrjsonResponse:
    """Register an endpoint for some event types; the answer shows its secret this once."""
    endpoint, secret = _webhooks(request).register(
        url=body.url, event_types=list(body.event_types), secret=body.secret, who=who)
    return OrjsonResponse({**endpoint.view(), "secret": secret}, status_code=201)


@router.get("", response_model=WebhookListOut)
def list_webhooks(request: Request, cursor: Cursor | None = Query(None),
                  limit: int = Query(100, ge=1, le=1000),
                  who: Principal = Depends(OWNERS)) -> dict[str, Any]:
    """The endpoints the key may see (an app key: its owner's), in the order registered."""
    runtime = request.app.state.runtime
    ids, more = runtime.webhooks.endpoints.listing(who.scope, cursor or 0, limit)
    endpoints = _webhooks(request).many([UUID(i) for i in ids])
    return {"items": [endpoint.view() for endpoint in endpoints],
            "next_cursor": str(more) if more is not None else None}


@router.get("/{endpoint_id}", response_model=WebhookOut)
def get_webhook(endpoint_id: UUID, request: Request,
                who: Principal = Depends(OWNERS)) -> dict[str, Any]:
    """One endpoint: its URL, event types, and whether (and why) it is disabled."""
    return _webhooks(request).get(endpoint_id, who).view()


@router.post("/{endpoint_id}/disable", response_model=WebhookOut)
@answers_from_receipt(_endpoint_saved)
def disable_webhook(endpoint_id: UUID, request: Request, body: DisableIn | None = None,
                    who: Principal = Depends(OWNERS)) -> dict[str, Any]:
    """Stop deliveries to an endpoint; enabling it resumes them where they stopped."""
    reason = (body or DisableIn()).reason
    return _webhooks(request).disable(endpoint_id, reason=reason, who=who).view()


@router.post("/{endpoint_id}/enable", response_model=WebhookOut)
@answers_from_receipt(_endpoint_saved)
def enable_webhook(endpoint_id: UUID, request: Request,
                   who: Principal = Depends(OWNERS)) -> dict[str, Any]:
    """Resume deliveries to a disabled endpoint, from the first one not delivered."""
    endpoint = _webhooks(request).enable(endpoint_id, who=who)
    request.app.state.runtime.webhooks.wake()
    return endpoint.view()


@router.post("/{endpoint_id}/rotate-secret", response_model=WebhookSecretOut)
@answers_from_receipt(_endpoint_saved, model=WebhookOut)
def rotate_webhook_secret(endpoint_id: UUID, request: Request,
                          who: Principal = Depends(OWNERS)) -> dict[str, Any]:
    """Replace an endpoint's signing secret; the new one is shown this once."""
    endpoint, secret = _webhooks(request).rotate_secret(endpoint_id, who=who)
    return {**endpoint.view(), "secret": secret}


@router.get("/{endpoint_id}/deliveries", response_model=DeliveryListOut)
def list_deliveries(endpoint_id: UUID, request: Request, cursor: Cursor | None = Query(None),
                    limit: int = Query(100, ge=1, le=1000),
                    who: Principal = Depends(OWNERS)) -> dict[str, Any]:
    """An endpoint's deliveries, newest first, each with its attempts and answers."""
    _webhooks(request).get(endpoint_id, who)
    items, more = request.app.state.runtime.webhooks.log.listing(str(endpoint_id), cursor,
                                                                 limit)
    return {"items": items, "next_cursor": str(more) if more is not None else None}


@router.post("/{endpoint_id}/deliveries/{delivery_id}/redeliver", status_code=202,
             response_model=DeliveryOut)
def redeliver(endpoint_id: UUID, delivery_id: UUID, request: Request,
              who: Principal = Depends(OWNERS)) -> OrjsonResponse:
    """Send a delivery again (same webhook-id and body), before the endpoint's later ones."""
    _webhooks(request).get(endpoint_id, who)
    fresh = request.app.state.runtime.webhooks.redeliver(str(endpoint_id), str(delivery_id))
    return OrjsonResponse(DeliveryOut.model_validate(fresh).model_dump(mode="json"),
                          status_code=202)


def _threshold_set(request: Request, receipt: CommandReceipt) -> dict[str, Any]:
    product = saved(request, receipt, "product")
    return {"sku": request.path_params["sku"],
            "low_stock_threshold": product.low_stock_threshold, "version": product.version}


@stock_router.put("/{sku}/low-stock", response_model=LowStockOut)
@answers_from_receipt(_threshold_set)
def set_low_stock(sku: str, body: LowStockIn, request: Request,
                  who: Principal = Depends(require("app"))) -> dict[str, Any]:
    """Set (or clear) the available count below which a SKU's stock is low (stock.low)."""
    product = request.app.state.runtime.engine.catalog.set_low_stock_threshold(
        sku=stock_key(who.tenant, sku), threshold=body.threshold, actor=who.actor)
    return {"sku": sku, "low_stock_threshold": product.low_stock_threshold,
            "version": product.version}


def _webhooks(request: Request) -> Any:
    return request.app.state.runtime.engine.webhooks
