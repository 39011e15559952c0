"""A TCP proxy between the engine and PostgreSQL that loses one commit's answer: once a
connection has sent a marked value (bytes of one command's events), the proxy forwards
that connection's COMMIT, lets the server commit it, and closes the connection before the
server's answer comes back - as a network cut or a database restart at that instant does.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urlsplit, urlunsplit

COMMIT_SETTLE_SECONDS = 0.3


class CommitCuttingProxy:
    """Listens on a loopback port and forwards to the PostgreSQL of ``database_url``."""

    def __init__(self, database_url: str) -> None:
        parts = urlsplit(database_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        port = self._listener.getsockname()[1]
        auth = parts.netloc.rpartition("@")[0]
        self.url = urlunsplit(parts._replace(netloc=f"{auth}@127.0.0.1:{port}"))
        self._markers: tuple[bytes, ...] = ()
        self._drop_on: bytes | None = None
        self._drop_every = False
        self._lock = threading.Lock()
        self.cuts = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_after_commit_of(self, marker: bytes) -> None:
        """Lose the answer to the next commit of a transaction that sent ``marker`` (as it
        is, or hex-encoded as a bytea parameter travels in text form)."""
        with self._lock:
            self._markers = (marker, marker.hex().encode())

    def drop_connection_sending(self, marker: bytes, *, every: bool = False) -> None:
        """Close the next connection that sends ``marker`` (``every``: each one, until
        ``stop_dropping``), before the server sees it."""
        with self._lock:
            self._drop_on, self._drop_every = marker, every

    def stop_dropping(self) -> None:
        with self._lock:
            self._drop_on = None

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._upstream)
            threading.Thread(target=self._to_server, args=(client, server), daemon=True).start()
            threading.Thread(target=_pump, args=(server, client), daemon=True).start()

    def _to_server(self, client: socket.socket, server: socket.socket) -> None:
        marked = False
        while data := _recv(client):
            with self._lock:
                dropped = self._drop_on is not None and self._drop_on in data
                if dropped:
                    self._drop_on = self._drop_on if self._drop_every else None
                    self.cuts += 1
            if dropped:
                _close(client, server)
                return
            with self._lock:
                marked = marked or any(m in data for m in self._markers)
                cut = marked and b"COMMIT" in data
                if cut:
                    self._markers = ()
            server.sendall(data)
            if cut:
                time.sleep(COMMIT_SETTLE_SECONDS)  # the server commits meanwhile
                self.cuts += 1
                _close(client, server)
                return
        _close(client, server)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _pump(source: socket.socket, target: socket.socket) -> None:
    while data := _recv(source):
        try:
            target.sendall(data)
        except OSError:
            break
    _close(source, target)


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
