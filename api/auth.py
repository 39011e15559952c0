"""Bearer API keys and roles."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from api.problems import ApiProblem
from engine.keys import Principal

CHALLENGE = {"WWW-Authenticate": "Bearer"}


def principal_of(request: Request) -> Principal | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return request.app.state.runtime.engine.keys.authenticate(token.strip())


def require(*roles: str) -> Callable[[Request], Principal]:
    """A dependency admitting keys of the given roles (admin is always admitted)."""

    def dependency(request: Request) -> Principal:
        principal = principal_of(request)
        if principal is None:
            raise ApiProblem(401, "unauthorized", "a valid API key is required", CHALLENGE)
        if principal.role != "admin" and principal.role not in roles:
            raise ApiProblem(403, "forbidden",
                             f"role {principal.role} may not do this; needs {', '.join(roles)}")
        request.state.principal = principal
        return principal

    return dependency
