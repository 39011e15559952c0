"""A supplier simulator speaking the http-json protocol (docs/suppliers.md), with latency,
failures, timeouts, late, duplicate and out-of-order callbacks, deterministic per seed.
Run it with ``quanyi supplier-sim``, or in a test with ``SimServer``."""

from supplier_sim.config import SimConfig
from supplier_sim.server import SimAdmin, SimServer

__all__ = ["SimAdmin", "SimConfig", "SimServer"]
