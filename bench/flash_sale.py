"""Flash sale (双十一秒杀): C concurrent buyers each place a one-unit order and pay it, until
one SKU of N codes is sold out. Prints orders/s, p50/p99 latency of the whole buy, and the
three numbers that must be zero: oversold, codes delivered twice, paid but undelivered.

In the same run it measures the baseline a CRUD shop would use on the same PostgreSQL with
the same concurrency (an order row + a code taken with SELECT ... FOR UPDATE SKIP LOCKED,
then order paid + code sold + a payment row) and prints the ratio engine / baseline.

With ``--distributor`` a three-level distributor chain is registered first and every order
carries its leaf (the product pays 10 %/5 %/2.5 % commission), so each sale posts its
commission legs. With ``--compare-ref REF`` the engine half runs alternately from this tree
and from REF (checked out into a temporary ``git worktree``), each in a subprocess importing
its own tree, next to the baseline: it prints both engine/baseline ratios and their quotient,
the cost of what changed since REF measured in one run on one machine.

    .venv/bin/python bench/flash_sale.py --store postgres            # engine in-process
    .venv/bin/python bench/flash_sale.py --store postgres --http      # through `quanyi serve`
    .venv/bin/python bench/flash_sale.py --distributor --compare-ref c08ac8b
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    ROOT,
    bench_env,
    fresh_postgres_database,
    percentile,
    serve_subprocess,
)

CHAIN = ("bench-d1", "bench-d2", "bench-d3")  # root, child, leaf: orders carry the leaf
RATES_BP = [1000, 500, 250]  # the leaf's level first
RESULT = "RESULT "  # how an --engine-only subprocess hands its figures back


class SoldOutSignal(Exception):
    pass


def drive(buyers: int, buy: Callable[[int], None]) -> tuple[float, list[float], int]:
    """Run ``buy`` from ``buyers`` threads until each sees sold out; (seconds, latencies)."""
    latencies: list[float] = []
    errors = Counter()
    lock = threading.Lock()
    serial = iter(range(10**9))

    def worker() -> None:
        mine = []
        while True:
            n = next(serial)
            started = time.perf_counter()
            try:
                buy(n)
            except SoldOutSignal:
                break
            except Exception as exc:  # noqa: BLE001 - counted and reported, never hidden
                with lock:
                    errors[type(exc).__name__] += 1
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=buyers) as pool:
        for future in [pool.submit(worker) for _ in range(buyers)]:
            future.result()
    elapsed = time.perf_counter() - started
    if errors:
        print(f"  errors: {dict(errors)}")
    return elapsed, latencies, sum(errors.values())


def report(label: str, elapsed: float, latencies: list[float]) -> float:
    rate = len(latencies) / elapsed if elapsed else 0.0
    print(f"{label}: {len(latencies)} orders in {elapsed:.2f} s = {rate:,.0f} orders/s; "
          f"p50 {percentile(latencies, 50) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.1f} ms")
    return rate


# -- the engine, in this process ------------------------------------------------------------

def engine_run(env: dict[str, str], codes: int, buyers: int,
               distributor: bool = False) -> tuple[float, dict[str, int]]:
    from engine.codes.imports import CodeRow
    from engine.kernel.errors import SoldOut
    from engine.settings import Settings
    from runtime import Runtime

    rt = Runtime.open(Settings.from_env(env))
    rt.start()
    try:
        leaf = register_chain(rt) if distributor else None
        sku = stock(rt, codes, CodeRow, RATES_BP if distributor else [])
        orders = rt.engine.orders

        def buy(n: int) -> None:
            try:
                order = orders.place(buyer_id=f"buyer-{n}", items=[{"sku": sku, "quantity": 1}],
                                     distributor_id=leaf, actor="bench")
            except SoldOut as exc:
                raise SoldOutSignal from exc
            orders.pay(order_id=order.id, payment_ref=f"pay-{order.id}", amount=order.amount,
                       currency=order.currency, provider="bench", actor="bench")

        elapsed, latencies, _ = drive(buyers, buy)
        rate = report(f"engine ({rt.store.kind}, {buyers} buyers)", elapsed, latencies)
        rt.runner.wait_for(rt.store.last_position(), 60)
        return rate, audit(rt, sku, codes)
    finally:
        rt.close()


def register_chain(rt) -> str:
    """The three-level chain, root first; its leaf. A tree from before distributors had to
    be registered takes any distributor id, and registers only if it can."""
    distribution = getattr(rt.engine, "distribution", None)
    parent = None
    for distributor_id in CHAIN if distribution is not None else ():
        distribution.register(distributor_id=distributor_id, name=distributor_id,
                              parent_id=parent, actor="bench")
        parent = distributor_id
    return CHAIN[-1]


def stock(rt, codes: int, code_row, rates_bp: list[int]) -> str:
    sku = f"FLASH-{uuid.uuid4().hex[:6]}"
    rt.engine.catalog.define_product(sku=sku, name="Flash sale", delivery="card", price=990,
                                     commission_rates_bp=rates_bp, actor="bench")
    tag = uuid.uuid4().hex[:8]
    rows = (code_row(f"{tag}-{i:07d}", None) for i in range(codes))
    rt.engine.imports.import_batch(sku=sku, rows=rows, supplier_id="bench", unit_cost=500,
                                   expires_at=None, actor="bench")
    rt.runner.wait_for(rt.store.last_position(), 120)
    return sku


def audit(rt, sku: str, codes: int) -> dict[str, int]:
    """Count the failures that must never happen, from the orders' own records."""
    with rt.read_db.transaction(write=False) as cursor:
        cursor.execute("SELECT order_id, status FROM orders")
        rows = cursor.fetchall()
    delivered: Counter = Counter()
    paid_undelivered = 0
    for order_id, _status in rows:
        order = rt.engine.orders.get(uuid.UUID(order_id))
        if order.payments and order.status not in ("delivered", "refunded"):
            paid_undelivered += 1
        if order.status == "delivered":
            delivered.update(order.code_ids)
            if len(order.code_ids) != 1:
                paid_undelivered += 1
    stock_now = rt.codes.inventory(sku)
    return {"delivered orders": sum(delivered.values()),
            "delivered without a sale posted": unposted(rt, rows),
            "oversold": max(0, sum(delivered.values()) - codes),
            "codes delivered twice": sum(1 for n in delivered.values() if n > 1),
            "paid but undelivered": paid_undelivered,
            "sold per inventory": stock_now["sold"]}


