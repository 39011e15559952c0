"""An acknowledged command survives the process being killed right after the answer."""

import os
import signal
import subprocess
import sys
import textwrap

from engine.settings import Settings
from runtime import Runtime

SCRIPT = textwrap.dedent("""
    import sys, time
    from engine.codes.imports import CodeRow
    from engine.settings import Settings
    from runtime import Runtime
    rt = Runtime.open(Settings.from_env())
    rt.engine.catalog.define_product(sku="DUR-1", name="Durable", delivery="card",
                                     price=100, actor="test")
    result = rt.engine.imports.import_batch(
        sku="DUR-1", rows=[CodeRow(f"DUR-{i}") for i in range(500)], supplier_id="s",
        unit_cost=50, expires_at=None, actor="test")
    print("ACK", result.imported, flush=True)
    time.sleep(60)
""")


def test_acknowledged_import_survives_a_kill(quanyi_env):
    env = {**os.environ, **quanyi_env}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ACK 500"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    rt = Runtime.open(Settings.from_env(quanyi_env))
    try:
        rt.runner.run_until()
        assert rt.codes.inventory("DUR-1")["available"] == 500
        assert rt.engine.codes.look_up("DUR-499").sku == "DUR-1"
    finally:
        rt.close()
