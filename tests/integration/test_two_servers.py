"""Two `quanyi serve` processes on one store, hammered on one SKU from both: correctness
comes from the event store's constraints, not from a lock inside one process."""

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.common import serve_subprocess

CODES = 150
BUYERS_PER_SERVER = 8


def test_two_servers_selling_one_sku_never_double_deliver(quanyi_env):
    with serve_subprocess(quanyi_env) as (left, key), serve_subprocess(quanyi_env) as (right, _):
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=left, headers=headers, timeout=60) as admin:
            sku = f"DUO-{uuid.uuid4().hex[:6]}"
            admin.post("/v1/products", json={"sku": sku, "name": "duo", "delivery": "card",
                                             "price": 100}).raise_for_status()
            admin.post(f"/v1/products/{sku}/batches", json={
                "supplier_id": "s", "unit_cost": 50,
                "codes": [{"code": f"{sku}-{n:04d}"} for n in range(CODES)]}).raise_for_status()

        def buyer(base: str, n: int) -> list[dict]:
            bought = []
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                for attempt in range(40):
                    placed = client.post("/v1/orders", json={
                        "buyer_id": f"{n}-{attempt}", "items": [{"sku": sku, "quantity": 1}]})
                    if placed.status_code == 409:
                        assert placed.json()["code"] == "sold_out"
                        break
                    placed.raise_for_status()
                    order = placed.json()
                    payment = {"payment_ref": f"p-{order['order_id']}",
                               "amount": order["amount"], "currency": "CNY"}
                    # the provider calls back twice, once on each server
                    for target in (client, httpx.Client(base_url=other(base), headers=headers,
                                                        timeout=60)):
                        paid = target.post(f"/v1/orders/{order['order_id']}/payments",
                                           json=payment)
                        assert paid.status_code == 200, paid.text
                    bought.append(paid.json())
            return bought

        def other(base: str) -> str:
            return right if base == left else left

        with ThreadPoolExecutor(max_workers=2 * BUYERS_PER_SERVER) as pool:
            jobs = [pool.submit(buyer, base, n) for base in (left, right)
                    for n in range(BUYERS_PER_SERVER)]
            orders = [o for job in jobs for o in job.result()]

        with httpx.Client(base_url=right, headers=headers, timeout=60) as reader:
            final = [reader.get(f"/v1/orders/{o['order_id']}").json() for o in orders]
            stock = reader.get(f"/v1/products/{sku}/inventory").json()
    owners = Counter(c["code_id"] for o in final for c in o["codes"])
    assert len(final) == CODES
    assert all(o["status"] == "delivered" and len(o["codes"]) == 1 for o in final)
    assert all(len(o["payments"]) == 1 for o in final)
    assert len(owners) == CODES and max(owners.values()) == 1
    assert stock["sold"] == CODES and stock["available"] == stock["reserved"] == 0


def test_a_refund_on_the_server_that_placed_the_order_is_made_after_a_payment_elsewhere(
        quanyi_env):
    with serve_subprocess(quanyi_env) as (placer, key), serve_subprocess(quanyi_env) as (payer, _):
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=placer, headers=headers, timeout=60) as there, \
                httpx.Client(base_url=payer, headers=headers, timeout=60) as here:
            sku = f"RF2-{uuid.uuid4().hex[:6]}"
            there.post("/v1/products", json={"sku": sku, "name": "duo", "delivery": "card",
                                             "price": 100}).raise_for_status()
            there.post(f"/v1/products/{sku}/batches", json={
                "supplier_id": "s", "unit_cost": 50,
                "codes": [{"code": f"{sku}-{n}"} for n in range(2)]}).raise_for_status()
            placed = there.post("/v1/orders", json={"buyer_id": "b",
                                                    "items": [{"sku": sku, "quantity": 1}]})
            assert placed.status_code == 201, placed.text
            order_id = placed.json()["order_id"]
            paid = here.post(f"/v1/orders/{order_id}/payments", json={
                "payment_ref": f"p-{order_id}", "amount": 100, "currency": "CNY"})
            assert paid.status_code == 200 and paid.json()["status"] == "delivered", paid.text
            refunded = there.post(f"/v1/orders/{order_id}/refunds",
                                  json={"reason": "buyer asked"})
            assert refunded.status_code == 201, refunded.text
            assert here.get(f"/v1/orders/{order_id}").json()["status"] == "refunded"
