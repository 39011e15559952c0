"""Case-sensitive and case-insensitive codes side by side, platform-wide.

A case-insensitive code (of a product that ignores case, and every generated code) is stored
under the fingerprint of its folded form, so ``abc`` and ``ABC`` are one code. A
case-sensitive code is stored under the fingerprint of its string as typed. The two kinds
must never answer to one string, or a look-up would find a code its holder did not mean:

- a case-sensitive ``abc`` is a duplicate when a case-insensitive code is stored under the
  folded form ``ABC``;
- a case-insensitive ``abc`` is a duplicate when a case-sensitive code folds to ``ABC``:
  either that code is ``ABC`` itself (stored under the same fingerprint), or it differs from
  its folded form (``abc``, ``Abc``) and then claims the folded form with a
  ``FoldedFormClaim`` saved in the same transaction.

Only case-sensitive codes that change when folded pay for a claim; a claim carries no
secret, only the id derived from the folded form's keyed fingerprint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from engine.code_desk import CodeLocator
from engine.ids import NAMESPACE
from engine.ids import code_id as make_code_id
from engine.store import EventStore
from engine.vault import Vault


class FoldedFormClaim(Aggregate):
    """A case-sensitive code holds this folded form: no case-insensitive code may."""

    TOPIC = "quanyi:folded_form"

    class Created(Aggregate.Created):
        TOPIC = "quanyi:folded_form.claimed"
        actor: str

    def __init__(self, *, id: UUID, actor: str) -> None:
        self.actor = actor


def claim_id(folded_fingerprint: str) -> UUID:
    return uuid5(NAMESPACE, f"folded-form:{folded_fingerprint}")


@dataclass(frozen=True)
class CodeForms:
    """The ids a code string touches: its own, and those that guard its other form."""

    code_id: UUID
    ignores_case: bool
    folded_id: UUID | None = None  # the code its folded form would find (case-sensitive)
    claim_id: UUID | None = None  # the claim on its folded form

    @property
    def ids(self) -> list[UUID]:
        return [i for i in (self.code_id, self.folded_id, self.claim_id) if i is not None]


class CaseForms:
    """Decides which of a chunk's codes clash with a code of the other kind."""

    def __init__(self, store: EventStore, vault: Vault, locator: CodeLocator) -> None:
        self._store = store
        self._vault = vault
        self._locator = locator

    def of(self, code: str, *, ignores_case: bool) -> CodeForms:
        folded = self._vault.fingerprint(code, folded=True)
        if ignores_case:
            return CodeForms(make_code_id(folded), True, claim_id=claim_id(folded))
        exact = self._vault.fingerprint(code)
        if exact == folded:
            return CodeForms(make_code_id(exact), False)
        return CodeForms(make_code_id(exact), False, folded_id=make_code_id(folded),
                         claim_id=claim_id(folded))

    def clashing(self, forms: Iterable[CodeForms], present: set[UUID]) -> set[UUID]:
        """Ids of the codes that a code of the other kind already answers to."""
        taken = set()
        for form in forms:
            if form.ignores_case and form.claim_id in present:
                taken.add(form.code_id)
            elif form.folded_id in present and self._ignores_case(form.folded_id):
                taken.add(form.code_id)
        return taken

    def claims(self, forms: Iterable[CodeForms], present: set[UUID],
               actor: str) -> list[FoldedFormClaim]:
        """The claims case-sensitive codes about to be saved must save with them."""
        wanted = {f.claim_id for f in forms if not f.ignores_case and f.claim_id is not None}
        return [FoldedFormClaim(id=i, actor=actor) for i in sorted(wanted - present)]

    def _ignores_case(self, code_id: UUID) -> bool:
        return self._locator.ignores_case(self._store.repository.get(code_id))
