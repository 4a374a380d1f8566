"""The SQLite half of a rebuild: the shadow is a second file, the swap an atomic rename of
it over the live file.

A rebuild holds the live views' writer lock (``sqlite_files.WriterLock``) from start to swap, so
it refuses to start while a projector holds them (a projector writing on into the file the
rename replaced would be lost), and a projector started meanwhile waits for it, then reads
the new file. A second lock file keeps two rebuilds apart."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from ledger.projections.rebuild import CatchUp, Inspect, RebuildInProgress, Swapper
from ledger.projections.sqlite import SqliteViewWriter
from ledger.projections.sqlite_files import ViewsHeld
from ledger.projections.store import ViewWriter


class SqliteSwapper(Swapper):
    def __init__(self, live: SqliteViewWriter) -> None:
        self._live = live
        self.shadow_path = live.path.with_name(live.path.stem + "-rebuild.db")

    @property
    def live(self) -> SqliteViewWriter:
        return self._live

    @contextmanager
    def lock(self) -> Iterator[None]:
        path = self.live.path.with_name(self.live.path.name + ".rebuild.lock")
        with open(path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RebuildInProgress(f"another rebuild of {self.live.path} is running (lock {path})") from None
            try:
                self.live.writer_lock.acquire()
            except ViewsHeld as held:
                raise ViewsHeld(
                    f"the views {self.live.path} are held by process {held.pid} (a running `ledger project`?): "
                    "stop it first, then rebuild",
                    held.pid,
                ) from None
            try:
                yield
            finally:
                self.live.writer_lock.release()

    def create_shadow(self) -> ViewWriter:
        shadow = SqliteViewWriter(self.shadow_path)
        shadow.drop()
        shadow.migrate()
        return shadow

    def swap(self, shadow: ViewWriter, catch_up: CatchUp, inspect: Inspect) -> bool:
        assert isinstance(shadow, SqliteViewWriter)
        catch_up()
        if not inspect():
            return False
        with shadow.database.reading() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        shadow.close()
        shadow.writer_lock.path.unlink(missing_ok=True)
        self.live.disconnect()  # the writer lock stays held until the file is in place
        os.replace(shadow.path, self.live.path)
        for suffix in ("-wal", "-shm"):
            self.live.path.with_name(self.live.path.name + suffix).unlink(missing_ok=True)
        return True
