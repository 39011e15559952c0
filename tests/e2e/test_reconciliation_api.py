"""GET /v1/reconciliation/orders/{order_id}: an order's money, cost, commission and margin
from its ledger legs, checked against the product's rates and the codes its buyer holds."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.ledger_book import post_refund, post_sale

RATES = [1000, 500, 250]  # 10 %, 5 %, 2.5 % for levels 1, 2, 3


def _product(client, keys, *, price: int, rates=RATES, allow_below_cost=False) -> str:
    sku = f"REC-{uuid.uuid4().hex[:8]}"
    answer = client.post("/v1/products", headers=keys["app"], json={
        "sku": sku, "name": "Video VIP", "delivery": "card", "price": price,
        "commission_rates_bp": rates, "allow_below_cost": allow_below_cost})
    assert answer.status_code == 201, answer.text
    return sku


def _batch(client, keys, sku: str, supplier: str, unit_cost: int, count: int) -> str:
    answer = client.post(f"/v1/products/{sku}/batches", headers=keys["app"], json={
        "supplier_id": supplier, "unit_cost": unit_cost,
        "codes": [{"code": f"R-{uuid.uuid4().hex[:12]}"} for _ in range(count)]})
    assert answer.status_code == 201, answer.text
    return answer.json()["batch_id"]


def _paid_order(client, keys, sku: str, quantity: int, *, distributor: str | None = "d-1",
                payment_ref: str | None = None) -> dict:
    placed = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b-1", "items": [{"sku": sku, "quantity": quantity}],
        "distributor_id": distributor})
    assert placed.status_code == 201, placed.text
    order = placed.json()
    paid = client.post(f"/v1/orders/{order['order_id']}/payments", headers=keys["app"], json={
        "payment_ref": payment_ref or f"wx-{uuid.uuid4().hex[:8]}", "amount": order["amount"],
        "provider": "wechat"})
    assert paid.status_code == 200, paid.text
    return paid.json()


def _suppliers(client, keys, order: dict, batches: dict[str, str]) -> list[tuple[str, str]]:
    """(code_id, supplier) of each code of the order."""
    found = []
    for code in order["codes"]:
        batch = client.get(f"/v1/codes/{code['code_id']}", headers=keys["support"]).json()
        found.append((code["code_id"], batches[batch["batch_id"]]))
    return found


@pytest.fixture
def sold(client, keys, runtime) -> dict:
    """Three units at ¥33.33 (two codes of sup-A at ¥15.00, one of sup-B at ¥12.00) sold
    through d-1 (parent d-2, grandparent d-3) for ¥99.99, posted as docs/ledger.md says."""
    sku = _product(client, keys, price=3333)
    batches = {_batch(client, keys, sku, "sup-A", 1500, 2): "sup-A",
               _batch(client, keys, sku, "sup-B", 1200, 1): "sup-B"}
    order = _paid_order(client, keys, sku, 3, payment_ref="wx-sold-1")
    codes = _suppliers(client, keys, order, batches)
    cost = {"sup-A": 1500, "sup-B": 1200}
    # floor(9999 × 10 %) = 999, floor(9999 × 5 %) = 499, floor(9999 × 2.5 %) = 249
    post_sale(runtime, order_id=order["order_id"], payment_ref="wx-sold-1", provider="wechat",
              paid=9999, costs=[(c, s, cost[s]) for c, s in codes],
              commissions=[("d-1", 999), ("d-2", 499), ("d-3", 249)])
    return {"order": order, "codes": codes, "sku": sku}


def _refund_sup_b_code(client, keys, runtime, sold: dict) -> None:
    """Refund the revealed sup-B code (¥33.33): written off, so voided; net paid 6666 keeps
    666, 333 and 166, so 333, 166 and 83 are clawed back."""
    code_id = next(c for c, s in sold["codes"] if s == "sup-B")
    voided = client.post(f"/v1/codes/{code_id}/void", headers=keys["app"],
                         json={"reason": "refunded after reveal"})
    assert voided.status_code == 200, voided.text
    post_refund(runtime, order_id=sold["order"]["order_id"], refund_id="rf-1",
                payment_ref="wx-sold-1", provider="wechat", amount=3333,
                written_off=[(code_id, 1200)],
                clawbacks=[("d-1", 333), ("d-2", 166), ("d-3", 83)])


def _reconcile(client, keys, order_id: str, role: str = "finance"):
    return client.get(f"/v1/reconciliation/orders/{order_id}", headers=keys[role])


def test_a_sale_with_three_level_commission_and_a_partial_refund_reconciles_to_the_fen(
        client, keys, runtime, sold):
    _refund_sup_b_code(client, keys, runtime, sold)
    answer = _reconcile(client, keys, sold["order"]["order_id"])
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "order_id": sold["order"]["order_id"], "currency": "CNY",
        "paid": 9999, "refunded": 3333, "revenue": 6666,
        # cost of sales 1500 + 1500 + 1200 − 1200, and the written-off 1200
        "cost": 4200,
        "commissions": [{"distributor_id": "d-1", "level": 1, "amount": 666},
                        {"distributor_id": "d-2", "level": 2, "amount": 333},
                        {"distributor_id": "d-3", "level": 3, "amount": 166}],
        "margin": 6666 - 4200 - (666 + 333 + 166),  # 1301
        "consistent": True, "flags": []}


def test_support_reads_the_reconciliation_and_a_merchant_may_not(client, keys, sold):
    order_id = sold["order"]["order_id"]
    assert _reconcile(client, keys, order_id, "support").json()["margin"] == (
        9999 - 4200 - (999 + 499 + 249))
    assert _reconcile(client, keys, order_id, "merchant").status_code == 403
    assert _reconcile(client, keys, order_id, "app").status_code == 403


def test_an_unknown_order_is_404(client, keys):
    answer = _reconcile(client, keys, str(uuid.uuid4()))
    assert answer.status_code == 404
    assert answer.json()["code"] == "not_found"
    assert _reconcile(client, keys, "not-a-uuid").status_code == 422


def test_an_order_without_ledger_legs_is_all_zero(client, keys):
    sku = _product(client, keys, price=500)
    _batch(client, keys, sku, "sup-A", 100, 1)
    placed = client.post("/v1/orders", headers=keys["app"], json={
        "buyer_id": "b-1", "items": [{"sku": sku, "quantity": 1}]}).json()
    body = _reconcile(client, keys, placed["order_id"]).json()
    assert (body["paid"], body["revenue"], body["cost"], body["margin"]) == (0, 0, 0, 0)
    assert body["commissions"] == [] and body["consistent"] is True


def test_a_commission_off_by_one_fen_is_inconsistent(client, keys, runtime):
    sku = _product(client, keys, price=3333)
    batch = {_batch(client, keys, sku, "sup-A", 1500, 1): "sup-A"}
    order = _paid_order(client, keys, sku, 1, payment_ref="wx-off-1")
    (code_id, _), = _suppliers(client, keys, order, batch)
    post_sale(runtime, order_id=order["order_id"], payment_ref="wx-off-1", provider="wechat",
              paid=3333, costs=[(code_id, "sup-A", 1500)],
              commissions=[("d-1", 334), ("d-2", 166), ("d-3", 83)])  # level 1 is 333
    body = _reconcile(client, keys, order["order_id"]).json()
    assert body["consistent"] is False
    assert body["flags"] == ["commission_mismatch"]


def test_a_refund_that_leaves_the_code_with_the_buyer_is_inconsistent(
        client, keys, runtime, sold):
    code_id = next(c for c, s in sold["codes"] if s == "sup-B")
    post_refund(runtime, order_id=sold["order"]["order_id"], refund_id="rf-2",
                payment_ref="wx-sold-1", provider="wechat", amount=3333,
                written_off=[(code_id, 1200)],
                clawbacks=[("d-1", 333), ("d-2", 166), ("d-3", 83)])  # code never voided
    body = _reconcile(client, keys, sold["order"]["order_id"]).json()
    assert body["consistent"] is False and body["flags"] == ["units_mismatch"]


def test_revenue_that_differs_from_net_payments_is_inconsistent(client, keys, runtime, sold):
    from engine.ledger import LedgerTransaction, Leg, clearing
    from engine.money import Money
    runtime.engine.writer.save(LedgerTransaction.post(
        kind="refund", cause="stray", actor="t", links={"order_id": sold["order"]["order_id"]},
        legs=[Leg(clearing("wechat"), Money(-100, "CNY"), "refund"),
              Leg("assets:bank", Money(100, "CNY"), "refund")]))  # paid back, revenue kept
    body = _reconcile(client, keys, sold["order"]["order_id"]).json()
    assert body["refunded"] == 100 and body["revenue"] == 9999
    assert "revenue_mismatch" in body["flags"] and body["consistent"] is False


def test_a_code_that_cost_more_than_its_net_price_is_flagged_price_inverted(
        client, keys, runtime):
    sku = _product(client, keys, price=1000, rates=[1000], allow_below_cost=True)
    batch = {_batch(client, keys, sku, "sup-A", 950, 1): "sup-A"}
    order = _paid_order(client, keys, sku, 1, payment_ref="wx-inv-1")
    (code_id, _), = _suppliers(client, keys, order, batch)
    # net price 1000 − 100 commission = 900 < 950
    post_sale(runtime, order_id=order["order_id"], payment_ref="wx-inv-1", provider="wechat",
              paid=1000, costs=[(code_id, "sup-A", 950)], commissions=[("d-1", 100)])
    body = _reconcile(client, keys, order["order_id"]).json()
    assert body["flags"] == ["price_inverted"]
    assert body["consistent"] is True and body["margin"] == 1000 - 950 - 100


def test_without_commission_the_same_cost_is_not_price_inverted(client, keys, runtime):
    sku = _product(client, keys, price=1000, rates=[1000], allow_below_cost=True)
    batch = {_batch(client, keys, sku, "sup-A", 950, 1): "sup-A"}
    order = _paid_order(client, keys, sku, 1, distributor=None, payment_ref="wx-inv-2")
    (code_id, _), = _suppliers(client, keys, order, batch)
    post_sale(runtime, order_id=order["order_id"], payment_ref="wx-inv-2", provider="wechat",
              paid=1000, costs=[(code_id, "sup-A", 950)], commissions=[])
    body = _reconcile(client, keys, order["order_id"]).json()
    assert body["flags"] == [] and body["consistent"] is True


def test_a_level_named_in_the_leg_memo_is_taken_over_the_posting_order(client, keys, runtime):
    sku = _product(client, keys, price=1000, rates=[0, 1000])
    batch = {_batch(client, keys, sku, "sup-A", 100, 1): "sup-A"}
    order = _paid_order(client, keys, sku, 1, payment_ref="wx-lvl-1")
    (code_id, _), = _suppliers(client, keys, order, batch)
    post_sale(runtime, order_id=order["order_id"], payment_ref="wx-lvl-1", provider="wechat",
              paid=1000, costs=[(code_id, "sup-A", 100)], commissions=[("d-2", 100)],
              commission_memo="commission level 2")
    body = _reconcile(client, keys, order["order_id"]).json()
    assert body["commissions"] == [{"distributor_id": "d-2", "level": 2, "amount": 100}]
    assert body["consistent"] is True
