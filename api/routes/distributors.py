"""Distributors (分销): a platform-wide tree of at most three levels that earns commission
on the sales it brings. Registering one earns nothing and posts nothing to the ledger."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from api.auth import require
from api.schemas import DistributorIn, DistributorOut
from engine.keys import Principal

router = APIRouter(prefix="/v1/distributors", tags=["distribution"])


@router.post("", status_code=201, response_model=DistributorOut)
def register_distributor(body: DistributorIn, request: Request,
                         who: Principal = Depends(require("app"))) -> dict[str, Any]:
    """Register a distributor under an optional parent (at most three levels); the same
    registration again answers the first one."""
    distributor = request.app.state.runtime.engine.distribution.register(
        distributor_id=body.distributor_id, name=body.name, parent_id=body.parent_id,
        actor=who.actor)
    return distributor.view()


@router.get("/{distributor_id}", response_model=DistributorOut)
def get_distributor(distributor_id: str, request: Request,
                    _: Principal = Depends(require("app", "finance", "support"))
                    ) -> dict[str, Any]:
    """A distributor, its parent and its level in the tree."""
    return request.app.state.runtime.engine.distribution.get(distributor_id).view()
