import pytest


def test_missing_key_is_401_problem_json(client):
    answer = client.get("/v1/products/ANY")
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "unauthorized"
    assert answer.headers["www-authenticate"] == "Bearer"


def test_unknown_key_is_401(client):
    answer = client.get("/v1/products/ANY",
                        headers={"Authorization": "Bearer qy_000000000000_nothing"})
    assert answer.status_code == 401


@pytest.mark.parametrize("role", ["merchant", "support", "finance"])
def test_roles_other_than_app_cannot_define_products(client, keys, role):
    answer = client.post("/v1/products", headers=keys[role], json={
        "sku": "X", "name": "x", "delivery": "card", "price": 1})
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"


def test_support_reads_products_but_app_cannot_redeem(client, keys, product):
    assert client.get(f"/v1/products/{product}", headers=keys["support"]).status_code == 200
    answer = client.post("/v1/redemptions", headers=keys["app"],
                         json={"code": "X", "merchant_id": "m"})
    assert answer.status_code == 403


def test_admin_may_do_everything(client, keys, product):
    assert client.get(f"/v1/products/{product}/inventory",
                      headers=keys["admin"]).status_code == 200
    assert client.get("/v1/events", headers=keys["admin"]).status_code == 200
