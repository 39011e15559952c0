"""Export and import a log of 500,000 events on each store, and report events/s both ways
against reading the log only (a plain pass over the notification log, nothing decoded), all
in the same run:

    build the log on SQLite ──export──▶ file A ──import──▶ empty PostgreSQL
    PostgreSQL ──export──▶ file B ──import──▶ empty SQLite

"import" is the events loaded and their chain checked (what `quanyi import-events` commits);
the projections rebuilt and the audit tree extended afterwards are timed beside it. The two
files' event lines must be identical, byte for byte.

    .venv/bin/python bench/export_import.py --events 500000
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bench_env, fresh_postgres_database  # noqa: E402
from bench.replay import build_log  # noqa: E402


@dataclasses.dataclass
class Figures:
    store: str
    events: int = 0
    read: float = 0.0  # events/s of the plain pass
    export: float = 0.0
    export_rss: float = 0.0  # MiB the export's peak grew the process by
    imported: float = 0.0  # events/s of import into this store
    import_rss: float = 0.0
    rebuild_s: float = 0.0  # then: projections rebuilt
    audit_s: float = 0.0  # then: audit tree extended


def timed(step: Callable[[], Any]) -> tuple[Any, float, float]:
    """The step's result, seconds, and how far it raised the process's peak RSS (MiB) above
    its RSS at the start (memory a step freed and Python kept is reused first)."""
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to now
    before = _rss("VmRSS")
    started = time.perf_counter()
    result = step()
    return result, time.perf_counter() - started, _rss("VmHWM") - before


def _rss(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def read_only(rt) -> float:
    """Events/s of one plain pass over the notification log (the baseline)."""
    from replay.export import pages

    count, started = 0, time.perf_counter()
    for page in pages(rt.store, 10**12):
        count += len(page)
    return count / (time.perf_counter() - started)


def export(rt, out: Path, figures: Figures) -> None:
    from replay.export import export_log

    rt.audit.catch_up()  # as the follower keeps it in service; the export signs at once
    before = read_only(rt)
    done, seconds, grown = timed(lambda: export_log(rt.store, rt.audit, out,
                                                    secret_key=rt.settings.secret_key))
    figures.events, figures.export, figures.export_rss = done.events, done.events / seconds, grown
    figures.read = max(before, read_only(rt))  # the faster pass: caches warm either way
    print(f"{figures.store}: exported {done.events:,} events in {seconds:.1f} s = "
          f"{figures.export:,.0f} events/s ({out.stat().st_size / 2**20:,.0f} MiB); "
          f"reading the log only: {figures.read:,.0f} events/s", flush=True)


def import_into(rt, path: Path, figures: Figures) -> None:
    from replay.import_events import import_events
    from replay.rebuild import rebuild

    done, seconds, grown = timed(lambda: import_events(rt.settings, rt.store, path,
                                                       own_key=rt.audit.public_key))
    figures.imported, figures.import_rss = done.events / seconds, grown
    _, figures.rebuild_s, _ = timed(lambda: rebuild(rt.settings))
    _, figures.audit_s, _ = timed(rt.audit.catch_up)
    print(f"{figures.store}: imported {done.events:,} events in {seconds:.1f} s = "
          f"{figures.imported:,.0f} events/s; then projections rebuilt in "
          f"{figures.rebuild_s:.1f} s, audit tree in {figures.audit_s:.1f} s", flush=True)


def event_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for line in file:
            if line.startswith(b'{"position"'):
                digest.update(line)
    return digest.hexdigest()


def runtime_for(env: dict[str, str]):
    from engine.settings import Settings
    from runtime import Runtime

    return Runtime.open(Settings.from_env(env))


def build(events: int) -> None:
    """Build the source log where the environment's QUANYI_* settings point (a child process,
    so that what building takes stays out of the measuring process's memory)."""
    source = runtime_for(dict(os.environ))
    source.start()
    started = time.perf_counter()
    build_log(source, events)
    source.read_your_writes(600)
    built = source.store.last_position()
    source.close()
    print(f"SQLite: built a log of {built:,} events in {time.perf_counter() - started:.0f} s",
          flush=True)


def run(events: int) -> list[Figures]:
    sqlite, postgres = Figures("SQLite"), Figures("PostgreSQL")
    work = Path(tempfile.mkdtemp(prefix="quanyi-bench-export-"))
    source_env = bench_env(None)
    keys = {k: source_env[k] for k in ("QUANYI_SECRET_KEY",)}
    subprocess.run([sys.executable, __file__, "--build", str(events)], check=True,
                   env={**os.environ, **source_env})
    source = runtime_for(source_env)
    # the targets sign with the source's audit key, as docs/export.md says to move a store
    keys["QUANYI_AUDIT_KEY"] = base64.b64encode(source.settings.audit_key).decode()
    export(source, work / "a.jsonl", sqlite)
    source.close()
    target = runtime_for({**bench_env(fresh_postgres_database("quanyi_bench_export")), **keys})
    import_into(target, work / "a.jsonl", postgres)
    export(target, work / "b.jsonl", postgres)
    target.close()
    again = runtime_for({**bench_env(None), **keys})
    import_into(again, work / "b.jsonl", sqlite)
    again.close()
    same = event_digest(work / "a.jsonl") == event_digest(work / "b.jsonl")
    print(f"the two files' event lines are {'identical' if same else 'DIFFERENT'}")
    for path in work.iterdir():
        path.unlink()
    work.rmdir()
    return [sqlite, postgres]


def report(rows: list[Figures]) -> None:
    print("\n| store | events | read the log only | export | import (events + chain check) "
          "| then projections, audit tree | export / import peak RSS growth |")
    print("|---|---|---|---|---|---|---|")
    for f in rows:
        print(f"| {f.store} | {f.events:,} | {f.read:,.0f} events/s | **{f.export:,.0f} "
              f"events/s** ({f.export / f.read:.2f} of read) | **{f.imported:,.0f} events/s** "
              f"({f.imported / f.read:.2f} of read) | {f.rebuild_s:.1f} s, {f.audit_s:.1f} s "
              f"| {f.export_rss:,.0f} / {f.import_rss:,.0f} MiB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--build", type=int, help=argparse.SUPPRESS)  # the child's work
    args = parser.parse_args()
    if args.build:
        build(args.build)
        return
    print(f"{os.cpu_count()} CPUs seen by this process; RSS at start {_rss('VmRSS'):,.0f} MiB",
          flush=True)
    report(run(args.events))


if __name__ == "__main__":
    main()
