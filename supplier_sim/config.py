"""How the simulated supplier behaves, and the deterministic choice of behaviour per top-up.

Each new reference draws one number from a generator seeded with ``seed`` and the reference,
so a run's outcomes depend on the seed and the references alone, never on arrival order or
timing. The bands, in this order, share the unit interval:

    error_rate    answer 503 without taking the request (a query then finds nothing)
    timeout_rate  take it (and credit the account, unless ``timeout_credits`` is false),
                  then answer only after ``hang_seconds``: longer than any client waits
    failure_rate  refuse it for good: status ``failed``
    pending_rate  answer ``pending``; decide ``callback_delay_ms`` later (failed with
                  ``pending_failure_rate``) and POST the signed callback
    the rest      credit the account at once: status ``succeeded``

``behaviours`` forces one band for a recharge account ("error", "timeout", "fail",
"pending", "pending-fail", "succeed"), whatever the draw: for tests that need one mode.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

BEHAVIOURS = ("error", "timeout", "fail", "pending", "pending-fail", "succeed")


@dataclass(frozen=True)
class SimConfig:
    api_key: str = "sim-api-key"
    callback_secret: str = "sim-callback-secret"
    callback_url: str | None = None  # where callbacks go; none: no callback is sent
    seed: int = 0
    latency_ms: int = 0  # every answer waits this long
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_credits: bool = True
    hang_seconds: float = 30.0
    failure_rate: float = 0.0
    pending_rate: float = 0.0
    pending_failure_rate: float = 0.0
    callback_delay_ms: int = 200
    callback_always: bool = False  # also call back on an outcome answered at once
    duplicate_callbacks: int = 0  # extra copies of each final callback
    out_of_order: bool = False  # send the final callback, then a stale "pending" one
    callback_retries: int = 5  # a callback not answered 2xx is sent again, this often
    behaviours: dict[str, str] = field(default_factory=dict)

    def changed(self, changes: dict[str, Any]) -> "SimConfig":
        """A copy with the given fields changed; ValueError naming an unknown or bad one."""
        known = {f.name: f for f in fields(self)}
        for name in changes:
            if name not in known:
                raise ValueError(f"no setting {name}")
        updated = replace(self, **changes)
        updated.check()
        return updated

    def check(self) -> None:
        rates = (self.error_rate, self.timeout_rate, self.failure_rate, self.pending_rate)
        if any(not 0 <= r <= 1 for r in (*rates, self.pending_failure_rate)) or sum(rates) > 1:
            raise ValueError("rates are 0-1, and the four bands sum to at most 1")
        if self.latency_ms < 0 or self.callback_delay_ms < 0 or self.hang_seconds < 0:
            raise ValueError("delays are never negative")
        if any(b not in BEHAVIOURS for b in self.behaviours.values()):
            raise ValueError(f"a behaviour is one of {', '.join(BEHAVIOURS)}")

    def public(self) -> dict[str, Any]:
        """The settings without the two secrets."""
        shown = asdict(self)
        shown.pop("api_key")
        shown.pop("callback_secret")
        return shown

    def behaviour(self, reference: str, account: str) -> str:
        """The band this new reference falls in (see the module's docstring)."""
        forced = self.behaviours.get(account)
        if forced is not None:
            return forced
        draw = random.Random(f"{self.seed}:{reference}")
        point, fails_later = draw.random(), draw.random() < self.pending_failure_rate
        for name, rate in (("error", self.error_rate), ("timeout", self.timeout_rate),
                           ("fail", self.failure_rate)):
            if point < rate:
                return name
            point -= rate
        if point < self.pending_rate:
            return "pending-fail" if fails_later else "pending"
        return "succeed"
