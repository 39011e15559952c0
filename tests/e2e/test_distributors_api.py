"""POST /v1/distributors and GET /v1/distributors/{id}: a tree of at most three levels per
tenant (the platform's own, and each tenant's apart), refused input as problem+json,
replayed retries."""

import uuid

import pytest


def new_id(tag: str = "d") -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def register(client, keys, distributor_id, name="Shop", parent_id=None, headers=None):
    body = {"distributor_id": distributor_id, "name": name}
    if parent_id is not None:
        body["parent_id"] = parent_id
    return client.post("/v1/distributors", headers=headers or keys["app"], json=body)


def test_three_levels_register_with_their_levels(client, keys):
    parent, answers = None, []
    for _ in range(3):
        distributor_id = new_id()
        answer = register(client, keys, distributor_id, parent_id=parent)
        assert answer.status_code == 201, answer.text
        answers.append(answer.json())
        parent = distributor_id
    assert [(a["level"], a["parent_id"]) for a in answers] == [
        (1, None), (2, answers[0]["distributor_id"]), (3, answers[1]["distributor_id"])]
    assert set(answers[0]) == {"distributor_id", "name", "parent_id", "level",
                               "registered_at"}
    assert answers[0]["registered_at"].endswith("Z")


def test_a_fourth_level_is_409_and_is_not_stored(client, keys):
    parent = None
    for _ in range(3):
        distributor_id = new_id()
        register(client, keys, distributor_id, parent_id=parent)
        parent = distributor_id
    fourth = new_id()
    answer = register(client, keys, fourth, parent_id=parent)
    assert answer.status_code == 409
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "invalid_state"
    assert "at most three levels" in answer.json()["detail"]
    assert client.get(f"/v1/distributors/{fourth}", headers=keys["app"]).status_code == 404


def test_an_unknown_parent_is_404(client, keys):
    child = new_id()
    answer = register(client, keys, child, parent_id="no-such-parent")
    assert answer.status_code == 404 and answer.json()["code"] == "not_found"
    assert client.get(f"/v1/distributors/{child}", headers=keys["app"]).status_code == 404


def test_the_same_registration_again_is_the_same_answer(client, keys):
    distributor_id = new_id()
    first = register(client, keys, distributor_id)
    again = register(client, keys, distributor_id)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()


def test_a_taken_id_with_another_name_is_409_already_exists(client, keys):
    distributor_id = new_id()
    register(client, keys, distributor_id, name="Shop")
    answer = register(client, keys, distributor_id, name="Another shop")
    assert answer.status_code == 409 and answer.json()["code"] == "already_exists"
    assert client.get(f"/v1/distributors/{distributor_id}",
                      headers=keys["app"]).json()["name"] == "Shop"


def test_an_idempotency_key_retry_replays_the_first_answer(client, keys):
    headers = {**keys["app"], "Idempotency-Key": f"dist-{uuid.uuid4().hex}"}
    distributor_id = new_id()
    first = register(client, keys, distributor_id, headers=headers)
    again = register(client, keys, distributor_id, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("body", [
    {"distributor_id": "d-nul", "name": "Sh\u0000op"},
    {"distributor_id": "d\u0000nul", "name": "Shop"},
    {"distributor_id": "has space", "name": "Shop"},
    {"distributor_id": "a:b", "name": "Shop"},
    {"distributor_id": "x" * 65, "name": "Shop"},
    {"distributor_id": "d-1", "name": ""},
    {"distributor_id": "d-1", "name": "Shop", "parent_id": "p\u0000"},
    {"distributor_id": "d-1", "name": "Shop", "extra": 1},
    {"name": "Shop"},
])
def test_bad_input_is_422_and_stores_nothing(client, keys, runtime, body):
    before = runtime.store.last_position()
    answer = client.post("/v1/distributors", headers=keys["app"], json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_error"
    assert runtime.store.last_position() == before


def test_a_blank_name_is_refused_by_the_engine_as_422(client, keys):
    answer = register(client, keys, new_id(), name="   ")
    assert answer.status_code == 422 and answer.json()["code"] == "validation_error"


@pytest.mark.parametrize("role", ["finance", "support"])
def test_finance_and_support_read_but_cannot_register(client, keys, role):
    distributor_id = new_id()
    register(client, keys, distributor_id)
    answer = client.get(f"/v1/distributors/{distributor_id}", headers=keys[role])
    assert answer.status_code == 200 and answer.json()["level"] == 1
    refused = register(client, keys, new_id(), headers=keys[role])
    assert refused.status_code == 403


def test_merchant_keys_cannot_read_distributors(client, keys):
    distributor_id = new_id()
    register(client, keys, distributor_id)
    answer = client.get(f"/v1/distributors/{distributor_id}", headers=keys["merchant"])
    assert answer.status_code == 403


def test_a_tenants_key_neither_reads_nor_extends_the_platforms_tree(client, keys, runtime):
    other = {"Authorization":
             f"Bearer {runtime.engine.keys.issue(role='app', name='other', tenant='t-2').secret}"}
    root = new_id()
    register(client, keys, root, name="Root")
    unknown = client.get(f"/v1/distributors/{new_id()}", headers=other)
    hidden = client.get(f"/v1/distributors/{root}", headers=other)
    assert hidden.status_code == 404
    assert hidden.json() | {"detail": ""} == unknown.json() | {"detail": ""}
    assert register(client, keys, new_id(), parent_id=root, headers=other).status_code == 404
    own = register(client, keys, root, name="T-2 root", headers=other)
    assert own.status_code == 201 and own.json()["distributor_id"] == root
    child = register(client, keys, new_id(), parent_id=root, headers=other)
    assert child.status_code == 201 and child.json()["level"] == 2
    assert client.get(f"/v1/distributors/{root}", headers=keys["app"]).json()["name"] == "Root"


@pytest.mark.parametrize("path", ["nobody", "has%20space", "nul%00", "x" * 300])
def test_an_unknown_or_impossible_id_reads_as_404(client, keys, path):
    answer = client.get(f"/v1/distributors/{path}", headers=keys["app"])
    assert answer.status_code == 404 and answer.json()["code"] == "not_found"


def test_registering_shows_in_the_event_feed_with_no_ledger_posting(client, keys):
    distributor_id = new_id()
    register(client, keys, distributor_id)
    feed = client.get("/v1/events?limit=1000", headers=keys["finance"]).json()["items"]
    registered = [e for e in feed if e["type"] == "distributor.registered"]
    assert [e["data"]["distributor_id"] for e in registered] == [distributor_id]
    assert not [e for e in feed if e["type"].startswith("ledger.")]
