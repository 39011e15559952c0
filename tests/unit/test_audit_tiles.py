"""The tiled audit tree: built in chunks of any size, reloaded from its stored tiles at any
point, it has the same root and serves the same proofs as the plain list of its leaves."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from replay import merkle
from replay.audit_tiles import (WIDTH, Tile, TreeBuilder, builder_from, subtree_reader,
                                unpack_positions)


def leaf(i: int) -> bytes:
    return merkle.leaf_hash(hashlib.sha256(str(i).encode()).digest())


class Tiles(dict):
    """Stored tiles, keyed (level, index), the way the audit tables keep them."""

    def put(self, tiles: list[Tile]) -> None:
        for tile in tiles:
            self[tile.level, tile.index] = tile

    def fetch(self, level: int, index: int) -> bytes:
        tile = self.get((level, index))
        return tile.hashes if tile else b""

    def positions(self, index: int) -> tuple[int, ...]:
        return unpack_positions(self[0, index].positions)


def build(size: int, chunks: list[int], reload_at: set[int]) -> tuple[Tiles, TreeBuilder]:
    """Append ``size`` leaves in chunks, storing the changed tiles after each and, where
    asked, continuing from a builder reloaded out of the stored tiles."""
    tiles, builder, done, turn = Tiles(), TreeBuilder(), 0, 0
    while done < size:
        step = min(size - done, chunks[turn % len(chunks)])
        for i in range(done, done + step):
            builder.append(leaf(i), 3 * i + 1)
        done += step
        tiles.put(builder.take_changed())
        if turn in reload_at:
            builder = builder_from(tiles.fetch, tiles.positions, done)
        turn += 1
    return tiles, builder


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 3 * WIDTH + 40), chunks=st.lists(st.integers(1, 700), min_size=1,
                                                            max_size=4),
       reload_at=st.sets(st.integers(0, 6)), data=st.data())
def test_tiles_serve_the_proofs_the_leaves_would(size, chunks, reload_at, data):
    tiles, builder = build(size, chunks, reload_at)
    leaves = [leaf(i) for i in range(size)]
    reference = merkle.list_subtree(leaves)
    assert builder.size == size and builder.frontier.root() == merkle.root(leaves)
    stored = subtree_reader(tiles.fetch)
    tree_size = data.draw(st.integers(1, size))
    index = data.draw(st.integers(0, tree_size - 1))
    old = data.draw(st.integers(1, tree_size))
    assert stored(0, tree_size) == merkle.root(leaves[:tree_size])
    assert merkle.inclusion_proof(index, tree_size, stored) == merkle.inclusion_proof(
        index, tree_size, reference)
    assert merkle.consistency_proof(old, tree_size, stored) == merkle.consistency_proof(
        old, tree_size, reference)


def test_a_leaf_tile_keeps_its_leaves_positions():
    tiles, _ = build(WIDTH + 5, [100], set())
    assert tiles.positions(0) == tuple(3 * i + 1 for i in range(WIDTH))
    assert tiles.positions(1) == tuple(3 * i + 1 for i in range(WIDTH, WIDTH + 5))


def test_a_proof_reads_a_few_tiles_not_the_log():
    size = WIDTH ** 2 + 3
    tiles, _ = build(size, [5000], set())
    reads = []
    stored = subtree_reader(lambda level, index: reads.append((level, index))
                            or tiles.fetch(level, index))
    merkle.inclusion_proof(size // 2, size, stored)
    assert len(reads) <= 6


@given(position=st.integers(0, 2**63), version=st.integers(0, 2**63),
       topic=st.text(max_size=40), state=st.binary(max_size=300), stream=st.uuids())
def test_raw_leaf_bytes_are_the_leaf_bytes(position, version, topic, state, stream):
    assert merkle.leaf_bytes_raw(position, stream.bytes, version, topic, state) == \
        merkle.leaf_bytes(position, stream, version, topic, state)
