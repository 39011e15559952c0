"""The admin's key endpoints, expiry and revocation over HTTP, and merchant binding."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.conftest import sold_code


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def issue(client, keys, **body):
    answer = client.post("/v1/keys", headers=keys["admin"], json={"role": "app",
                                                                   "name": "shop", **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_issued_key_is_shown_once_and_works(client, keys, product):
    issued = issue(client, keys, name="storefront")
    assert issued["secret"].startswith("qy_") and issued["revoked"] is False
    assert client.get(f"/v1/products/{product}",
                      headers=bearer(issued["secret"])).status_code == 200


def test_listing_shows_every_key_without_its_secret(client, keys):
    issued = issue(client, keys, role="merchant", name="shop-9", merchant_id="m-9")
    listed = client.get("/v1/keys", headers=keys["admin"])
    assert listed.status_code == 200
    body = listed.json()
    assert body["next_cursor"] is None
    mine = next(k for k in body["items"] if k["key_id"] == issued["key_id"])
    assert mine == {k: v for k, v in issued.items() if k != "secret"}
    assert mine["merchant_id"] == "m-9" and mine["role"] == "merchant"
    assert issued["secret"].split("_", 2)[2] not in listed.text
    assert "secret" not in listed.text and "hash" not in listed.text


def test_listing_pages_with_a_cursor(client, keys):
    first = client.get("/v1/keys?limit=2", headers=keys["admin"]).json()
    rest = client.get(f"/v1/keys?limit=10&cursor={first['next_cursor']}",
                      headers=keys["admin"]).json()
    ids = [k["key_id"] for k in first["items"] + rest["items"]]
    assert len(ids) == len(set(ids)) == len(keys) and rest["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["x", "-1", "9" * 40])
def test_bad_cursor_is_422(client, keys, cursor):
    assert client.get(f"/v1/keys?cursor={cursor}", headers=keys["admin"]).status_code == 422


@pytest.mark.parametrize("role", ["app", "merchant", "support", "finance"])
def test_only_admin_manages_keys(client, keys, role):
    assert client.get("/v1/keys", headers=keys[role]).status_code == 403
    assert client.post("/v1/keys", headers=keys[role],
                       json={"role": "admin", "name": "me"}).status_code == 403


def test_revoked_key_is_401_and_second_revoke_is_409(client, keys, product):
    issued = issue(client, keys)
    url = f"/v1/keys/{issued['key_id']}/revoke"
    revoked = client.post(url, headers=keys["admin"])
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    answer = client.get(f"/v1/products/{product}", headers=bearer(issued["secret"]))
    assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
    again = client.post(url, headers=keys["admin"])
    assert again.status_code == 409 and again.json()["code"] == "invalid_state"


@pytest.mark.parametrize("key_id", ["0123456789ab", "nope"])
def test_revoking_an_unknown_key_is_404(client, keys, key_id):
    answer = client.post(f"/v1/keys/{key_id}/revoke", headers=keys["admin"])
    assert answer.status_code == 404 and answer.json()["code"] == "not_found"


def test_expired_key_is_401(client, keys, product):
    soon = datetime.now(timezone.utc) + timedelta(seconds=1)
    issued = issue(client, keys, expires_at=soon.isoformat())
    assert issued["expires_at"] is not None
    time.sleep(1.1)
    answer = client.get(f"/v1/products/{product}", headers=bearer(issued["secret"]))
    assert answer.status_code == 401


def test_expiry_in_days_is_set_and_shown(client, keys):
    issued = issue(client, keys, expires_in_days=30)
    expires = datetime.fromisoformat(issued["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(timezone.utc) <= timedelta(days=30)


@pytest.mark.parametrize("body", [
    {"role": "app", "merchant_id": "m-1"}, {"role": "merchant", "tenant": "t:x"},
    {"role": "app", "expires_at": "2020-01-01T00:00:00Z"},
    {"role": "app", "expires_at": "2999-01-01T00:00:00"},
    {"role": "app", "expires_in_days": 1, "expires_at": "2999-01-01T00:00:00Z"},
    {"role": "app", "expires_in_days": 0}, {"role": "root"}, {"role": "app", "secret": "x"},
    {"role": "merchant", "name": "n" * 65}])
def test_bad_key_request_is_422(client, keys, body):
    answer = client.post("/v1/keys", headers=keys["admin"], json={"name": "x", **body})
    assert answer.status_code == 422 and answer.json()["code"] == "validation_error"


def test_merchant_key_cannot_redeem_in_another_merchants_name(client, keys, product):
    code, order = sold_code(client, keys, product)
    answer = client.post("/v1/redemptions", headers=keys["merchant"],
                         json={"code": code, "merchant_id": "m-2"})
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    assert answer.headers["content-type"].startswith("application/problem+json")
    code_id = order["codes"][0]["code_id"]
    state = client.get(f"/v1/codes/{code_id}", headers=keys["support"]).json()
    assert state["status"] == "sold"


def test_merchant_key_redeems_as_its_own_merchant(client, keys, product):
    code, _ = sold_code(client, keys, product)
    answer = client.post("/v1/redemptions", headers=keys["merchant"],
                         json={"code": code, "merchant_id": "m-1"})
    assert answer.status_code == 201 and answer.json()["merchant_id"] == "m-1"


def test_merchant_key_without_merchant_id_redeems_as_its_name(client, keys, product):
    issued = issue(client, keys, role="merchant", name="corner-shop")
    assert issued["merchant_id"] == "corner-shop"
    code, _ = sold_code(client, keys, product)
    refused = client.post("/v1/redemptions", headers=bearer(issued["secret"]),
                          json={"code": code, "merchant_id": "m-1"})
    assert refused.status_code == 403
    done = client.post("/v1/redemptions", headers=bearer(issued["secret"]),
                       json={"code": code, "merchant_id": "corner-shop"})
    assert done.status_code == 201


def test_admin_redeems_for_any_merchant(client, keys, product):
    code, _ = sold_code(client, keys, product)
    answer = client.post("/v1/redemptions", headers=keys["admin"],
                         json={"code": code, "merchant_id": "m-any"})
    assert answer.status_code == 201 and answer.json()["merchant_id"] == "m-any"
