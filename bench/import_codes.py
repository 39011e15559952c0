"""Import 100,000 codes through the HTTP API (JSON, then CSV) into a running `quanyi serve`;
report codes/s and the server's peak memory. The baseline beside it: the same code strings
inserted with plain executemany INSERTs into a bare table on the same database (what a CRUD
shop pays, with no de-duplication, sealing, events or projections).

    .venv/bin/python bench/import_codes.py --store both --codes 100000
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (SERVERS, bench_env, fresh_postgres_database,  # noqa: E402
                          peak_rss_mib, serve_subprocess)


def import_over_http(base: str, key: str, codes: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
        for kind in ("json", "csv"):
            sku = f"IMP-{uuid.uuid4().hex[:6]}"
            client.post("/v1/products", json={"sku": sku, "name": "Import", "delivery": "card",
                                              "price": 990}).raise_for_status()
            tag = uuid.uuid4().hex[:8]
            strings = [f"{tag}-{i:08d}" for i in range(codes)]
            started = time.perf_counter()
            if kind == "json":
                answer = client.post(f"/v1/products/{sku}/batches", json={
                    "supplier_id": "bench", "unit_cost": 500,
                    "codes": [{"code": c, "pin": "123456"} for c in strings]})
            else:
                body = "code,pin\n" + "".join(f"{c},123456\n" for c in strings)
                answer = client.post(f"/v1/products/{sku}/batches",
                                     params={"supplier_id": "bench", "unit_cost": 500},
                                     content=body.encode(),
                                     headers={"Content-Type": "text/csv"})
            elapsed = time.perf_counter() - started
            answer.raise_for_status()
            imported = answer.json()["imported"]
            print(f"  {kind}: {imported:,} codes in {elapsed:.1f} s = "
                  f"{imported / elapsed:,.0f} codes/s (target 5,000); "
                  f"server peak RSS {peak_rss_mib(SERVERS[base]):,.0f} MiB")


def baseline(url: str | None, codes: int) -> None:
    rows = [(f"base-{i:08d}", "123456") for i in range(codes)]
    started = time.perf_counter()
    if url:
        with psycopg.connect(url) as conn, conn.cursor() as cursor:
            cursor.execute("CREATE TABLE bl_import (code TEXT PRIMARY KEY, pin TEXT)")
            cursor.executemany("INSERT INTO bl_import (code, pin) VALUES (%s, %s)", rows)
    else:
        conn = sqlite3.connect(Path(tempfile.mkdtemp()) / "baseline.sqlite")
        with conn:
            conn.execute("CREATE TABLE bl_import (code TEXT PRIMARY KEY, pin TEXT)")
            conn.executemany("INSERT INTO bl_import (code, pin) VALUES (?, ?)", rows)
        conn.close()
    elapsed = time.perf_counter() - started
    print(f"  baseline (plain INSERT, no checks): {codes / elapsed:,.0f} codes/s")


def run(store: str, codes: int) -> None:
    url = fresh_postgres_database("quanyi_bench_import") if store == "postgres" else None
    print(f"{store}:")
    with serve_subprocess(bench_env(url)) as (base, key):
        import_over_http(base, key, codes)
    baseline(url, codes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--codes", type=int, default=100_000)
    args = parser.parse_args()
    for store in (("sqlite", "postgres") if args.store == "both" else (args.store,)):
        run(store, args.codes)


if __name__ == "__main__":
    main()
