"""The randomized fault campaign, long: two `quanyi serve` processes on a private PostgreSQL
cluster (or one on SQLite), 16 clients, kill -9 of a server three times, two database
restarts, cut-short requests retried with their keys, duplicate sends; then every invariant
(tests/campaign/checks.py, tests/campaign/state.py). Prints the figures; exit 1 when any
invariant was violated. Seeded: the same seed draws the same commands and faults (their
interleaving is the machine's).

    .venv/bin/python bench/fault_campaign.py --seed 1 --ops 10000
    .venv/bin/python bench/fault_campaign.py --seed 1 --ops 2000 --store sqlite
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.campaign import CampaignConfig, run_campaign  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ops", type=int, default=10_000, help="commands to send")
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=3600,
                        help="stop sending after this, whatever the count")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--postgres-restarts", type=int, default=2)
    parser.add_argument("--history", type=Path, help="write every command and answer here")
    args = parser.parse_args()
    report = run_campaign(CampaignConfig(
        seed=args.seed, ops=args.ops, store=args.store, clients=args.clients,
        max_seconds=args.max_seconds, kills=args.kills,
        postgres_restarts=args.postgres_restarts, history_file=args.history))
    print(report.text())
    sys.exit(1 if report.violation_count else 0)


if __name__ == "__main__":
    main()
