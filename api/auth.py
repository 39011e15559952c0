"""Bearer API keys and roles.

Who is calling is settled before anything else looks at the request: a pure ASGI middleware
authenticates every `/v1/` request and answers 401 before the route runs - so before its body
is parsed, and a malformed body without a key is a 401, not a 422. It leaves the Principal in
``scope["state"]["principal"]`` (``request.state.principal`` to a route, readable by the
middlewares inside it); the `require()` dependency then checks the role, and lets a platform
key act in the tenant its `Quanyi-Tenant` header names (a tenant's key always acts in its
own tenant, whatever the header says).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import ApiProblem, problem
from engine.keys import Principal

CHALLENGE = {"WWW-Authenticate": "Bearer"}
PROTECTED = "/v1/"
# a supplier's callback carries no API key: its adapter checks the supplier's signature
SUPPLIER_CALLBACK = re.compile(r"^/v1/suppliers/[A-Za-z0-9][A-Za-z0-9._-]{0,63}/callbacks$")
UNAUTHORIZED = "a valid API key is required"
TENANT_HEADER = "quanyi-tenant"


def bearer_token(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer ...` header, or None."""
    for name, value in scope["headers"]:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class AuthMiddleware:
    """Answers 401 to a `/v1/` request without a valid key; names the caller otherwise."""

    def __init__(self, app: ASGIApp, runtime: Any) -> None:
        self.app = app
        self.keys = runtime.engine.keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED) \
                or _supplier_callback(scope):
            return await self.app(scope, receive, send)
        token = bearer_token(scope)
        # a key not seen lately is read from the store: off the event loop
        principal = None if token is None else await run_in_threadpool(
            self.keys.authenticate, token)
        if principal is None:
            return await problem(401, "unauthorized", UNAUTHORIZED, CHALLENGE)(
                scope, receive, send)
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def _supplier_callback(scope: Scope) -> bool:
    return scope["method"] == "POST" and SUPPLIER_CALLBACK.fullmatch(scope["path"]) is not None


def require(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency admitting keys of the given roles (admin is always admitted)."""

    async def dependency(request: Request) -> Principal:
        principal = request.scope.get("state", {}).get("principal")
        if principal is None:  # a route outside /v1/, which the middleware leaves alone
            raise ApiProblem(401, "unauthorized", UNAUTHORIZED, CHALLENGE)
        if principal.role != "admin" and principal.role not in roles:
            raise ApiProblem(403, "forbidden",
                             f"role {principal.role} may not do this; needs {', '.join(roles)}")
        named: Principal = principal.acting_in(request.headers.get(TENANT_HEADER))
        return named

    return dependency
