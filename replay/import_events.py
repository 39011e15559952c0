"""Load an export file (replay/event_file.py) into an empty store, either kind.

    header, trailer (read first) ──▶ refuse unless the head's signature verifies with the
                                      key given (else the target's own audit key, which the
                                      file must name), and the target's secret key is the
                                      source's
    one transaction on the target's event table (replay/event_tables.py):
        refuse unless the table is empty
        each event line ──▶ leaf hash into a Merkle frontier, row into a batch at its position
        each kept head's size reached ──▶ the root then must be the head's
    last line: the signed head ──▶ size and root must match the lines; only then commit

A file that is malformed, reordered, edited, cut short or signed by another key is refused
and the transaction rolls back, so the target's event table is left empty. A forged head
or another secret key is refused before anything is written. Memory stays flat: one batch
of rows, the frontier, and the kept heads' sizes and roots.

``import_and_build`` then rebuilds the projections and the audit tree from the events. The
source's signed heads (the kept ones and the file's own) join the target's kept heads when
the target signs with the same audit key (QUANYI_AUDIT_KEY or audit.key copied from the
source, as secret.key must be): then every old head stays provable against the imported
tree. Under another audit key they are left out, since a store's heads are all checked with
its one public key; they stay in the file, checkable with the public key it names, and the
target signs a head of its own over the imported events. A file that names another key
than the target's is imported only when ``public_key`` (`--public-key`) says which key to
trust: a forger re-signs a forged file with a key of their own and names it.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from engine.eventstore.store import EventStore
from engine.settings import Settings
from projections.database import ReadDatabase
from projections.runner import Progress
from replay.audit_store import AuditTables
from replay.event_file import (
    LAST,
    FileRefused,
    Header,
    Trailer,
    parse,
    read_event,
    read_head,
    read_header,
    read_trailer,
)
from replay.event_tables import EventTable, Row, positioned_writer
from replay.export import secret_key_check
from replay.merkle import Frontier, SignedHead, leaf_bytes, leaf_hash, verify_head

BATCH = 5_000  # rows written to the store at a time
TAIL = 64 * 1024  # bytes read from the end of the file for its trailer

# label -> a context giving that step's progress callback (replay.progress.progress_reporter)
Reporter = Callable[[str], AbstractContextManager[Progress]]


class ImportUnfinished(Exception):
    """The events were imported, but what is built from them afterwards did not complete."""


@dataclass
class Imported:
    """What an import loaded: the events, the head that covers them, the source's heads."""

    events: int
    head: SignedHead
    public_key: bytes
    kept_heads: list[SignedHead] = field(default_factory=list)
    heads_kept: bool = False  # whether the target keeps them (it signs with the same key)


def import_events(settings: Settings, store: EventStore, path: Path, *, own_key: bytes,
                  public_key: bytes | None = None,
                  progress: Progress | None = None) -> Imported:
    """Load the file into the store's empty event table, or refuse it leaving it empty.
    Its head must verify with ``public_key`` when given, else with the store's own audit
    key ``own_key``: a key the file names is never trusted for being named."""
    with open(path, "rb") as file:
        header = read_header(parse(file.readline(), 1))
        trailer = _tail(file)
        key = public_key or _own_key_named(header, own_key)
        _check_keys(settings, header, trailer, key)
        file.seek(0)
        file.readline()
        with positioned_writer(settings, store) as table:
            if not table.is_empty():
                raise FileRefused("the target store already holds events: import only into "
                                  "an empty store")
            return _load(file, table, trailer, key, progress)


def _tail(file: BinaryIO) -> Trailer:
    """The trailer, read from the end of the file before anything else is."""
    file.seek(0, 2)
    size = file.tell()
    file.seek(max(0, size - TAIL))
    last = file.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return read_trailer(parse(last, LAST), LAST)


def _own_key_named(header: Header, own_key: bytes) -> bytes:
    """The store's audit key, when the file names it; else the file is refused: whoever
    forged or re-signed a file names their own key in it."""
    if header.audit_public_key != own_key:
        raise FileRefused(f"the file is signed by audit key {_b64(header.audit_public_key)}, "
                          f"not this store's audit key {_b64(own_key)}: give --public-key "
                          "with the source's published key to trust it")
    return own_key


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def _check_keys(settings: Settings, header: Header, trailer: Trailer, key: bytes) -> None:
    if not verify_head(key, trailer.head):
        whose = ("the given public audit key" if key != header.audit_public_key
                 else "the public audit key the file names")
        raise FileRefused(f"the file's signed head does not verify with {whose}")
    if header.secret_key_check != secret_key_check(settings.secret_key):
        raise FileRefused("the target's secret key is not the one that sealed these events: "
                          "set QUANYI_SECRET_KEY (or copy secret.key) from the source first")


