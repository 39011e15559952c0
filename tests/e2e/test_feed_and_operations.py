from tests.e2e.conftest import sold_code


def test_event_feed_is_ordered_paginated_and_never_carries_a_secret(client, keys, product):
    code, order = sold_code(client, keys, product)
    client.post(f"/v1/orders/{order['order_id']}/reveal", headers=keys["app"])
    seen, cursor = [], None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/events", headers=keys["finance"], params=params)
        assert page.status_code == 200
        assert code not in page.text and f"PIN{code}" not in page.text
        seen += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    positions = [e["position"] for e in seen]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert {"code.imported", "order.placed", "order.paid", "code.revealed"} <= {
        e["type"] for e in seen}
    assert all("sealed" not in e["data"] and "secret_hash" not in e["data"] for e in seen)


def test_merchant_cannot_read_the_feed(client, keys):
    assert client.get("/v1/events", headers=keys["merchant"]).status_code == 403


def test_healthz_reports_store_and_lag(client, runtime):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["store"] == runtime.store.kind
    assert body["projection_lag"] >= 0


def test_metrics_count_requests_by_route(client, keys, product):
    client.get(f"/v1/products/{product}", headers=keys["app"])
    text = client.get("/metrics").text
    assert 'route="/v1/products/{sku}",status="200"' in text
    assert "quanyi_projection_lag_events" in text


def test_unknown_route_and_method_are_problem_json(client, keys):
    missing = client.get("/v1/nothing-here", headers=keys["app"])  # without a key: 401
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    wrong = client.delete("/healthz")
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"


def test_malformed_json_is_422(client, keys):
    answer = client.post("/v1/products", headers={**keys["app"],
                                                  "Content-Type": "application/json"},
                         content=b"{not json")
    assert answer.status_code == 422 and answer.json()["code"] == "validation_error"


def test_openapi_describes_every_contract_path(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/products", "/v1/products/{sku}/batches", "/v1/codes/lookup",
                 "/v1/codes/{code_id}/history", "/v1/redemptions",
                 "/v1/redemptions/{redemption_id}/rollback", "/v1/orders",
                 "/v1/orders/{order_id}/payments", "/v1/events", "/healthz"):
        assert path in paths


def test_feed_position_beyond_any_log_is_422_not_a_crash(client, keys):
    huge = str(10**30)
    assert client.get("/v1/events", headers=keys["app"], params={"after": huge}).status_code == 422
    assert client.get("/v1/events", headers=keys["app"], params={"cursor": huge}).status_code == 422
