"""`quanyi audit verify`: walk the whole event log against the audit tree and its heads.

    stored events ──recompute each leaf──▶ compare with the tree's leaf (hash and position)
                                     └──▶ recomputed tree ──at each head's size──▶ its root
                                                                                  and signature

The walk streams the log and the tree's leaf tiles side by side (never the whole log in
memory) and stops at the first event whose bytes, position or order no longer match: an
edited event changes its leaf hash; a deleted, inserted or moved one puts another position
at that leaf. The stored tree alone could be rewritten to match an edited log, so every
signed head is an anchor too: the root recomputed from the log must equal each head's root,
and each head's signature must verify with the audit key. Events past the tree's size are
not covered yet (the follower trails the writer); the verdict says how far the tree reaches,
and how far the signed heads do: a log that holds events and no head covering any of them is
not verified, whatever the tree says, since the tree alone can be rewritten to match.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from uuid import UUID

from projections.runner import Progress
from replay import merkle
from replay.audit_log import CHUNK, AuditLog, event_leaf
from replay.audit_tiles import HEIGHT, WIDTH, TreeBuilder, split_hashes, unpack_positions


@dataclass(frozen=True)
class Mismatch:
    """The first leaf where the log and the tree part."""

    leaf_index: int
    reason: str
    position: int | None = None  # the log's event at this leaf (None: the log ends before)
    stream_id: UUID | None = None
    version: int | None = None
    expected_position: int | None = None  # the position the tree holds at this leaf

    def describe(self) -> str:
        if self.position is None:
            return f"leaf {self.leaf_index}: {self.reason}"
        return (f"the event at position {self.position} (stream {self.stream_id}, version "
                f"{self.version}), leaf {self.leaf_index}: {self.reason}")


@dataclass
class AuditVerdict:
    events: int = 0  # events in the log, walked
    last_position: int = 0
    tree_size: int = 0  # leaves the stored tree holds
    heads_checked: int = 0
    anchored: int = 0  # the size of the largest signed head the log matched
    mismatch: Mismatch | None = None
    head_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing found changed, and a signed head vouches for the log (an empty one
        needs none): a tree no head covers proves nothing, since whoever can rewrite the
        log can rewrite the tree to match."""
        return self.mismatch is None and not self.head_problems and not self.unanchored

    @property
    def unanchored(self) -> bool:
        """The log holds events and no signed head covers any of them."""
        return self.events > 0 and self.anchored == 0

    @property
    def unsigned(self) -> int:
        """Events of the log past the largest signed head (none vouches for them yet)."""
        return max(0, self.events - self.anchored)

    @property
    def uncovered(self) -> int:
        """Events of the log the tree does not reach yet."""
        return max(0, self.events - self.tree_size)


def verify_audit(audit: AuditLog, progress: Progress | None = None) -> AuditVerdict:
    """Walk the whole log against the stored tree and every signed head; ``progress`` hears
    (position, the log's last position) after each chunk."""
    verdict = AuditVerdict(tree_size=audit.stored_size())
    heads = _checked_heads(audit, verdict)
    walk = _Walk(audit, verdict, heads)
    walk.run(progress or (lambda position, target: None))
    if verdict.mismatch is None:
        walk.finish()
    return verdict


def _checked_heads(audit: AuditLog, verdict: AuditVerdict) -> list[merkle.SignedHead]:
    """The heads whose signatures verify, by size; the others are problems."""
    good = []
    for head in audit.heads():
        if not merkle.verify_head(audit.public_key, head):
            verdict.head_problems.append(
                f"the head of size {head.tree_size} signed at {head.signed_at} does not "
                "verify with the audit key: it was forged or altered")
        elif head.tree_size == 0:  # the walk meets no size 0: check the empty tree here
            if head.root_hash != merkle.EMPTY_ROOT:
                verdict.head_problems.append(f"the head of size 0 signed at {head.signed_at} "
                                             "does not hold the empty tree's root")
            verdict.heads_checked += 1
        else:
            good.append(head)
    return sorted(good, key=lambda h: h.tree_size)


