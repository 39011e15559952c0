"""Running the simulator: in the foreground (``quanyi supplier-sim``), or in a thread of a
test or benchmark on a free port of 127.0.0.1 (``SimServer``), with ``SimAdmin`` to drive it."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import uvicorn

from supplier_sim.app import create_app
from supplier_sim.config import SimConfig

START_SECONDS = 10.0


def serve(config: SimConfig, host: str = "127.0.0.1", port: int = 8700) -> None:
    """Run the simulator until interrupted."""
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning",
                timeout_graceful_shutdown=1)


class SimServer:
    """The simulator on a free port of 127.0.0.1, in a daemon thread: ``with SimServer(...)
    as sim: sim.url``."""

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        settings = uvicorn.Config(create_app(config or SimConfig()), host=host, port=port,
                                  log_level="warning", timeout_graceful_shutdown=1,
                                  lifespan="on")
        self._server = uvicorn.Server(settings)
        self._thread = threading.Thread(target=self._server.run, name="supplier-sim",
                                        daemon=True)
        self.url = ""

    def start(self) -> "SimServer":
        self._thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the supplier simulator did not start")
            time.sleep(0.01)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def admin(self) -> "SimAdmin":
        return SimAdmin(self.url)

    def __enter__(self) -> "SimServer":
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()


class SimAdmin:
    """The simulator's admin endpoints, for tests and benchmarks."""

    def __init__(self, url: str) -> None:
        self._http = httpx.Client(base_url=url, timeout=10)

    def configure(self, **changes: Any) -> dict[str, Any]:
        answer = self._http.put("/_sim/config", json=changes)
        answer.raise_for_status()
        return answer.json()

    def credits(self, account: str) -> int:
        """How many times the simulator credited this account."""
        return self._http.get(f"/_sim/accounts/{account}").json()["credits"]

    def topup(self, reference: str) -> dict[str, Any] | None:
        answer = self._http.get(f"/_sim/topups/{reference}")
        return answer.json() if answer.status_code == 200 else None

    def callbacks(self) -> list[dict[str, Any]]:
        return self._http.get("/_sim/callbacks").json()["callbacks"]

    def reset(self) -> None:
        self._http.post("/_sim/reset").raise_for_status()

    def close(self) -> None:
        self._http.close()
