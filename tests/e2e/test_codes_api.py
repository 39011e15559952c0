import time
from datetime import datetime, timezone

from tests.e2e.conftest import import_codes, sold_code


def test_lookup_by_code_string_returns_state_and_no_secret(client, keys, product):
    import_codes(client, keys, product, ["LOOK-1"])
    answer = client.post("/v1/codes/lookup", headers=keys["support"], json={"code": "LOOK-1"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "available" and body["sku"] == product
    assert "LOOK-1" not in answer.text and "PINLOOK-1" not in answer.text


def test_lookup_of_unknown_code_is_404_and_repeated_misses_are_rate_limited(client, keys):
    for n in range(20):
        assert client.post("/v1/codes/lookup", headers=keys["merchant"],
                           json={"code": f"GUESS-{n}"}).status_code == 404
    limited = client.post("/v1/codes/lookup", headers=keys["merchant"], json={"code": "G"})
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) > 0


def test_code_state_as_of_a_past_instant_comes_from_events(client, keys, product):
    code, order = sold_code(client, keys, product)
    code_id = order["codes"][0]["code_id"]
    before_redeem = datetime.now(timezone.utc).isoformat()
    time.sleep(0.01)
    client.post("/v1/redemptions", headers=keys["merchant"],
                json={"code": code, "merchant_id": "m-1"})
    now = client.get(f"/v1/codes/{code_id}", headers=keys["support"]).json()
    then = client.get(f"/v1/codes/{code_id}", headers=keys["support"],
                      params={"as_of": before_redeem}).json()
    assert now["status"] == "redeemed" and then["status"] == "sold"
    early = client.get(f"/v1/codes/{code_id}", headers=keys["support"],
                       params={"as_of": "2000-01-01T00:00:00Z"})
    assert early.status_code == 404


def test_as_of_without_timezone_is_422(client, keys, product):
    _, order = sold_code(client, keys, product)
    answer = client.get(f"/v1/codes/{order['codes'][0]['code_id']}", headers=keys["support"],
                        params={"as_of": "2026-01-01T00:00:00"})
    assert answer.status_code == 422


def test_history_tells_the_whole_story_in_order(client, keys, product):
    code, order = sold_code(client, keys, product)
    code_id = order["codes"][0]["code_id"]
    client.post(f"/v1/orders/{order['order_id']}/reveal", headers=keys["app"])
    redeemed = client.post("/v1/redemptions", headers=keys["merchant"],
                           json={"code": code, "merchant_id": "m-1", "terminal_id": "T-9"})
    client.post(f"/v1/redemptions/{redeemed.json()['redemption_id']}/rollback",
                headers=keys["merchant"], json={"reason": "wrong till"})
    history = client.get(f"/v1/codes/{code_id}/history", headers=keys["support"]).json()
    types = [e["type"] for e in history["events"]]
    assert types == ["code.imported", "code.reserved", "code.sold", "code.revealed",
                     "code.redeemed", "code.redemption_rolled_back"]
    positions = [e["position"] for e in history["events"]]
    assert positions == sorted(positions)
    assert history["events"][4]["terminal_id"] == "T-9"
    assert code not in str(history)


def test_a_sold_code_is_voided_only_through_a_refund_and_then_answers_410(client, keys,
                                                                          product):
    code, order = sold_code(client, keys, product)
    code_id = order["codes"][0]["code_id"]
    refused = client.post(f"/v1/codes/{code_id}/void", headers=keys["app"],
                          json={"reason": "supplier recall"})
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_state"
    assert client.get(f"/v1/codes/{code_id}", headers=keys["app"]).json()["status"] == "sold"
    refund = client.post(f"/v1/orders/{order['order_id']}/refunds", headers=keys["app"],
                         json={"reason": "supplier recall"})
    assert refund.status_code == 201 and refund.json()["code_ids"] == [code_id]
    voided = client.post(f"/v1/codes/{code_id}/void", headers=keys["app"],
                         json={"reason": "supplier recall"})
    assert voided.status_code == 200 and voided.json()["status"] == "voided"
    answer = client.post("/v1/redemptions", headers=keys["merchant"],
                         json={"code": code, "merchant_id": "m-1"})
    assert answer.status_code == 410 and answer.json()["code"] == "code_voided"


def test_malformed_code_id_is_422(client, keys):
    assert client.get("/v1/codes/not-a-uuid", headers=keys["support"]).status_code == 422
