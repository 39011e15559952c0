"""GET /v1/reconciliation/orders/{order_id}: an order's money, cost, commission and margin
from its ledger legs, checked against the product's rates and the codes its buyer holds.

Orders are placed, paid, revealed and refunded through the API, so the engine posts their
sale and refunds; the expected figures are worked out by hand from docs/ledger.md (commission
floored per leg; clawback = accrued − floor(net paid × rate / 10,000)). Only the
"inconsistent" cases add deliberately wrong transactions by hand, each under a cause of its
own, so they never stand in for the order's real sale or refunds."""

from __future__ import annotations

import uuid

import pytest

from engine.kernel.money import Money
from engine.ledger.transactions import (
    BANK,
    COMMISSION,
    LedgerTransaction,
    Leg,
    clearing,
    distributor_payable,
    transaction_id,
)
from tests.e2e.ledger_book import post_refund

RATES = [1000, 500, 250]  # 10 %, 5 %, 2.5 % for levels 1, 2, 3
CHAIN = (("d-3", None), ("d-2", "d-3"), ("d-1", "d-2"))  # root first; orders name d-1


def _distributors(client, keys) -> None:
    """d-3 a root, d-2 its child, d-1 its grandchild: an order through d-1 pays commission
    level 1 to d-1, level 2 to d-2 and level 3 to d-3."""
    for distributor_id, parent_id in CHAIN:
        answer = client.post("/v1/distributors", headers=keys["app"], json={
            "distributor_id": distributor_id, "name": f"Shop {distributor_id}",
            "parent_id": parent_id})
        assert answer.status_code == 201, answer.text


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


def _reveal(client, keys, order_id: str) -> None:
    answer = client.post(f"/v1/orders/{order_id}/reveal", headers=keys["app"])
    assert answer.status_code == 200, answer.text


def _refund(client, keys, order_id: str, code_id: str) -> dict:
    answer = client.post(f"/v1/orders/{order_id}/refunds", headers=keys["app"], json={
        "code_ids": [code_id], "reason": "buyer asked"})
    assert answer.status_code == 201, answer.text
    return answer.json()


def _adjust(runtime, order_id: str, legs: list[Leg]) -> None:
    """A deliberately wrong transaction of the order, under a cause of its own."""
    runtime.engine.writer.save(LedgerTransaction.post(
        kind="adjustment", cause=f"test-{uuid.uuid4().hex}", actor="t", tenant=None,
        links={"order_id": order_id}, legs=legs))


@pytest.fixture
def sold(client, keys) -> dict:
    """Three units at ¥33.33 (two codes of sup-A at ¥15.00, one of sup-B at ¥12.00) sold
    through d-1 (parent d-2, grandparent d-3) for ¥99.99, paid through the API."""
    _distributors(client, keys)
    sku = _product(client, keys, price=3333)
    batches = {_batch(client, keys, sku, "sup-A", 1500, 2): "sup-A",
               _batch(client, keys, sku, "sup-B", 1200, 1): "sup-B"}
    order = _paid_order(client, keys, sku, 3, payment_ref="wx-sold-1")
    codes = _suppliers(client, keys, order, batches)
    assert sorted(s for _, s in codes) == ["sup-A", "sup-A", "sup-B"]
    return {"order": order, "codes": codes, "sku": sku}


def _code_of(sold: dict, supplier: str) -> str:
    return next(c for c, s in sold["codes"] if s == supplier)


def _reconcile(client, keys, order_id: str, role: str = "finance"):
    return client.get(f"/v1/reconciliation/orders/{order_id}", headers=keys[role])


