"""The simulator's callbacks: signed as docs/suppliers.md says, sent late, and on request
sent twice or out of order, and again while our side does not answer 2xx."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from supplier_adapters.http_json import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from supplier_sim.config import SimConfig

if TYPE_CHECKING:
    from supplier_sim.app import Books, Topup

FIRST_RETRY_SECONDS = 0.2
SEND_TIMEOUT_SECONDS = 5.0


class CallbackSender:
    """Sends callbacks in the background of the simulator's event loop."""

    def __init__(self, config: Callable[[], SimConfig]) -> None:
        self._config = config
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent: list[dict[str, Any]] = []  # every attempt, and what our side answered

    def later(self, topup: "Topup", wanted: bool) -> None:
        """Call back the outcome already answered, when the settings ask for that."""
        if wanted:
            self._spawn(self._deliver(topup.answer(), stale=None))

    def resolve_later(self, topup: "Topup", books: "Books", *, fails: bool) -> None:
        """Decide a pending top-up after the callback delay, then call back its outcome."""
        stale = topup.answer()
        self._spawn(self._resolve(topup, books, fails, stale))

    @asynccontextmanager
    async def lifespan(self, _: Any) -> AsyncIterator[None]:
        """The app's lifespan: callbacks still waiting are dropped when it stops."""
        yield
        for task in list(self._tasks):
            task.cancel()

    async def _resolve(self, topup: "Topup", books: "Books", fails: bool,
                       stale: dict[str, Any]) -> None:
        await asyncio.sleep(self._config().callback_delay_ms / 1000)
        if topup.status == "pending":
            if fails:
                books.refuse(topup, "declined by the operator")
            else:
                books.credit(topup)
        await self._deliver(topup.answer(), stale=stale)

    async def _deliver(self, final: dict[str, Any], stale: dict[str, Any] | None) -> None:
        config = self._config()
        if not config.callback_url:
            return
        bodies = [final] * (1 + config.duplicate_callbacks)
        if config.out_of_order and stale is not None:
            bodies.append(stale)  # "pending" arrives after the outcome it preceded
        async with httpx.AsyncClient(timeout=SEND_TIMEOUT_SECONDS) as client:
            for body in bodies:
                await self._send(client, config, body)

    async def _send(self, client: httpx.AsyncClient, config: SimConfig,
                    body: dict[str, Any]) -> None:
        raw = orjson.dumps(body)
        for attempt in range(config.callback_retries + 1):
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: stamp,
                       SIGNATURE_HEADER: signature(config.callback_secret, stamp, raw)}
            try:
                answer = await client.post(config.callback_url or "", content=raw,
                                           headers=headers)
                status: int | str = answer.status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            self.sent.append({"reference": body["reference"], "status": body["status"],
                              "sequence": body["sequence"], "answered": status})
            if isinstance(status, int) and 200 <= status < 300:
                return
            await asyncio.sleep(FIRST_RETRY_SECONDS * 2**attempt)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
