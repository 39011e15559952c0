"""Tampering with the stored events, as a database owner could (dropping the append-only
triggers first), is found by `audit verify` on both stores: an edited event, a deleted one,
two swapped and one inserted are each named; so is an event edited together with the stored
tree, by the signed heads; and the triggers themselves refuse changes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from engine.eventstore.store import EVENTS_FILE
from engine import open_store
from replay.audit_log import AuditLog
from replay.audit_verify import verify_audit
from tests.integration.helpers import codes_for, define_product, import_codes
from tests.integration.test_cli import quanyi

Run = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]


@contextmanager
def owner_sql(rt, settings, *, drop_triggers: bool = True) -> Iterator[Run]:
    """A raw connection to the event store, as its owner, committed at the end."""
    table = rt.store.recorder.events_table_name
    if rt.store.kind == "sqlite":
        conn = sqlite3.connect(settings.data_dir / EVENTS_FILE, timeout=30)
        if drop_triggers:
            conn.execute(f"DROP TRIGGER {table}_no_update")
            conn.execute(f"DROP TRIGGER {table}_no_delete")

        def run(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
            sql = sql.replace("%s", "?").replace("{t}", table).replace("{id}", "rowid")
            return conn.execute(sql, params).fetchall()

        try:
            yield run
            conn.commit()
        finally:
            conn.close()
        return
    qualified = f'"{settings.database_schema}".{table}'
    with psycopg.connect(settings.database_url) as conn:
        if drop_triggers:
            conn.execute(f"DROP TRIGGER {table}_no_change ON {qualified}")

        def run(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
            cursor = conn.execute(sql.replace("{t}", qualified).replace("{id}",
                                                                        "notification_id"),
                                  params)
            return cursor.fetchall() if cursor.description else []

        yield run


@pytest.fixture
def covered(runtime) -> list[Any]:
    """A log of a few dozen events, all in the audit tree under a signed head; the follower
    is stopped so that only the test touches the tree. The log's notifications."""
    sku = define_product(runtime)
    import_codes(runtime, sku, codes_for(40))
    runtime.audit_follower.stop()
    runtime.audit.sign_head()
    return list(runtime.store.notifications(0, 1000))


def verdict_of(rt):
    return verify_audit(rt.audit)


