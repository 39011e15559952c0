"""A `quanyi serve` process on PostgreSQL holds no more connections than its budget
(QUANYI_DATABASE_MAX_CONNECTIONS, default 16) under load from many clients, and gives back
the ones left idle (QUANYI_DATABASE_IDLE_SECONDS): counted in pg_stat_activity by the
application_name its URL gives every connection."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from bench.common import serve_subprocess
from engine.settings import DATABASE_MAX_CONNECTIONS
from tests.integration.helpers import stocked_over_http

CLIENTS = 48
IDLE_SECONDS = 1
PER_POOL_KEPT = 6  # one each: event store, read side, audit log, LISTEN, probe, lease


@pytest.fixture(params=["postgres"])
def store_kind(request):
    return request.param


class ConnectionCount:
    """Samples how many connections the server holds, in a thread, keeping the peak."""

    def __init__(self, url: str, application: str) -> None:
        self._conn = psycopg.connect(url, autocommit=True)
        self._application = application
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def now(self) -> int:
        return self._conn.execute("SELECT count(*) FROM pg_stat_activity "
                                  "WHERE application_name = %s",
                                  (self._application,)).fetchone()[0]

    def __enter__(self) -> "ConnectionCount":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.now())


def test_a_server_stays_within_its_budget_and_lets_idle_connections_go(quanyi_env):
    application = f"qt-budget-{uuid.uuid4().hex[:8]}"
    url = quanyi_env["QUANYI_DATABASE_URL"]
    named = f"{url}{'&' if '?' in url else '?'}application_name={application}"
    env = {**quanyi_env, "QUANYI_DATABASE_URL": named,
           "QUANYI_DATABASE_IDLE_SECONDS": str(IDLE_SECONDS)}
    with serve_subprocess(env) as (base, key), httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http, \
            ConnectionCount(url, application) as count:
        sku = stocked_over_http(http, CLIENTS * 4, "BUD")
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            answers = list(pool.map(lambda n: _shop(base, key, sku, n), range(CLIENTS)))
        busy_peak = count.peak
        deadline = time.monotonic() + 60
        while count.now() > PER_POOL_KEPT and time.monotonic() < deadline:
            time.sleep(0.5)
        idle = count.now()
    assert all(status in (200, 201) for statuses in answers for status in statuses), answers
    assert busy_peak > PER_POOL_KEPT  # the load did need more than one connection a pool
    assert busy_peak <= DATABASE_MAX_CONNECTIONS, busy_peak
    assert idle <= PER_POOL_KEPT, idle


def _shop(base: str, key: str, sku: str, n: int) -> list[int]:
    """A client reading and ordering: the statuses it was answered."""
    statuses = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                      timeout=60) as http:
        for attempt in range(4):
            statuses.append(http.get(f"/v1/products/{sku}").status_code)
            statuses.append(http.get(f"/v1/products/{sku}/inventory").status_code)
            placed = http.post("/v1/orders", json={"buyer_id": f"b-{n}-{attempt}",
                                                   "items": [{"sku": sku, "quantity": 1}]})
            statuses.append(placed.status_code)
            order_id = placed.json().get("order_id")
            statuses.append(http.get(f"/v1/orders/{order_id}").status_code)
    return statuses
