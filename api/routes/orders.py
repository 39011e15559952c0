"""Orders: reserve, pay and deliver, cancel, reveal, export, refund."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.auth import require
from api.csv_cells import csv_text
from api.idempotency import carries_secrets
from api.receipt_answers import answers_from_receipt, saved
from api.responses import OrjsonResponse
from api.schemas import (
    CancelIn,
    Instant,
    OrderIn,
    OrderOut,
    PaymentIn,
    RefundIn,
    RefundOut,
    ResolveTopupIn,
    RevealOut,
    as_of_query,
)
from engine.eventstore.receipts import CommandReceipt
from engine.kernel.errors import NotFound
from engine.kernel.tenancy import shown, stock_key
from engine.keys import Principal
from engine.sales.orders import Order
from engine.sales.refunds import refund_view
from replay.as_of import order_at

router = APIRouter(prefix="/v1/orders", tags=["orders"])


def order_view(request: Request, order: Order, *, just_saved: bool = False,
               codes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The order as answered; ``codes`` (masked) when given, else its codes now."""
    engine = request.app.state.runtime.engine
    orders = engine.orders
    topup = engine.topups.find(order.id) if order.is_topup else None
    if codes is None:
        codes = orders.masked_codes(order, just_saved=just_saved)
    return {
        "order_id": str(order.id), "status": order.status, "buyer_id": order.buyer_id,
        "amount": order.amount, "currency": order.currency,
        "items": [{**item, "sku": shown(item["sku"])} for item in order.items],
        "channel": order.channel,
        "distributor_id": order.distributor_id and shown(order.distributor_id),
        "external_ref": order.external_ref, "expires_at": order.expires_at,
        "placed_at": order.created_on, "codes": codes,
        "released": order.released, "payments": order.payments, "refunds": order.refunds,
        "recharge_account": order.recharge["masked"] if order.recharge else None,
        "topup": topup.view() if topup else None,
    }


@router.post("", status_code=201, response_model=OrderOut)
def place(body: OrderIn, request: Request,
          who: Principal = Depends(require("app"))) -> OrjsonResponse:
    """Reserve every unit of every item, or nothing; unpaid reservations expire."""
    order = request.app.state.runtime.engine.orders.place(
        buyer_id=body.buyer_id,
        items=[{**i.model_dump(), "sku": stock_key(who.tenant, i.sku)} for i in body.items],
        channel=body.channel,
        distributor_id=body.distributor_id and stock_key(who.tenant, body.distributor_id),
        external_ref=body.external_ref, actor=who.actor, owner=who.owner,
        recharge_account=body.recharge_account,
        request_key=request.headers.get("idempotency-key"))
    return OrjsonResponse(order_view(request, order, just_saved=True), status_code=201)


@router.get("/{order_id}", response_model=OrderOut)
def get_order(order_id: UUID, request: Request, as_of: Instant | None = as_of_query(),
              who: Principal = Depends(require("app", "support", "finance"))) -> dict[str, Any]:
    """The order with its payments, refunds and codes (masked), now or as its own events
    (and its codes' events) made it at `as_of`."""
    orders = request.app.state.runtime.engine.orders
    if as_of is None:
        return order_view(request, orders.get(order_id, who.scope))
    order, codes = order_at(request.app.state.runtime.store, order_id, as_of)
    if not order.belongs_to(who.scope):
        raise NotFound(f"no order {order_id}")
    return order_view(request, order, codes=orders.masked(codes))


@router.post("/{order_id}/payments", response_model=OrderOut)
def pay(order_id: UUID, body: PaymentIn, request: Request,
        who: Principal = Depends(require("app"))) -> OrjsonResponse:
    """Capture a payment and deliver one distinct code per unit; the same payment_ref
    again answers the same, and pays once."""
    order = request.app.state.runtime.engine.orders.pay(
        order_id=order_id, payment_ref=body.payment_ref, amount=body.amount,
        currency=body.currency, provider=body.provider, actor=who.actor, owner=who.scope)
    return OrjsonResponse(order_view(request, order, just_saved=True))


def _order_changed(request: Request, receipt: CommandReceipt) -> dict[str, Any]:
    return order_view(request, saved(request, receipt, "order"))


