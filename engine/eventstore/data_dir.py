"""The data directory, private to the user the engine runs as.

The SQLite store, the read database and the secret key live there. The event log and the
keyed hashes are nobody else's business, so the directory is made 0700 and every file the
engine keeps in it 0600, whatever the umask, and also when they already existed (made by
hand, by an older version, or restored from a backup with wider modes).

SQLite gives its ``-wal``, ``-shm`` and ``-journal`` files the mode of the database file, so a
database file created 0600 before SQLite first opens it keeps those private too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from engine.kernel.errors import SettingsError

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """The directory, created if missing, with mode 0700."""
    try:
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"cannot create the data directory {path}: {exc.strerror}") \
            from None
    _narrow(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """An existing file in a private directory, narrowed to 0600."""
    private_dir(path.parent)
    _narrow(path, FILE_MODE)
    return path


def private_database(path: Path) -> Path:
    """A SQLite database file (empty if new) and its companions, 0600, in a private dir."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    except OSError as exc:
        raise SettingsError(f"cannot open {path}: {exc.strerror}") from None
    for candidate in (path, *(path.with_name(path.name + s) for s in SQLITE_COMPANIONS)):
        if candidate.exists():
            _narrow(candidate, FILE_MODE)
    return path


def _narrow(path: Path, mode: int) -> None:
    try:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)
    except OSError as exc:
        raise SettingsError(f"cannot make {path} private (mode {mode:o}): {exc.strerror}") \
            from None
