"""Export the log of one store and import it into an empty store of the other kind: the
positions, the projections and the audit tree come out as the source's; a file that was
tampered with, a store that is not empty, or another secret key are refused, leaving the
target as it was; the file holds no code or PIN in clear."""

from __future__ import annotations

import base64
import dataclasses
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from engine.codes.imports import CodeRow
from engine.eventstore.receipts import Command, find_receipt, under_key
from engine.kernel.ids import receipt_id
from engine.kernel.money import Money
from engine.settings import Settings
from replay.audit_verify import verify_audit
from replay.event_file import FileRefused, read_event
from replay.export import export_log
from replay.import_events import import_and_build
from replay.merkle import Frontier, head_message, leaf_bytes, leaf_hash, verify_head
from replay.verify import Outcome, verify
from runtime import Runtime
from tests.conftest import TEST_KEY, caught_up, postgres_url
from tests.integration.helpers import define_product, import_codes

REFUND_RECEIPT = receipt_id("key-t", "refund-key-digest")  # a refund sent under a key


# -- the source's log and the other store ----------------------------------------------------


def busy_log(rt: Runtime) -> list[str]:
    """Products, imports, distributors, orders paid, revealed and refunded, a redemption, a
    payout and a settlement; the code strings and PINs it stored (sealed)."""
    sku = define_product(rt, price=1990, commission_rates_bp=[1000, 500])
    tag = uuid.uuid4().hex[:10]
    rows = [CodeRow(f"{tag}-{i:04d}", f"PIN-{tag}-{i}") for i in range(12)]
    import_codes(rt, sku, rows)
    rt.engine.distribution.register(distributor_id="d1", name="top", actor="t")
    rt.engine.distribution.register(distributor_id="d2", name="shop", parent_id="d1",
                                    actor="t")
    caught_up(rt)
    rt.audit.sign_head()  # a head kept before the export's own
    orders = [_paid(rt, sku, n, "d2") for n in range(4)]
    rt.engine.orders.reveal(order_id=orders[0].id, actor="t", client_address="10.0.0.1")
    with under_key(Command(REFUND_RECEIPT, "refund-request-digest")):  # its receipt too
        rt.engine.orders.refund(order_id=orders[1].id, code_ids=None, reason="buyer",
                                actor="t")
    code = rt.engine.orders.reveal(order_id=orders[2].id, actor="t", client_address=None)[0]
    rt.engine.redemptions.redeem(code=code["code"], merchant_id="m-1", terminal_id=None,
                                 location=None, actor="t")
    rt.engine.payouts.pay_distributor(distributor_id="d1", amount=Money(100, "CNY"),
                                      payout_ref="po-1", actor="t", tenant=None)
    rt.engine.payouts.settle_supplier(supplier_id="sup-1", amount=Money(500, "CNY"),
                                      settlement_ref="st-1", actor="t", tenant=None)
    caught_up(rt)
    return [r.code for r in rows] + [r.pin for r in rows if r.pin]


def _paid(rt: Runtime, sku: str, n: int, distributor: str):
    order = rt.engine.orders.place(buyer_id=f"b{n}", items=[{"sku": sku, "quantity": 1}],
                                   distributor_id=distributor, actor="t")
    return rt.engine.orders.pay(order_id=order.id, payment_ref=f"pay-{n}", amount=order.amount,
                                currency=order.currency, provider="alipay", actor="t")


@pytest.fixture
def other(store_kind: str, settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """An empty store of the other kind, with the source's secret and audit keys."""
    env = {"QUANYI_DATA_DIR": str(tmp_path / "other"), "QUANYI_SECRET_KEY": TEST_KEY,
           "QUANYI_AUDIT_KEY": base64.b64encode(settings.audit_key).decode(),
           "QUANYI_EXPIRY_SWEEP_SECONDS": "3600"}
    if store_kind == "postgres":
        yield Settings.from_env(env)
        return
    url, schema = postgres_url(), f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield Settings.from_env({**env, "QUANYI_DATABASE_URL": url,
                             "QUANYI_DATABASE_SCHEMA": schema})
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def target(other: Settings) -> Iterator[Runtime]:
    rt = Runtime.open(other)
    yield rt
    rt.close()


@pytest.fixture
def exported(runtime: Runtime, tmp_path: Path) -> Path:
    out = tmp_path / "log.jsonl"
    busy_log(runtime)
    export_log(runtime.store, runtime.audit, out, secret_key=runtime.settings.secret_key)
    return out


def load(target: Runtime, path: Path, public_key: bytes | None = None):
    return import_and_build(target, path, public_key=public_key)


def log_of(rt: Runtime) -> list[tuple]:
    return [(n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state))
            for n in rt.store.notifications(0, 100_000)]


