"""One campaign from start to end: a store (a private PostgreSQL cluster, or SQLite), keys,
server processes, a catalog, the clients and the faults, then the checks; everything it
started is stopped and removed afterwards."""

from __future__ import annotations

import random
import shutil
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from bench.common import bench_env, free_port
from tests.campaign.checks import Violations, check_history
from tests.campaign.client import Exchange, Sender
from tests.campaign.faults import FaultThread, plan_faults
from tests.campaign.feed import read_feed
from tests.campaign.postgres import PrivatePostgres
from tests.campaign.report import CampaignReport, history_lines
from tests.campaign.servers import Keys, ServerProcess, admin_key, issue_keys
from tests.campaign.state import check_cli, check_state
from tests.campaign.workload import DISTRIBUTORS, Client

SKUS = ("CMP-A", "CMP-B", "CMP-C")
PRICES = (1000, 1500, 2500)
MERCHANTS = 4


@dataclass(frozen=True)
class CampaignConfig:
    seed: int
    ops: int = 1000  # commands the clients send, at most
    store: str = "postgres"  # "postgres": two servers on one private cluster; "sqlite": one
    clients: int = 16
    max_seconds: float = 600  # the clients stop sending after this, whatever the count
    kills: int = 3
    postgres_restarts: int = 2
    cut_rate: float = 0.15  # first attempts cut short by a 5-40 ms client timeout
    duplicate_rate: float = 0.05  # commands sent twice at once, to both servers
    give_up_seconds: float = 180  # a client stops retrying one command after this
    codes_per_sku: int | None = None  # default: enough for every order the run can place
    verify: bool = True  # run `quanyi replay verify` and `quanyi audit verify` afterwards
    history_file: Path | None = None  # every command, its attempts and answers, as JSON Lines


@dataclass
class _World:
    env: dict[str, str]
    servers: list[ServerProcess]
    keys: Keys
    postgres: PrivatePostgres | None = None
    history: list[Exchange] = field(default_factory=list)


def run_campaign(config: CampaignConfig) -> CampaignReport:
    started = time.monotonic()
    report = CampaignReport(config.seed, config.store, config.clients)
    with ExitStack() as cleanup:
        world = _open_world(config, cleanup)
        imported = _catalog(world, config)
        report.phases["setup"] = time.monotonic() - started
        _drive(world, config, report, started)
        report.phases["clients"] = time.monotonic() - started - report.phases["setup"]
        try:
            _check(world, imported, config, report)
        finally:
            if config.history_file:
                config.history_file.write_bytes(b"\n".join(
                    orjson.dumps(line) for line in history_lines(world.history)))
        report.phases["checks"] = time.monotonic() - started - sum(report.phases.values())
    report.seconds = time.monotonic() - started
    return report


def _open_world(config: CampaignConfig, cleanup: ExitStack) -> _World:
    postgres = None
    if config.store == "postgres":
        postgres = PrivatePostgres(free_port()).start()
        cleanup.callback(postgres.remove)
    elif config.store != "sqlite":
        raise ValueError(f"store is postgres or sqlite, not {config.store!r}")
    env = bench_env(postgres.url if postgres else None)
    env["QUANYI_RESERVATION_TTL_SECONDS"] = "3600"
    # A head every few seconds: a short run's servers (killed and started again) never live
    # the default minute, and `audit verify` refuses a log no signed head covers.
    env["QUANYI_AUDIT_HEAD_EVERY_SECONDS"] = "3"
    data_dir = Path(env["QUANYI_DATA_DIR"])
    cleanup.callback(shutil.rmtree, data_dir, True)
    admin = admin_key(env)
    servers = [ServerProcess(env, data_dir / f"server-{n}.log")
               for n in range(2 if postgres else 1)]
    for server in servers:
        server.spawn()
        cleanup.callback(server.stop)
    for server in servers:
        server.wait()
    return _World(env, servers, issue_keys(servers[0].base, admin, MERCHANTS), postgres)


