"""A campaign's figures: commands, requests, retries, faults, answers, violations."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.campaign.client import Exchange

EXAMPLES = 3


@dataclass
class CampaignReport:
    seed: int
    store: str
    clients: int
    commands: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    retries: int = 0
    cut_short: int = 0
    duplicates: int = 0
    unanswered: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    planned_faults: int = 0
    fault_errors: list[str] = field(default_factory=list)
    violations: dict[str, list[str]] = field(default_factory=dict)
    events: Any = None
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds

    def take_history(self, history: list[Exchange]) -> None:
        for exchange in history:
            self.commands[exchange.kind] += 1
            self.requests += len(exchange.attempts)
            self.retries += len(exchange.attempts) - len({a.duplicate for a in exchange.attempts})
            self.cut_short += sum(a.cut_short for a in exchange.attempts)
            self.duplicates += any(a.duplicate for a in exchange.attempts)
            self.unanswered += exchange.unknown
            for attempt in exchange.attempts:
                self.answers[_answer(attempt.status, attempt.code)] += 1

    @property
    def violation_count(self) -> int:
        return sum(len(v) for v in self.violations.values())

    def text(self) -> str:
        lines = [
            f"fault campaign: seed {self.seed}, {self.store}, "
            f"{2 if self.store == 'postgres' else 1} server process(es), {self.clients} "
            f"clients, {self.seconds:.0f} s ("
            + ", ".join(f"{name} {s:.0f} s" for name, s in self.phases.items()) + ")",
            f"commands: {sum(self.commands.values())} ({_counts(self.commands)})",
            f"requests: {self.requests}; retries {self.retries}; cut short {self.cut_short}; "
            f"sent twice at once {self.duplicates}; never answered {self.unanswered}",
            f"faults: {_counts(self.faults) or 'none'} ({self.planned_faults} planned)",
            f"answers: {_counts(self.answers)}",
            f"violations: {self.violation_count}",
        ]
        for kind, found in sorted(self.violations.items()):
            lines.append(f"  {kind}: {len(found)}")
            lines += [f"    e.g. {example}" for example in found[:EXAMPLES]]
        return "\n".join(lines)


def _answer(status: int | None, code: str | None) -> str:
    if status is None:
        return "no answer"
    return f"{status} {code}" if code else str(status)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counter.most_common())


def history_lines(history: list[Exchange]) -> list[dict[str, Any]]:
    """Every command with its attempts and answers, for a file; a code string sent to be
    redeemed is left out (it is a secret)."""
    lines = []
    for exchange in history:
        body = dict(exchange.body or {})
        if "code" in body:
            body["code"] = "(secret)"
        lines.append({"kind": exchange.kind, "path": exchange.path, "key": exchange.key,
                      "order_id": exchange.order_id, "body": body,
                      "attempts": [vars(a) for a in exchange.attempts],
                      "finals": [{**vars(f), "body": _public(f.body)} for f in exchange.finals]})
    return lines


def _public(body: Any) -> Any:
    """An answer without the code strings and PINs a reveal carries."""
    codes = body.get("codes") if isinstance(body, dict) else None
    if isinstance(codes, list) and any(isinstance(c, dict) and "code" in c for c in codes):
        return {**body, "codes": [{"code_id": c.get("code_id")} for c in codes]}
    return body
