"""How a command route answers the retry of its Idempotency-Key once the command is known
to have committed (its receipt, engine/eventstore/receipts.py) but its first answer was never kept: a
kill -9 came between the two. The route declares it:

    @router.post("/{order_id}/cancel", response_model=OrderOut)
    @answers_from_receipt(lambda request, receipt: order_view(...))

and the retry gets the route's success status and the current representation of what the
command made or changed, read from the store; nothing runs again. An answer that carried a
secret (a key issued, a webhook secret made or rotated) is answered without it (``model``
names the representation without the secret): a secret is shown once, and the store keeps
it only hashed or sealed. A route that declares nothing is run again, which its own natural
id makes safe (an order's id derives from its key, an import's batch too, payments and
payouts have their refs; a reveal is recorded again, as the contract says).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import Scope

from api.problems import domain_problem
from engine.eventstore.receipts import CommandReceipt
from engine.kernel.errors import QuanyiError

View = Callable[[Request, CommandReceipt], Any]
JSON = "application/json"


@dataclass(frozen=True)
class ReceiptAnswer:
    view: View
    model: Any = None  # the answer's shape when it is not the route's response model


def answers_from_receipt(view: View, *, model: Any = None) -> Callable[[Any], Any]:
    """Declare how the route answers a retry of a command that committed (see above)."""
    def declare(endpoint: Any) -> Any:
        endpoint.receipt_answer = ReceiptAnswer(view, model)
        return endpoint
    return declare


class ReceiptSilent(LookupError):
    """The receipt names nothing of the kind the answer is made of: the command is run
    again, as a route that declares nothing is."""


def saved(request: Request, receipt: CommandReceipt, kind: str) -> Any:
    """The first aggregate of ``kind`` the command saved, as it is now."""
    found = receipt.ids_of(kind)
    if not found:
        raise ReceiptSilent(kind)
    return request.app.state.runtime.store.get(found[0], kind)


async def answer_from_receipt(scope: Scope, receipt: CommandReceipt
                              ) -> tuple[int, str, bytes] | None:
    """(status, content type, body) as the route declares, or None when it declares none."""
    route, params = _route_of(scope)
    declared = getattr(getattr(route, "endpoint", None), "receipt_answer", None)
    if route is None or declared is None:
        return None
    request = Request({**scope, "path_params": params})
    try:
        view = await run_in_threadpool(declared.view, request, receipt)
    except ReceiptSilent:
        return None
    except QuanyiError as exc:
        refused = domain_problem(exc)
        return refused.status_code, refused.media_type or JSON, bytes(refused.body)
    shape = TypeAdapter(declared.model or route.response_model)
    return route.status_code or 200, JSON, shape.dump_json(shape.validate_python(view))


def _route_of(scope: Scope) -> tuple[APIRoute | None, dict[str, Any]]:
    """The route the request is for, with its path parameters (as text)."""
    for context in iter_route_contexts(scope["app"].router.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            match, child = route.matches(scope)
            if match == Match.FULL:
                return route, child.get("path_params", {})
    return None, {}

