"""The one place where errors become application/problem+json answers: the routes' errors
through the app's handlers, and a store that cannot take a request (``Unavailable``) also
when the middlewares around the routes (auth, idempotency) meet it."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.responses import OrjsonResponse
from engine.kernel import errors

log = logging.getLogger("quanyi.api")

STATUS = {
    errors.ValidationFailed: 422, errors.PatternTooSmall: 422, errors.AmountMismatch: 422,
    errors.NotFound: 404, errors.Forbidden: 403, errors.TooManyWebhooks: 429,
    errors.Conflict: 409, errors.Gone: 410,
    errors.CallbackRejected: 400, errors.SignatureInvalid: 401,
    errors.StoreUnavailable: 503, errors.StorageFull: 507, errors.ConcurrentUpdate: 503,
}
BUSY_RETRY_AFTER = {"Retry-After": "1"}  # a clash that outlasted the use case's retries
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 410: "Gone", 413: "Too large",
          415: "Unsupported media type", 422: "Unprocessable request", 429: "Too many requests",
          500: "Internal error", 503: "Service unavailable", 507: "Insufficient storage"}
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type",
              422: "validation_error", 429: "rate_limited"}


class ApiProblem(Exception):
    """An answer decided in the API layer (auth, idempotency, rate limits)."""

    def __init__(self, status: int, code: str, detail: str,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers, self.extra = headers or {}, extra


def problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None,
            **extra: Any) -> OrjsonResponse:
    body = {"type": f"https://quanyi.dev/problems/{code}", "title": TITLES.get(status, "Error"),
            "status": status, "detail": detail, "code": code, **extra}
    return OrjsonResponse(body, status_code=status, headers=headers,
                          media_type="application/problem+json")


def domain_problem(exc: errors.QuanyiError) -> OrjsonResponse:
    headers = ({"Retry-After": str(exc.retry_after_seconds)}
               if isinstance(exc, errors.Unavailable)
               else BUSY_RETRY_AFTER if isinstance(exc, errors.ConcurrentUpdate) else None)
    return problem(status_of(exc), exc.code, exc.detail, headers, **exc.extra)


class UnavailableMiddleware:
    """Answers a middleware's ``Unavailable`` (a key read while the store is lost) as the
    routes' handler would, rather than letting it become a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except errors.Unavailable as exc:
            if started or scope["type"] != "http":
                raise
            await domain_problem(exc)(scope, receive, send)


def status_of(exc: errors.QuanyiError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def _readable(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.QuanyiError)
    async def domain_error(_: Request, exc: errors.QuanyiError) -> OrjsonResponse:
        return domain_problem(exc)

    @app.exception_handler(ApiProblem)
    async def api_problem(_: Request, exc: ApiProblem) -> OrjsonResponse:
        return problem(exc.status, exc.code, exc.detail, exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> OrjsonResponse:
        details = [_readable(e) for e in exc.errors()][:10]
        return problem(422, "validation_error", "; ".join(details) or "invalid request",
                       errors=details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> OrjsonResponse:
        code = HTTP_CODES.get(exc.status_code, "error")
        return problem(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> OrjsonResponse:
        log.exception("unhandled error")
        return problem(500, "internal_error", "the server failed; the request may be retried")
