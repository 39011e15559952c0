import uuid

from tests.e2e.conftest import import_codes, sold_code


def test_redemption_answers_201_with_its_id(client, keys, product):
    code, order = sold_code(client, keys, product)
    answer = client.post("/v1/redemptions", headers=keys["merchant"], json={
        "code": code, "merchant_id": "m-1", "terminal_id": "T1", "location": "Shanghai"})
    assert answer.status_code == 201
    assert answer.json()["code_id"] == order["codes"][0]["code_id"]


def test_second_redemption_reports_first_redeemer(client, keys, product):
    code, _ = sold_code(client, keys, product)
    first = client.post("/v1/redemptions", headers=keys["merchant"],
                        json={"code": code, "merchant_id": "m-1"}).json()
    second = client.post("/v1/redemptions", headers=keys["admin"],
                         json={"code": code, "merchant_id": "m-2"})
    assert second.status_code == 409
    problem = second.json()
    assert problem["code"] == "already_redeemed"
    assert problem["merchant_id"] == "m-1"
    assert problem["redeemed_at"][:19] == first["redeemed_at"][:19]
    assert code not in second.text


def test_unsold_code_is_invalid_state_and_unknown_code_is_404(client, keys, product):
    import_codes(client, keys, product, ["UNSOLD-1"])
    unsold = client.post("/v1/redemptions", headers=keys["merchant"],
                         json={"code": "UNSOLD-1", "merchant_id": "m-1"})
    assert unsold.status_code == 409 and unsold.json()["code"] == "invalid_state"
    unknown = client.post("/v1/redemptions", headers=keys["merchant"],
                          json={"code": "NEVER", "merchant_id": "m-1"})
    assert unknown.status_code == 404


def test_rollback_twice_is_409_already_rolled_back(client, keys, product):
    code, _ = sold_code(client, keys, product)
    redemption = client.post("/v1/redemptions", headers=keys["merchant"],
                             json={"code": code, "merchant_id": "m-1"}).json()
    url = f"/v1/redemptions/{redemption['redemption_id']}/rollback"
    first = client.post(url, headers=keys["merchant"], json={"reason": "mistake"})
    assert first.status_code == 200 and first.json()["status"] == "sold"
    second = client.post(url, headers=keys["merchant"], json={"reason": "again"})
    assert second.status_code == 409 and second.json()["code"] == "already_rolled_back"


def test_another_merchant_key_cannot_roll_back(client, keys, runtime, product):
    code, _ = sold_code(client, keys, product)
    redemption = client.post("/v1/redemptions", headers=keys["merchant"],
                             json={"code": code, "merchant_id": "m-1"}).json()
    other = runtime.engine.keys.issue(role="merchant", name="other-shop").secret
    answer = client.post(f"/v1/redemptions/{redemption['redemption_id']}/rollback",
                         headers={"Authorization": f"Bearer {other}"}, json={"reason": "x"})
    assert answer.status_code == 403


def loose_product(client, keys) -> str:
    sku = f"LOOSE-{uuid.uuid4().hex[:8]}"
    answer = client.post("/v1/products", headers=keys["app"], json={
        "sku": sku, "name": "Voucher", "delivery": "card", "price": 1990,
        "case_sensitive": False})
    assert answer.status_code == 201 and answer.json()["case_sensitive"] is False
    return sku


def test_case_insensitive_code_redeems_and_looks_up_in_any_case_or_width(client, keys):
    sku = loose_product(client, keys)
    code, order = sold_code(client, keys, sku)
    wide = "".join(chr(ord(c) + 0xFEE0) for c in code.lower())
    found = client.post("/v1/codes/lookup", headers=keys["merchant"], json={"code": wide})
    assert found.status_code == 200
    assert found.json()["code_id"] == order["codes"][0]["code_id"]
    redeemed = client.post("/v1/redemptions", headers=keys["merchant"],
                           json={"code": code.lower(), "merchant_id": "m-1"})
    assert redeemed.status_code == 201
    assert redeemed.json()["code_id"] == order["codes"][0]["code_id"]


def test_case_sensitive_code_does_not_redeem_in_another_case(client, keys, product):
    code, _ = sold_code(client, keys, product)
    answer = client.post("/v1/redemptions", headers=keys["merchant"],
                         json={"code": code.lower(), "merchant_id": "m-1"})
    assert answer.status_code == 404
