"""Upstream suppliers of direct top-ups (直充) and the offers that say which of them fulfil
each top-up SKU. Registering a supplier is the platform operator's (admin) business: its
credentials are sealed at once and never shown again. A supplier is its registering key's
tenant's: a tenant-bound key sees only its tenant's suppliers, and its offers name only
those."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from api.auth import require
from api.receipt_answers import answers_from_receipt, saved
from api.schemas import OffersIn, OffersOut, SupplierIn, SupplierOut
from engine.eventstore.receipts import CommandReceipt
from engine.kernel.money import Money
from engine.kernel.tenancy import stock_key
from engine.keys import Principal
from engine.topups.offers import TopupOffer

router = APIRouter(tags=["suppliers"])


@router.post("/v1/suppliers", status_code=201, response_model=SupplierOut)
@answers_from_receipt(lambda request, receipt: saved(request, receipt, "supplier").view())
def register_supplier(body: SupplierIn, request: Request,
                      who: Principal = Depends(require("admin"))) -> dict[str, Any]:
    """Register a supplier and seal its credentials; the same registration again answers
    the first one. The supplier is the key's tenant's (the platform's without one)."""
    supplier = request.app.state.runtime.engine.suppliers.register(
        supplier_id=body.supplier_id, name=body.name, adapter=body.adapter,
        endpoint=body.endpoint, credentials=body.credentials, actor=who.actor,
        tenant=who.tenant)
    return supplier.view()


@router.get("/v1/suppliers/{supplier_id}", response_model=SupplierOut)
def get_supplier(supplier_id: str, request: Request,
                 who: Principal = Depends(require("app", "finance", "support"))
                 ) -> dict[str, Any]:
    """A supplier: its protocol, endpoint and credentials' names (never their values)."""
    suppliers = request.app.state.runtime.engine.suppliers
    return suppliers.get(supplier_id, viewer=who.tenant).view()


def _offers_set(request: Request, receipt: CommandReceipt) -> dict[str, Any]:
    sku = request.path_params["sku"]
    tenant = request.state.principal.tenant
    return _offers_view(sku, request.app.state.runtime.engine.suppliers.offers_for(
        stock_key(tenant, sku)))


@router.put("/v1/products/{sku}/offers", response_model=OffersOut)
@answers_from_receipt(_offers_set)
def set_offers(sku: str, body: OffersIn, request: Request,
               who: Principal = Depends(require("app"))) -> dict[str, Any]:
    """Replace a top-up SKU's supplier offers (409 for a SKU that is not a top-up)."""
    offers = [TopupOffer(o.supplier_id, o.supplier_sku, Money(o.cost, o.currency), o.priority)
              for o in body.offers]
    suppliers = request.app.state.runtime.engine.suppliers
    return _offers_view(sku, suppliers.set_offers(stock_key(who.tenant, sku), offers,
                                                  who.actor))


@router.get("/v1/products/{sku}/offers", response_model=OffersOut)
def get_offers(sku: str, request: Request,
               who: Principal = Depends(require("app", "finance", "support"))
               ) -> dict[str, Any]:
    """A top-up SKU's supplier offers, in the order they are tried."""
    engine = request.app.state.runtime.engine
    product = engine.catalog.get(stock_key(who.tenant, sku))
    return _offers_view(product.sku, engine.suppliers.offers_for(product.sku))


def _offers_view(sku: str, offers: list[TopupOffer]) -> dict[str, Any]:
    return {"sku": sku, "offers": [
        {"supplier_id": o.supplier_id, "supplier_sku": o.supplier_sku,
         "cost": o.cost.amount, "currency": o.cost.currency, "priority": o.priority}
        for o in offers]}