def unposted(rt, rows: list[tuple[str, str]]) -> int:
    """Delivered orders whose payment has no sale transaction (a tree from before the
    ledger posts none: -1)."""
    try:
        from engine.ledger.transactions import transaction_id
        from engine.sales.postings import SALE
    except ImportError:
        return -1
    missing = 0
    for order_id, status in rows:
        if status == "delivered":
            ref = rt.engine.orders.get(uuid.UUID(order_id)).payments[0]["payment_ref"]
            missing += rt.store.find(transaction_id(SALE, ref)) is None
    return missing


# -- through the HTTP API ----------------------------------------------------------------------

class Http:
    """A keep-alive connection per buyer thread: http.client is light enough that the
    load generator does not eat the CPU the server needs (httpx did, on 2 cores)."""

    def __init__(self, base_url: str, key: str) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        self._connect = lambda: http.client.HTTPConnection(parts.hostname, parts.port,
                                                           timeout=60)
        self._conn = self._connect()
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict]:
        import http.client

        import orjson

        data = orjson.dumps(body) if body is not None else None
        try:
            self._conn.request(method, path, body=data, headers=self._headers)
            response = self._conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            if method != "GET":
                raise
            self._conn = self._connect()  # the server closed an idle keep-alive connection
            self._conn.request(method, path, body=data, headers=self._headers)
            response = self._conn.getresponse()
        return response.status, orjson.loads(response.read() or b"null")


