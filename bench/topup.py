"""Direct top-ups (直充) through `quanyi serve`: N paid top-up orders against two simulated
suppliers, the first answering after ``--latency-ms`` and refusing ``--failure-rate`` of its
top-ups (a definite failure: the dispatcher fails over to the second).

With ``--rate`` payments are paced below what the dispatcher can take, so payment to
success shows the fulfilment's own time rather than the queue of a saturated run.

Prints orders completed per second (paid to decided, from the first payment to the last
decision), p50/p99 of the time from payment to success, and the numbers that must be zero:
accounts topped up twice (the simulators' books), orders paid and neither delivered nor
refunded, delivered orders no supplier credited, refunded orders a supplier credited.

Payment to success is measured twice from the order's ``TopupPaid`` event (read from the
log): to its fulfilment's ``topup.succeeded`` event, and to the arrival of the
``topup.succeeded`` webhook at a receiver on 127.0.0.1 registered for it (the same machine's
clock). Orders whose success no webhook told are counted too: that number must be zero.

    .venv/bin/python bench/topup.py --store postgres --orders 5000
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    bench_env,
    fresh_postgres_database,
    percentile,
    serve_subprocess,
)
from engine import open_store  # noqa: E402
from engine.sales.orders import Order  # noqa: E402
from engine.settings import Settings  # noqa: E402
from engine.topups.fulfilment import Fulfilment, fulfilment_id  # noqa: E402
from supplier_sim import SimAdmin, SimConfig, SimServer  # noqa: E402
from supplier_sim.onboarding import offer_top_up  # noqa: E402

PRICE = 10_000


def setup(api: httpx.Client, sims: dict[str, SimServer]) -> str:
    """The two suppliers, a top-up SKU and its offers, first supplier first."""
    sku = f"BENCH-TOPUP-{uuid.uuid4().hex[:6]}"
    offer_top_up(api, sims, sku=sku, name="Mobile ¥100", price=PRICE,
                 costs=[9_700 + 100 * n for n in range(len(sims))])
    return sku


class WebhookReceiver:
    """Notes when each order's ``topup.succeeded`` webhook arrives (first delivery only)."""

    def __init__(self) -> None:
        self.arrived: dict[str, datetime] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                at = datetime.now(timezone.utc)
                message = json.loads(body)
                if message["type"] == "topup.succeeded":
                    receiver.arrived.setdefault(message["data"]["order_id"], at)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()


def buy(api: httpx.Client, sku: str, account: str) -> str:
    placed = api.post("/v1/orders", json={"buyer_id": account, "recharge_account": account,
                                          "items": [{"sku": sku, "quantity": 1}]})
    placed.raise_for_status()
    order_id = placed.json()["order_id"]
    api.post(f"/v1/orders/{order_id}/payments", json={
        "payment_ref": f"p-{order_id}", "amount": PRICE, "currency": "CNY",
        "provider": "wechat"}).raise_for_status()
    return order_id


def wait_settled(api: httpx.Client, order_ids: list[str], timeout: float) -> dict[str, str]:
    """Each order's status once none is fulfilling any more (or at the timeout)."""
    deadline = time.monotonic() + timeout
    statuses: dict[str, str] = {}
    open_ids = list(order_ids)
    while open_ids and time.monotonic() < deadline:
        for order_id in open_ids:
            statuses[order_id] = api.get(f"/v1/orders/{order_id}").json()["status"]
        open_ids = [o for o in open_ids if statuses[o] in ("fulfilling", "reserved")]
        if open_ids:
            time.sleep(1)
    return statuses


def wait_told(receiver: WebhookReceiver, statuses: dict[str, str], timeout: float) -> None:
    """Until every delivered order's webhook arrived (or the timeout)."""
    delivered = {o for o, s in statuses.items() if s == "delivered"}
    deadline = time.monotonic() + timeout
    while not delivered <= receiver.arrived.keys() and time.monotonic() < deadline:
        time.sleep(0.5)


def timings(env: dict[str, str], order_ids: list[str],
            told: dict[str, datetime]) -> dict[str, Any]:
    """Payment and decision instants of each order, from the log, and when it was told."""
    store = open_store(Settings.from_env(env, create_key=False))
    paid, decided, succeeded, webhooks, untold = [], [], [], [], 0
    try:
        for order_id in order_ids:
            order_events = store.repository.event_store.get(uuid.UUID(order_id))
            paid_at = next(e.timestamp for e in order_events if isinstance(e, Order.TopupPaid))
            events = list(store.repository.event_store.get(fulfilment_id(order_id)))
            done = [e for e in events if isinstance(e, (Fulfilment.Succeeded, Fulfilment.Failed))]
            paid.append(paid_at)
            if done:
                decided.append(done[0].timestamp)
                if isinstance(done[0], Fulfilment.Succeeded):
                    succeeded.append((done[0].timestamp - paid_at).total_seconds())
                    if order_id in told:
                        webhooks.append((told[order_id] - paid_at).total_seconds())
                    else:
                        untold += 1
    finally:
        store.close()
    return {"paid": paid, "decided": decided, "latencies": succeeded, "webhooks": webhooks,
            "untold": untold}