def _catalog(world: _World, config: CampaignConfig) -> dict[str, int]:
    """Distributors (d2 under d1), products with commission, codes; how many per SKU."""
    per_sku = config.codes_per_sku or max(50, config.ops // 2)
    headers = {"Authorization": f"Bearer {world.keys.admin}"}
    with httpx.Client(base_url=world.servers[0].base, headers=headers, timeout=120) as admin:
        for n, distributor in enumerate(DISTRIBUTORS):
            admin.post("/v1/distributors", json={
                "distributor_id": distributor, "name": distributor,
                "parent_id": DISTRIBUTORS[n - 1] if n else None}).raise_for_status()
        for sku, price in zip(SKUS, PRICES):
            admin.post("/v1/products", json={"sku": sku, "name": sku, "delivery": "card",
                                             "price": price, "commission_rates_bp": [1000, 500]}
                       ).raise_for_status()
            for start in range(0, per_sku, 2000):
                codes = [{"code": f"{sku}-{config.seed}-{n:07d}", "pin": f"{n % 10000:04d}"}
                         for n in range(start, min(per_sku, start + 2000))]
                admin.post(f"/v1/products/{sku}/batches", json={
                    "supplier_id": "sup-1", "unit_cost": price // 2, "codes": codes}
                           ).raise_for_status()
    return {sku: per_sku for sku in SKUS}


def _drive(world: _World, config: CampaignConfig, report: CampaignReport,
           started: float) -> None:
    """The clients until `ops` commands are sent (or time is up), the faults meanwhile."""
    rng = random.Random(config.seed)
    sent = [0]
    sent_lock, history_lock = threading.Lock(), threading.Lock()
    bases = [s.base for s in world.servers]
    senders = [Sender(bases, lambda: time.monotonic() - started, random.Random(
        f"{config.seed}:sender:{n}"), cut_rate=config.cut_rate,
        duplicate_rate=config.duplicate_rate, give_up_seconds=config.give_up_seconds)
        for n in range(config.clients)]
    clients = [Client(n, config.seed, senders[n], world.keys, list(SKUS), world.history,
                      history_lock) for n in range(config.clients)]
    stop_at = time.monotonic() + config.max_seconds
    plan = plan_faults(rng, kills=config.kills, servers=len(world.servers),
                       postgres_restarts=config.postgres_restarts if world.postgres else 0)
    began = time.monotonic()

    def progress() -> float:  # by count or by time, whichever is further: every fault lands
        return max(sent[0] / config.ops, (time.monotonic() - began) / config.max_seconds)

    faults = FaultThread(plan, progress, world.servers, world.postgres, rng)

    def client_loop(client: Client) -> None:
        while time.monotonic() < stop_at:
            with sent_lock:
                if sent[0] >= config.ops:
                    return
            count = client.step()
            with sent_lock:
                sent[0] += count

    threads = [threading.Thread(target=client_loop, args=(c,), name=f"client-{c.number}")
               for c in clients]
    faults.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    faults.stop()
    for sender in senders:
        sender.close()
    report.faults.update(faults.done)
    report.fault_errors = faults.errors
    report.planned_faults = len(plan)
    report.take_history(world.history)


def _check(world: _World, imported: dict[str, int], config: CampaignConfig,
           report: CampaignReport) -> None:
    reader = Sender([s.base for s in world.servers], time.monotonic, random.Random(0),
                    cut_rate=0, duplicate_rate=0, give_up_seconds=120)
    try:
        found = Violations()
        _caught_up([s.base for s in world.servers], found)
        facts = read_feed(lambda path: reader.get(path, world.keys.admin))
        for kind, examples in check_history(world.history, facts).items():
            found[kind] += examples
        check_state(lambda path: reader.get(path, world.keys.admin), facts, imported, found)
        report.events = facts
    finally:
        reader.close()
    for server in world.servers:
        server.stop()
    if config.verify:
        check_cli(world.env, found)
    for problem in report.fault_errors:
        found.add("fault_not_injected", None, problem)
    report.violations = found


def _caught_up(bases: list[str], found: Violations, timeout: float = 600) -> None:
    """Wait until every server's projections and audit tree have followed the whole log;
    one that does not within `timeout` is a violation, named with its /healthz answer."""
    deadline = time.monotonic() + timeout
    for base in bases:
        while (health := _health(base)) is None or max(
                health.get("projection_lag", 1), health.get("audit_lag", 1)) > 0:
            if time.monotonic() > deadline:
                found.add("projections_behind", None, f"{base} after {timeout:.0f} s: {health}")
                break
            time.sleep(0.5)


def _health(base: str) -> dict | None:
    try:
        return httpx.get(f"{base}/healthz", timeout=10).json()
    except (httpx.HTTPError, ValueError):
        return None


__all__ = ["CampaignConfig", "CampaignReport", "Violations", "run_campaign"]
