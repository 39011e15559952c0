"""A `quanyi serve` whose SQLite store fills its disk (a 4 MiB tmpfs) answers every write it
cannot store 507 `storage_full` with Retry-After, on the same connection, says how far an
import got, never answers a stored write as failed, logs the state once and no traceback,
and takes writes again once space is freed."""

import http.client
import subprocess
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from bench.common import serve_subprocess

CODES_PER_BATCH = 200
FILLER_BYTES = 1024 * 1024


@pytest.fixture(params=["sqlite"])
def store_kind(request):
    return request.param


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs, 1 MiB of it taken by a file the test can delete."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    (mount / "filler").write_bytes(b"\0" * FILLER_BYTES)
    yield mount
    subprocess.run(["umount", "--lazy", str(mount)], check=True)


class Caller:
    """One HTTP/1.1 connection, kept: a request the server hangs up on raises."""

    def __init__(self, base: str, key: str) -> None:
        address = urlsplit(base)
        self.conn = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
        self.conn.connect()
        self.socket = self.conn.sock
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict | None = None,
             **headers: str) -> tuple[int, dict, dict]:
        self.conn.request(method, path, body=orjson.dumps(body) if body is not None else None,
                          headers={**self.headers, **headers})
        answer = self.conn.getresponse()
        data = orjson.loads(answer.read() or b"null")
        assert self.conn.sock is self.socket, "the server closed the connection"
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, data


def _batch(n: int) -> dict:
    return {"supplier_id": "s", "unit_cost": 50, "codes": [
        {"code": f"FULL{n}-{i:04d}-{uuid.uuid4().hex}", "pin": f"P{uuid.uuid4().hex}"}
        for i in range(CODES_PER_BATCH)]}


def test_a_full_disk_is_answered_507_and_nothing_stored_is_told_as_failed(quanyi_env,
                                                                          small_disk: Path):
    env = {**quanyi_env, "QUANYI_DATA_DIR": str(small_disk / "data")}
    with tempfile.TemporaryFile("w+") as stderr:
        with serve_subprocess(env, stderr=stderr) as (base, key):
            caller = Caller(base, key)
            sku = f"FULL-{uuid.uuid4().hex[:6]}"
            assert caller.call("POST", "/v1/products", {"sku": sku, "name": "full",
                                                        "delivery": "card", "price": 100})[0] == 201
            stored, refused = _import_until_full(caller, sku)
            (small_disk / "filler").unlink()
            last_key, last_body, partly = refused[-1]
            status, _, resumed = caller.call("POST", f"/v1/products/{sku}/batches", last_body,
                                             **{"Idempotency-Key": last_key})
            assert status == 201, resumed
            assert resumed["imported"] == CODES_PER_BATCH  # the part stored before, and the rest
            stored += resumed["imported"] - partly
            _, _, stock = caller.call("GET", f"/v1/products/{sku}/inventory")
        stderr.seek(0)
        log = stderr.read()
    assert stock["total"] == stored
    assert "Traceback" not in log, log
    assert log.count("the event store's disk is full") == 1, log


def _import_until_full(caller: Caller, sku: str) -> tuple[int, list[tuple[str, dict, int]]]:
    """Import batches until three are refused; the codes the answers say are stored, and
    the (Idempotency-Key, body, codes stored) of each refused import."""
    stored, refused = 0, []
    for n in range(200):
        key, body = f"full-{uuid.uuid4().hex}", _batch(n)
        status, headers, answer = caller.call("POST", f"/v1/products/{sku}/batches", body,
                                              **{"Idempotency-Key": key})
        if status == 201:
            stored += answer["imported"]
            continue
        assert status == 507 and answer["code"] == "storage_full", (status, answer)
        assert int(headers["retry-after"]) > 0
        stored += answer.get("imported", 0)
        refused.append((key, body, answer.get("imported", 0)))
        if len(refused) == 3:
            return stored, refused
    raise AssertionError("the disk never filled")
