"""The audit tree kept as tiles, after the tiled transparency logs of Go's checksum database.

A tile of level L and index k holds the hashes of the tree's nodes at height 8L numbered
256k .. 256k+255, concatenated; the last tile of each level is partial and grows. Level-0
tiles also hold the log positions of their leaves.

    level 1 tile 0:  [ MTH(leaves 0..255), MTH(leaves 256..511), ... ]   (height 8)
    level 0 tile 0:  [ leaf 0, leaf 1, ..., leaf 255 ]                    (height 0)

Any perfect subtree is one tile and at most 127 hashes, so a proof reads O(log n) tiles,
and the follower writes about one row per 256 events instead of two rows per event.
A tile's content only ever grows at its end, so a tile read at any later time serves a
proof for an older tree size too.

Pure: storage is a ``fetch(level, index) -> bytes`` callable (replay/audit_store.py).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from replay import merkle

HEIGHT = 8
WIDTH = 1 << HEIGHT
HASH_BYTES = 32

Fetch = Callable[[int, int], bytes]  # (tile level, tile index) -> concatenated hashes


@dataclass(frozen=True)
class Tile:
    level: int
    index: int
    hashes: bytes
    positions: bytes | None = None  # level 0: each leaf's log position, 8 bytes big-endian

    @property
    def width(self) -> int:
        return len(self.hashes) // HASH_BYTES

    def first_position(self) -> int | None:
        return struct.unpack_from(">Q", self.positions)[0] if self.positions else None


def split_hashes(data: bytes) -> list[bytes]:
    return [data[i:i + HASH_BYTES] for i in range(0, len(data), HASH_BYTES)]


def pack_positions(positions: list[int]) -> bytes:
    return struct.pack(f">{len(positions)}Q", *positions)


def unpack_positions(data: bytes) -> tuple[int, ...]:
    return struct.unpack(f">{len(data) // 8}Q", data)


def tile_of(height: int, index: int) -> tuple[int, int, int]:
    """(tile level, tile index, offset) of node ``index`` at ``height``'s first tile entry."""
    level, rest = divmod(height, HEIGHT)
    first = index << rest
    return level, first >> HEIGHT, first & (WIDTH - 1)


def node(fetch: Fetch, height: int, index: int) -> bytes:
    """The hash of the perfect subtree of 2**height leaves starting at leaf index*2**height."""
    level, tile, offset = tile_of(height, index)
    count = 1 << (height % HEIGHT)
    data = fetch(level, tile)[offset * HASH_BYTES:(offset + count) * HASH_BYTES]
    if len(data) != count * HASH_BYTES:
        raise LookupError(f"the tree has no node {index} at height {height} yet")
    return merkle.root(split_hashes(data))


def subtree_reader(fetch: Fetch) -> merkle.Subtree:
    """A ``merkle.Subtree`` over stored tiles; each tile is fetched once per reader."""
    cache: dict[tuple[int, int], bytes] = {}

    def cached(level: int, index: int) -> bytes:
        if (level, index) not in cache:
            cache[level, index] = fetch(level, index)
        return cache[level, index]

    def subtree(start: int, end: int) -> bytes:
        size = end - start
        if size & (size - 1) == 0 and start % size == 0:
            return node(cached, size.bit_length() - 1, start // size)
        middle = start + merkle.split_point(size)
        return merkle.node_hash(subtree(start, middle), subtree(middle, end))

    return subtree


def frontier_peaks(fetch: Fetch, size: int) -> list[bytes]:
    """The frontier of a tree of ``size`` leaves (largest perfect subtree first)."""
    found, start = [], 0
    for height in range(size.bit_length() - 1, -1, -1):
        if size >> height & 1:
            found.append(node(fetch, height, start >> height))
            start += 1 << height
    return found


class TreeBuilder:
    """Extends the tree leaf by leaf, keeping the frontier (for the root) and the last,
    partial tile of each level; ``take_changed`` hands over the tiles to store."""

    def __init__(self, size: int = 0, peaks: list[bytes] | None = None,
                 partial: list[list[bytes]] | None = None,
                 positions: list[int] | None = None) -> None:
        self.frontier = merkle.Frontier(size, peaks or [])
        self.partial = partial or [[]]  # per level: the hashes of its last tile
        self.positions = positions or []  # the positions of the last level-0 tile's leaves
        self._full: list[Tile] = []
        self._touched: set[int] = set()

    @property
    def size(self) -> int:
        return self.frontier.size

    def append(self, hashed: bytes, position: int) -> None:
        frontier, leaf = self.frontier, self.frontier.size
        self._push(0, hashed)
        self.positions.append(position)
        peaks, size, height = frontier.peaks, leaf, 0
        peaks.append(hashed)
        # merkle.Frontier.append's carries, here so that each node hashed on the way is also
        # a tile entry when its height is a multiple of 8: every node is hashed once.
        while size & 1:
            right = peaks.pop()
            peaks[-1] = merkle.node_hash(peaks[-1], right)
            size, height = size >> 1, height + 1
            if height % HEIGHT == 0:
                level = height // HEIGHT
                self._complete(level - 1, (leaf >> (HEIGHT * (level - 1))) >> HEIGHT)
                self._push(level, peaks[-1])
        frontier.size += 1

    def _push(self, level: int, hashed: bytes) -> None:
        if len(self.partial) == level:
            self.partial.append([])
        self.partial[level].append(hashed)
        self._touched.add(level)

    def _complete(self, level: int, index: int) -> None:
        """Tile ``index`` of ``level`` is full: hand it over and start the next."""
        positions = pack_positions(self.positions) if level == 0 else None
        self._full.append(Tile(level, index, b"".join(self.partial[level]), positions))
        self.partial[level] = []
        if level == 0:
            self.positions = []

    def take_changed(self) -> list[Tile]:
        """The tiles completed or grown since the last call, in the order they changed."""
        changed = self._full
        for level in sorted(self._touched):
            if self.partial[level]:
                index = (self.size >> (HEIGHT * level)) >> HEIGHT
                positions = pack_positions(self.positions) if level == 0 else None
                changed.append(Tile(level, index, b"".join(self.partial[level]), positions))
        self._full, self._touched = [], set()
        return changed


def builder_from(fetch: Fetch, positions_of: Callable[[int], tuple[int, ...]],
                 size: int) -> TreeBuilder:
    """A builder that continues the stored tree of ``size`` leaves (``positions_of(index)``:
    the positions of level-0 tile ``index``)."""
    partial, positions = [], []
    level = 0
    while level == 0 or size >> (HEIGHT * level):
        count = (size >> (HEIGHT * level)) & (WIDTH - 1)
        index = (size >> (HEIGHT * level)) >> HEIGHT
        data = fetch(level, index) if count else b""
        partial.append(split_hashes(data[:count * HASH_BYTES]))
        if level == 0 and count:
            positions = list(positions_of(index)[:count])
        level += 1
    return TreeBuilder(size, frontier_peaks(fetch, size), partial, positions)
