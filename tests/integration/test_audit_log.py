"""The audit log's tree follows the event log on both stores: its root equals the tree
recomputed from the stored events, its heads are signed by the audit key, and its stored
tiles serve the same proofs as the whole list of leaves would."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replay import merkle
from replay.audit_log import event_leaf
from replay.audit_store import AuditTables
from tests.integration.helpers import (
    codes_for,
    define_product,
    import_codes,
    set_up_beside_a_writer,
)


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


@pytest.fixture
def tree_of_600(runtime) -> list[bytes]:
    some_events(runtime, 600)
    runtime.audit.catch_up()
    return all_leaves(runtime)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_stored_proofs_equal_the_leaves_proofs_for_any_size(runtime, tree_of_600, data):
    leaves = tree_of_600
    reference = merkle.list_subtree(leaves)
    tree_size = data.draw(st.integers(1, len(leaves)), label="tree size")
    index = data.draw(st.integers(0, tree_size - 1), label="leaf")
    old = data.draw(st.integers(1, tree_size), label="older size")
    assert runtime.audit.inclusion_proof(index, tree_size) == merkle.inclusion_proof(
        index, tree_size, reference)
    assert runtime.audit.consistency_proof(old, tree_size) == merkle.consistency_proof(
        old, tree_size, reference)


def test_a_proof_beyond_the_stored_tree_is_not_found(runtime):
    from engine.kernel.errors import NotFound

    some_events(runtime, 3)
    size = runtime.audit.catch_up()
    with pytest.raises(NotFound):
        runtime.audit.inclusion_proof(0, size + 1)


def test_leaf_index_finds_each_event_by_its_position(runtime):
    from engine.kernel.errors import NotFound

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


def eventually(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def write_concurrently(runtime, writers: int = 6, batches: int = 5) -> None:
    sku = define_product(runtime)

    def write() -> None:
        for _ in range(batches):
            import_codes(runtime, sku, codes_for(7))

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_the_follower_under_concurrent_writers_ends_with_the_recomputed_tree(runtime):
    write_concurrently(runtime)
    assert eventually(lambda: runtime.audit.position() == runtime.store.last_position())
    leaves = all_leaves(runtime)
    assert runtime.audit.stored_size() == len(leaves)
    assert runtime.audit.root(len(leaves)) == merkle.root(leaves)


def test_two_followers_on_one_database_build_one_tree(runtime, settings):
    from replay.audit_log import AuditLog

    other = AuditLog.open(settings, runtime.store)  # as a second server process would
    stop = threading.Event()

    def follow(audit) -> None:
        while not stop.is_set():
            audit.catch_up()

    followers = [threading.Thread(target=follow, args=(a,)) for a in (runtime.audit, other)]
    for thread in followers:
        thread.start()
    try:
        write_concurrently(runtime, writers=4)
    finally:
        stop.set()
        for thread in followers:
            thread.join()
    size = other.catch_up()
    leaves = all_leaves(runtime)
    assert size == runtime.audit.catch_up() == len(leaves)
    assert other.root(size) == merkle.root(leaves)
    other.close()


def test_the_follower_signs_a_head_every_so_many_events(runtime):
    runtime.audit_follower.head_every_events = 20
    some_events(runtime, 25)
    assert eventually(lambda: runtime.audit.latest_head() is not None)
    head = runtime.audit.latest_head()
    assert head.tree_size >= 20 and merkle.verify_head(runtime.audit.public_key, head)


def test_the_follower_signs_a_head_after_so_long_if_the_tree_grew(runtime):
    runtime.audit_follower.head_every_seconds = 0.2
    some_events(runtime, 2)
    assert eventually(lambda: runtime.audit.latest_head() is not None)
    count = len(runtime.audit.heads())
    time.sleep(1.5)  # nothing written: no new head however long it waits
    assert len(runtime.audit.heads()) == count


def test_an_audit_log_opening_beside_one_extending_its_tree_does_not_deadlock(runtime):
    """As for the projections: the state row is taken before the tiles' index is set up,
    in the order a follower extending the tree takes them."""
    some_events(runtime)
    failures = set_up_beside_a_writer(
        runtime.audit.db, "UPDATE audit_state SET name = name WHERE name = 'main'",
        "UPDATE audit_tiles SET idx = idx WHERE level = -1",
        lambda: AuditTables(runtime.audit.db).create())
    assert failures == []
