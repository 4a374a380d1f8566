"""Rebuild with zero downtime: replay the log from offset 0 into a fresh shadow copy of the
views while the live projector keeps serving, catch the shadow up to the live offsets
while live writes are held back, optionally compare it row by row, then swap it in
atomically so readers see either the old views or the new ones, never a half-built view.

Backends supply the parts that differ behind ``Swapper`` (PostgreSQL: schemas, advisory
locks and a schema rename in one transaction; SQLite: a lock file and an atomic file
rename, with the projector stopped, as befits the single-process embedded backend).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from ledger.codec import PLAIN, Codec
from ledger.consumers.deadletter import DeadLetterSink
from ledger.consumers.projector import Projector
from ledger.eventlog.base import EventLog
from ledger.eventlog.group import WholeLogSource
from ledger.progress import Progress
from ledger.projections.diff import Diff, compare
from ledger.projections.store import ViewStore

log = logging.getLogger(__name__)

CatchUp = Callable[[], None]
"""Brings the shadow to exactly the live offsets (called while live writes are held back)."""
Inspect = Callable[[], bool]
"""Called once the shadow equals the live offsets; returns whether to swap."""


class RebuildInProgress(RuntimeError):
    """Another rebuild holds the lock."""


class Swapper(ABC):
    """The backend-specific half of a rebuild."""

    @property
    @abstractmethod
    def live(self) -> ViewStore:
        """The live views this swapper rebuilds."""

    @abstractmethod
    def lock(self) -> AbstractContextManager[None]:
        """Held for the whole rebuild; raises ``RebuildInProgress`` if already held."""

    @abstractmethod
    def create_shadow(self) -> ViewStore:
        """A fresh, migrated, empty copy of the views (leftovers of a crashed rebuild go)."""

    @abstractmethod
    def swap(self, shadow: ViewStore, catch_up: CatchUp, inspect: Inspect) -> bool:
        """Hold live writes back, ``catch_up`` the shadow to the live offsets, ``inspect``,
        and if it says so make the shadow the live views atomically. Returns whether it did."""

    @abstractmethod
    def rows(self, store: ViewStore, table: str) -> tuple[list[str], Iterator[tuple[object, ...]]]:
        """A table's column names and its rows ordered by primary key (for ``compare``)."""


@dataclass
class RebuildReport:
    events: int
    seconds: float
    swapped: bool
    diff: Diff | None


class Rebuild:
    """One rebuild run: ``run()`` does it all, in the order the module docstring gives."""

    def __init__(self, swapper: Swapper, log: EventLog, *, codec: Codec = PLAIN, projection: str = "views",
                 batch_size: int = 10_000, progress: Progress | None = None) -> None:  # fmt: skip
        self.swapper, self.log, self.codec = swapper, log, codec
        self.projection, self.batch_size = projection, batch_size
        self.progress = progress or Progress("rebuild", quiet=True)

    def run(self, *, verify: bool = False, dry_run: bool = False) -> RebuildReport:
        started = time.monotonic()
        with self.swapper.lock():
            shadow = self.swapper.create_shadow()
            projector = self._projector(shadow)
            try:
                self._replay(projector)
                diffs: list[Diff] = []

                def inspect() -> bool:
                    if verify or dry_run:
                        diffs.append(compare(self.swapper, self.swapper.live, shadow))
                    return not dry_run

                swapped = self.swapper.swap(shadow, lambda: self._catch_up(projector), inspect)
            finally:
                projector.close()
            if not swapped:
                shadow.drop()
            shadow.close()
        seconds = time.monotonic() - started
        log.info("rebuild finished", extra={"events": projector.stats.events, "seconds": seconds, "swapped": swapped})
        return RebuildReport(projector.stats.events, seconds, swapped, diffs[0] if diffs else None)

    def _projector(self, shadow: ViewStore) -> Projector:
        return Projector(WholeLogSource(self.log), shadow, DeadLetterSink(None), codec=self.codec,
                         projection=self.projection, batch_size=self.batch_size, batch_wait_ms=0,
                         poll_timeout_ms=100)  # fmt: skip

    def _replay(self, projector: Projector) -> None:
        """Steps 1 and 2: replay everything there is now, then what arrived meanwhile, until
        the shadow is close enough to the live views to catch up with writes held back."""
        total = sum(self.log.end_offsets().values())
        self.progress.start(total)
        projector.add_commit_listener(lambda stats: self.progress.update(stats.events + stats.dead_letters))
        while True:
            projector.run_until_caught_up()
            live = self.swapper.live.offsets(self.projection, self.log.topic)
            behind = sum(live.values()) - sum(projector.store.offsets(self.projection, self.log.topic).values())
            if behind <= self.batch_size:
                break
            self.progress.start(sum(self.log.end_offsets().values()))
        self.progress.finish()

    def _catch_up(self, projector: Projector) -> None:
        """Step 3: apply exactly the records between the shadow's offsets and the live ones."""
        offsets = self.swapper.live.offsets(self.projection, self.log.topic)
        shadow_offsets = projector.store.offsets(self.projection, self.log.topic)
        stop = {p: offsets.get(p, 0) for p in range(self.log.partitions)}
        batch = []
        for record in self.log.read(shadow_offsets, stop=stop):
            batch.append(record)
            if len(batch) >= self.batch_size:
                projector.process(batch)
                batch = []
        if batch:
            projector.process(batch)
