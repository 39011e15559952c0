"""Bringing codes in: supplier batches (卡密 with PIN and unit cost) and generated batches.

Rows stream through in chunks: each chunk is fingerprinted, checked against the store in one
query, sealed and saved in one transaction. The store's unique key is what guarantees a code
exists once; the query only lets the answer name duplicates instead of failing the chunk.

A code is read in its NFKC form; one whose letters mix scripts is invalid. The code of a
case-insensitive product (and every generated code) is fingerprinted case-folded, so `abc`
and `ABC` are one code; a case-sensitive code is fingerprinted as typed. A code that a code
of the other kind answers to is a duplicate (engine/codes/case_forms.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any
from uuid import UUID, uuid4

from engine.catalog.products import MAX_MONEY, Catalog, Product
from engine.codes.case_forms import CaseForms, CodeForms
from engine.codes.codes import Batch, Code
from engine.codes.desk import CodeLocator
from engine.codes.generation import MAX_CODE_LENGTH, CodePattern
from engine.eventstore.store import EventStore
from engine.eventstore.writer import Writer
from engine.kernel.clock import utc_now
from engine.kernel.code_strings import mixes_scripts
from engine.kernel.errors import (
    ConcurrentUpdate,
    InvalidState,
    PriceBelowCost,
    StorageFull,
    ValidationFailed,
)
from engine.kernel.fields import check_instant
from engine.kernel.ids import batch_id as make_batch_id
from engine.kernel.retry import retrying
from engine.kernel.vault import Vault
from engine.ledger.transactions import PART

MAX_BATCH = 100_000
CHUNK = 1_000
MAX_PIN_LENGTH = 64
DUPLICATE, INVALID = "duplicate", "invalid"


@dataclass(frozen=True)
class CodeRow:
    code: str | None
    pin: str | None = None


@dataclass
class BatchResult:
    batch_id: UUID
    sku: str
    imported: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    resumed: bool = False  # a retried batch that an interruption left open


@dataclass(frozen=True)
class _Candidate:
    index: int
    code: str
    pin: str | None
    forms: CodeForms

    @property
    def code_id(self) -> UUID:
        return self.forms.code_id


def _is_clean(text: str, limit: int) -> bool:
    return 0 < len(text) <= limit and text.isprintable() and not any(c.isspace() for c in text)


def _is_valid_code(code: str) -> bool:
    return _is_clean(code, MAX_CODE_LENGTH) and not mixes_scripts(code)


class Imports:
    """Use cases that add codes to a SKU's pool."""

    def __init__(self, store: EventStore, writer: Writer, vault: Vault, catalog: Catalog) -> None:
        self._store = store
        self._writer = writer
        self._vault = vault
        self._catalog = catalog
        self._case_forms = CaseForms(store, vault, CodeLocator(store, vault, catalog))

    def import_batch(self, *, sku: str, rows: Iterable[CodeRow], supplier_id: str,
                     unit_cost: int, expires_at: datetime | None, actor: str,
                     batch_key: str | None = None) -> BatchResult:
        """Import a supplier's codes; duplicates and malformed rows are reported by index."""
        product = self._product_for_codes(sku)
        if isinstance(unit_cost, bool) or not isinstance(unit_cost, int) \
                or not 0 <= unit_cost <= MAX_MONEY:
            raise ValidationFailed(f"unit_cost must be an integer of minor units, "
                                   f"0 to {MAX_MONEY}")
        if not isinstance(supplier_id, str) or not PART.match(supplier_id):
            raise ValidationFailed("supplier_id must be 1-64 letters, digits, '.', '_' or '-', "
                                   "starting with a letter or digit (it names a ledger account)")
        if product.is_below_cost(unit_cost):
            raise PriceBelowCost(f"unit cost {unit_cost} exceeds the price {product.price} of "
                                 f"{sku} and the product does not allow selling below cost")
        batch, resumed = self._open(product, "imported", supplier_id, unit_cost, expires_at,
                                    actor, batch_key)
        if batch.completed:
            return BatchResult(batch.id, sku, batch.imported, batch.rejected)
        result = BatchResult(batch.id, sku, resumed=resumed)
        with _saying_what_is_stored(result):
            for chunk in _chunks(self._candidates(rows, result, product.case_sensitive), CHUNK):
                self._store_chunk(batch, chunk, result)
            return self._complete(batch, result)

    def generate_batch(self, *, sku: str, count: int, pattern: CodePattern,
                       expires_at: datetime | None, actor: str,
                       batch_key: str | None = None) -> BatchResult:
        """Generate ``count`` unguessable codes, unique platform-wide."""
        product = self._product_for_codes(sku)
        if not 1 <= count <= MAX_BATCH:
            raise ValidationFailed(f"count must be between 1 and {MAX_BATCH}")
        pattern.check_room_for(count)
        batch, resumed = self._open(product, "generated", None, 0, expires_at, actor, batch_key)
        if batch.completed:
            return BatchResult(batch.id, sku, batch.imported, batch.rejected)
        result = BatchResult(batch.id, sku, resumed=resumed)
        drawn: set[str] = set()
        with _saying_what_is_stored(result):
            while result.imported < count:
                want = min(CHUNK, count - result.imported)
                codes = pattern.draw_distinct(want, drawn)
                chunk = [_Candidate(i, c, None, self._case_forms.of_generated(c))
                         for i, c in enumerate(codes)]
                self._store_chunk(batch, chunk, result, report=False)
            return self._complete(batch, result)

    # -- steps ----------------------------------------------------------------------------

    def _product_for_codes(self, sku: str) -> Product:
        product = self._catalog.get(sku)
        if product.delivery == "topup":
            raise InvalidState(f"{sku} is delivered by direct top-up and holds no codes")
        return product

    def _open(self, product: Product, origin: str, supplier_id: str | None, unit_cost: int,
              expires_at: datetime | None, actor: str,
              batch_key: str | None) -> tuple[Batch, bool]:
        if expires_at is not None:
            expires_at = check_instant(expires_at, "expires_at")
        if expires_at is not None and expires_at <= utc_now():
            raise ValidationFailed("expires_at is already past")
        batch_id = make_batch_id(actor, batch_key) if batch_key else uuid4()
        if batch_key and (found := self._store.find(batch_id)) is not None:
            return found, True
        batch = Batch(id=batch_id, sku=product.sku, origin=origin, supplier_id=supplier_id,
                      unit_cost=unit_cost, currency=product.currency, expires_at=expires_at,
                      actor=actor)
        try:
            self._writer.save(batch)
        except ConcurrentUpdate:
            return self._store.repository.get(batch_id), True
        return batch, False

    def _candidates(self, rows: Iterable[CodeRow], result: BatchResult,
                    case_sensitive: bool) -> Iterator[_Candidate]:
        seen: set[UUID] = set()
        for index, row in enumerate(rows):
            if index >= MAX_BATCH:
                raise ValidationFailed(f"a batch holds at most {MAX_BATCH} codes")
            code = self._vault.normalise_code(row.code) if isinstance(row.code, str) else ""
            pin = row.pin if row.pin not in ("", None) else None
            if not _is_valid_code(code) or (
                    pin is not None and not (isinstance(pin, str) and _is_clean(pin, MAX_PIN_LENGTH))):
                result.rejected.append({"index": index, "reason": INVALID})
                continue
            forms = self._case_forms.of(code, ignores_case=not case_sensitive)
            if forms.code_id in seen:
                result.rejected.append({"index": index, "reason": DUPLICATE})
                continue
            seen.add(forms.code_id)
            yield _Candidate(index, code, pin, forms)

    def _store_chunk(self, batch: Batch, chunk: list[_Candidate], result: BatchResult,
                     report: bool = True) -> None:
        # A concurrent import may take one of these codes meanwhile: check them again.
        retrying(lambda: self._store_chunk_once(batch, chunk, result, report), attempts=3,
                 what="codes of a concurrent import")

    def _store_chunk_once(self, batch: Batch, chunk: list[_Candidate], result: BatchResult,
                          report: bool) -> None:
        present = self._store.existing_ids(i for c in chunk for i in c.forms.ids)
        stored = {c.code_id for c in chunk if c.code_id in present}
        known = stored | self._case_forms.clashing((c.forms for c in chunk), present)
        fresh = [c for c in chunk if c.code_id not in known]
        mine = self._already_in_batch(batch, [c.code_id for c in chunk
                                              if c.code_id in stored]) \
            if result.resumed else set()
        codes = [Code(id=c.code_id, sku=batch.sku, batch_id=str(batch.id),
                      sealed=self._vault.seal_code(c.code_id, c.code, c.pin),
                      origin=batch.origin, expires_at=batch.expires_at, actor="import")
                 for c in fresh]
        self._writer.save(*codes)
        result.imported += len(fresh) + len(mine)
        if report:
            result.rejected.extend({"index": c.index, "reason": DUPLICATE} for c in chunk
                                   if c.code_id in known and c.code_id not in mine)

    def _already_in_batch(self, batch: Batch, known: list[UUID]) -> set[UUID]:
        """Codes a retried batch already stored before it was interrupted."""
        mine = set()
        for cid in known:
            code = self._store.repository.get(cid)
            if code.batch_id == str(batch.id):
                mine.add(cid)
        return mine

    def _complete(self, batch: Batch, result: BatchResult) -> BatchResult:
        result.rejected.sort(key=lambda r: r["index"])
        batch.complete(imported=result.imported, rejected=result.rejected)
        self._writer.save(batch)
        return result


def _chunks(items: Iterable[_Candidate], size: int) -> Iterator[list[_Candidate]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


@contextmanager
def _saying_what_is_stored(result: BatchResult) -> Iterator[None]:
    """A full disk stops an import between two chunks: the answer says how far it got."""
    try:
        yield
    except StorageFull as full:
        full.detail += (f"; batch {result.batch_id} holds {result.imported} codes so far: "
                        "send the import again with its Idempotency-Key to resume it")
        full.extra.update(batch_id=str(result.batch_id), imported=result.imported)
        raise
