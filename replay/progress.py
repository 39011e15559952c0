"""Progress of a rebuild or verify for the operator: a rich progress bar on a terminal,
plain lines (one per tenth of the way) otherwise, both on stderr.

Progress is counted in log positions (the last event applied, of the position to reach),
which is the number of events applied but for the rare gaps a clashing write leaves.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from projections.runner import Progress

STEPS = 10  # plain lines: one per tenth of the way


@contextlib.contextmanager
def progress_reporter(label: str) -> Iterator[Progress]:
    """A ``(position, target)`` callback that shows how far ``label`` has come."""
    if sys.stderr.isatty():
        with _bar(label) as report:
            yield report
    else:
        yield _lines(label)


@contextlib.contextmanager
def _bar(label: str) -> Iterator[Progress]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as Bar

    with Bar(TextColumn(f"{label}: events"), BarColumn(), MofNCompleteColumn(),
             TimeRemainingColumn(), console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(label, total=None)

        def report(position: int, target: int) -> None:
            bar.update(task, completed=position, total=target)

        yield report


def _lines(label: str) -> Progress:
    shown = -1

    def report(position: int, target: int) -> None:
        nonlocal shown
        step = STEPS if target <= 0 else min(STEPS, position * STEPS // target)
        if step > shown:
            shown = step
            print(f"{label}: {position:,} of {target:,} events", file=sys.stderr, flush=True)

    return report
