"""The event table is append-only in the database itself, not only by the engine's habit.

Triggers refuse UPDATE and DELETE of stored events (and TRUNCATE on PostgreSQL; on SQLite
also an INSERT that meets a stored event, which REPLACE would silently delete), so that a
bug, a hand-written query or a tool cannot change history by accident. A database owner can
still drop the triggers: the audit log's Merkle tree and signed heads (replay/audit_log.py)
are what make such a change visible. Installed each time the store opens; idempotent.
"""

from __future__ import annotations

from typing import Any

REFUSAL = "quanyi: stored events are append-only"


def refuse_changes(recorder: Any, kind: str) -> None:
    """Install the triggers on the recorder's event table (once; later calls change nothing)."""
    {"postgres": _postgres, "sqlite": _sqlite}[kind](recorder)


def _sqlite(recorder: Any) -> None:
    table = recorder.events_table_name
    # REPLACE (INSERT OR REPLACE) deletes the row it conflicts with without firing a DELETE
    # trigger (unless a connection turns recursive_triggers on), so an insert that would
    # meet a stored event, by its stream and version or by its position, is refused first.
    meets_stored = (f"EXISTS (SELECT 1 FROM {table} WHERE originator_id = NEW.originator_id "
                    "AND originator_version = NEW.originator_version) OR EXISTS (SELECT 1 "
                    f"FROM {table} WHERE rowid = NEW.rowid)")
    triggers = {"no_update": "BEFORE UPDATE", "no_delete": "BEFORE DELETE",
                "no_replace": "BEFORE INSERT"}
    conditions = {"no_replace": f" WHEN {meets_stored}"}
    with recorder.datastore.transaction(commit=True) as cursor:
        for name, timing in triggers.items():
            cursor.execute(
                f"CREATE TRIGGER IF NOT EXISTS {table}_{name} {timing} ON {table}"
                f"{conditions.get(name, '')} BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END")


def _postgres(recorder: Any) -> None:
    import psycopg

    schema, table = recorder.datastore.schema, recorder.events_table_name
    qualified = f'"{schema}".{table}'
    function = f"{qualified}_append_only"
    triggers = {f"{table}_no_change": "BEFORE UPDATE OR DELETE ON {t} FOR EACH ROW",
                f"{table}_no_truncate": "BEFORE TRUNCATE ON {t} FOR EACH STATEMENT"}
    with recorder.datastore.get_connection() as conn:
        present = {row["tgname"] for row in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(%s)",
            (f'"{schema}"."{table}"',)).fetchall()}
        if present >= set(triggers):
            return
        try:
            with conn.transaction():
                conn.execute(
                    f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger "
                    f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{REFUSAL}' "
                    "USING ERRCODE = 'insufficient_privilege'; END $$")
                for name, when in triggers.items():
                    if name not in present:
                        conn.execute(f"CREATE TRIGGER {name} {when.format(t=qualified)} "
                                     f"EXECUTE FUNCTION {function}()")
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            pass  # another process installed them at the same moment
