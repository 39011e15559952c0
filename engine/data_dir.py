"""The data directory, private to the user the engine runs as.

The SQLite store, the read database and the secret key live there. The event log and the
keyed hashes are worth nothing to other local users, so the directory is made 0700 and every
file the engine keeps in it 0600, whatever the umask, and also when they already existed
(made by hand, by an older version, or restored from a backup with wider modes).

SQLite gives its ``-wal``, ``-shm`` and ``-journal`` files the mode of the database file, so a
database file created 0600 before SQLite first opens it keeps those private too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """The directory, created if missing, with mode 0700."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """An existing file in a private directory, narrowed to 0600."""
    private_dir(path.parent)
    os.chmod(path, FILE_MODE)
    return path


def private_database(path: Path) -> Path:
    """A SQLite database file (empty if new) and its companions, 0600, in a private dir."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    os.chmod(path, FILE_MODE)
    for suffix in SQLITE_COMPANIONS:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(path.with_name(path.name + suffix), FILE_MODE)
    return path
