import uuid

from tests.e2e.conftest import import_codes


def test_product_is_created_and_read_back(client, keys):
    body = {"sku": "VIP-1M", "name": "Video VIP 1 month", "delivery": "card", "price": 1990,
            "purchase_limit": {"quantity": 2, "window_seconds": 86400},
            "commission_rates_bp": [500, 200, 100], "channel_prices": {"wechat": 1890}}
    created = client.post("/v1/products", headers=keys["app"], json=body)
    assert created.status_code == 201
    read = client.get("/v1/products/VIP-1M", headers=keys["finance"]).json()
    assert read["price"] == 1990 and read["currency"] == "CNY"
    assert read["channel_prices"] == {"wechat": 1890}


def test_second_definition_of_a_sku_is_409(client, keys, product):
    again = client.post("/v1/products", headers=keys["app"], json={
        "sku": product, "name": "again", "delivery": "card", "price": 1})
    assert again.status_code == 409 and again.json()["code"] == "already_exists"


def test_float_price_is_a_validation_error(client, keys):
    answer = client.post("/v1/products", headers=keys["app"], json={
        "sku": "F", "name": "f", "delivery": "card", "price": 19.9})
    assert answer.status_code == 422 and answer.json()["code"] == "validation_error"


def test_unknown_product_is_404(client, keys):
    answer = client.get("/v1/products/NOPE", headers=keys["app"])
    assert answer.status_code == 404 and answer.json()["code"] == "not_found"


def test_json_import_reports_duplicates_and_invalid_rows_by_index(client, keys, product):
    first = import_codes(client, keys, product, ["A-1", "A-2"])
    assert first["imported"] == 2
    body = {"supplier_id": "sup-2", "unit_cost": 1000, "codes": [
        {"code": "B-1"}, {"code": "A-1"}, {"code": "B-1"}, {"code": ""}, {"code": 7}]}
    answer = client.post(f"/v1/products/{product}/batches", headers=keys["app"], json=body)
    assert answer.status_code == 201
    assert answer.json()["imported"] == 1
    assert answer.json()["rejected"] == [{"index": 1, "reason": "duplicate"},
                                         {"index": 2, "reason": "duplicate"},
                                         {"index": 3, "reason": "invalid"},
                                         {"index": 4, "reason": "invalid"}]


def test_csv_import_takes_code_and_pin_columns(client, keys, product):
    csv_body = "code,pin\nCSV-1,1111\nCSV-2,\nCSV-1,2222\n"
    answer = client.post(f"/v1/products/{product}/batches?supplier_id=s9&unit_cost=900",
                         headers={**keys["app"], "Content-Type": "text/csv"},
                         content=csv_body.encode())
    assert answer.status_code == 201, answer.text
    assert answer.json()["imported"] == 2
    assert answer.json()["rejected"] == [{"index": 2, "reason": "duplicate"}]


def test_csv_without_supplier_is_422(client, keys, product):
    answer = client.post(f"/v1/products/{product}/batches",
                         headers={**keys["app"], "Content-Type": "text/csv"},
                         content=b"code\nX\n")
    assert answer.status_code == 422


def test_more_than_100000_codes_is_422(client, keys, product):
    codes = [{"code": f"C{n}"} for n in range(100_001)]
    answer = client.post(f"/v1/products/{product}/batches", headers=keys["app"],
                         json={"supplier_id": "s", "unit_cost": 1, "codes": codes})
    assert answer.status_code == 422


def test_unit_cost_above_price_is_refused_as_below_cost(client, keys, product):
    answer = client.post(f"/v1/products/{product}/batches", headers=keys["app"],
                         json={"supplier_id": "s", "unit_cost": 5000, "codes": [{"code": "Z"}]})
    assert answer.status_code == 409 and answer.json()["code"] == "price_below_cost"


def test_generate_follows_pattern_and_counts_in_inventory(client, keys, product):
    answer = client.post(f"/v1/products/{product}/batches/generate", headers=keys["app"],
                         json={"count": 300, "pattern": "####-####-####-####", "prefix": "QY",
                               "charset": "0123456789"})
    assert answer.status_code == 201 and answer.json()["generated"] == 300
    stock = client.get(f"/v1/products/{product}/inventory", headers=keys["support"]).json()
    assert stock["total"] == stock["available"] == 300


def test_generate_refuses_a_pattern_too_small_for_the_count(client, keys, product):
    answer = client.post(f"/v1/products/{product}/batches/generate", headers=keys["app"],
                         json={"count": 60, "pattern": "##", "charset": "0123456789"})
    assert answer.status_code == 422 and answer.json()["code"] == "pattern_too_small"


def test_generate_needs_2_to_the_40_candidates_per_code(client, keys, product):
    url = f"/v1/products/{product}/batches/generate"
    body = {"length": 10, "charset": "0123456789ABCDEF"}  # 16^10 = 2^40 codes
    assert client.post(url, headers=keys["app"], json={**body, "count": 1}).status_code == 201
    refused = client.post(url, headers=keys["app"], json={**body, "count": 2})
    assert refused.status_code == 422 and refused.json()["code"] == "pattern_too_small"
    assert "2^40" in refused.json()["detail"]


def test_three_character_codes_are_refused_even_for_a_few(client, keys, product):
    answer = client.post(f"/v1/products/{product}/batches/generate", headers=keys["app"],
                         json={"count": 9, "length": 3})
    assert answer.status_code == 422 and answer.json()["code"] == "pattern_too_small"


def test_inventory_parts_sum_to_total(client, keys, product):
    import_codes(client, keys, product, [f"S-{uuid.uuid4().hex[:6]}" for _ in range(5)])
    client.post("/v1/orders", headers=keys["app"],
                json={"buyer_id": "b", "items": [{"sku": product, "quantity": 2}]})
    stock = client.get(f"/v1/products/{product}/inventory", headers=keys["app"]).json()
    parts = sum(stock[k] for k in ("available", "reserved", "sold", "redeemed", "voided",
                                   "expired"))
    assert parts == stock["total"] == 5 and stock["reserved"] == 2


def test_batches_list_inventory_per_batch(client, keys, product):
    import_codes(client, keys, product, ["P-1", "P-2"])
    listing = client.get(f"/v1/products/{product}/batches", headers=keys["finance"]).json()
    assert listing["items"][0]["supplier_id"] == "sup-1"
    assert listing["items"][0]["available"] == 2


def test_channel_price_can_be_set_and_orders_use_it(client, keys, product):
    answer = client.put(f"/v1/products/{product}/channel-prices/douyin", headers=keys["app"],
                        json={"price": 1500})
    assert answer.status_code == 200 and answer.json()["channel_prices"] == {"douyin": 1500}
    import_codes(client, keys, product, ["CH-1"], unit_cost=1000)
    order = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b", "channel": "douyin", "items": [{"sku": product, "quantity": 1}]})
    assert order.json()["amount"] == 1500
