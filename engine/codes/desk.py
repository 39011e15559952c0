"""Single-code operations outside sales: look-up by string, void, and expiry.

A code string is found through its keyed fingerprint: first that of the string as typed
(NFKC-normalised), then that of its case-folded form, which only a code that ignores case
(of a case-insensitive product, or generated) may answer to."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from engine.catalog.products import Catalog
from engine.codes.codes import MERCHANT_FIELDS, RESERVED, Code
from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel.clock import utc_now
from engine.kernel.code_strings import normalise
from engine.kernel.errors import NotFound, QuanyiError, ValidationFailed
from engine.kernel.ids import code_id as make_code_id
from engine.kernel.retry import retrying
from engine.kernel.tenancy import check_visible, visible
from engine.kernel.vault import Vault

RETRIES = 5
SYSTEM_ACTOR = "system:expiry"


class CodeLocator:
    """Finds codes by their strings."""

    def __init__(self, store: EventStore, vault: Vault, catalog: Catalog) -> None:
        self._store = store
        self._vault = vault
        self._catalog = catalog

    def find(self, code: str, tenant: str | None = None) -> Code:
        """The code of that string; a code of another tenant than ``tenant`` (when given)
        is as unknown as one that does not exist."""
        if not isinstance(code, str) or not normalise(code):
            raise ValidationFailed("code must be a non-empty string")
        exact = make_code_id(self._vault.fingerprint(code))
        found = self._load(exact)
        if found is None:
            folded = make_code_id(self._vault.fingerprint(code, folded=True))
            found = self._load(folded) if folded != exact else None
            if found is not None and not self.ignores_case(found):
                found = None
        if found is None or not visible(tenant, found.tenant):
            raise NotFound("no such code")
        return found

    def ignores_case(self, code: Code) -> bool:
        """Whether the code answers to any case of its string."""
        return code.origin == "generated" or not self._catalog.get_recent(code.sku).case_sensitive

    def _load(self, code_id: UUID) -> Code | None:
        found: Code | None = self._store.find(code_id)
        return found


class CodeDesk:
    """Use cases on one code at a time."""

    def __init__(self, store: EventStore, writer: Writer, vault: Vault, catalog: Catalog) -> None:
        self._store = store
        self._writer = writer
        self._vault = vault
        self._locator = CodeLocator(store, vault, catalog)

    def get(self, code_id: UUID, tenant: str | None = None) -> Code:
        """The code; of another tenant than ``tenant`` (when given), as if unknown."""
        code: Code = self._store.get(code_id, f"code {code_id}")
        check_visible(tenant, code.tenant, f"no code {code_id}")
        return code

    def look_up(self, code: str, tenant: str | None = None) -> Code:
        """Find a code by its string, through its keyed fingerprints only (of ``tenant``
        only, when given)."""
        return self._locator.find(code, tenant)

    def look_up_for_merchant(self, code: str, tenant: str | None = None) -> dict[str, object]:
        """What a merchant needs to redeem a code, nothing of its buyer, order or batch; a
        code never sold is as unknown to a merchant as one that does not exist."""
        found = self.look_up(code, tenant)
        if found.order_id is None or found.status == RESERVED:
            raise NotFound("no such code")
        return merchant_view(found)

    def reveal(self, code: Code) -> dict[str, str | None]:
        """The code's secret, for a caller that has already recorded the reveal."""
        return self._vault.open(code.id, code.sealed)

    def void(self, *, code_id: UUID, reason: str, actor: str,
             tenant: str | None = None) -> Code:
        """Take a code not sold out of circulation for good (a sold one: by a refund)."""
        if not reason.strip():
            raise ValidationFailed("voiding needs a reason")

        def attempt() -> Code:
            code = self.get(code_id, tenant)
            code.void(reason=reason, actor=actor)
            self._writer.save(code)
            return code
        return retrying(attempt, attempts=RETRIES, what="the code")

    def expire(self, code_ids: Iterable[UUID]) -> int:
        """Mark due codes expired; safe to run twice and beside other writers."""
        now = utc_now()
        expired = 0
        for code_id in code_ids:
            try:
                code = self.get(code_id)
                code.expire(now=now, actor=SYSTEM_ACTOR)
                self._writer.save(code)
            except QuanyiError:
                continue  # not due, already expired or changed meanwhile: nothing to do
            expired += 1
        return expired


def merchant_view(code: Code) -> dict[str, object]:
    """The part of a code's state a merchant's counter may see."""
    return code.view(MERCHANT_FIELDS)
