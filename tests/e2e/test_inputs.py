"""No poison value reaches an event: text with control characters and instants no calendar
can convert are refused with 422 (through the API) or ValidationFailed (calling the engine),
and nothing is stored - once stored, such a value would stop the projections for good."""

from datetime import datetime, timedelta, timezone

import pytest

from engine.codes.imports import CodeRow
from engine.kernel.errors import ValidationFailed
from tests.conftest import caught_up
from tests.e2e.conftest import import_codes, sold_code

YEAR_9999 = "9999-12-31T23:59:59-01:00"


def _is_422_naming(answer, field: str) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert field in answer.json()["detail"]


def test_batch_import_with_year_9999_expiry_is_422(client, keys, runtime, product):
    before = runtime.store.last_position()
    answer = client.post(f"/v1/products/{product}/batches", headers=keys["app"], json={
        "supplier_id": "sup-1", "unit_cost": 1000, "expires_at": YEAR_9999,
        "codes": [{"code": "FAR-0001"}]})
    _is_422_naming(answer, "expires_at")
    assert runtime.store.last_position() == before


def test_generated_batch_with_year_9999_expiry_is_422(client, keys, runtime, product):
    before = runtime.store.last_position()
    answer = client.post(f"/v1/products/{product}/batches/generate", headers=keys["app"],
                         json={"count": 3, "expires_at": YEAR_9999})
    _is_422_naming(answer, "expires_at")
    assert runtime.store.last_position() == before


def test_csv_import_with_year_9999_expiry_is_422(client, keys, runtime, product):
    before = runtime.store.last_position()
    answer = client.post(f"/v1/products/{product}/batches", headers={
        **keys["app"], "Content-Type": "text/csv"}, content=b"code,pin\nFAR-CSV-1,1\n",
        params={"supplier_id": "sup-1", "unit_cost": "1000", "expires_at": YEAR_9999})
    _is_422_naming(answer, "expires_at")
    assert runtime.store.last_position() == before


def test_csv_import_with_nul_in_supplier_id_is_422(client, keys, runtime, product):
    before = runtime.store.last_position()
    answer = client.post(f"/v1/products/{product}/batches", headers={
        **keys["app"], "Content-Type": "text/csv"}, content=b"code,pin\nNUL-CSV-1,1\n",
        params={"supplier_id": "sup\x00", "unit_cost": "1000"})
    _is_422_naming(answer, "supplier_id")
    assert runtime.store.last_position() == before


@pytest.mark.parametrize("terminal_id", ["t\u0000", "t\n1", "t\u0085"])
def test_redemption_with_control_character_in_terminal_id_is_422(client, keys, runtime,
                                                                 product, terminal_id):
    code, _ = sold_code(client, keys, product)
    before = runtime.store.last_position()
    answer = client.post("/v1/redemptions", headers=keys["merchant"], json={
        "code": code, "merchant_id": "m-1", "terminal_id": terminal_id})
    _is_422_naming(answer, "terminal_id")
    assert runtime.store.last_position() == before


def test_order_with_nul_in_buyer_id_is_422(client, keys, runtime, product):
    before = runtime.store.last_position()
    answer = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "u\u0000x", "items": [{"sku": product, "quantity": 1}]})
    _is_422_naming(answer, "buyer_id")
    assert runtime.store.last_position() == before


def test_channel_name_with_nul_in_the_path_is_422(client, keys, runtime, product):
    before = runtime.store.last_position()
    answer = client.put(f"/v1/products/{product}/channel-prices/we%00chat",
                        headers=keys["app"], json={"price": 1890})
    _is_422_naming(answer, "channel")
    assert runtime.store.last_position() == before


def test_rollback_reason_with_nul_is_422(client, keys, runtime, product):
    code, _ = sold_code(client, keys, product)
    redeemed = client.post("/v1/redemptions", headers=keys["merchant"],
                           json={"code": code, "merchant_id": "m-1"}).json()
    before = runtime.store.last_position()
    answer = client.post(f"/v1/redemptions/{redeemed['redemption_id']}/rollback",
                         headers=keys["merchant"], json={"reason": "typo\x00"})
    _is_422_naming(answer, "reason")
    assert runtime.store.last_position() == before


def test_engine_refuses_nul_in_terminal_id_and_stores_nothing(client, keys, runtime, product):
    code, _ = sold_code(client, keys, product)
    before = runtime.store.last_position()
    with pytest.raises(ValidationFailed, match="terminal_id"):
        runtime.engine.redemptions.redeem(code=code, merchant_id="m-1", terminal_id="t\x00",
                                          location=None, actor="key:direct")
    assert runtime.store.last_position() == before
    runtime.engine.redemptions.redeem(code=code, merchant_id="m-1", terminal_id="t-1",
                                      location=None, actor="key:direct")  # still redeemable


def test_engine_refuses_year_9999_expiry_and_stores_nothing(client, keys, runtime, product):
    before = runtime.store.last_position()
    far = datetime.fromisoformat(YEAR_9999)
    with pytest.raises(ValidationFailed, match="expires_at"):
        runtime.engine.imports.import_batch(sku=product, rows=[CodeRow("ENGINE-FAR-1")],
                                            supplier_id="sup-1", unit_cost=1000,
                                            expires_at=far, actor="key:direct")
    assert runtime.store.last_position() == before


def test_engine_refuses_a_key_name_with_a_newline(runtime):
    """The CLI path has no API types in front of it: the writer's backstop holds the line."""
    before = runtime.store.last_position()
    with pytest.raises(ValidationFailed, match="name"):
        runtime.engine.keys.issue(role="app", name="ops\nroot")
    assert runtime.store.last_position() == before


def test_expiry_with_an_offset_is_stored_in_utc(client, keys, runtime, product):
    answer = client.post(f"/v1/products/{product}/batches", headers=keys["app"], json={
        "supplier_id": "sup-1", "unit_cost": 1000, "expires_at": "2030-01-01T08:00:00+08:00",
        "codes": [{"code": "EAST-0001"}]})
    assert answer.status_code == 201, answer.text
    stored = [runtime.store.mapper.to_domain_event(n)
              for n in runtime.store.notifications(0, 1000)]
    expiries = [e.expires_at for e in stored if getattr(e, "expires_at", None) is not None]
    assert expiries, "the batch and its code carry the expiry"
    for moment in expiries:
        assert moment == datetime(2030, 1, 1, tzinfo=timezone.utc)
        assert moment.utcoffset() == timedelta(0)
    caught_up(runtime)
    assert runtime.runner.errors == 0


def test_engine_stores_an_offset_expiry_in_utc(client, keys, runtime, product):
    east = datetime(2030, 1, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    result = runtime.engine.imports.import_batch(
        sku=product, rows=[CodeRow("ENGINE-EAST-1")], supplier_id="sup-1", unit_cost=1000,
        expires_at=east, actor="key:direct")
    batch = runtime.store.repository.get(result.batch_id)
    assert batch.expires_at.utcoffset() == timedelta(0) and batch.expires_at == east


def test_engine_refuses_nul_in_buyer_id_and_the_codes_stay_sellable(client, keys, runtime,
                                                                   product):
    import_codes(client, keys, product, ["ONLY-ONE-1"])
    before = runtime.store.last_position()
    items = [{"sku": product, "quantity": 1}]
    with pytest.raises(ValidationFailed, match="buyer_id"):
        runtime.engine.orders.place(buyer_id="u\x00x", items=items, actor="key:direct")
    assert runtime.store.last_position() == before
    order = runtime.engine.orders.place(buyer_id="u-1", items=items, actor="key:direct")
    assert len(order.codes) == 1  # the refused order held nothing back
