"""A private PostgreSQL cluster for one campaign: its own folder and port, so that it can be
restarted without touching the server other tests share. Removed afterwards."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

BINARIES = Path("/usr/lib/postgresql")
SETTINGS = ("-c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off "
            "-c full_page_writes=off -c shared_buffers=64MB")


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's bin folder."""
    versions = sorted((p for p in BINARIES.glob("*/bin") if (p / "initdb").exists()),
                      key=lambda p: int(p.parent.name))
    if not versions:
        raise RuntimeError(f"no PostgreSQL under {BINARIES}: install postgresql")
    return versions[-1]


class PrivatePostgres:
    """initdb into a temporary folder and pg_ctl on a port of its own. As root, the cluster
    runs as the `postgres` user (PostgreSQL refuses to run as root)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bin = postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="quanyi-campaign-pg-"))
        self.data = self.root / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> PrivatePostgres:
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                      "--no-sync", "-E", "UTF8")
        self._ctl("start", "-o", f"-p {self.port} -k {self.root} {SETTINGS}",
                  "-l", str(self.root / "postgres.log"))
        return self

    def stop(self, mode: str = "fast") -> None:
        self._ctl("stop", "-m", mode)

    def remove(self) -> None:
        """Stop the cluster if it runs, and delete its folder."""
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _ctl(self, action: str, *args: str) -> None:
        self._run("pg_ctl", action, "-D", str(self.data), "-w", "-t", "60", *args)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)
