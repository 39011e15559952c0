"""The ``http-json`` adapter: our own JSON protocol over HTTP (docs/suppliers.md).

    POST {endpoint}/topups               place a top-up under our reference (idempotent)
    GET  {endpoint}/topups/{reference}   what became of it
    POST {our callback URL}              the supplier tells us, signed (read_callback)

How answers become outcomes is the heart of it: only an answer that proves nothing was or
will be credited is FAILED; whatever leaves a doubt (a timeout, a dropped connection, a 5xx,
a body we cannot read, a reference clash) is UNKNOWN, to be settled by a query.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from engine.kernel.addresses import pin
from engine.kernel.errors import (
    AddressRefused,
    CallbackRejected,
    SignatureInvalid,
    ValidationFailed,
)
from engine.topups.supplier_port import (
    MAX_CALLBACK_BYTES,
    AttemptReport,
    Outcome,
    SupplierLink,
    TopupRequest,
    check_reference,
)

CREDENTIALS = ("api_key", "callback_secret")
TIMESTAMP_HEADER = "quanyi-timestamp"
SIGNATURE_HEADER = "quanyi-signature"
SIGNATURE_VERSION = "v1"
MAX_DETAIL = 200
STATUSES = {"succeeded": Outcome.SUCCEEDED, "failed": Outcome.FAILED,
            "pending": Outcome.PENDING}
# Refusals that prove the request was not taken: nothing can ever be credited for it.
REFUSED = frozenset({400, 401, 403, 404, 405, 413, 415, 422})
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256, under the callback secret, of ``timestamp.body``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={digest.hexdigest()}"


class HttpJsonAdapter:
    """A supplier speaking the http-json protocol; one connection pool per supplier."""

    def __init__(self, link: SupplierLink) -> None:
        self._supplier_id = link.supplier_id
        self._endpoint = link.endpoint
        self._allow_private = link.allow_private_addresses
        self._callback_secret = link.credentials["callback_secret"]
        self._tolerance = link.timeouts.callback_tolerance_seconds
        timeout = httpx.Timeout(link.timeouts.read_seconds,
                                connect=link.timeouts.connect_seconds)
        self._http = httpx.Client(
            timeout=timeout, follow_redirects=False,
            headers={"Authorization": f"Bearer {link.credentials['api_key']}",
                     "User-Agent": "quanyi-supplier-client/1"})

    def place(self, request: TopupRequest) -> AttemptReport:
        """POST /topups: the supplier's answer, or UNKNOWN when there is none to trust."""
        body = {"reference": request.reference, "product": request.supplier_sku,
                "account": request.recharge_account, "amount": request.amount.amount,
                "currency": request.amount.currency}
        try:
            answer = self._send("POST", "/topups", content=orjson.dumps(body),
                                headers={"Content-Type": "application/json"})
        except AddressRefused as exc:  # nothing sent; UNKNOWN as for a refused connection
            return _unknown(request.reference, f"not sent: {exc.detail}")
        except httpx.HTTPError as exc:  # timeout, refused or dropped connection
            return _unknown(request.reference, _transport(exc))
        if answer.status_code in REFUSED:
            return AttemptReport(request.reference, Outcome.FAILED,
                                 detail=_refusal(answer))
        return _report(request.reference, answer)

    def query(self, reference: str) -> AttemptReport:
        """GET /topups/{reference}: 404 means the supplier never took it, and never will
        (the protocol closes an unknown reference when it is asked about)."""
        check_reference(reference)
        try:
            answer = self._send("GET", f"/topups/{reference}")
        except AddressRefused as exc:
            return _unknown(reference, f"not sent: {exc.detail}")
        except httpx.HTTPError as exc:
            return _unknown(reference, _transport(exc))
        if answer.status_code == 404:
            return AttemptReport(reference, Outcome.FAILED,
                                 detail="not_received: the supplier never took this reference")
        return _report(reference, answer)

    def read_callback(self, headers: Mapping[str, str], body: bytes) -> AttemptReport:
        """The report of a callback whose signature holds and is fresh; else it is refused
        (SignatureInvalid), as is a body that is not a report (CallbackRejected)."""
        self._verify(headers, body)
        if len(body) > MAX_CALLBACK_BYTES:
            raise CallbackRejected("the callback body is too large")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise CallbackRejected("the callback body is not JSON") from None
        report = _parse(data, None)
        if report is None or report.outcome is Outcome.UNKNOWN:
            raise CallbackRejected("the callback body is not a top-up report")
        sequence = data.get("sequence")
        whole = isinstance(sequence, int) and not isinstance(sequence, bool)
        if sequence is not None and not (whole and sequence >= 0):
            raise CallbackRejected("a callback's sequence is a whole number of at least 0")
        return report

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, headers: dict[str, str] | None = None,
              **request: Any) -> httpx.Response:
        """One request to the supplier, connected to the address its host resolved to when
        checked (AddressRefused, nothing sent, when that is not a public one)."""
        target = pin(self._endpoint + path, allow_private=self._allow_private)
        return self._http.request(method, target.url, headers={**(headers or {}),
                                                               **target.headers},
                                  extensions=target.extensions, **request)

    def _verify(self, headers: Mapping[str, str], body: bytes) -> None:
        named = {key.lower(): value for key, value in headers.items()}
        stamp, signed = named.get(TIMESTAMP_HEADER, ""), named.get(SIGNATURE_HEADER, "")
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12 or not signed:
            raise SignatureInvalid("the callback carries no valid timestamp and signature")
        if abs(time.time() - int(stamp)) > self._tolerance:
            raise SignatureInvalid("the callback's timestamp is too old or in the future")
        expected = signature(self._callback_secret, stamp, body)
        if not any(hmac.compare_digest(expected, given) for given in signed.split()):
            raise SignatureInvalid("the callback's signature does not match")