def http_run(env: dict[str, str], codes: int, buyers: int,
             workers: int = 1) -> tuple[float, dict[str, int]]:
    with serve_subprocess(env, workers=workers) as (base_url, key):
        admin = Http(base_url, key)
        sku = f"FLASH-{uuid.uuid4().hex[:6]}"
        admin.call("POST", "/v1/products", {"sku": sku, "name": "Flash", "delivery": "card",
                                            "price": 990})
        tag = uuid.uuid4().hex[:8]
        status, _ = admin.call("POST", f"/v1/products/{sku}/batches", {
            "supplier_id": "bench", "unit_cost": 500,
            "codes": [{"code": f"{tag}-{i:07d}"} for i in range(codes)]})
        assert status == 201, status
        admin.call("GET", f"/v1/products/{sku}/inventory")
        paid_orders: list[str] = []
        local = threading.local()

        def buy(n: int) -> None:
            client = getattr(local, "client", None) or Http(base_url, key)
            local.client = client
            status, order = client.call("POST", "/v1/orders", {
                "buyer_id": f"buyer-{n}", "items": [{"sku": sku, "quantity": 1}]})
            if status == 409 and order.get("code") == "sold_out":
                raise SoldOutSignal
            if status != 201:
                raise RuntimeError(f"place answered {status}")
            status, _ = client.call("POST", f"/v1/orders/{order['order_id']}/payments", {
                "payment_ref": f"pay-{order['order_id']}", "amount": order["amount"],
                "currency": order["currency"]})
            if status != 200:
                raise RuntimeError(f"payment answered {status}")
            paid_orders.append(order["order_id"])

        elapsed, latencies, _ = drive(buyers, buy)
        rate = report(f"http ({buyers} clients, {workers} server process(es))", elapsed,
                      latencies)
        delivered: Counter = Counter()
        undelivered = 0
        for order_id in paid_orders:
            _, body = admin.call("GET", f"/v1/orders/{order_id}")
            if body["status"] != "delivered" or len(body["codes"]) != 1:
                undelivered += 1
            delivered.update(c["code_id"] for c in body["codes"])
    return rate, {"delivered orders": sum(delivered.values()),
                  "oversold": max(0, sum(delivered.values()) - codes),
                  "codes delivered twice": sum(1 for n in delivered.values() if n > 1),
                  "paid but undelivered": undelivered}


# -- the CRUD baseline -------------------------------------------------------------------------

BASELINE_SCHEMA = """
DROP TABLE IF EXISTS bl_payments, bl_orders, bl_codes;
CREATE TABLE bl_codes (id BIGSERIAL PRIMARY KEY, sku TEXT NOT NULL, code TEXT NOT NULL,
                       status TEXT NOT NULL DEFAULT 'available', order_id UUID);
CREATE INDEX bl_codes_pool ON bl_codes (sku, status);
CREATE TABLE bl_orders (id UUID PRIMARY KEY, buyer_id TEXT NOT NULL, status TEXT NOT NULL,
                        amount BIGINT NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE bl_payments (payment_ref TEXT PRIMARY KEY, order_id UUID NOT NULL,
                          amount BIGINT NOT NULL);
"""


def baseline_run(url: str, codes: int, buyers: int) -> float:
    import psycopg
    from psycopg_pool import ConnectionPool

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BASELINE_SCHEMA)
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO bl_codes (sku, code) VALUES ('FLASH', %s)",
                               [(f"c{i}",) for i in range(codes)])
    pool = ConnectionPool(url, min_size=buyers, max_size=buyers, open=True)

    def buy(n: int) -> None:
        order_id = uuid.uuid4()
        with pool.connection() as conn, conn.transaction():
            conn.execute("INSERT INTO bl_orders (id, buyer_id, status, amount) "
                         "VALUES (%s, %s, 'reserved', 990)", (order_id, f"buyer-{n}"))
            row = conn.execute("SELECT id FROM bl_codes WHERE sku = 'FLASH' AND "
                               "status = 'available' LIMIT 1 FOR UPDATE SKIP LOCKED").fetchone()
            if row is None:
                raise SoldOutSignal
            conn.execute("UPDATE bl_codes SET status = 'reserved', order_id = %s WHERE id = %s",
                         (order_id, row[0]))
        with pool.connection() as conn, conn.transaction():
            conn.execute("UPDATE bl_orders SET status = 'paid' WHERE id = %s", (order_id,))
            conn.execute("UPDATE bl_codes SET status = 'sold' WHERE order_id = %s", (order_id,))
            conn.execute("INSERT INTO bl_payments (payment_ref, order_id, amount) "
                         "VALUES (%s, %s, 990)", (f"pay-{order_id}", order_id))

    try:
        elapsed, latencies, _ = drive(buyers, buy)
    finally:
        pool.close()
    return report(f"baseline (plain SQL, {buyers} buyers)", elapsed, latencies)


# -- before and after: the engine half from another tree -------------------------------------

@contextlib.contextmanager
def checked_out(ref: str) -> Iterator[Path]:
    """``ref`` in a temporary git worktree, removed afterwards."""
    where = Path(tempfile.mkdtemp(prefix="quanyi-ref-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(where), ref], cwd=ROOT,
                   check=True, capture_output=True)
    try:
        yield where
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=ROOT,
                       check=False, capture_output=True)


