"""The faults, injected while the clients run: each at a seeded point of the run's progress
(a share of its commands sent), in order."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from tests.campaign.postgres import PrivatePostgres
from tests.campaign.servers import ServerProcess


@dataclass(frozen=True)
class Fault:
    at: float  # share of the run's commands sent, 0..1
    kind: str  # "kill -9" | "postgres restart"
    server: int = 0


def plan_faults(rng: random.Random, *, kills: int, servers: int,
                postgres_restarts: int) -> list[Fault]:
    """Kills spread over the run, alternating servers; database restarts between them."""
    faults = [Fault(rng.uniform((n + 0.2) / (kills + 1), (n + 0.8) / (kills + 1)), "kill -9",
                    n % servers) for n in range(kills)]
    faults += [Fault(rng.uniform(0.15, 0.85), "postgres restart")
               for _ in range(postgres_restarts)]
    return sorted(faults, key=lambda f: f.at)


class FaultThread(threading.Thread):
    """Waits for each fault's moment and injects it; a killed server is started again after
    a short while (its port unchanged), the database after a short outage."""

    def __init__(self, plan: list[Fault], progress: Callable[[], float],
                 servers: list[ServerProcess], postgres: PrivatePostgres | None,
                 rng: random.Random) -> None:
        super().__init__(name="campaign-faults", daemon=True)
        self.plan = plan
        self.progress = progress
        self.servers = servers
        self.postgres = postgres
        self.rng = rng
        self.done: Counter[str] = Counter()
        self.errors: list[str] = []
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=300)

    def run(self) -> None:
        for fault in self.plan:
            while self.progress() < fault.at:
                if self._halt.wait(0.05):
                    return
            try:
                self._inject(fault)
            except Exception as exc:  # a fault that failed to inject is reported, not hidden
                self.errors.append(f"{fault.kind}: {type(exc).__name__}: {exc}")

    def _inject(self, fault: Fault) -> None:
        if fault.kind == "kill -9":
            server = self.servers[fault.server]
            server.kill()
            self.done[fault.kind] += 1
            time.sleep(self.rng.uniform(0.3, 2.0))
            server.start()
        else:
            if self.postgres is None:
                raise RuntimeError("a database restart needs the private cluster")
            self.postgres.stop("fast")
            self.done[fault.kind] += 1
            time.sleep(self.rng.uniform(0.5, 2.0))
            self.postgres.start()