def run(args: argparse.Namespace) -> dict[str, Any]:
    url = fresh_postgres_database("quanyi_bench_topup") if args.store == "postgres" else None
    env = bench_env(url)
    env.update({"QUANYI_TOPUP_WORKERS": str(args.topup_workers),
                "QUANYI_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
                "QUANYI_SUPPLIER_ALLOW_PRIVATE_URLS": "true"})
    receiver = WebhookReceiver()
    sims = {"sup-first": SimServer(SimConfig(latency_ms=args.latency_ms, seed=1,
                                             failure_rate=args.failure_rate)).start(),
            "sup-second": SimServer(SimConfig(latency_ms=args.latency_ms, seed=2)).start()}
    admins = {s: SimAdmin(sim.url) for s, sim in sims.items()}
    accounts = [f"13{n:09d}" for n in range(args.orders)]
    try:
        with serve_subprocess(env) as (base, key):
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as api:
                sku = setup(api, sims)
                api.post("/v1/webhooks", json={"url": receiver.url,
                                               "event_types": ["topup.succeeded"]}
                         ).raise_for_status()
            clients = threading.local()  # one client per buyer thread: a client is costly

            def one(numbered: tuple[int, str]) -> str:
                n, account = numbered
                if args.rate:  # paced: order n is paid no earlier than n / rate s in
                    time.sleep(max(0.0, started + n / args.rate - time.monotonic()))
                if not hasattr(clients, "api"):
                    clients.api = httpx.Client(base_url=base, headers=headers, timeout=60)
                return buy(clients.api, sku, account)
            started = time.monotonic()
            with ThreadPoolExecutor(args.buyers) as pool:
                order_ids = list(pool.map(one, enumerate(accounts)))
            paying = time.monotonic() - started
            with httpx.Client(base_url=base, headers=headers, timeout=60) as api:
                statuses = wait_settled(api, order_ids, args.timeout)
                wait_told(receiver, statuses, args.timeout)
        per_supplier = {s: [admin.credits(a) for a in accounts] for s, admin in admins.items()}
        credits = {a: sum(c[n] for c in per_supplier.values()) for n, a in enumerate(accounts)}
    finally:
        for sim in sims.values():
            sim.stop()
        receiver.stop()
    times = timings(env, order_ids, receiver.arrived)
    span = (max(times["decided"]) - min(times["paid"])).total_seconds() if times["decided"] \
        else float("nan")
    by_status = {s: list(statuses.values()).count(s) for s in set(statuses.values())}
    return {
        "store": args.store, "orders": args.orders, "paying_seconds": round(paying, 1),
        "paid_per_second": round(args.orders / paying, 1),
        "statuses": by_status,
        "completed_per_second": round(len(times["decided"]) / span, 1),
        "p50_ms": round(percentile(times["latencies"], 50) * 1000),
        "p99_ms": round(percentile(times["latencies"], 99) * 1000),
        "webhook_p50_ms": round(percentile(times["webhooks"], 50) * 1000),
        "webhook_p99_ms": round(percentile(times["webhooks"], 99) * 1000),
        "succeeded_but_not_told": times["untold"],
        "topped_up_twice": sum(c > 1 for c in credits.values()),
        "paid_neither_delivered_nor_refunded": sum(
            s not in ("delivered", "refunded") for s in statuses.values()),
        "delivered_not_credited": sum(
            statuses[o] == "delivered" and credits[a] != 1
            for o, a in zip(order_ids, accounts)),
        "refunded_but_credited": sum(
            statuses[o] == "refunded" and credits[a] != 0
            for o, a in zip(order_ids, accounts)),
        "credited_by": {s: sum(c) for s, c in per_supplier.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--orders", type=int, default=5_000)
    parser.add_argument("--buyers", type=int, default=32, help="concurrent place+pay clients")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--failure-rate", type=float, default=0.10)
    parser.add_argument("--topup-workers", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="pace payments at this many orders/s (0: as fast as possible)")
    result = run(parser.parse_args())
    for name, value in result.items():
        print(f"{name:40} {value}")


if __name__ == "__main__":
    main()
