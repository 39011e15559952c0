"""`quanyi supplier-sim`: a real process speaking the http-json protocol on 127.0.0.1, shaped
by its options; a bad option is one line and exit status 2. No store is touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.common import free_port
from engine.kernel.money import Money
from engine.topups.supplier_port import (
    Outcome,
    SupplierLink,
    SupplierTimeouts,
    TopupRequest,
)
from supplier_adapters.http_json import HttpJsonAdapter

ROOT = Path(__file__).resolve().parents[2]


def start_sim(*options: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "supplier-sim", "--port", str(port), *options],
        env={**os.environ, "PYTHONPATH": str(ROOT), "QUANYI_SIM_API_KEY": "cli-key"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_sim/config", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"supplier-sim did not start: {process.communicate()}")


@pytest.fixture
def failing_sim() -> Iterator[str]:
    process, url = start_sim("--seed", "3", "--failure-rate", "1", "--latency-ms", "50")
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_the_simulator_command_serves_the_protocol_as_its_options_say(failing_sim):
    link = SupplierLink("cli", failing_sim, {"api_key": "cli-key", "callback_secret": "s"},
                        SupplierTimeouts(2.0, 5.0), allow_private_addresses=True)
    adapter = HttpJsonAdapter(link)
    try:
        request = TopupRequest("att-cli-1", "CM-10", "13700000000", Money(1000, "CNY"))
        assert adapter.place(request).outcome is Outcome.FAILED  # --failure-rate 1
        assert adapter.query("att-cli-1").outcome is Outcome.FAILED
    finally:
        adapter.close()
    shown = httpx.get(f"{failing_sim}/_sim/config").json()
    assert (shown["seed"], shown["failure_rate"], shown["latency_ms"]) == (3, 1.0, 50)
    assert "api_key" not in shown and "cli-key" not in str(shown)


def test_bands_beyond_one_are_refused_in_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "supplier-sim", "--failure-rate", "0.7",
         "--pending-rate", "0.7"], env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "quanyi: error: supplier-sim: rates are 0-1, and the four bands sum to at most 1"]
