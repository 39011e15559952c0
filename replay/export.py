"""Export the whole event log to a file (replay/event_file.py draws its lines).

    sign a head now (size N) ──▶ header, kept heads of size <= N
    the log's first N events, page by page ──▶ one line each, their Merkle root recomputed
    root == the head's root? ──▶ trailer, and the file takes its name; else nothing is left

The file is created 0600 (its owner alone reads it) and renamed over ``out``, so an older
export there is replaced by one with that mode too.

The head is signed first and the export stops at its size, so events written while the
export runs are left for the next one and the trailer covers exactly the exported lines.
Memory stays flat: one page of events at a time, and the tree's frontier.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from engine.eventstore.store import EventStore
from engine.kernel.clock import utc_now
from engine.kernel.vault import Vault
from projections.runner import Progress
from replay.event_file import (
    KEY_CHECK_TEXT,
    Header,
    Trailer,
    event_line,
    header_line,
    kept_head_line,
    trailer_line,
)
from replay.merkle import Frontier, SignedHead, leaf_bytes, leaf_hash

PAGE = 2_000  # events read from the store at a time
FILE_MODE = 0o600  # the export is readable by its owner only


class ExportFailed(Exception):
    """The log could not be exported as signed; no file was left behind."""


class AuditKeeper(Protocol):
    """What the export needs of the audit log (runtime.audit)."""

    public_key: bytes

    def sign_head(self) -> SignedHead: ...
    def heads(self) -> list[SignedHead]: ...


@dataclass(frozen=True)
class Exported:
    events: int
    head: SignedHead
    kept_heads: int


def secret_key_check(secret_key: bytes) -> str:
    """A keyed hash that tells whether two stores share a secret key, revealing nothing of it."""
    return Vault(secret_key).fingerprint(KEY_CHECK_TEXT)


def export_log(store: EventStore, audit: AuditKeeper, out: Path, *, secret_key: bytes,
               progress: Progress | None = None) -> Exported:
    """Write the log up to a head signed now to ``out``; nothing is left there on failure."""
    head = audit.sign_head()
    kept = [h for h in audit.heads() if h.tree_size <= head.tree_size and h != head]
    header = Header(store=store.kind, audit_public_key=audit.public_key,
                    secret_key_check=secret_key_check(secret_key),
                    exported_at=utc_now().isoformat())
    partial = out.with_name(f".{out.name}.partial")
    try:
        with _owner_only(partial) as file:
            _write(file, store, header, kept, head, progress)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return Exported(head.tree_size, head, len(kept))


def _owner_only(path: Path) -> BinaryIO:
    """A new file only its owner may read or write (0600, whatever the umask): the log
    names every buyer, order and key. A leftover of an interrupted export is replaced, and
    the renamed file replaces any older export with its mode."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    return os.fdopen(fd, "wb")


def _write(file: BinaryIO, store: EventStore, header: Header, kept: Sequence[SignedHead],
           head: SignedHead, progress: Progress | None) -> None:
    file.write(header_line(header))
    file.writelines(kept_head_line(old) for old in sorted(kept, key=lambda h: h.tree_size))
    frontier = Frontier()
    for page in pages(store, head.tree_size):
        lines = []
        for n in page:
            frontier.append(leaf_hash(leaf_bytes(n.id, n.originator_id, n.originator_version,
                                                 n.topic, n.state)))
            lines.append(event_line(n.id, n.originator_id, n.originator_version, n.topic,
                                    n.state))
        file.write(b"".join(lines))
        if progress:
            progress(frontier.size, head.tree_size)
    if frontier.size != head.tree_size:
        raise ExportFailed(f"the log holds {frontier.size} events, fewer than the "
                           f"{head.tree_size} its signed head covers")
    if frontier.root() != head.root_hash:
        raise ExportFailed("the stored events no longer match the head the audit log signed: "
                           "run `quanyi audit verify` to find the first that differs")
    file.write(trailer_line(Trailer(head, head.tree_size)))


def pages(store: EventStore, count: int) -> Iterator[Sequence[Any]]:
    """The log's first ``count`` notifications, a page at a time, in log order."""
    after, left = 0, count
    while left > 0:
        page = store.notifications(after, min(PAGE, left))
        if not page:
            return
        yield page
        after, left = page[-1].id, left - len(page)
