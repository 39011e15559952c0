"""Guessing codes is slow: misses are counted per key and per merchant, in the read-side
database (shared by every server process, kept across restarts), and lock-outs escalate."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.limits import MAX_LOCKOUT, MissLimiter
from api.problems import ApiProblem
from engine.settings import Settings
from runtime import Runtime
from tests.e2e.conftest import sold_code

LIMIT = 20


def guess(client, headers, merchant_id: str = "m-1"):
    return client.post("/v1/redemptions", headers=headers,
                       json={"code": f"GUESS-{uuid.uuid4().hex[:10]}", "merchant_id": merchant_id})


def look_up(client, headers, code: str | None = None):
    return client.post("/v1/codes/lookup", headers=headers,
                       json={"code": code or f"GUESS-{uuid.uuid4().hex[:10]}"})


def merchant_key(runtime, merchant_id: str) -> dict[str, str]:
    secret = runtime.engine.keys.issue(role="merchant", name=f"shop-{uuid.uuid4().hex[:4]}",
                                       merchant_id=merchant_id).secret
    return {"Authorization": f"Bearer {secret}"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def retry_after(limiter: MissLimiter, *who: str) -> int:
    with pytest.raises(ApiProblem) as refused:
        limiter.check(*who)
    assert refused.value.status == 429
    return int(refused.value.headers["Retry-After"])


def test_two_servers_on_one_store_share_the_miss_count(client, keys, runtime, settings):
    other = Runtime.open(settings)
    try:
        with TestClient(create_app(other)) as second:
            for n in range(LIMIT):
                answer = look_up(client if n % 2 else second, keys["merchant"])
                assert answer.status_code == 404
            assert look_up(client, keys["merchant"]).status_code == 429
            assert look_up(second, keys["merchant"]).status_code == 429
    finally:
        other.close()


def test_miss_count_survives_a_restart(runtime):
    clock = Clock()
    MissLimiter(runtime.read_db, limit=3, clock=clock).missed("key:k1")
    MissLimiter(runtime.read_db, limit=3, clock=clock).missed("key:k1")
    restarted = MissLimiter(runtime.read_db, limit=3, clock=clock)
    restarted.check("key:k1")
    restarted.missed("key:k1")
    assert retry_after(restarted, "key:k1") == 60


def test_a_second_key_of_the_same_merchant_is_still_limited(client, keys, runtime):
    for _ in range(LIMIT):
        assert guess(client, keys["merchant"], "m-1").status_code == 404
    second = merchant_key(runtime, "m-1")
    refused = guess(client, second, "m-1")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert guess(client, merchant_key(runtime, "m-2"), "m-2").status_code == 404


def test_hits_in_between_do_not_reset_the_count(client, keys, product):
    code, _ = sold_code(client, keys, product)
    for _ in range(LIMIT):
        assert look_up(client, keys["merchant"], code).status_code == 200
        assert look_up(client, keys["merchant"]).status_code == 404
    assert look_up(client, keys["merchant"], code).status_code == 429


def test_each_lock_out_lasts_twice_the_last_up_to_a_day(runtime):
    clock = Clock()
    limiter = MissLimiter(runtime.read_db, limit=3, window=60, clock=clock)
    waits = []
    for _ in range(13):
        for _ in range(3):
            limiter.missed("merchant:m-9")
        waits.append(retry_after(limiter, "merchant:m-9"))
        clock.now += waits[-1] + 1
    assert waits[:4] == [60, 120, 240, 480]
    assert waits[-1] == MAX_LOCKOUT and max(waits) == MAX_LOCKOUT


def test_misses_age_out_of_the_window(runtime):
    clock = Clock()
    limiter = MissLimiter(runtime.read_db, limit=3, window=60, clock=clock)
    limiter.missed("key:k2")
    limiter.missed("key:k2")
    clock.now += 61
    limiter.missed("key:k2")
    limiter.missed("key:k2")
    limiter.check("key:k2")
    limiter.missed("key:k2")
    assert retry_after(limiter, "key:k2") == 60


def test_a_lock_out_of_one_subject_leaves_others_alone(runtime):
    limiter = MissLimiter(runtime.read_db, limit=1, clock=Clock())
    limiter.missed("key:a", "merchant:m-a")
    assert retry_after(limiter, "key:a") == 60
    assert retry_after(limiter, "key:b", "merchant:m-a") == 60
    limiter.check("key:b", "merchant:m-b")


def test_limit_and_window_come_from_settings(keys, runtime, settings):
    tight = Runtime.open(replace(settings, miss_limit=2, miss_window_seconds=30))
    try:
        with TestClient(create_app(tight)) as strict:
            assert look_up(strict, keys["support"]).status_code == 404
            assert look_up(strict, keys["support"]).status_code == 404
            refused = look_up(strict, keys["support"])
            assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
    finally:
        tight.close()


def test_settings_read_the_miss_limit_and_window(tmp_path):
    env = {"QUANYI_DATA_DIR": str(tmp_path), "QUANYI_MISS_LIMIT": "5",
           "QUANYI_MISS_WINDOW_SECONDS": "90"}
    read = Settings.from_env(env)
    assert (read.miss_limit, read.miss_window_seconds) == (5, 90.0)
