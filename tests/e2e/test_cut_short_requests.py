"""A request the client cut short, then resent with the same Idempotency-Key and body: the
resend gets the first answer (or runs it), never `idempotency_key_reused`.

A server that learns of the disconnect before it has read the body sees no body at all; a
claim made then would hash an empty request, and the resend, with its real body, would be
refused as another request."""

import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson

from bench.common import serve_subprocess
from tests.e2e.test_idempotency import server  # noqa: F401 - the fixture

THREADS = 16
ROUNDS = 2


def _send_and_hang_up(base: str, auth: str, key: str, body: bytes) -> None:
    """The whole request on the wire, then the connection closed before any answer."""
    host, port = base.removeprefix("http://").split(":")
    head = (f"POST /v1/orders HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
            f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head + body)


def _product_with_codes(http: httpx.Client, count: int) -> str:
    sku = f"CUT-{uuid.uuid4().hex[:8]}"
    http.post("/v1/products", json={"sku": sku, "name": "cut", "delivery": "card",
                                    "price": 100}).raise_for_status()
    http.post(f"/v1/products/{sku}/batches", json={
        "supplier_id": "s", "unit_cost": 50,
        "codes": [{"code": f"{sku}-{n:05d}"} for n in range(count)]}).raise_for_status()
    return sku


def _stock_once_settled(http: httpx.Client, sku: str, total: int) -> dict:
    """The SKU's inventory once the projections have applied every reservation (a few
    seconds at most): reserved and available then add up to the total."""
    deadline = time.monotonic() + 10
    while True:
        stock = http.get(f"/v1/products/{sku}/inventory").json()
        if stock["reserved"] + stock["available"] == total and stock["reserved"] > 0 \
                or time.monotonic() > deadline:
            time.sleep(0.5)
            return http.get(f"/v1/products/{sku}/inventory").json()
        time.sleep(0.1)


def test_a_resend_after_a_hang_up_is_never_taken_for_another_request(server, keys):
    with httpx.Client(base_url=server, headers=keys["app"], timeout=30) as http:
        sku = _product_with_codes(http, 5)
        for n in range(5):
            key = f"cut-{uuid.uuid4()}"
            body = orjson.dumps({"buyer_id": f"b-{n}", "items": [{"sku": sku, "quantity": 1}]})
            _send_and_hang_up(server, keys["app"]["Authorization"], key, body)
            time.sleep(0.3)
            again = http.post("/v1/orders", content=body, headers={
                "Idempotency-Key": key, "Content-Type": "application/json"})
            assert again.status_code == 201, again.text
        stock = _stock_once_settled(http, sku, 5)
    assert stock["reserved"] == 5  # each key placed one order


def test_resends_to_the_other_server_under_load_answer_the_first_order(quanyi_env):
    """The issue's repro: 16 threads, each first attempt cut short by a 5-40 ms client
    timeout, the same key and body resent 0.3 s later to the other process."""
    with serve_subprocess(quanyi_env) as (left, admin), serve_subprocess(quanyi_env) as (right, _):
        headers = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=left, headers=headers, timeout=60) as http:
            sku = _product_with_codes(http, THREADS * ROUNDS)

        def client(n: int) -> list[tuple[int, str, str]]:
            answers = []
            for r in range(ROUNDS):
                first, second = (left, right) if (n + r) % 2 else (right, left)
                key = f"load-{n}-{r}-{uuid.uuid4()}"
                body = {"buyer_id": f"b-{n}-{r}", "items": [{"sku": sku, "quantity": 1}]}
                cut = 0.005 + 0.035 * ((n * ROUNDS + r) % 8) / 7
                try:
                    httpx.post(f"{first}/v1/orders", json=body, timeout=cut,
                               headers={**headers, "Idempotency-Key": key})
                except httpx.TimeoutException:
                    pass
                time.sleep(0.3)
                for _ in range(50):  # in progress on the other process: ask again
                    again = httpx.post(f"{second}/v1/orders", json=body, timeout=60,
                                       headers={**headers, "Idempotency-Key": key})
                    if again.status_code != 409:
                        break
                    time.sleep(0.2)
                answers.append((again.status_code, again.json().get("code", ""), key))
            return answers

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            answers = [a for job in [pool.submit(client, n) for n in range(THREADS)]
                       for a in job.result()]
        with httpx.Client(base_url=right, headers=headers, timeout=60) as http:
            stock = _stock_once_settled(http, sku, THREADS * ROUNDS)
    refused = [a for a in answers if a[0] != 201]
    assert refused == []
    assert stock["reserved"] == THREADS * ROUNDS  # one order per key, none twice
