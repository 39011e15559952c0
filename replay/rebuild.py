"""Rebuild every projection in place from the event log, with the live projection code.

An operator command, run with every ``quanyi serve`` of the store stopped. It drops the read
models and re-applies the whole log through the same ``ProjectionRunner`` and projection
classes the server uses, so until it finishes the tables are empty or partial. A server left
running would not corrupt them (the tracking row's compare-and-set keeps every event applied
once, whoever applies it) but would answer from them meanwhile: inventory short, orders
refused as sold out, reads behind their writes. Rebuilding aside and swapping the tables in
was weighed and left out: on SQLite every server holds the read-side file open, so a swap
means copying the tables back under a write lock anyway. To check live tables while the
servers run, use ``quanyi replay verify``, which only reads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.runtime import Runtime


def rebuild(runtime: "Runtime") -> int:
    """Drop every projection and re-apply the whole log; the number of events applied."""
    runtime.runner.reset()
    return runtime.runner.run_until(runtime.store.last_position())
