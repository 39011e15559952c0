"""The composition root, outside api/: the one place that builds a runtime, for ``quanyi
serve``, the CLI, the benchmarks and the tests. Nothing here knows HTTP, so none of them needs to import api/.

    api/, bench/, tests ──▶ runtime/ ──▶ engine/, projections/
"""

from runtime.composition import Runtime

__all__ = ["Runtime"]