def _report(reference: str, answer: httpx.Response) -> AttemptReport:
    """A 200 answer read as a report; anything else (5xx, 409, 429, ...) leaves a doubt."""
    if answer.status_code != 200:
        return _unknown(reference, _refusal(answer))
    try:
        data = orjson.loads(answer.content)
    except orjson.JSONDecodeError:
        return _unknown(reference, "the answer is not JSON")
    return _parse(data, reference) or _unknown(reference, "the answer is not a report")


def _parse(data: Any, reference: str | None) -> AttemptReport | None:
    """A report from a body, or None when it is not one (or is about another reference)."""
    if not isinstance(data, dict) or data.get("status") not in STATUSES:
        return None
    found = data.get("reference")
    if not isinstance(found, str) or (reference is not None and found != reference):
        return None
    try:
        check_reference(found)
    except ValidationFailed:
        return None
    txn = data.get("supplier_txn_id")
    return AttemptReport(found, STATUSES[data["status"]],
                         _printable(txn) if isinstance(txn, str) and txn else None,
                         _printable(data.get("message")))


def _refusal(answer: httpx.Response) -> str:
    """What a refusal says: its ``error`` and ``message``, bounded and printable."""
    try:
        data = orjson.loads(answer.content)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        said = " ".join(str(data[k]) for k in ("error", "message") if data.get(k))
        if said:
            return _printable(f"HTTP {answer.status_code}: {said}") or ""
    return f"HTTP {answer.status_code}"


def _transport(exc: httpx.HTTPError) -> str:
    kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "transport error"
    return f"{kind}: {type(exc).__name__}"  # the message may hold the URL: left out


def _unknown(reference: str, detail: str) -> AttemptReport:
    return AttemptReport(reference, Outcome.UNKNOWN, detail=detail)


def _printable(text: Any) -> str | None:
    """Text a supplier sent, safe to keep in an event: one line, bounded."""
    if not isinstance(text, str) or not text:
        return None
    return _UNPRINTABLE.sub(" ", text)[:MAX_DETAIL]
