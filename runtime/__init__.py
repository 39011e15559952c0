"""The composition root, outside api/: one place builds the runtime for ``quanyi serve``, the
CLI, replay, the benchmarks and the tests, so none of them imports the HTTP layer.

    api/ ──▶ runtime/ ──▶ engine/, projections/ (and its background workers: runtime/sweepers.py)
"""

from runtime.composition import Runtime, all_projections

__all__ = ["Runtime", "all_projections"]