def _refund_made(request: Request, receipt: CommandReceipt) -> dict[str, Any]:
    """The refund of the codes the command saved (a refund's codes are never refunded
    again, so it is the one)."""
    order, codes = saved(request, receipt, "order"), {str(c) for c in receipt.ids_of("code")}
    made = next(r for r in reversed(order.refunds) if set(r["code_ids"]) == codes)
    return refund_view(order, made["refund_id"])


@router.post("/{order_id}/cancel", response_model=OrderOut)
@answers_from_receipt(_order_changed)
def cancel(order_id: UUID, request: Request, body: CancelIn | None = None,
           who: Principal = Depends(require("app"))) -> dict[str, Any]:
    """Cancel an unpaid order; its reservations go back to the pool."""
    order = request.app.state.runtime.engine.orders.cancel(
        order_id=order_id, reason=(body or CancelIn()).reason, actor=who.actor,
        owner=who.scope)
    return order_view(request, order)


def _order_resolved(request: Request, receipt: CommandReceipt) -> dict[str, Any]:
    """The order now (a decision may save only the top-up's fulfilment)."""
    orders = request.app.state.runtime.engine.orders
    return order_view(request, orders.get(UUID(request.path_params["order_id"]),
                                          request.state.principal.scope))


@router.post("/{order_id}/topup/resolve", response_model=OrderOut)
@answers_from_receipt(_order_resolved)
def resolve_topup(order_id: UUID, body: ResolveTopupIn, request: Request,
                  who: Principal = Depends(require("support"))) -> dict[str, Any]:
    """Support's decision on a top-up that needs attention (its supplier never answered for
    sure): succeeded delivers it; failed tries the next offer, or refunds."""
    engine = request.app.state.runtime.engine
    order = engine.orders.get(order_id, who.scope)
    engine.topups.resolve(order=order, outcome=body.outcome, note=body.note, actor=who.actor)
    return order_view(request, engine.orders.get(order_id, who.scope))


@router.post("/{order_id}/reveal", response_model=RevealOut)
def reveal(order_id: UUID, request: Request, response: Response,
           who: Principal = Depends(require("app"))) -> dict[str, Any]:
    """The codes and PINs of a delivered order; each code's history records the reveal,
    a replay of the same Idempotency-Key too."""
    codes = request.app.state.runtime.engine.orders.reveal(
        order_id=order_id, actor=who.actor, client_address=_client(request),
        owner=who.scope)
    carries_secrets(request)
    response.headers["Cache-Control"] = "no-store"
    return {"order_id": str(order_id), "codes": codes}


@router.post("/{order_id}/refunds", status_code=201, response_model=RefundOut)
@answers_from_receipt(_refund_made)
def refund(order_id: UUID, body: RefundIn, request: Request,
           who: Principal = Depends(require("app"))) -> OrjsonResponse:
    """Refund the named codes, or every refundable one: money back, codes back on sale
    (never revealed) or voided and written off (revealed)."""
    code_ids = None if body.code_ids is None else [str(c) for c in body.code_ids]
    done = request.app.state.runtime.engine.orders.refund(
        order_id=order_id, code_ids=code_ids, reason=body.reason, actor=who.actor,
        owner=who.scope)
    return OrjsonResponse(done, status_code=201)


@router.get("/{order_id}/codes.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {
                "schema": {"type": "string"},
                "example": "code_id,sku,code,pin\r\n0b6c3f5e-8d7a-5c21-b9e4-7a1d2c3e4f50,"
                           "VIP-1M,AQZX-7781-KKP0,440921\r\n"}}}})
def export_codes(order_id: UUID, request: Request,
                 who: Principal = Depends(require("app"))) -> Response:
    """Every code of a (B2B) order as CSV for distribution; audited as a reveal."""
    codes = request.app.state.runtime.engine.orders.reveal(
        order_id=order_id, actor=who.actor, client_address=_client(request),
        owner=who.scope)
    text = csv_text(["code_id", "sku", "code", "pin"],
                    [(c["code_id"], c["sku"], c["code"], c["pin"] or "") for c in codes])
    return Response(text, media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="order-{order_id}.csv"',
        "Cache-Control": "no-store"})


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None