def _load(file: BinaryIO, table: EventTable, trailer: Trailer, key: bytes,
          progress: Progress | None) -> Imported:
    expected = trailer.head.tree_size
    kept: dict[int, SignedHead] = {}
    frontier, batch, last, number = Frontier(), [], 0, 1
    for number, value in _lines(file, start=2):
        if "kept_head" in value and not frontier.size:
            _keep(kept, read_head(value["kept_head"], number), key, expected, number)
            continue
        if "signed_head" in value:
            break
        row = read_event(value, number)
        last = _append(frontier, row, last, number)
        _check_kept(kept, frontier, number)
        batch.append(row)
        if len(batch) >= BATCH:
            table.insert(batch)
            batch = []
            if progress:
                progress(frontier.size, expected)
    else:
        raise FileRefused("the file ends without its signed head: it was cut short")
    _check_end(file, read_trailer(value, number), trailer, frontier, number)
    table.insert(batch)
    table.finish(last)
    if progress:
        progress(frontier.size, expected)
    return Imported(frontier.size, trailer.head, key, sorted(kept.values(),
                                                            key=lambda h: h.tree_size))


def _lines(file: BinaryIO, start: int) -> Iterator[tuple[int, dict]]:
    for number, line in enumerate(file, start):
        yield number, parse(line, number)


def _keep(kept: dict[int, SignedHead], head: SignedHead, key: bytes, expected: int,
          number: int) -> None:
    if not 0 < head.tree_size <= expected:
        raise FileRefused(f"line {number}: a kept head of size {head.tree_size} is not "
                          f"within the {expected} events the file covers")
    if not verify_head(key, head):
        raise FileRefused(f"line {number}: a kept head's signature does not verify")
    kept[head.tree_size] = head


def _append(frontier: Frontier, row: Row, last: int, number: int) -> int:
    position = row[0]
    if position <= last:
        raise FileRefused(f"line {number}: position {position} does not follow {last}: "
                          "the events are out of log order")
    frontier.append(leaf_hash(leaf_bytes(*row)))
    return position


def _check_kept(kept: dict[int, SignedHead], frontier: Frontier, number: int) -> None:
    head = kept.get(frontier.size)
    if head is not None and frontier.root() != head.root_hash:
        raise FileRefused(f"line {number}: the first {frontier.size} events do not match the "
                          "kept head of that size")


def _check_end(file: BinaryIO, seen: Trailer, trailer: Trailer, frontier: Frontier,
               number: int) -> None:
    if file.read().strip():
        raise FileRefused(f"line {number}: the signed head is not the file's last line")
    if seen != trailer or frontier.size != trailer.head.tree_size or \
            trailer.events != frontier.size:
        raise FileRefused(f"the file holds {frontier.size} events, its signed head covers "
                          f"{trailer.head.tree_size}: events were dropped or added")
    if frontier.root() != trailer.head.root_hash:
        raise FileRefused("the events' Merkle root is not the signed head's: an event was "
                          "edited, moved or replaced")


class AuditTree(Protocol):
    """What an import needs of the target's audit log (runtime.audit: replay/audit_log.py)."""

    public_key: bytes
    db: ReadDatabase
    tables: AuditTables

    def catch_up(self) -> int: ...
    def root(self, tree_size: int) -> bytes: ...
    def sign_head(self) -> SignedHead: ...


class Target(Protocol):
    """What an import needs of the target (a runtime.Runtime)."""

    settings: Settings
    store: EventStore
    audit: AuditTree


def import_and_build(target: Target, path: Path, *, public_key: bytes | None = None,
                     reporter: Reporter | None = None) -> Imported:
    """Import the file into the empty store, then rebuild every projection from it, extend
    the audit tree over it and keep the source's heads, so the store answers as the source
    did."""
    from replay.rebuild import rebuild

    with _reporting(reporter, "import") as progress:
        imported = import_events(target.settings, target.store, path,
                                 own_key=target.audit.public_key, public_key=public_key,
                                 progress=progress)
    with _reporting(reporter, "rebuild") as progress:
        rebuild(target.settings, progress=progress)
    target.audit.catch_up()
    if target.audit.root(imported.head.tree_size) != imported.head.root_hash:
        raise ImportUnfinished("the audit tree built from the imported events does not have "
                               "the signed head's root: run `quanyi audit verify`")
    imported.heads_kept = keep_heads(target.audit, imported)
    return imported


def keep_heads(audit: AuditTree, imported: Imported) -> bool:
    """Keep the source's heads among the target's when the same audit key signs both
    (a head is checked with the store's one public key); whether they were kept. Under
    another key the target signs a head of its own over the events it checked against the
    key it was told to trust, so that its log is anchored by a head it can verify."""
    if audit.public_key != imported.public_key:
        audit.sign_head()
        return False
    with audit.db.transaction() as cursor:
        for head in [*imported.kept_heads, imported.head]:
            audit.tables.keep_head(cursor, head)
    return True


@contextlib.contextmanager
def _reporting(reporter: Reporter | None, label: str) -> Iterator[Progress | None]:
    if reporter is None:
        yield None
    else:
        with reporter(label) as progress:
            yield progress
