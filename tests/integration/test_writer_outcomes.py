"""The group-commit writer tells a write that failed from one that committed and then
raised (the acknowledgement lost, not the write): the first is an error for its callers,
StorageFull when the disk is full; the second is answered as saved."""

import sqlite3

import pytest

from engine.eventstore.store import EventStore
from engine.kernel.errors import StorageFull
from tests.integration.helpers import define_product, new_sku


def _failing_after_commit(store: EventStore, error: BaseException):
    def append(events):
        EventStore.append(store, events)
        raise error
    return append


def _failing_before_commit(error: BaseException):
    def append(events):
        raise error
    return append


def test_a_write_that_committed_before_raising_is_answered_as_saved(runtime, monkeypatch):
    monkeypatch.setattr(runtime.store, "append", _failing_after_commit(
        runtime.store, OSError("the connection dropped after COMMIT")))
    sku = define_product(runtime)  # raises if the writer reports the error
    monkeypatch.undo()
    assert runtime.engine.catalog.get(sku).sku == sku


def test_a_write_refused_for_a_full_disk_is_storage_full_and_stores_nothing(runtime,
                                                                           monkeypatch):
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL
    monkeypatch.setattr(runtime.store, "append", _failing_before_commit(full))
    sku = new_sku()
    before = runtime.store.last_position()
    with pytest.raises(StorageFull) as refused:
        define_product(runtime, sku)
    monkeypatch.undo()
    assert refused.value.retry_after_seconds > 0
    assert runtime.store.last_position() == before
    define_product(runtime, sku)  # nothing of the refused write is there to clash with
