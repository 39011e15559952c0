"""The adapters that speak suppliers' protocols, registered by the name a supplier's
``adapter`` field gives (engine/topups/supplier_port.py draws the port they implement).

To add a supplier with another protocol, write one class with ``place``, ``query``,
``read_callback`` and ``close``, built from a ``SupplierLink``, and register it here with the
credentials it needs: ``POST /v1/suppliers`` then accepts its name.

    runtime/ ──▶ supplier_adapters/ ──▶ engine/ (the port, never the other way)
"""

from __future__ import annotations

from engine.topups.supplier_port import AdapterRegistry
from supplier_adapters import http_json


def registry() -> AdapterRegistry:
    """Every adapter kind this build knows, by name."""
    adapters = AdapterRegistry()
    adapters.register("http-json", http_json.HttpJsonAdapter, credentials=http_json.CREDENTIALS)
    return adapters
