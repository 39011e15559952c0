"""Rebuild every projection from an event log of at least 200,000 events, on each store,
and report events/s. The baseline printed beside it is the same log only read and decoded
(no projection work), so the share the projections cost is visible.

    .venv/bin/python bench/replay.py --store both --events 200000
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_env, fresh_postgres_database  # noqa: E402

SOLD_SHARE = 0.03  # orders placed and paid: reserved, sold, order and payment events


def build_log(rt, events: int) -> None:
    from engine.imports import CodeRow

    sku = f"REPLAY-{uuid.uuid4().hex[:6]}"
    rt.engine.catalog.define_product(sku=sku, name="Replay", delivery="card", price=990,
                                     actor="bench")
    orders = int(events * SOLD_SHARE)
    codes = events - 5 * orders
    tag = uuid.uuid4().hex[:8]
    for start in range(0, codes, 100_000):
        rows = (CodeRow(f"{tag}-{i:08d}", "1234") for i in range(start, min(codes, start + 100_000)))
        rt.engine.imports.import_batch(sku=sku, rows=rows, supplier_id="bench", unit_cost=500,
                                       expires_at=None, actor="bench")
    rt.read_your_writes(300)

    def buy(n: int) -> None:
        order = rt.engine.orders.place(buyer_id=f"b{n}", items=[{"sku": sku, "quantity": 1}],
                                       actor="bench")
        rt.engine.orders.pay(order_id=order.id, payment_ref=f"p{order.id}",
                             amount=order.amount, currency=order.currency, provider=None,
                             actor="bench")

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(buy, range(orders)))


def read_only_rate(rt) -> float:
    """Events/s of reading and decoding the whole log, nothing else (the baseline)."""
    started, position, count = time.perf_counter(), 0, 0
    while notes := rt.store.notifications(position, 2000):
        for note in notes:
            rt.store.mapper.to_domain_event(note)
        count += len(notes)
        position = notes[-1].id
    return count / (time.perf_counter() - started)


def run(store: str, events: int) -> None:
    from api.runtime import Runtime
    from engine.settings import Settings
    from replay.rebuild import rebuild

    url = fresh_postgres_database("quanyi_bench_replay") if store == "postgres" else None
    rt = Runtime.open(Settings.from_env(bench_env(url)))
    rt.start()
    try:
        started = time.perf_counter()
        build_log(rt, events)
        total = rt.store.last_position()
        print(f"{store}: built a log of {total:,} events in {time.perf_counter() - started:.1f} s")
        rt.runner.stop()
        baseline = read_only_rate(rt)
        started = time.perf_counter()
        applied = rebuild(rt)
        elapsed = time.perf_counter() - started
        print(f"{store}: rebuilt projections from {applied:,} events in {elapsed:.1f} s = "
              f"{applied / elapsed:,.0f} events/s (target 10,000)")
        print(f"{store}: baseline, reading and decoding the log only: {baseline:,.0f} events/s")
    finally:
        rt.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    for store in (("sqlite", "postgres") if args.store == "both" else (args.store,)):
        run(store, args.events)


if __name__ == "__main__":
    main()
