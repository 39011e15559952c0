"""/healthz and /metrics tell the truth about the projections: a failing runner or one
lagging past QUANYI_HEALTH_MAX_LAG answers 503 "degraded", and ok again after recovery."""

import dataclasses
import re
import time
import uuid

from tests.conftest import caught_up
from tests.e2e.conftest import import_codes


def eventually(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def metric(client, name: str) -> int:
    found = re.search(rf"^{name} (\d+)$", client.get("/metrics").text, re.MULTILINE)
    assert found, f"{name} missing from /metrics"
    return int(found.group(1))


def codes(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"H-{tag}-{i}" for i in range(n)]


def test_healthz_is_ok_when_the_projections_are_current(client, keys, product, runtime):
    import_codes(client, keys, product, codes(2))
    caught_up(runtime)
    answer = client.get("/healthz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok" and body["projection_lag"] == 0
    assert body["store"] == runtime.store.kind
    assert metric(client, "quanyi_projection_failing") == 0


def test_healthz_degrades_while_a_projection_fails_and_recovers(client, keys, product,
                                                               runtime):
    import_codes(client, keys, product, codes(1))
    caught_up(runtime)
    applied = runtime.runner.position()
    with runtime.read_db.transaction() as cursor:
        cursor.execute("DROP TABLE code_history")  # the code projection now fails for real
    import_codes(client, keys, product, codes(3))
    assert eventually(lambda: runtime.runner.health.failing)

    answer = client.get("/healthz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "degraded" and body["projection_lag"] > 0
    failure = body["projection_failure"]
    assert applied < failure["position"] <= runtime.store.last_position()
    assert failure["error"] in ("OperationalError", "UndefinedTable")
    assert failure["consecutive_failures"] >= 1
    assert metric(client, "quanyi_projection_failing") == 1
    assert metric(client, "quanyi_projection_errors_total") >= 1

    runtime.runner.create_tables()  # the operator puts the table back
    caught_up(runtime, timeout=15)
    assert eventually(lambda: client.get("/healthz").status_code == 200)
    assert client.get("/healthz").json()["status"] == "ok"
    assert metric(client, "quanyi_projection_failing") == 0
    assert metric(client, "quanyi_projection_errors_total") >= 1


def test_healthz_degrades_when_the_projections_lag_past_the_limit(client, keys, product,
                                                                  runtime):
    runtime.settings = dataclasses.replace(runtime.settings, health_max_lag=3)
    runtime.runner.stop()
    import_codes(client, keys, product, codes(5))  # 7 events: batch, 5 codes, completion
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "degraded"
    assert answer.json()["projection_lag"] > answer.json()["max_lag"] == 3
    assert "projection_failure" not in answer.json()

    runtime.runner.start()
    caught_up(runtime)
    # the audit tree follows a second behind at most: then neither lags past the limit
    assert eventually(lambda: client.get("/healthz").status_code == 200)
    assert client.get("/healthz").json()["status"] == "ok"


def test_healthz_and_metrics_show_the_audit_tree_catching_up(client, keys, product, runtime):
    import_codes(client, keys, product, codes(2))
    assert eventually(lambda: client.get("/healthz").json()["audit_lag"] == 0)
    assert metric(client, "quanyi_audit_lag_events") == 0
    assert metric(client, "quanyi_audit_tree_size") == len(
        runtime.store.notifications(0, 1000))
    runtime.audit_follower.stop()
    import_codes(client, keys, product, codes(3))
    assert client.get("/healthz").json()["audit_lag"] >= 3
    assert metric(client, "quanyi_audit_lag_events") >= 3


def test_healthz_degrades_while_the_audit_follower_fails_and_recovers(client, keys, product,
                                                                     runtime):
    import_codes(client, keys, product, codes(1))
    assert eventually(lambda: runtime.audit.position() == runtime.store.last_position())
    with runtime.audit.db.transaction() as cursor:
        cursor.execute("DROP TABLE audit_tiles")  # the follower now fails for real
    import_codes(client, keys, product, codes(3))
    assert eventually(lambda: runtime.audit_follower.health.failing)

    answer = client.get("/healthz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "degraded" and body["audit_lag"] > 0
    assert body["audit_failure"]["position"] == runtime.audit.position() + 1
    assert metric(client, "quanyi_audit_failing") == 1
    assert metric(client, "quanyi_audit_errors_total") >= 1

    runtime.audit.tables.create()  # the operator puts the table back: it is rebuilt below
    with runtime.audit.db.transaction() as cursor:
        cursor.execute("UPDATE audit_state SET tree_size = 0, position = 0")
    assert eventually(lambda: client.get("/healthz").status_code == 200)
    assert metric(client, "quanyi_audit_failing") == 0
    from replay.audit_verify import verify_audit

    assert eventually(lambda: runtime.audit.position() == runtime.store.last_position())
    assert verify_audit(runtime.audit).mismatch is None
