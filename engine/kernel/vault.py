"""Field-level protection of code secrets: AES-GCM sealing and keyed look-up hashes.

A code string and its PIN never enter an event in clear: the event carries a sealed blob
(AES-256-GCM, bound to the code id) and the code id itself is derived from an HMAC of the
code, so a look-up by code string needs the key and the store holds nothing guessable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.kernel.code_strings import fold, normalise
from engine.kernel.errors import QuanyiError


class SealBroken(QuanyiError):
    code = "seal_broken"


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=b"quanyi/" + purpose).derive(master)


class Vault:
    """Seals and opens secrets, and fingerprints code strings, with keys derived from one master key."""

    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(_derive(master_key, b"seal"))
        self._lookup_key = _derive(master_key, b"lookup")
        self._api_key_key = _derive(master_key, b"api-key")
        self._idempotency_key = _derive(master_key, b"idempotency")
        self._order_ref_key = _derive(master_key, b"order-ref")

    @staticmethod
    def normalise_code(code: str) -> str:
        """NFKC, without surrounding space (engine/kernel/code_strings.py)."""
        return normalise(code)

    def fingerprint(self, code: str, *, folded: bool = False) -> str:
        """Keyed hash of a code string: the only form in which a code is ever looked up.
        ``folded`` hashes the case-insensitive form, that of codes that ignore case."""
        text = fold(code) if folded else normalise(code)
        return hmac.new(self._lookup_key, text.encode(), hashlib.sha256).hexdigest()

    def hash_api_secret(self, secret: str) -> str:
        return hmac.new(self._api_key_key, secret.encode(), hashlib.sha256).hexdigest()

    def hash_request(self, request: bytes) -> str:
        """Keyed hash of a request kept for idempotency: a body may hold a code, so an
        unkeyed hash would let anyone holding the table confirm guesses offline."""
        return hmac.new(self._idempotency_key, request, hashlib.sha256).hexdigest()
    def order_ref(self, owner: str, external_ref: str) -> str:
        """Keyed digest of an owner's external_ref, from which the order id derives."""
        message = f"{len(owner)}:{owner}:{external_ref}".encode()
        return hmac.new(self._order_ref_key, message, hashlib.sha256).hexdigest()

    def seal(self, bound_to: UUID | str, payload: dict[str, str | None]) -> str:
        nonce = os.urandom(12)
        data = self._aead.encrypt(nonce, orjson.dumps(payload), str(bound_to).encode())
        return base64.b64encode(nonce + data).decode()

    def open(self, bound_to: UUID | str, sealed: str) -> dict[str, str | None]:
        raw = base64.b64decode(sealed)
        try:
            plain = self._aead.decrypt(raw[:12], raw[12:], str(bound_to).encode())
        except InvalidTag as exc:
            raise SealBroken("a sealed secret does not open with this key") from exc
        return orjson.loads(plain)

    def seal_code(self, code_id: UUID, code: str, pin: str | None) -> str:
        return self.seal(code_id, {"code": self.normalise_code(code), "pin": pin})