def test_an_untouched_log_verifies_and_says_how_far_the_tree_reaches(runtime, covered,
                                                                     quanyi_env):
    verdict = verdict_of(runtime)
    assert verdict.ok and verdict.mismatch is None
    assert verdict.tree_size == verdict.events == len(covered)
    assert verdict.heads_checked >= 1
    import_codes(runtime, define_product(runtime), codes_for(3))
    later = verdict_of(runtime)
    assert later.ok and later.uncovered == later.events - later.tree_size > 0
    done = quanyi("audit", "verify", env=quanyi_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not covered yet" in done.stdout


def test_a_log_no_signed_head_covers_is_not_called_verified(runtime, quanyi_env):
    import_codes(runtime, define_product(runtime), codes_for(5))
    runtime.audit_follower.stop()  # so that it signs no head during the test
    runtime.audit.catch_up()
    verdict = verdict_of(runtime)
    assert verdict.mismatch is None and not verdict.head_problems and verdict.events > 5
    assert not verdict.ok and verdict.heads_checked == 0 and verdict.anchored == 0
    done = quanyi("audit", "verify", env=quanyi_env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "verified" not in done.stdout.replace("NOT VERIFIED", "")
    assert done.stdout.startswith("NOT VERIFIED: no signed head covers any of the log's")


def test_events_after_the_last_signed_head_are_said_unsigned(runtime, covered, quanyi_env):
    import_codes(runtime, define_product(runtime), codes_for(3))
    runtime.audit.catch_up()
    verdict = verdict_of(runtime)
    assert verdict.ok and verdict.anchored == len(covered) < verdict.tree_size
    done = quanyi("audit", "verify", env=quanyi_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"under no signed head yet: {verdict.events - len(covered)}" in done.stdout


def test_an_edited_event_is_named_by_verify(runtime, settings, covered, quanyi_env):
    victim = covered[len(covered) // 2]
    with owner_sql(runtime, settings) as run:
        state = bytes(run("SELECT state FROM {t} WHERE {id} = %s", (victim.id,))[0][0])
        assert b"2026-" in state
        run("UPDATE {t} SET state = %s WHERE {id} = %s",
            (state.replace(b"2026-", b"2025-"), victim.id))
    mismatch = verdict_of(runtime).mismatch
    assert mismatch is not None
    assert (mismatch.position, mismatch.stream_id, mismatch.version) == (
        victim.id, victim.originator_id, victim.originator_version)
    assert "bytes" in mismatch.reason
    done = quanyi("audit", "verify", env=quanyi_env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"position {victim.id} (stream {victim.originator_id}" in done.stdout


def test_a_deleted_event_is_named_by_verify(runtime, settings, covered, quanyi_env):
    victim = covered[10]
    with owner_sql(runtime, settings) as run:
        run("DELETE FROM {t} WHERE {id} = %s", (victim.id,))
    mismatch = verdict_of(runtime).mismatch
    assert mismatch is not None
    assert mismatch.expected_position == victim.id and mismatch.leaf_index == 10
    assert mismatch.position == covered[11].id
    done = quanyi("audit", "verify", env=quanyi_env)
    assert done.returncode == 1 and f"holds position {victim.id}" in done.stdout


def test_the_last_event_deleted_is_named_by_verify(runtime, settings, covered):
    with owner_sql(runtime, settings) as run:
        run("DELETE FROM {t} WHERE {id} = %s", (covered[-1].id,))
    mismatch = verdict_of(runtime).mismatch
    assert mismatch is not None and mismatch.expected_position == covered[-1].id


def test_two_swapped_events_are_found_at_the_first(runtime, settings, covered):
    first, second = covered[5], covered[20]
    with owner_sql(runtime, settings) as run:
        run("UPDATE {t} SET {id} = %s WHERE {id} = %s", (10**9, first.id))
        run("UPDATE {t} SET {id} = %s WHERE {id} = %s", (first.id, second.id))
        run("UPDATE {t} SET {id} = %s WHERE {id} = %s", (second.id, 10**9))
    mismatch = verdict_of(runtime).mismatch
    assert mismatch is not None
    assert (mismatch.position, mismatch.stream_id, mismatch.version) == (
        first.id, second.originator_id, second.originator_version)


def test_an_inserted_event_is_named_by_verify(runtime, settings, covered):
    at = covered[7].id
    forged = covered[3]
    with owner_sql(runtime, settings) as run:
        for note in reversed(covered[7:]):  # make room: move the tail up by one
            run("UPDATE {t} SET {id} = %s WHERE {id} = %s", (note.id + 1, note.id))
        version = 10**6
        if runtime.store.kind == "sqlite":
            run("INSERT INTO {t} (rowid, originator_id, originator_version, topic, state) "
                "VALUES (%s, %s, %s, %s, %s)",
                (at, forged.originator_id.hex, version, forged.topic, forged.state))
        else:
            run("INSERT INTO {t} (notification_id, originator_id, originator_version, topic, "
                "state) VALUES (%s, %s, %s, %s, %s)",
                (at, forged.originator_id, version, forged.topic, forged.state))
    mismatch = verdict_of(runtime).mismatch
    assert mismatch is not None
    assert (mismatch.position, mismatch.stream_id, mismatch.version) == (
        at, forged.originator_id, version)


def test_an_event_edited_with_the_tree_rebuilt_to_match_fails_on_the_signed_head(
        runtime, settings, covered):
    victim = covered[len(covered) // 2]
    with owner_sql(runtime, settings) as run:
        state = bytes(run("SELECT state FROM {t} WHERE {id} = %s", (victim.id,))[0][0])
        run("UPDATE {t} SET state = %s WHERE {id} = %s",
            (state.replace(b"2026-", b"2025-"), victim.id))
    with runtime.audit.db.transaction() as cursor:  # the attacker rebuilds the tree
        cursor.execute("DELETE FROM audit_tiles")
        cursor.execute("UPDATE audit_state SET tree_size = 0, position = 0")
    rebuilt = AuditLog(runtime.store, runtime.audit.db, settings.audit_key)
    rebuilt.catch_up()
    verdict = verify_audit(rebuilt)
    assert not verdict.ok and verdict.mismatch is not None
    assert "head" in verdict.mismatch.reason and verdict.mismatch.leaf_index == 0


def test_a_forged_head_fails_verify(runtime, covered, quanyi_env):
    head = runtime.audit.latest_head()
    with runtime.audit.db.transaction() as cursor:
        cursor.execute("UPDATE audit_heads SET root_hash = %s WHERE tree_size = %s",
                       (bytes(32), head.tree_size))
    verdict = verdict_of(runtime)
    assert not verdict.ok and verdict.head_problems
    done = quanyi("audit", "verify", env=quanyi_env)
    assert done.returncode == 1 and "does not verify with the audit key" in done.stdout


def test_a_leaf_tile_edited_alone_is_found(runtime, covered):
    with runtime.audit.db.transaction() as cursor:
        cursor.execute("SELECT hashes FROM audit_tiles WHERE level = 0 AND idx = 0")
        hashes = bytearray(bytes(cursor.fetchone()[0]))
        hashes[32 * 4] ^= 1
        cursor.execute("UPDATE audit_tiles SET hashes = %s WHERE level = 0 AND idx = 0",
                       (bytes(hashes),))
    mismatch = verdict_of(runtime).mismatch
    assert mismatch is not None and mismatch.leaf_index == 4


@pytest.mark.parametrize("change", ["UPDATE {t} SET topic = 'x' WHERE {id} = %s",
                                    "DELETE FROM {t} WHERE {id} = %s"])
def test_the_database_refuses_to_change_a_stored_event(runtime, settings, covered, change):
    error = sqlite3.DatabaseError if runtime.store.kind == "sqlite" else psycopg.Error
    with pytest.raises(error, match="append-only"):
        with owner_sql(runtime, settings, drop_triggers=False) as run:
            run(change, (covered[0].id,))
    assert list(runtime.store.notifications(0, 1000)) == covered


# Statements that change a stored event without saying UPDATE or DELETE: SQLite's REPLACE
# deletes the row it conflicts with (firing no DELETE trigger unless recursive_triggers is on),
# and an upsert or a MERGE turns an INSERT into an UPDATE or a DELETE; the database itself
# refuses each.
COPY_AS_X = ("INTO {t} (originator_id, originator_version, topic, state) SELECT "
             "originator_id, originator_version, 'x', state FROM {t} WHERE {id} = %s")
REWRITES = {
    "sqlite": {
        "insert or replace": f"INSERT OR REPLACE {COPY_AS_X}",
        "replace": f"REPLACE {COPY_AS_X}",
        "replace at a position": "INSERT OR REPLACE INTO {t} (rowid, originator_id, "
                                 "originator_version, topic, state) SELECT rowid, "
                                 "'0000000000000000000000000000beef', 1, 'x', state "
                                 "FROM {t} WHERE {id} = %s",
        "upsert": f"INSERT {COPY_AS_X} ON CONFLICT DO UPDATE SET topic = 'x'",
    },
    "postgres": {
        "upsert": f"INSERT {COPY_AS_X} ON CONFLICT (originator_id, originator_version) "
                  "DO UPDATE SET topic = 'x'",
        "merge": "MERGE INTO {t} USING (SELECT %s::bigint AS id) AS s ON {t}.{id} = s.id "
                 "WHEN MATCHED THEN UPDATE SET topic = 'x'",
        "merge delete": "MERGE INTO {t} USING (SELECT %s::bigint AS id) AS s "
                        "ON {t}.{id} = s.id WHEN MATCHED THEN DELETE",
    },
}


@pytest.mark.parametrize("way", sorted({w for ways in REWRITES.values() for w in ways}))
def test_the_database_refuses_to_rewrite_a_stored_event_by_insert(runtime, settings, covered,
                                                                   way):
    statement = REWRITES[runtime.store.kind].get(way)
    if statement is None:
        pytest.skip(f"{way} is not {runtime.store.kind} SQL")
    error = sqlite3.DatabaseError if runtime.store.kind == "sqlite" else psycopg.Error
    with pytest.raises(error, match="append-only"):
        with owner_sql(runtime, settings, drop_triggers=False) as run:
            run(statement, (covered[3].id,))
    assert list(runtime.store.notifications(0, 1000)) == covered


def test_postgres_refuses_to_truncate_the_events(runtime, settings, covered):
    if runtime.store.kind != "postgres":
        pytest.skip("TRUNCATE is PostgreSQL's")
    with pytest.raises(psycopg.Error, match="append-only"):
        with owner_sql(runtime, settings, drop_triggers=False) as run:
            run("TRUNCATE {t}")
    assert len(runtime.store.notifications(0, 1000)) == len(covered)


def test_the_triggers_are_installed_once_however_often_the_store_opens(runtime, settings):
    open_store(settings).close()
    open_store(settings).close()
    with owner_sql(runtime, settings, drop_triggers=False) as run:
        if runtime.store.kind == "sqlite":
            names = run("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        else:
            names = run("SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(%s)",
                        (f'"{settings.database_schema}".{runtime.store.recorder.events_table_name}',))
    table = runtime.store.recorder.events_table_name
    installed = {"sqlite": ("no_update", "no_delete", "no_replace"),
                 "postgres": ("no_change", "no_truncate")}[runtime.store.kind]
    assert sorted(name for (name,) in names) == sorted(f"{table}_{n}" for n in installed)
