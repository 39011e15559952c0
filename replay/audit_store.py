"""The audit log's tables, in their own database beside the read side's.

SQLite: ``audit.sqlite`` in the data directory (so the follower's writes never wait on the
event writers' lock nor on the projections'); PostgreSQL: the store's schema. The SQL is the
same on both but for the name of the bytes type, which ``AuditTables`` holds.

    audit_tiles  (level, idx) -> hashes [, positions, first_position]   see replay/audit_tiles.py
    audit_state  one row: the tree's size and the log position of its last leaf
    audit_heads  every signed head kept: (tree_size, signed_at) -> root_hash, signature
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

from projections.database import Cursor, ReadDatabase
from replay.audit_tiles import WIDTH, Tile, unpack_positions
from replay.merkle import SignedHead

STATE_ROW = "main"
BYTES_TYPE = {"sqlite": "BLOB", "postgres": "BYTEA"}
STATE_TABLE = ("CREATE TABLE IF NOT EXISTS audit_state (name TEXT PRIMARY KEY, "
               "tree_size BIGINT NOT NULL, position BIGINT NOT NULL)")


class AuditTables:
    """Reads and writes of the audit tables; every method takes the caller's cursor."""

    def __init__(self, db: ReadDatabase) -> None:
        self.db = db
        self.blob = BYTES_TYPE[db.kind]

    def create(self) -> None:
        with self.db.transaction() as cursor:
            cursor.execute(STATE_TABLE)
            cursor.execute("INSERT INTO audit_state (name, tree_size, position) "
                           "VALUES (%s, 0, 0) ON CONFLICT (name) DO NOTHING", (STATE_ROW,))
            # The state row before the tiles, as ``advance`` takes them: on PostgreSQL
            # CREATE INDEX IF NOT EXISTS locks the existing tiles table, and a follower of
            # another process holding the row while it writes tiles would wait in a circle.
            cursor.execute("UPDATE audit_state SET name = name WHERE name = %s", (STATE_ROW,))
            for statement in self._schema():
                cursor.execute(statement)

    def _schema(self) -> list[str]:
        blob = self.blob
        return [
            "CREATE TABLE IF NOT EXISTS audit_tiles (level INTEGER NOT NULL, "
            f"idx BIGINT NOT NULL, hashes {blob} NOT NULL, positions {blob}, "
            "first_position BIGINT, PRIMARY KEY (level, idx))",
            "CREATE INDEX IF NOT EXISTS audit_tiles_by_position ON audit_tiles "
            "(first_position) WHERE level = 0",
            "CREATE TABLE IF NOT EXISTS audit_heads (tree_size BIGINT NOT NULL, "
            f"signed_at TEXT NOT NULL, root_hash {blob} NOT NULL, signature {blob} NOT NULL, "
            "PRIMARY KEY (tree_size, signed_at))",
        ]

    # -- the tree -----------------------------------------------------------------------

    @staticmethod
    def state(cursor: Cursor) -> tuple[int, int]:
        """(tree size, position of its last leaf)."""
        cursor.execute("SELECT tree_size, position FROM audit_state WHERE name = %s",
                       (STATE_ROW,))
        row = cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    @staticmethod
    def advance(cursor: Cursor, old_size: int, new_size: int, position: int,
                tiles: Iterable[Tile]) -> bool:
        """Store the grown tree if it still has ``old_size`` leaves (compare-and-set: two
        followers on one database never interleave); whether it was stored."""
        cursor.execute("UPDATE audit_state SET tree_size = %s, position = %s "
                       "WHERE name = %s AND tree_size = %s",
                       (new_size, position, STATE_ROW, old_size))
        if cursor.rowcount != 1:
            return False
        cursor.executemany(
            "INSERT INTO audit_tiles (level, idx, hashes, positions, first_position) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (level, idx) DO UPDATE SET "
            "hashes = excluded.hashes, positions = excluded.positions",
            [(t.level, t.index, t.hashes, t.positions, t.first_position()) for t in tiles])
        return True

    @staticmethod
    def tile(cursor: Cursor, level: int, index: int) -> bytes:
        cursor.execute("SELECT hashes FROM audit_tiles WHERE level = %s AND idx = %s",
                       (level, index))
        row = cursor.fetchone()
        return bytes(row[0]) if row else b""

    @staticmethod
    def positions(cursor: Cursor, index: int) -> tuple[int, ...]:
        cursor.execute("SELECT positions FROM audit_tiles WHERE level = 0 AND idx = %s",
                       (index,))
        row = cursor.fetchone()
        return unpack_positions(bytes(row[0])) if row and row[0] is not None else ()

    @staticmethod
    def leaf_of(cursor: Cursor, position: int) -> int | None:
        """The leaf index of the event stored at ``position``, if the tree holds it."""
        cursor.execute("SELECT idx, positions FROM audit_tiles WHERE level = 0 "
                       "AND first_position <= %s ORDER BY first_position DESC LIMIT 1",
                       (position,))
        row = cursor.fetchone()
        if not row:
            return None
        positions = unpack_positions(bytes(row[1]))
        at = bisect.bisect_left(positions, position)
        if at == len(positions) or positions[at] != position:
            return None
        return int(row[0]) * WIDTH + at

    def leaf_tiles(self, first: int, stop: int, batch: int = 64) -> Iterator[Tile]:
        """Level-0 tiles ``first`` .. ``stop - 1`` in order, read ``batch`` at a time."""
        for start in range(first, stop, batch):
            with self.db.transaction(write=False) as cursor:
                cursor.execute("SELECT idx, hashes, positions FROM audit_tiles WHERE level = 0 "
                               "AND idx >= %s AND idx < %s ORDER BY idx",
                               (start, min(stop, start + batch)))
                rows = cursor.fetchall()
            for row in rows:
                yield Tile(0, int(row[0]), bytes(row[1]), bytes(row[2]))

    # -- the heads ----------------------------------------------------------------------

    @staticmethod
    def keep_head(cursor: Cursor, head: SignedHead) -> None:
        cursor.execute("INSERT INTO audit_heads (tree_size, signed_at, root_hash, signature) "
                       "VALUES (%s, %s, %s, %s) ON CONFLICT (tree_size, signed_at) DO NOTHING",
                       (head.tree_size, head.signed_at, head.root_hash, head.signature))

    @staticmethod
    def heads(cursor: Cursor, latest_only: bool = False) -> list[SignedHead]:
        order = ("ORDER BY tree_size DESC, signed_at DESC LIMIT 1" if latest_only
                 else "ORDER BY tree_size, signed_at")
        cursor.execute("SELECT tree_size, root_hash, signed_at, signature FROM audit_heads "
                       + order)
        return [SignedHead(int(r[0]), bytes(r[1]), r[2], bytes(r[3]))
                for r in cursor.fetchall()]