def engine_subprocess(tree: Path, args: argparse.Namespace) -> tuple[float, dict[str, int]]:
    """The engine half, run by this script in a subprocess that imports ``tree``'s code."""
    command = [sys.executable, str(Path(__file__).resolve()), "--engine-only",
               "--engine-root", str(tree), "--store", args.store, "--codes", str(args.codes),
               "--buyers", str(args.buyers)] + (["--distributor"] if args.distributor else [])
    done = subprocess.run(command, check=True, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tree)})
    sys.stdout.write("".join(f"  | {line}\n" for line in done.stdout.splitlines()
                             if not line.startswith(RESULT)))
    result = json.loads(next(line for line in done.stdout.splitlines()
                             if line.startswith(RESULT))[len(RESULT):])
    return result["rate"], result["checks"]


def compare(args: argparse.Namespace) -> dict[str, int]:
    """Alternate REF's engine, this tree's engine and the baseline, ``--rounds`` times; print
    the median engine/baseline ratio of each tree and their quotient."""
    rates: dict[str, list[float]] = {"before": [], "after": [], "baseline": []}
    checks: dict[str, int] = {}
    with checked_out(args.compare_ref) as before:
        for round_ in range(args.rounds):
            trees = [("before", before), ("after", ROOT)]
            for name, tree in trees if round_ % 2 == 0 else trees[::-1]:
                label = args.compare_ref if name == "before" else "this tree"
                print(f"round {round_ + 1}: engine {name} ({label})")
                rate, found = engine_subprocess(tree, args)
                rates[name].append(rate)
                if name == "after":
                    checks = found
            rates["baseline"].append(baseline_run(
                fresh_postgres_database("quanyi_bench_baseline"), args.codes, args.buyers))
    median = {name: statistics.median(values) for name, values in rates.items()}
    before_ratio = median["before"] / median["baseline"]
    after_ratio = median["after"] / median["baseline"]
    print(f"engine/baseline before ({args.compare_ref}): {before_ratio:.2f} "
          f"({median['before']:,.0f} / {median['baseline']:,.0f} orders/s)")
    print(f"engine/baseline after (this tree): {after_ratio:.2f} "
          f"({median['after']:,.0f} / {median['baseline']:,.0f} orders/s)")
    print(f"after / before: {after_ratio / before_ratio:.2f} (target >= 0.8)")
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--codes", type=int, default=20_000)
    parser.add_argument("--buyers", type=int, default=64)
    parser.add_argument("--http", action="store_true", help="drive `quanyi serve` over HTTP")
    parser.add_argument("--workers", type=int, default=1, help="server processes (--http)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--distributor", action="store_true",
                        help="orders carry the leaf of a registered three-level chain")
    parser.add_argument("--compare-ref", metavar="REF",
                        help="also run the engine half from git REF; print both ratios")
    parser.add_argument("--rounds", type=int, default=1, help="alternations (--compare-ref)")
    parser.add_argument("--engine-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine-root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_root:  # the tree whose engine this subprocess measures
        sys.path.insert(0, args.engine_root)

    if args.compare_ref:
        if args.store != "postgres" or args.http:
            parser.error("--compare-ref measures the engine in-process on PostgreSQL")
        print(f"flash sale: {args.codes} codes, {args.buyers} buyers, store {args.store}, "
              f"distributor chain {'on' if args.distributor else 'off'}, "
              f"before {args.compare_ref} / after this tree")
        finish(compare(args))
    url = fresh_postgres_database("quanyi_bench_flash") if args.store == "postgres" else None
    env = bench_env(url)
    print(f"flash sale: {args.codes} codes, {args.buyers} buyers, store {args.store}, "
          f"{'HTTP' if args.http else 'engine in-process'}"
          f"{', distributor chain' if args.distributor else ''}")
    if args.http:
        rate, checks = http_run(env, args.codes, args.buyers, args.workers)
    else:
        rate, checks = engine_run(env, args.codes, args.buyers, args.distributor)
    if args.engine_only:
        print(RESULT + json.dumps({"rate": rate, "checks": checks}))
        sys.exit(0)
    if url and not args.no_baseline:
        base = baseline_run(fresh_postgres_database("quanyi_bench_baseline"), args.codes,
                            args.buyers)
        print(f"ratio engine/baseline: {rate / base:.2f}")
    finish(checks)


def finish(checks: dict[str, int]) -> None:
    """Exit 1 if any of the failures that must never happen happened."""
    for name, value in checks.items():
        print(f"  {name}: {value}")
    bad = (checks["oversold"] + checks["codes delivered twice"]
           + checks["paid but undelivered"] + max(0, checks.get(
               "delivered without a sale posted", 0)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