def tables_of(rt: Runtime) -> dict[str, list[tuple]]:
    """Every projection table, rows in a store-independent order."""
    with rt.read_db.transaction(write=False) as cursor:
        return {name: sorted(rows, key=repr) for p in rt.runner.projections
                for name, rows in p.rows(cursor).items()}


# -- the round trip --------------------------------------------------------------------------

def test_import_keeps_every_event_at_its_position(runtime, exported, target):
    imported = load(target, exported)
    assert log_of(target) == log_of(runtime)
    assert imported.events == len(log_of(runtime)) > 40


def test_every_projection_equals_the_source_row_for_row(runtime, exported, target):
    load(target, exported)
    source, imported = tables_of(runtime), tables_of(target)
    assert imported == source
    assert source["ledger_entries"] and source["code_index"]


def test_a_commands_receipt_is_carried_by_the_import(runtime, exported, target):
    load(target, exported)
    carried = find_receipt(target.store, REFUND_RECEIPT)
    source = find_receipt(runtime.store, REFUND_RECEIPT)
    assert carried is not None and source is not None
    assert (carried.request_digest, carried.saved) == (source.request_digest, source.saved)


def test_replay_verify_agrees_after_an_import(exported, target):
    load(target, exported)
    verdict = verify(target.settings)
    assert verdict.outcome is Outcome.AGREE, verdict.differences or verdict.error


def test_audit_verify_passes_after_an_import_with_the_source_heads(runtime, exported,
                                                                   target):
    load(target, exported)
    verdict = verify_audit(target.audit)
    assert verdict.ok, (verdict.mismatch, verdict.head_problems)
    assert verdict.uncovered == 0 and verdict.tree_size == len(log_of(runtime))
    assert verdict.heads_checked == len(runtime.audit.heads()) == 2


def test_the_imported_audit_tree_signs_the_source_root(runtime, exported, target):
    load(target, exported)
    assert target.audit.sign_head().root_hash == runtime.audit.sign_head().root_hash


def test_a_write_after_the_import_takes_the_next_position(runtime, exported, target):
    load(target, exported)
    last = target.store.last_position()
    define_product(target)
    assert target.store.last_position() == last + 1


def test_the_source_heads_are_kept_under_the_same_audit_key(runtime, exported, target):
    source_heads = runtime.audit.heads()
    imported = load(target, exported)
    assert imported.heads_kept
    assert target.audit.heads() == source_heads
    assert all(verify_head(target.audit.public_key, head) for head in target.audit.heads())


@pytest.fixture
def foreign(other: Settings) -> Iterator[Runtime]:
    """An empty target of the other kind that signs with an audit key not the source's."""
    rt = Runtime.open(dataclasses.replace(other, audit_key=b"a" * 32))
    yield rt
    rt.close()


def test_under_another_audit_key_the_source_heads_are_left_in_the_file(runtime, exported,
                                                                      foreign):
    imported = load(foreign, exported, public_key=runtime.audit.public_key)
    assert not imported.heads_kept and imported.kept_heads == runtime.audit.heads()[:-1]
    assert verify_head(runtime.audit.public_key, imported.head)
    own = foreign.audit.heads()  # the target's own head over what it checked and imported
    assert [(h.tree_size, h.root_hash) for h in own] == [(imported.events,
                                                          imported.head.root_hash)]
    assert verify_head(foreign.audit.public_key, own[0])


def test_a_file_under_another_audit_key_is_refused_unless_its_key_is_named(runtime, exported,
                                                                          foreign):
    with pytest.raises(FileRefused, match="not this store's audit key.*--public-key"):
        load(foreign, exported)
    assert_empty(foreign)


def test_audit_verify_checks_a_head_after_an_import_under_another_key(runtime, exported,
                                                                      foreign):
    load(foreign, exported, public_key=runtime.audit.public_key)
    verdict = verify_audit(foreign.audit)
    assert verdict.ok, (verdict.mismatch, verdict.head_problems)
    assert verdict.heads_checked == 1 and verdict.anchored == verdict.events > 40