class _Walk:
    def __init__(self, audit: AuditLog, verdict: AuditVerdict,
                 heads: list[merkle.SignedHead]) -> None:
        self.audit, self.verdict, self.heads = audit, verdict, heads
        self.builder = TreeBuilder()
        self.stored = _stored_leaves(audit, verdict.tree_size)
        self.anchored = 0  # the size of the last head the log matched

    def run(self, progress: Progress) -> None:
        position, target = 0, self.audit.store.last_position()
        while notes := self.audit.store.notifications(position, CHUNK):
            for note in notes:
                if not self._leaf(note):
                    return
            if not self._upper_tiles_match():
                return
            position = notes[-1].id
            progress(position, max(target, position))

    def _leaf(self, note) -> bool:
        index, hashed = self.builder.size, event_leaf(note)
        self.verdict.events += 1
        self.verdict.last_position = note.id
        if index < self.verdict.tree_size:
            stored_hash, stored_position = next(self.stored)
            reason = None
            if stored_position != note.id:
                reason = (f"the tree holds position {stored_position} here: an event was "
                          "deleted, inserted or moved")
            elif stored_hash != hashed:
                reason = ("its bytes are not those the tree holds: the event's state, topic, "
                          "stream or version was changed")
            if reason:
                self.verdict.mismatch = Mismatch(index, reason, note.id, note.originator_id,
                                                 note.originator_version, stored_position)
                return False
        self.builder.append(hashed, note.id)
        return self._heads_match()

    def _heads_match(self) -> bool:
        size = self.builder.size
        while self.heads and self.heads[0].tree_size <= size:
            head = self.heads.pop(0)
            if head.tree_size == size and head.root_hash != self.builder.frontier.root():
                self.verdict.mismatch = Mismatch(
                    self.anchored, f"the log's leaves {self.anchored} .. {size - 1} no longer "
                    f"hash to the root of the head of size {size} signed at {head.signed_at}: "
                    "an event among them was changed, and the stored tree with it")
                return False
            self.verdict.heads_checked += 1
            self.anchored = self.verdict.anchored = size
        return True

    def _upper_tiles_match(self) -> bool:
        """The stored upper tiles (which proofs are read from) equal the recomputed ones."""
        for tile in self.builder.take_changed():
            end = ((tile.index + 1) * WIDTH) << (HEIGHT * tile.level)  # the leaf after its last
            if tile.level == 0 or tile.width < WIDTH or end > self.verdict.tree_size:
                continue
            with self.audit.db.transaction(write=False) as cursor:
                stored = self.audit.tables.tile(cursor, tile.level, tile.index)
            if stored != tile.hashes:
                first = (tile.index * WIDTH) << (HEIGHT * tile.level)
                self.verdict.mismatch = Mismatch(
                    first, f"the stored tree's tile {tile.level}/{tile.index} differs from the "
                    "one recomputed from the log: proofs read from it would not verify")
                return False
        return True

    def finish(self) -> None:
        """After the log's end: leaves the tree holds that the log lacks, heads beyond it."""
        verdict = self.verdict
        if verdict.events < verdict.tree_size:
            _, stored_position = next(self.stored)
            verdict.mismatch = Mismatch(
                verdict.events, f"the tree holds the event at position {stored_position} "
                "here, but the log ends before it: it was deleted",
                expected_position=stored_position)
            return
        for head in self.heads:
            verdict.head_problems.append(
                f"the head of size {head.tree_size} signed at {head.signed_at} reaches past "
                f"the log's {verdict.events} events: events were deleted")


def _stored_leaves(audit: AuditLog, size: int) -> Iterator[tuple[bytes, int]]:
    """(leaf hash, position) of each leaf of the stored tree, in order, a batch at a time."""
    left = size
    for tile in audit.tables.leaf_tiles(0, -(-size // WIDTH)):
        positions = unpack_positions(tile.positions or b"")
        for hashed, position in zip(split_hashes(tile.hashes), positions):
            if left == 0:
                return
            left -= 1
            yield hashed, position
    while left > 0:  # a leaf tile is missing: the tree itself was cut
        left -= 1
        yield b"", -1
