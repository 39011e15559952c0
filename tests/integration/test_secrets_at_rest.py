"""No code or PIN is stored in clear: not in the event store, not in the read models."""

import subprocess
from pathlib import Path

from engine.codes.imports import CodeRow
from tests.conftest import caught_up
from tests.integration.helpers import define_product, import_codes

CODES = [CodeRow(f"CLEARTEXT-CODE-{n:04d}", f"PIN-SECRET-{n:04d}") for n in range(50)]


def stored_bytes(runtime, quanyi_env) -> bytes:
    if runtime.store.kind == "sqlite":
        data_dir = Path(quanyi_env["QUANYI_DATA_DIR"])
        return b"".join(p.read_bytes() for p in sorted(data_dir.glob("*.sqlite*")))
    dump = subprocess.run(
        ["pg_dump", "--data-only", "--schema", quanyi_env["QUANYI_DATABASE_SCHEMA"],
         quanyi_env["QUANYI_DATABASE_URL"]], check=True, capture_output=True)
    return dump.stdout


def test_imported_codes_and_pins_appear_nowhere_in_storage(runtime, quanyi_env):
    sku = define_product(runtime)
    assert import_codes(runtime, sku, CODES).imported == len(CODES)
    code = runtime.engine.codes.look_up(CODES[0].code)
    runtime.engine.reservations.reserve(sku=sku, quantity=3, order_id="o", holder="b",
                                        actor="test")
    caught_up(runtime)
    blob = stored_bytes(runtime, quanyi_env)
    assert str(code.id).encode() in blob or code.id.hex.encode() in blob  # the dump is real
    for row in CODES:
        assert row.code.encode() not in blob
        assert row.pin.encode() not in blob
    assert b"CLEARTEXT" not in blob and b"PIN-SECRET" not in blob
