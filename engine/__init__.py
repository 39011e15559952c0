"""Quanyi's domain: the aggregates, their events and the use cases, over the event store.

Importing the package imports every module that defines an aggregate (engine/topics.py), so
every stored event's topic resolves in any process that opens a store.
"""

from engine.app import Engine
from engine.topics import open_store

__all__ = ["Engine", "open_store"]
