"""The audit log's tree follows the event log on both stores: its root equals the tree
recomputed from the stored events, its heads are signed by the audit key, and its stored
tiles serve the same proofs as the whole list of leaves would."""

from __future__ import annotations

import threading

import pytest

from replay import merkle
from replay.audit_log import event_leaf
from tests.integration.helpers import codes_for, define_product, import_codes


def all_leaves(rt) -> list[bytes]:
    leaves, position = [], 0
    while notes := rt.store.notifications(position, 500):
        leaves += [event_leaf(n) for n in notes]
        position = notes[-1].id
    return leaves


def some_events(rt, count: int = 30) -> None:
    sku = define_product(rt)
    import_codes(rt, sku, codes_for(count))


def test_catch_up_covers_the_whole_log_and_its_root_is_the_recomputed_one(runtime):
    some_events(runtime)
    size = runtime.audit.catch_up()
    leaves = all_leaves(runtime)
    assert size == len(leaves) > 30
    head = runtime.audit.sign_head()
    assert (head.tree_size, head.root_hash) == (size, merkle.root(leaves))
    assert merkle.verify_head(runtime.audit.public_key, head)


def test_heads_are_kept_oldest_first_and_are_consistent(runtime):
    some_events(runtime, 10)
    first = runtime.audit.sign_head()
    some_events(runtime, 300)
    second = runtime.audit.sign_head()
    assert runtime.audit.heads()[-2:] == [first, second]
    assert runtime.audit.latest_head() == second
    proof = runtime.audit.consistency_proof(first.tree_size, second.tree_size)
    assert merkle.verify_consistency(first.tree_size, second.tree_size, first.root_hash,
                                     second.root_hash, proof)


def test_a_head_signed_by_another_key_does_not_verify(runtime):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    some_events(runtime, 3)
    head = runtime.audit.sign_head()
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw,
                                                                  PublicFormat.Raw)
    assert not merkle.verify_head(other, head)


def test_inclusion_proofs_from_the_tiles_equal_the_ones_from_the_leaves(runtime):
    some_events(runtime, 600)
    size = runtime.audit.catch_up()
    leaves = all_leaves(runtime)
    reference = merkle.list_subtree(leaves)
    for tree_size in (1, 2, 255, 256, 257, 511, 512, 513, size):
        root = merkle.root(leaves[:tree_size])
        assert runtime.audit.root(tree_size) == root
        for index in {0, tree_size // 3, tree_size - 1}:
            proof = runtime.audit.inclusion_proof(index, tree_size)
            assert proof == merkle.inclusion_proof(index, tree_size, reference)
            assert merkle.verify_inclusion(leaves[index], index, tree_size, proof, root)


def test_leaf_index_finds_each_event_by_its_position(runtime):
    from engine.errors import NotFound

    some_events(runtime, 300)
    runtime.audit.catch_up()
    positions, position = [], 0
    while notes := runtime.store.notifications(position, 500):
        positions += [n.id for n in notes]
        position = notes[-1].id
    for index in (0, 1, 255, 256, len(positions) - 1):
        assert runtime.audit.leaf_index(positions[index]) == index
    with pytest.raises(NotFound):
        runtime.audit.leaf_index(positions[-1] + 1000)


def test_the_follower_under_concurrent_writers_ends_with_the_recomputed_tree(runtime):
    sku = define_product(runtime)

    def write(n: int) -> None:
        for _ in range(5):
            import_codes(runtime, sku, codes_for(7))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    size = runtime.audit.catch_up()
    leaves = all_leaves(runtime)
    assert size == len(leaves)
    assert runtime.audit.root(size) == merkle.root(leaves)
