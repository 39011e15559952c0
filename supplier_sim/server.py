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


class AppThread:
    """An ASGI app on a free port of 127.0.0.1 (or the one given), in a daemon thread: the
    simulator for tests and benchmarks, and any app a test serves over real HTTP."""

    def __init__(self, app: Any, *, name: str, host: str = "127.0.0.1", port: int = 0,
                 lifespan: str = "on") -> None:
        settings = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                  timeout_graceful_shutdown=1, lifespan=lifespan)
        self._server = uvicorn.Server(settings)
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)
        self._name = name
        self.url = ""

    def start(self) -> "AppThread":
        self._thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"{self._name} did not start")
            time.sleep(0.01)
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> "AppThread":
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()


class SimServer(AppThread):
    """The simulator in a thread: ``with SimServer(...) as sim: sim.url``."""

    def __init__(self, config: SimConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        super().__init__(create_app(config or SimConfig()), name="supplier-sim", host=host,
                         port=port)

    def admin(self) -> "SimAdmin":
        return SimAdmin(self.url)


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