def test_a_sale_with_three_level_commission_and_a_partial_refund_reconciles_to_the_fen(
        client, keys, sold):
    order_id = sold["order"]["order_id"]
    _reveal(client, keys, order_id)
    _refund(client, keys, order_id, _code_of(sold, "sup-B"))  # revealed: written off
    answer = _reconcile(client, keys, order_id)
    assert answer.status_code == 200, answer.text
    # sale on 9999: floor(999.9) = 999, floor(499.95) = 499, floor(249.975) = 249;
    # net 6666 keeps floor(666.6) = 666, floor(333.3) = 333, floor(166.65) = 166
    assert answer.json() == {
        "order_id": order_id, "currency": "CNY",
        "paid": 9999, "refunded": 3333, "revenue": 6666,
        # cost of sales 1500 + 1500 + 1200 − 1200 written off, plus write-offs 1200
        "cost": 4200,
        "commissions": [{"distributor_id": "d-1", "level": 1, "amount": 666},
                        {"distributor_id": "d-2", "level": 2, "amount": 333},
                        {"distributor_id": "d-3", "level": 3, "amount": 166}],
        "margin": 1301,  # 6666 − 4200 − (666 + 333 + 166)
        "consistent": True, "flags": []}


def test_a_code_back_on_sale_then_one_written_off_reconcile_to_the_fen(client, keys, sold):
    order_id = sold["order"]["order_id"]
    _refund(client, keys, order_id, _code_of(sold, "sup-A"))  # never shown: back on sale
    _reveal(client, keys, order_id)
    _refund(client, keys, order_id, _code_of(sold, "sup-B"))  # shown: written off
    # first refund, net 6666: d-1 999 − 666 = 333, d-2 499 − 333 = 166, d-3 249 − 166 = 83;
    # second, net 3333: d-1 666 − floor(333.3) = 333, d-2 333 − floor(166.65) = 167,
    # d-3 166 − floor(83.325) = 83; so 333, 166 and 83 remain
    assert _reconcile(client, keys, order_id).json() == {
        "order_id": order_id, "currency": "CNY",
        "paid": 9999, "refunded": 6666, "revenue": 3333,
        "cost": 2700,  # the kept sup-A code 1500, and the written-off sup-B code 1200
        "commissions": [{"distributor_id": "d-1", "level": 1, "amount": 333},
                        {"distributor_id": "d-2", "level": 2, "amount": 166},
                        {"distributor_id": "d-3", "level": 3, "amount": 83}],
        "margin": 51,  # 3333 − 2700 − (333 + 166 + 83)
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
    _distributors(client, keys)
    sku = _product(client, keys, price=3333)
    _batch(client, keys, sku, "sup-A", 1500, 1)
    order = _paid_order(client, keys, sku, 1)
    order_id = order["order_id"]
    assert _reconcile(client, keys, order_id).json()["consistent"] is True  # 333, 166, 83
    _adjust(runtime, order_id, [
        Leg(COMMISSION, Money(1, "CNY"), "commission level 1"),
        Leg(distributor_payable("d-1"), Money(-1, "CNY"), "commission level 1")])
    body = _reconcile(client, keys, order_id).json()
    assert body["commissions"][0] == {"distributor_id": "d-1", "level": 1, "amount": 334}
    assert body["consistent"] is False
    assert body["flags"] == ["commission_mismatch"]


def test_a_refund_that_leaves_the_code_with_the_buyer_is_inconsistent(
        client, keys, runtime, sold):
    code_id = _code_of(sold, "sup-B")
    post_refund(runtime, order_id=sold["order"]["order_id"], refund_id="test-rf-stray",
                payment_ref="test-never-paid", provider="wechat", amount=3333,
                written_off=[(code_id, 1200)],
                clawbacks=[("d-1", 333), ("d-2", 166), ("d-3", 83)])  # code never taken back
    body = _reconcile(client, keys, sold["order"]["order_id"]).json()
    assert (body["refunded"], body["revenue"]) == (3333, 6666)  # money and commission agree
    assert body["consistent"] is False and body["flags"] == ["units_mismatch"]


def test_revenue_that_differs_from_net_payments_is_inconsistent(client, keys, runtime, sold):
    _adjust(runtime, sold["order"]["order_id"], [
        Leg(clearing("wechat"), Money(-100, "CNY"), "paid back, revenue kept"),
        Leg(BANK, Money(100, "CNY"), "paid back, revenue kept")])
    body = _reconcile(client, keys, sold["order"]["order_id"]).json()
    assert body["refunded"] == 100 and body["revenue"] == 9999
    assert "revenue_mismatch" in body["flags"] and body["consistent"] is False


def test_a_sale_allowed_below_cost_is_flagged_price_inverted(client, keys, runtime):
    _distributors(client, keys)
    sku = _product(client, keys, price=1000, rates=[1000], allow_below_cost=True)
    _batch(client, keys, sku, "sup-A", 1050, 1)
    order = _paid_order(client, keys, sku, 1, payment_ref="wx-inv-1")
    sale = runtime.store.get(transaction_id("sale", "wx-inv-1"), "sale")
    assert sale.links["price_inverted"] == "true"
    body = _reconcile(client, keys, order["order_id"]).json()
    assert body["flags"] == ["price_inverted"]
    assert body["consistent"] is True
    assert body["margin"] == 1000 - 1050 - 100  # commission floor(1000 × 10 %)


def test_a_cost_above_the_price_net_of_commission_is_flagged_price_inverted(
        client, keys, runtime):
    """Not inverted at the sale (950 ≤ 1000), but d-1's 100 leaves the platform 900."""
    _distributors(client, keys)
    sku = _product(client, keys, price=1000, rates=[1000])
    _batch(client, keys, sku, "sup-A", 950, 1)
    order = _paid_order(client, keys, sku, 1, payment_ref="wx-inv-2")
    assert "price_inverted" not in runtime.store.get(
        transaction_id("sale", "wx-inv-2"), "sale").links
    body = _reconcile(client, keys, order["order_id"]).json()
    assert body["flags"] == ["price_inverted"]
    assert body["consistent"] is True and body["margin"] == 1000 - 950 - 100


def test_without_commission_the_same_cost_is_not_price_inverted(client, keys):
    sku = _product(client, keys, price=1000, rates=[1000])
    _batch(client, keys, sku, "sup-A", 950, 1)
    order = _paid_order(client, keys, sku, 1, distributor=None)
    body = _reconcile(client, keys, order["order_id"]).json()
    assert body["flags"] == [] and body["consistent"] is True
    assert body["margin"] == 50


def test_a_level_named_in_the_leg_memo_is_taken_over_the_posting_order(client, keys):
    """Level 1 earns nothing (rate 0), so d-2's is the only commission leg: by posting
    order it would be first, but its memo says level 2."""
    _distributors(client, keys)
    sku = _product(client, keys, price=1000, rates=[0, 1000])
    _batch(client, keys, sku, "sup-A", 100, 1)
    order = _paid_order(client, keys, sku, 1)
    body = _reconcile(client, keys, order["order_id"]).json()
    assert body["commissions"] == [{"distributor_id": "d-2", "level": 2, "amount": 100}]
    assert body["consistent"] is True


def test_a_bundle_allowed_below_its_components_cost_is_flagged_price_inverted(
        client, keys, runtime):
    """Each component code (1200) costs less than the bundle's price (2000); the two
    together cost 2400, more than it: the sale is inverted, and so is the reconciliation."""
    video, music = (_product(client, keys, price=1500) for _ in range(2))
    for sku in (video, music):
        _batch(client, keys, sku, "sup-A", 1200, 1)
    bundle = f"REC-{uuid.uuid4().hex[:8]}"
    answer = client.post("/v1/products", headers=keys["app"], json={
        "sku": bundle, "name": "Video + music", "delivery": "card", "price": 2000,
        "allow_below_cost": True, "components": [{"sku": video, "quantity": 1},
                                                 {"sku": music, "quantity": 1}]})
    assert answer.status_code == 201, answer.text
    order = _paid_order(client, keys, bundle, 1, distributor=None, payment_ref="wx-inv-3")
    assert runtime.store.get(transaction_id("sale", "wx-inv-3"), "sale").links[
        "price_inverted"] == "true"
    body = _reconcile(client, keys, order["order_id"]).json()
    assert (body["paid"], body["cost"], body["margin"]) == (2000, 2400, -400)
    assert body["flags"] == ["price_inverted"] and body["consistent"] is True
