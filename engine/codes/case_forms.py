"""Case-sensitive and case-insensitive codes side by side, platform-wide.

A case-insensitive code (of a product that ignores case, and every generated code) is stored
under the fingerprint of its folded form, so ``abc`` and ``ABC`` are one code. A
case-sensitive code is stored under the fingerprint of its string as typed. An imported
string is checked in both forms, so that the two kinds never answer to it together:

- a case-sensitive ``abc`` is a duplicate when a case-insensitive code is stored under its
  folded form ``ABC``;
- a case-insensitive ``abc`` is a duplicate when a code is stored under ``abc`` as typed
  (a case-sensitive ``abc``), as well as under ``ABC`` (any code).

Not caught: a case-insensitive ``ABC`` beside a case-sensitive ``abc`` imported earlier (the
fingerprint of ``ABC`` cannot find ``abc``). Catching it needs an index of the folded forms of
case-sensitive codes, that is an event more per such code; measured, it cost a third or more
of the import rate of lower-case card codes, for a clash between two suppliers' secrets that
differ only in case. A look-up then finds the case-sensitive code when typed exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from engine.codes.desk import CodeLocator
from engine.eventstore.store import EventStore
from engine.kernel.ids import code_id as make_code_id
from engine.kernel.vault import Vault


@dataclass(frozen=True)
class CodeForms:
    """The id a code string is stored under, and the id of its other form, if different."""

    code_id: UUID
    ignores_case: bool
    other_id: UUID | None = None

    @property
    def ids(self) -> list[UUID]:
        return [self.code_id] if self.other_id is None else [self.code_id, self.other_id]


class CaseForms:
    """Fingerprints imported strings in both forms and finds clashes between the kinds."""

    def __init__(self, store: EventStore, vault: Vault, locator: CodeLocator) -> None:
        self._store = store
        self._vault = vault
        self._locator = locator

    def of(self, code: str, *, ignores_case: bool) -> CodeForms:
        folded = make_code_id(self._vault.fingerprint(code, folded=True))
        exact = make_code_id(self._vault.fingerprint(code))
        other = None if exact == folded else exact if ignores_case else folded
        return CodeForms(folded if ignores_case else exact, ignores_case, other)

    def of_generated(self, code: str) -> CodeForms:
        """A generated code is drawn in its folded form: one fingerprint is enough."""
        return CodeForms(make_code_id(self._vault.fingerprint(code, folded=True)), True)

    def clashing(self, forms: Iterable[CodeForms], present: set[UUID]) -> set[UUID]:
        """Ids of the codes that a stored code of the other kind already answers to."""
        return {f.code_id for f in forms if f.other_id in present
                and (f.ignores_case or self._ignores_case(f.other_id))}

    def _ignores_case(self, code_id: UUID | None) -> bool:
        return self._locator.ignores_case(self._store.repository.get(code_id))
