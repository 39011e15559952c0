"""Supplier callbacks are the one path anyone may post to: their body ceiling (64 KiB, a
report's size) holds before the body is read, declared or streamed, whatever the ceiling of
the other paths (QUANYI_MAX_BODY_BYTES)."""

import select
import socket
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from bench.common import SERVERS, peak_rss_mib, serve_subprocess
from engine.topups.supplier_port import MAX_CALLBACK_BYTES

CALLBACK = "/v1/suppliers/sup-x/callbacks"
CHUNK = 16 * 1024


def _scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "scheme": "http", "http_version": "1.1",
            "server": ("test", 80), "client": ("test", 1), "state": {},
            "headers": [(b"content-type", b"application/json"), *headers]}


def _call(client, scope: dict, receive) -> list[dict]:
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    client.portal.call(client.app, scope, receive, send)
    return sent


def test_a_callback_declaring_more_than_its_ceiling_is_413_unread(client):
    async def receive():
        raise AssertionError("the body was read")

    scope = _scope(CALLBACK, [(b"content-length", str(MAX_CALLBACK_BYTES + 1).encode())])
    assert _call(client, scope, receive)[0]["status"] == 413


def test_a_streamed_callback_is_cut_off_once_past_its_ceiling(client):
    read = 0

    async def receive():
        nonlocal read
        read += CHUNK
        return {"type": "http.request", "body": b" " * CHUNK, "more_body": True}

    sent = _call(client, _scope(CALLBACK, []), receive)
    assert sent[0]["status"] == 413
    assert read <= MAX_CALLBACK_BYTES + CHUNK


def test_other_paths_keep_the_general_ceiling(client, keys):
    answer = client.post("/v1/products", headers=keys["app"], json={
        "sku": "BIG-NAME", "name": "n" * 100, "delivery": "card", "price": 100,
        "padding": " " * (2 * MAX_CALLBACK_BYTES)})
    assert answer.status_code != 413, answer.text


def _stream_until_answered(base: str, megabytes: int) -> bytes:
    """Send a chunked callback of ``megabytes`` MiB; the status line of the answer the
    server gives (at once or once the body ends), or b"" if it dropped the connection."""
    address = urlsplit(base)
    head = (f"POST {CALLBACK} HTTP/1.1\r\nHost: {address.hostname}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
    with socket.create_connection((address.hostname, address.port), timeout=30) as conn:
        try:
            conn.sendall(head)
            for _ in range(megabytes * 16):
                if select.select([conn], [], [], 0)[0]:
                    break
                conn.sendall(chunk)
            else:
                conn.sendall(b"0\r\n\r\n")
            return conn.recv(4096).split(b"\r\n", 1)[0]
        except (BrokenPipeError, ConnectionResetError):
            return b""


def test_parallel_large_callbacks_leave_the_servers_memory_alone(quanyi_env):
    with serve_subprocess(quanyi_env) as (base, _):
        pid = SERVERS[base]
        _stream_until_answered(base, 1)  # warm: the first request's imports and pools
        before = peak_rss_mib(pid)
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _: _stream_until_answered(base, 8), range(8)))
        grown = peak_rss_mib(pid) - before
    assert grown < 24, f"the server grew by {grown:.0f} MiB"
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 413 ")]
    assert refused and all(a == b"" or a in refused for a in answers), answers
