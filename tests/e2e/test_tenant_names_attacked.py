"""A tenant's name is part of natural keys and ledger account names, so the two places a
client writes one - a key's `tenant` and a platform key's `Quanyi-Tenant` header - are
attacked as a review would: NUL and other control characters, the separator, dots and
spaces, non-ASCII look-alikes, over-long names. Each is refused with a 422 problem and
stores nothing; the header refuses before the route acts."""

from __future__ import annotations

import pytest

from tests.conftest import caught_up

HOSTILE = ["a\x00b", "a\x01", "a\tb", "a:b", ":a", "a b", " a", ".a", "-a", "", "x" * 65,
           "ａｃｍｅ", "acme\u200b", "ācme", "a/b", "a\\b", "../a", "a\u202eb"]
# what an HTTP client can put in a header at all (no NUL, CR, LF; latin-1 only)
HEADER_HOSTILE = [name for name in HOSTILE if name.isascii() and "\x00" not in name
                  and "\t" not in name and "\x01" not in name]


@pytest.mark.parametrize("tenant", HOSTILE)
def test_a_key_for_a_hostile_tenant_name_is_refused(client, keys, runtime, tenant):
    caught_up(runtime)
    before = runtime.store.last_position()
    answer = client.post("/v1/keys", headers=keys["admin"],
                         json={"role": "app", "name": "shop", "tenant": tenant})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert runtime.store.last_position() == before


@pytest.mark.parametrize("tenant", [n for n in HEADER_HOSTILE if n])
def test_a_hostile_tenant_header_is_refused_and_acts_nowhere(client, keys, runtime, tenant):
    caught_up(runtime)
    before = runtime.store.last_position()
    answer = client.post("/v1/products", headers={**keys["app"], "Quanyi-Tenant": tenant},
                         json={"sku": "VIP", "name": "Video VIP", "delivery": "card",
                               "price": 1990})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert runtime.store.last_position() == before
    listed = client.get("/v1/products/VIP", headers={**keys["app"], "Quanyi-Tenant": tenant})
    assert listed.status_code == 422, listed.text


def test_a_non_latin_tenant_header_is_refused(client, keys):
    raw = "ācme".encode()  # a client sending UTF-8 bytes the server reads as latin-1
    answer = client.get("/v1/products/VIP", headers={**keys["app"], "Quanyi-Tenant": raw})
    assert answer.status_code == 422, answer.text


def test_a_well_formed_tenant_name_is_taken(client, keys):
    answer = client.post("/v1/keys", headers=keys["admin"],
                         json={"role": "app", "name": "shop", "tenant": "acme_2.shop-1"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["tenant"] == "acme_2.shop-1"
