"""Distributors on both stores: a tree of at most three levels, registered once, no ledger
posting, chains read back nearest first."""

import threading
import uuid

import pytest

from engine.kernel.errors import AlreadyExists, InvalidState, NotFound, ValidationFailed
from engine.ledger.distribution import Distribution
from engine.ledger.transactions import LedgerTransaction


def new_id(tag: str = "d") -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def tree(runtime) -> list[str]:
    """A root, its child and grandchild: levels 1, 2 and 3."""
    ids, parent = [], None
    for level in (1, 2, 3):
        distributor_id = new_id(f"l{level}")
        runtime.engine.distribution.register(distributor_id=distributor_id,
                                             name=f"Level {level}", parent_id=parent,
                                             actor="test")
        ids.append(distributor_id)
        parent = distributor_id
    return ids


def test_three_levels_register_each_one_below_its_parent(runtime):
    root, child, grandchild = tree(runtime)
    stored = [runtime.engine.distribution.get(d) for d in (root, child, grandchild)]
    assert [(d.level, d.parent_id) for d in stored] == [(1, None), (2, root), (3, child)]
    assert stored[2].name == "Level 3" and stored[2].created_on.tzinfo is not None


def test_a_fourth_level_is_refused_and_nothing_is_stored(runtime):
    *_, grandchild = tree(runtime)
    before = runtime.store.last_position()
    fourth = new_id("l4")
    with pytest.raises(InvalidState, match="at most three levels"):
        runtime.engine.distribution.register(distributor_id=fourth, name="Too deep",
                                             parent_id=grandchild, actor="test")
    assert runtime.store.last_position() == before
    with pytest.raises(NotFound):
        runtime.engine.distribution.get(fourth)


def test_an_unknown_parent_is_not_found_and_nothing_is_stored(runtime):
    before = runtime.store.last_position()
    with pytest.raises(NotFound):
        runtime.engine.distribution.register(distributor_id=new_id(), name="Orphan",
                                             parent_id="nobody", actor="test")
    assert runtime.store.last_position() == before


def test_the_same_registration_again_answers_the_first_and_stores_nothing(runtime):
    distribution = runtime.engine.distribution
    root = new_id()
    first = distribution.register(distributor_id=root, name="Shop", actor="key:a")
    position = runtime.store.last_position()
    again = distribution.register(distributor_id=root, name="Shop", actor="key:b")
    assert runtime.store.last_position() == position
    assert (again.id, again.created_on, again.version) == (first.id, first.created_on, 1)


@pytest.mark.parametrize("change", [{"name": "Other shop"}, {"parent_id": "PARENT"}])
def test_another_registration_of_a_taken_id_is_refused(runtime, change):
    distribution = runtime.engine.distribution
    parent = new_id()
    distribution.register(distributor_id=parent, name="Parent", actor="test")
    taken = new_id()
    distribution.register(distributor_id=taken, name="Shop", actor="test")
    fields = {"name": "Shop", **change}
    if fields.get("parent_id") == "PARENT":
        fields["parent_id"] = parent
    with pytest.raises(AlreadyExists):
        distribution.register(distributor_id=taken, actor="test", **fields)
    assert distribution.get(taken).parent_id is None


def test_a_registration_racing_its_twin_answers_both_with_one_distributor(runtime):
    distributor_id, answers = new_id(), []
    # two services: neither has the distributor in its cache, both try to create it
    services = [Distribution(runtime.store, runtime.engine.writer) for _ in range(2)]

    def register(service: Distribution) -> None:
        answers.append(service.register(distributor_id=distributor_id, name="Twin",
                                        actor="test"))

    threads = [threading.Thread(target=register, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 2 and answers[0].id == answers[1].id
    topics = [n.topic for n in runtime.store.notifications(0, 1000)
              if n.originator_id == answers[0].id]
    assert topics == ["quanyi:distributor.registered"]


@pytest.mark.parametrize("bad", ["", "has space", "a:b:c", "-lead", "x" * 65, "名字",
                                 "nul\x00"])
def test_an_id_that_cannot_name_a_ledger_account_is_refused(runtime, bad):
    with pytest.raises(ValidationFailed, match="ledger account"):
        runtime.engine.distribution.register(distributor_id=bad, name="Shop", actor="test")


@pytest.mark.parametrize("bad", ["", "   ", "x" * 201, "tab\there", "nul\x00"])
def test_a_bad_name_is_refused(runtime, bad):
    with pytest.raises(ValidationFailed, match="name"):
        runtime.engine.distribution.register(distributor_id=new_id(), name=bad, actor="test")


def test_registering_posts_nothing_to_the_ledger(runtime):
    tree(runtime)
    topics = {n.topic for n in runtime.store.notifications(0, 1000)}
    assert "quanyi:distributor.registered" in topics
    assert LedgerTransaction.Created.TOPIC not in topics


def test_a_chain_is_the_distributor_and_its_ancestors_nearest_first(runtime):
    root, child, grandchild = tree(runtime)
    distribution = runtime.engine.distribution
    assert [d.distributor_id for d in distribution.chain(grandchild)] == [
        grandchild, child, root]
    assert [d.distributor_id for d in distribution.chain(child)] == [child, root]
    assert [d.distributor_id for d in distribution.chain(root)] == [root]


def test_a_chain_is_read_from_the_store_once_per_process(runtime, monkeypatch):
    *_, grandchild = tree(runtime)
    distribution = Distribution(runtime.store, runtime.engine.writer)  # an empty cache
    reads = []
    real_get = runtime.store.repository.get
    monkeypatch.setattr(runtime.store.repository, "get",
                        lambda *a, **k: reads.append(a) or real_get(*a, **k))
    first = distribution.chain(grandchild)
    assert len(reads) == 3
    assert distribution.chain(grandchild) == first and len(reads) == 3


def test_an_unknown_distributor_has_no_chain(runtime):
    with pytest.raises(NotFound):
        runtime.engine.distribution.chain("nobody")


def test_a_distributor_registered_by_another_process_is_found(runtime):
    elsewhere = Distribution(runtime.store, runtime.engine.writer)
    distributor_id = new_id()
    with pytest.raises(NotFound):
        runtime.engine.distribution.get(distributor_id)  # a miss is not remembered
    elsewhere.register(distributor_id=distributor_id, name="Late", actor="test")
    assert runtime.engine.distribution.get(distributor_id).name == "Late"