def test_an_empty_log_exports_and_imports(runtime, target, tmp_path):
    out = tmp_path / "empty.jsonl"
    export_log(runtime.store, runtime.audit, out, secret_key=runtime.settings.secret_key)
    imported = load(target, out)
    assert imported.events == 0 and log_of(target) == []
    assert verify_audit(target.audit).ok


# -- refusals --------------------------------------------------------------------------------

def lines_of(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def write(path: Path, lines: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def events(lines: list[dict]) -> list[int]:
    """Indexes of the event lines."""
    return [i for i, line in enumerate(lines) if "position" in line]


def edit_state(lines: list[dict]) -> None:
    line = lines[events(lines)[5]]
    state = bytearray(base64.b64decode(line["state"]))
    state[len(state) // 2] ^= 1
    line["state"] = base64.b64encode(bytes(state)).decode()


def drop_line(lines: list[dict]) -> None:
    del lines[events(lines)[7]]


def reorder_lines(lines: list[dict]) -> None:
    i, j = events(lines)[3], events(lines)[4]
    lines[i], lines[j] = lines[j], lines[i]


def renumber_positions(lines: list[dict]) -> None:
    """Positions moved up by one from the tenth event on, order kept."""
    for i in events(lines)[9:]:
        lines[i]["position"] += 1


def forge_root(lines: list[dict]) -> None:
    head = lines[-1]["signed_head"]
    head["root_hash"] = "00" * 32


def forge_kept_head(lines: list[dict]) -> None:
    kept = next(line["kept_head"] for line in lines if "kept_head" in line)
    kept["tree_size"] -= 1


def add_a_line(lines: list[dict]) -> None:
    last = lines[events(lines)[-1]]
    extra = dict(last, position=last["position"] + 1,
                 originator_version=last["originator_version"] + 1)
    lines.insert(events(lines)[-1] + 1, extra)


TAMPERINGS = [edit_state, drop_line, reorder_lines, renumber_positions, forge_root,
              forge_kept_head, add_a_line]


def assert_empty(target: Runtime) -> None:
    assert target.store.last_position() == 0
    assert log_of(target) == []


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda f: f.__name__)
def test_a_tampered_file_is_refused_and_the_target_stays_empty(exported, target, tamper):
    lines = lines_of(exported)
    tamper(lines)
    with pytest.raises(FileRefused):
        load(target, write(exported, lines))
    assert_empty(target)


def forge(path: Path) -> Path:
    """The file with an event edited, its head's root recomputed and signed again by a key
    of the forger's own, which the header names; the kept heads (the source's) left out."""
    lines = [line for line in lines_of(path) if "kept_head" not in line]
    edit_state(lines)
    frontier = Frontier()
    for i in events(lines):
        row = read_event(lines[i], i + 1)
        frontier.append(leaf_hash(leaf_bytes(*row)))
    forger = Ed25519PrivateKey.generate()
    head = lines[-1]["signed_head"]
    head["root_hash"] = frontier.root().hex()
    head["signature"] = base64.b64encode(forger.sign(head_message(
        head["tree_size"], frontier.root(), head["signed_at"]))).decode()
    lines[0]["audit_public_key"] = base64.b64encode(
        forger.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    return write(path, lines)


def test_a_head_resigned_by_another_key_is_refused_with_the_source_key(runtime, exported,
                                                                      target):
    forged = forge(exported)
    with pytest.raises(FileRefused, match="signed head does not verify"):
        load(target, forged, public_key=runtime.audit.public_key)
    assert_empty(target)


def test_a_forged_resigned_file_is_refused_by_a_store_holding_the_source_key(exported,
                                                                            target):
    """The target signs with the source's audit key; the forger's file names its own."""
    forged = forge(exported)
    with pytest.raises(FileRefused, match="not this store's audit key"):
        load(target, forged)
    assert_empty(target)


def test_a_line_that_is_not_json_is_refused(exported, target):
    raw = exported.read_bytes().splitlines(keepends=True)
    raw[10] = b"{not json\n"
    exported.write_bytes(b"".join(raw))
    with pytest.raises(FileRefused, match="line 11 is not JSON"):
        load(target, exported)
    assert_empty(target)


def test_a_file_cut_short_is_refused(exported, target):
    lines = lines_of(exported)
    with pytest.raises(FileRefused, match="the last line: the file does not end with its "
                                          "signed head"):
        load(target, write(exported, lines[:-5]))
    assert_empty(target)


def test_a_store_that_holds_events_is_refused(runtime, exported, target):
    define_product(target)
    before = log_of(target)
    with pytest.raises(FileRefused, match="already holds events"):
        load(target, exported)
    assert log_of(target) == before


def test_a_target_with_another_secret_key_is_refused(exported, other):
    rt = Runtime.open(dataclasses.replace(other, secret_key=b"k" * 32))
    try:
        with pytest.raises(FileRefused, match="secret key"):
            load(rt, exported)
        assert_empty(rt)
    finally:
        rt.close()


# -- secrets ---------------------------------------------------------------------------------

def test_the_file_holds_no_code_or_pin_in_clear(runtime, tmp_path):
    secrets = busy_log(runtime)
    out = tmp_path / "log.jsonl"
    export_log(runtime.store, runtime.audit, out, secret_key=runtime.settings.secret_key)
    text = out.read_bytes()
    states = b"".join(base64.b64decode(line["state"]) for line in lines_of(out)
                      if "state" in line)
    assert len(secrets) == 24
    for secret in secrets:
        assert secret.encode() not in text and secret.encode() not in states


@pytest.mark.parametrize("there_before", [False, True], ids=["new file", "file replaced"])
def test_the_file_is_readable_by_its_owner_only(runtime, tmp_path, there_before):
    busy_log(runtime)
    out = tmp_path / "log.jsonl"
    if there_before:
        out.write_bytes(b"an older export\n")
        out.chmod(0o644)
    old_umask = os.umask(0o022)  # the usual umask, under which a plain open() gives 0644
    try:
        export_log(runtime.store, runtime.audit, out, secret_key=runtime.settings.secret_key)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert lines_of(out)[0]["quanyi_export"] == 1


# -- the command line ------------------------------------------------------------------------

def env_of(settings: Settings) -> dict[str, str]:
    env = {"QUANYI_DATA_DIR": str(settings.data_dir), "QUANYI_SECRET_KEY": TEST_KEY,
           "QUANYI_AUDIT_KEY": base64.b64encode(settings.audit_key).decode()}
    if settings.database_url:
        env |= {"QUANYI_DATABASE_URL": settings.database_url,
                "QUANYI_DATABASE_SCHEMA": settings.database_schema}
    return env


def test_the_commands_export_and_import_and_refuse_a_second_import(runtime, other, tmp_path):
    from tests.integration.test_cli import quanyi

    busy_log(runtime)
    out = tmp_path / "cli.jsonl"
    exported = quanyi("export", "--out", str(out), env=env_of(runtime.settings))
    assert exported.returncode == 0, exported.stderr
    key = base64.b64encode(runtime.audit.public_key).decode()
    imported = quanyi("--init", "import-events", str(out), "--public-key", key,
                      env=env_of(other))
    assert imported.returncode == 0, imported.stderr
    assert f"imported {len(log_of(runtime))} events" in imported.stdout
    garbled = quanyi("import-events", str(out), "--public-key", "not-a-key",
                     env=env_of(other))
    assert garbled.returncode == 2 and "--public-key must be" in garbled.stderr
    again = quanyi("import-events", str(out), env=env_of(other))
    assert again.returncode == 1
    assert "import refused, nothing was written" in again.stderr
    assert "already holds events" in again.stderr


def test_the_command_refuses_a_forged_file_in_one_line(runtime, other, tmp_path):
    from tests.integration.test_cli import quanyi

    busy_log(runtime)
    out = tmp_path / "cli.jsonl"
    assert quanyi("export", "--out", str(out), env=env_of(runtime.settings)).returncode == 0
    refused = quanyi("--init", "import-events", str(forge(out)), env=env_of(other))
    said = [line for line in refused.stderr.splitlines()
            if not line.startswith("quanyi: using ")]  # the line naming the store
    assert refused.returncode == 1 and refused.stdout == ""
    assert len(said) == 1, refused.stderr
    assert said[0].startswith("import refused, nothing was written: the file is signed by "
                              "audit key ")
    verified = quanyi("audit", "verify", env=env_of(other))
    assert verified.returncode == 0 and "of the log's 0 events" in verified.stdout
