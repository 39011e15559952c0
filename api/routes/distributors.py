"""Distributors (分销): a platform-wide tree of at most three levels that earns commission
on the sales it brings. Registering one earns nothing and posts nothing to the ledger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from api.auth import require
from api.schemas import DistributorIn, DistributorOut
from engine.kernel.tenancy import shown, stock_key
from engine.keys import Principal

router = APIRouter(prefix="/v1/distributors", tags=["distribution"])


@router.post("", status_code=201, response_model=DistributorOut)
def register_distributor(body: DistributorIn, request: Request,
                         who: Principal = Depends(require("app"))) -> dict[str, Any]:
    """Register a distributor under an optional parent (at most three levels); the same
    registration again answers the first one."""
    parent_id = None if body.parent_id is None else stock_key(who.tenant, body.parent_id)
    distributor = request.app.state.runtime.engine.distribution.register(
        distributor_id=stock_key(who.tenant, body.distributor_id), name=body.name,
        parent_id=parent_id, actor=who.actor)
    return _view(distributor)


@router.get("/{distributor_id}", response_model=DistributorOut)
def get_distributor(distributor_id: str, request: Request,
                    who: Principal = Depends(require("app", "finance", "support"))
                    ) -> dict[str, Any]:
    """A distributor, its parent and its level in the tree."""
    distribution = request.app.state.runtime.engine.distribution
    return _view(distribution.get(stock_key(who.tenant, distributor_id)))


def _view(distributor: Any) -> dict[str, Any]:
    """A distributor as its tenant named it."""
    view: dict[str, Any] = distributor.view()
    return {**view, "distributor_id": shown(view["distributor_id"]),
            "parent_id": view["parent_id"] and shown(view["parent_id"])}
