"""Rebuild every projection from an event log of at least 200,000 events, on each store,
and report events/s. The baseline printed beside it is the same log only read and decoded
(no projection work), so the share the projections cost is visible. The rebuild builds aside
and swaps in, as `quanyi replay rebuild` does. Then the audit log's Merkle tree is built
from nothing over the same log (as after an import, or on first start over an older store),
and the rebuild's rate with it counted in is set against the rebuild's alone (target: at
least 0.8 of it). Then `replay.verify` is timed on the same log (it rebuilds aside and
compares).

    .venv/bin/python bench/replay.py --store both --events 200000
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_env, fresh_postgres_database, peak_rss_mib  # noqa: E402

SOLD_SHARE = 0.03  # orders placed and paid: 5 events each (order, reserve, pay, sell, payment)
REDEEMED_SHARE = 0.5  # of the sold codes: 2 events each (code redeemed, redemption)
IMPORT_BATCH = 100_000


def build_log(rt, events: int) -> None:
    """Import codes in big batches, then sell a share through orders and redeem half of it."""
    from engine.codes.imports import CodeRow
    from engine.kernel.ids import code_id

    sku = f"REPLAY-{uuid.uuid4().hex[:6]}"
    rt.engine.catalog.define_product(sku=sku, name="Replay", delivery="card", price=990,
                                     actor="bench")
    orders = int(events * SOLD_SHARE)
    redeemed = int(orders * REDEEMED_SHARE)
    codes = events - 5 * orders - 2 * redeemed
    tag = uuid.uuid4().hex[:8]
    strings = [f"{tag}-{i:08d}" for i in range(codes)]
    for start in range(0, codes, IMPORT_BATCH):
        rows = (CodeRow(s, "1234") for s in strings[start:start + IMPORT_BATCH])
        rt.engine.imports.import_batch(sku=sku, rows=rows, supplier_id="bench", unit_cost=500,
                                       expires_at=None, actor="bench")
    rt.read_your_writes(300)

    def buy(n: int) -> list:
        order = rt.engine.orders.place(buyer_id=f"b{n}", items=[{"sku": sku, "quantity": 1}],
                                       actor="bench")
        rt.engine.orders.pay(order_id=order.id, payment_ref=f"p{order.id}",
                             amount=order.amount, currency=order.currency, provider=None,
                             actor="bench")
        return list(order.code_ids)

    with ThreadPoolExecutor(max_workers=32) as pool:
        sold = {i for ids in pool.map(buy, range(orders)) for i in ids}
    by_id = {code_id(rt.engine.vault.fingerprint(s)): s for s in strings}
    to_redeem = [by_id[i] for i in sorted(sold, key=str)[:redeemed]]

    def redeem(code: str) -> None:
        rt.engine.redemptions.redeem(code=code, merchant_id="m-bench", terminal_id="pos-1",
                                     location=None, actor="bench")

    with ThreadPoolExecutor(max_workers=32) as pool:
        list(pool.map(redeem, to_redeem))


def read_only_rate(rt) -> tuple[float, Counter]:
    """Events/s of reading and decoding the whole log, nothing else (the baseline); and the
    log's events by type."""
    started, position, count, kinds = time.perf_counter(), 0, 0, Counter()
    while notes := rt.store.notifications(position, 2000):
        for note in notes:
            rt.store.mapper.to_domain_event(note)
            kinds[note.topic] += 1
        count += len(notes)
        position = notes[-1].id
    return count / (time.perf_counter() - started), kinds


def audit_build_seconds(rt) -> tuple[float, int]:
    """Seconds to build the audit tree over the whole log from nothing, and its size."""
    from replay.audit_log import AuditLog

    with rt.audit.db.transaction() as cursor:
        for table in ("audit_tiles", "audit_state", "audit_heads"):
            cursor.execute(f"DROP TABLE {table}")
    started = time.perf_counter()
    audit = AuditLog(rt.store, rt.audit.db, rt.settings.audit_key)
    size = audit.catch_up()
    audit.sign_head()
    return time.perf_counter() - started, size


def run(store: str, events: int) -> None:
    import os

    from engine.settings import Settings
    from replay.rebuild import rebuild
    from replay.verify import verify
    from runtime import Runtime

    url = fresh_postgres_database("quanyi_bench_replay") if store == "postgres" else None
    settings = Settings.from_env(bench_env(url))
    rt = Runtime.open(settings)
    rt.start()
    try:
        started = time.perf_counter()
        build_log(rt, events)
        rt.read_your_writes(300)
        total = rt.store.last_position()
        print(f"{store}: built a log of {total:,} events in {time.perf_counter() - started:.1f} s")
        rt.runner.stop()
        rt.audit_follower.stop()
        baseline, kinds = read_only_rate(rt)
        print(f"{store}: events by type: " + ", ".join(
            f"{topic.removeprefix('quanyi:')} {n:,}" for topic, n in kinds.most_common()))
        started = time.perf_counter()
        applied = rebuild(settings)
        elapsed = time.perf_counter() - started
        rate = applied / elapsed
        print(f"{store}: rebuilt projections from {applied:,} events in {elapsed:.1f} s = "
              f"{rate:,.0f} events/s (target 10,000: {'met' if rate >= 10_000 else 'NOT met'})")
        print(f"{store}: baseline, reading and decoding the log only: {baseline:,.0f} events/s "
              f"(projections take {100 * (1 - rate / baseline):.0f} % of the rebuild time)")
        audit_seconds, size = audit_build_seconds(rt)
        with_audit = applied / (elapsed + audit_seconds)
        print(f"{store}: built the audit tree over {size:,} events in {audit_seconds:.1f} s = "
              f"{size / audit_seconds:,.0f} events/s")
        print(f"{store}: rebuild with the audit tree: {with_audit:,.0f} events/s = "
              f"{with_audit / rate:.2f} of the rebuild alone (target 0.8: "
              f"{'met' if with_audit >= 0.8 * rate else 'NOT met'})")
        rss = peak_rss_mib(os.getpid())
        started = time.perf_counter()
        verdict = verify(settings)
        print(f"{store}: verify (rebuild aside + compare) in {time.perf_counter() - started:.1f}"
              f" s, {verdict.outcome.value}, {len(verdict.differences)} differences; "
              f"peak RSS before {rss:,.0f} MiB, after "
              f"{peak_rss_mib(os.getpid()):,.0f} MiB")
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
