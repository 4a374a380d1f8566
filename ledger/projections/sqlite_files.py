"""The SQLite views file as several processes share it: opening it without creating it
(readers), telling a replaced file from the one opened (a rebuild renames a new file over
it), and the writer lock that keeps a projector and a rebuild from both writing it.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from pathlib import Path
from typing import IO
from urllib.parse import quote

from ledger.projections.store import ViewsNotCreated, ViewStoreUnavailable

__all__ = ["FileIdentity", "ViewsHeld", "WriterLock", "connect_views", "file_identity"]


FileIdentity = tuple[int, int] | None
"""(device, inode) of a file, None when it is missing: tells a replaced file from the one opened."""


def file_identity(path: Path) -> FileIdentity:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


def connect_views(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """A connection to the views file. ``create``: make the directory and file (writers);
    otherwise the file must exist with the views' tables (``ViewsNotCreated`` names it)."""
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    uri = f"file:{quote(str(path.absolute()))}?mode={'rwc' if create else 'rw'}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)
    except sqlite3.OperationalError as exc:
        if not create and not path.is_file():
            raise ViewsNotCreated(str(path)) from None
        raise ViewStoreUnavailable(f"SQLite views file {path} cannot be opened: {exc}") from exc
    try:
        (tables,) = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'task_meta'")
        if not create and tables[0] == 0:
            raise ViewsNotCreated(str(path))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ViewStoreUnavailable(f"SQLite views file {path} is not usable: {exc}") from exc
    except ViewsNotCreated:
        conn.close()
        raise
    return conn


class ViewsHeld(ViewStoreUnavailable):
    """Another process holds the views' ``WriterLock``; ``pid`` is the one it recorded."""

    def __init__(self, message: str, pid: str) -> None:
        super().__init__(message)
        self.pid = pid


_held: dict[Path, tuple[IO[str], int]] = {}
"""Writer locks this process holds: the open lock file and how many stores share it."""
_held_guard = threading.Lock()


class WriterLock:
    """An exclusive ``flock`` on ``<views file>.lock``, which holds the holder's pid. A
    projector takes it at its first batch and keeps it until ``close()``; a rebuild takes it
    for its whole run. Without it a rebuild could rename a new file over the views while a
    projector goes on writing the replaced one, forever and unseen. It keeps processes
    apart: the stores of one process share it. The OS drops it when its holder dies."""

    def __init__(self, views: Path) -> None:
        self.views = views
        self.path = views.with_name(views.name + ".lock")
        self._key = self.path.absolute()
        self.held = False

    def acquire(self) -> None:
        """Take it without waiting (a no-op if held); ``ViewsHeld`` naming the holder if taken."""
        if self.held:
            return
        with _held_guard:
            handle, count = _held.get(self._key) or (self._take(), 0)
            _held[self._key] = (handle, count + 1)
        self.held = True

    def _take(self) -> IO[str]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115  (open while held)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            handle.close()
            raise ViewsHeld(f"the views {self.views} are held by process {pid}", pid) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return handle

    def release(self) -> None:
        if not self.held:
            return
        with _held_guard:
            handle, count = _held.pop(self._key)
            if count > 1:
                _held[self._key] = (handle, count - 1)
            else:
                handle.close()  # closing the file drops the flock
        self.held = False
