"""The tamper-evident audit log: a Merkle tree (replay/merkle.py) over every stored event,
extended behind the writer, with signed heads.

    event log ──read after commit, in order──▶ leaf hashes ──▶ tiles (audit_tiles)
                                                          └──▶ frontier ──▶ signed heads

The follower only reads committed notifications, so it takes no lock the writers wait on;
the tree may trail the log, and ``catch_up`` brings it to the log's end. Leaf *i* is the
*i*-th stored event; its bytes are ``merkle.leaf_bytes`` of the event's position, stream,
version, topic and stored state. Heads are signed with the audit key (Ed25519), which is
not the data key: a third party given ``public_key`` checks heads and proofs offline.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from engine.eventstore.connections import Budget
from engine.eventstore.store import EventStore
from engine.kernel.errors import NotFound, StoreMissing
from engine.settings import AUDIT_KEY_FILE, Settings
from projections.database import ReadDatabase
from replay import merkle
from replay.audit_store import AuditTables
from replay.audit_tiles import TreeBuilder, builder_from, subtree_reader

CHUNK = 10_000
DATABASE_NAME = "audit"  # audit.sqlite in the data directory (SQLite)


def event_leaf(notification: Any) -> bytes:
    """The leaf hash of one stored event (a notification of the log)."""
    return merkle.leaf_hash(merkle.leaf_bytes(
        notification.id, notification.originator_id, notification.originator_version,
        notification.topic, notification.state))


def row_leaf(row: tuple[int, bytes, int, str, bytes]) -> bytes:
    """The leaf hash of one stored event read as a raw row (``EventStore.stored_rows``)."""
    return merkle.leaf_hash(merkle.leaf_bytes_raw(*row))


def signing_time() -> str:
    """Now, as a head records it: ISO 8601 UTC to the microsecond (sorts as text)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    """The audit tree of one event store: extend it, sign heads, serve proofs."""

    def __init__(self, store: EventStore, db: ReadDatabase, audit_key: bytes) -> None:
        self.store = store
        self.db = db
        self.tables = AuditTables(db)
        self.tables.create()
        self._key = Ed25519PrivateKey.from_private_bytes(audit_key)
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._lock = threading.Lock()  # one extension at a time in this process
        self._builder = TreeBuilder()
        self._position = 0
        self._stale = True  # the builder must be read from the database before use
        self._reload()

    @classmethod
    def open(cls, settings: Settings, store: EventStore) -> "AuditLog":
        if not settings.audit_key:
            raise StoreMissing(f"no audit key in {settings.data_dir} ({AUDIT_KEY_FILE}) and "
                               "QUANYI_AUDIT_KEY is not set: run `quanyi init` to create one, "
                               "or set QUANYI_AUDIT_KEY to the store's audit key")
        db = ReadDatabase.open(settings, name=DATABASE_NAME, watch=store.watch,
                               connections=Budget.of(settings.database_max_connections).audit)
        return cls(store, db, settings.audit_key)

    def close(self) -> None:
        self.db.close()

    # -- extending the tree -------------------------------------------------------------

    @property
    def size(self) -> int:
        """The tree size this process knows (another process may have extended it)."""
        return self._builder.size

    def position(self) -> int:
        """The log position of the tree's last leaf, as this process knows it."""
        return self._position

    def catch_up(self) -> int:
        """Extend the tree to the store's current end now; the tree size."""
        with self._lock:
            while self._extend_once():
                pass
            return self._builder.size

    def extend_once(self) -> int:
        """Extend the tree by at most one chunk of the log; the number of events read."""
        with self._lock:
            return self._extend_once()

    def _extend_once(self) -> int:
        if self._stale:
            self._reload()
        rows = self.store.stored_rows(self._position, CHUNK)
        if not rows:
            return 0
        builder, old = self._builder, self._builder.size
        self._stale = True  # until the grown tree is stored
        for row in rows:
            builder.append(row_leaf(row), row[0])
        with self.db.transaction() as cursor:
            stored = self.tables.advance(cursor, old, builder.size, rows[-1][0],
                                         builder.take_changed())
        if stored:  # else another follower extended the tree first: continue from theirs
            self._position, self._stale = rows[-1][0], False
        return len(rows)

    def _reload(self) -> None:
        with self.db.transaction(write=False) as cursor:
            size, position = self.tables.state(cursor)
            self._builder = builder_from(lambda level, index: self.tables.tile(
                cursor, level, index), lambda index: self.tables.positions(cursor, index), size)
        self._position, self._stale = position, False

    # -- heads ----------------------------------------------------------------------------

    def sign_head(self) -> merkle.SignedHead:
        """Catch up, sign a head of the current tree, keep it, return it."""
        with self._lock:
            while self._extend_once():
                pass
            size, root = self._builder.size, self._builder.frontier.root()
        signed_at = signing_time()
        signature = self._key.sign(merkle.head_message(size, root, signed_at))
        head = merkle.SignedHead(size, root, signed_at, signature)
        with self.db.transaction() as cursor:
            self.tables.keep_head(cursor, head)
        return head

    def latest_head(self) -> merkle.SignedHead | None:
        with self.db.transaction(write=False) as cursor:
            found = self.tables.heads(cursor, latest_only=True)
        return found[0] if found else None

    def heads(self) -> list[merkle.SignedHead]:
        """Every kept head, oldest first."""
        with self.db.transaction(write=False) as cursor:
            return self.tables.heads(cursor)

    # -- proofs -----------------------------------------------------------------------------

    def stored_size(self) -> int:
        """The tree size in the database (any process's follower may have extended it)."""
        with self.db.transaction(write=False) as cursor:
            return self.tables.state(cursor)[0]

    def leaf_index(self, position: int) -> int:
        """The tree index of the event stored at this notification position."""
        with self.db.transaction(write=False) as cursor:
            found = self.tables.leaf_of(cursor, position)
        if found is None:
            raise NotFound(f"no event at position {position} in the audit tree yet")
        return found

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        """The audit path of leaf ``leaf_index`` in the tree of ``tree_size`` leaves."""
        self._check_size(tree_size)
        with self.db.transaction(write=False) as cursor:
            return merkle.inclusion_proof(leaf_index, tree_size, self._subtree(cursor))

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The proof that the tree of ``old_size`` leaves is a prefix of ``new_size``'s."""
        self._check_size(new_size)
        with self.db.transaction(write=False) as cursor:
            return merkle.consistency_proof(old_size, new_size, self._subtree(cursor))

    def root(self, tree_size: int) -> bytes:
        """The root hash of the tree of ``tree_size`` leaves (any size up to the stored one)."""
        self._check_size(tree_size)
        if tree_size == 0:
            return merkle.EMPTY_ROOT
        with self.db.transaction(write=False) as cursor:
            return self._subtree(cursor)(0, tree_size)

    def _subtree(self, cursor: Any) -> merkle.Subtree:
        return subtree_reader(lambda level, index: self.tables.tile(cursor, level, index))

    def _check_size(self, tree_size: int) -> None:
        stored = self.stored_size()
        if tree_size > stored:
            raise NotFound(f"the audit tree has {stored} leaves, not {tree_size} yet")
