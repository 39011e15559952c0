"""Redemption (核销): a merchant marks a sold code used; a rollback undoes it with a reason.

The redemption record's id derives from the code and its redemption count, so two terminals
redeeming one code at once clash on the store's unique key and exactly one succeeds."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from engine.catalog.products import Catalog
from engine.codes.codes import Code
from engine.codes.desk import CodeLocator
from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel.clock import utc_now
from engine.kernel.errors import Forbidden, ValidationFailed
from engine.kernel.ids import redemption_id as make_redemption_id
from engine.kernel.retry import retrying
from engine.kernel.tenancy import check_visible
from engine.kernel.vault import Vault

RETRIES = 5


class Redemption(Aggregate):
    """Points from a redemption id to its code and names who may roll it back."""

    TOPIC = "quanyi:redemption"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:redemption.recorded"
        code_id: str
        merchant_id: str
        actor: str

    def __init__(self, *, id: UUID, code_id: str, merchant_id: str, actor: str) -> None:
        self.code_id = code_id
        self.merchant_id = merchant_id
        self.actor = actor


class Redemptions:
    """Use cases of merchants at the counter."""

    def __init__(self, store: EventStore, writer: Writer, vault: Vault, catalog: Catalog) -> None:
        self._store = store
        self._writer = writer
        self._vault = vault
        self._locator = CodeLocator(store, vault, catalog)

    def redeem(self, *, code: str, merchant_id: str, terminal_id: str | None,
               location: str | None, actor: str,
               tenant: str | None = None) -> tuple[Code, Redemption]:
        """Redeem a code by its string; a second redemption names the first. A merchant
        of a tenant redeems only that tenant's codes (another's is unknown to it)."""
        if not merchant_id:
            raise ValidationFailed("merchant_id is required")
        target = self._locator.find(code, tenant)
        found = [target]  # the first attempt decides on the code the locator read

        def attempt() -> tuple[Code, Redemption]:
            code = found.pop() if found else self._load(target.id)
            redemption = Redemption(id=make_redemption_id(code.id, code.redemptions + 1),
                                    code_id=str(code.id), merchant_id=merchant_id, actor=actor)
            code.redeem(redemption_id=str(redemption.id), merchant_id=merchant_id,
                        terminal_id=terminal_id, location=location, now=utc_now(),
                        actor=actor)
            self._writer.save(code, redemption)
            return code, redemption
        return retrying(attempt, attempts=RETRIES, what="the code")

    def roll_back(self, *, redemption_id: UUID, reason: str, actor: str,
                  any_actor: bool = False, tenant: str | None = None) -> Code:
        """Undo a redemption; only the key that redeemed (or an admin of its tenant) may."""
        if not reason.strip():
            raise ValidationFailed("a rollback needs a reason")
        redemption: Redemption = self._store.get(redemption_id, f"redemption {redemption_id}")
        check_visible(tenant, self._load(UUID(redemption.code_id)).tenant,
                      f"no redemption {redemption_id}")
        if not any_actor and redemption.actor != actor:
            raise Forbidden("only the key that redeemed a code may roll the redemption back")

        def attempt() -> Code:
            target = self._load(UUID(redemption.code_id))
            target.roll_back(redemption_id=str(redemption_id), reason=reason, actor=actor)
            self._writer.save(target)
            return target
        return retrying(attempt, attempts=RETRIES, what="the code")

    def _load(self, code_id: UUID) -> Code:
        code: Code = self._store.get(code_id, "such code")
        return code
