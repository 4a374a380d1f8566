"""Rebuild with zero downtime: replay the log from offset 0 into a fresh shadow copy of the
views while the live projector keeps serving (first in bulk, ``consumers.bulk_load``, then
what arrived meanwhile batch by batch), catch the shadow up to the live offsets while live
writes are held back, optionally compare it row by row, then let the backend's ``Swapper``
swap it in atomically.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from ledger.codec import PLAIN, Codec
from ledger.consumers.bulk_load import BulkLoad
from ledger.consumers.deadletter import DeadLetterSink
from ledger.consumers.projector import Projector
from ledger.eventlog.base import EventLog
from ledger.eventlog.group import WholeLogSource
from ledger.progress import Progress
from ledger.projections.diff import Diff, compare
from ledger.projections.rebuild import Swapper
from ledger.projections.store import ViewWriter

log = logging.getLogger(__name__)


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
                bulk_events = self._replay(projector)
                diffs: list[Diff] = []

                def inspect() -> bool:
                    if verify or dry_run:
                        diffs.append(compare(self.swapper.live, shadow))
                    return not dry_run

                swapped = self.swapper.swap(shadow, lambda: self._catch_up(projector), inspect)
            finally:
                projector.close()
            if not swapped:
                shadow.drop()
            shadow.close()
        seconds = time.monotonic() - started
        events = bulk_events + projector.stats.events
        log.info("rebuild finished", extra={"events": events, "seconds": seconds, "swapped": swapped})
        return RebuildReport(events, seconds, swapped, diffs[0] if diffs else None)

    def _projector(self, shadow: ViewWriter) -> Projector:
        return Projector(WholeLogSource(self.log), shadow, DeadLetterSink(None), codec=self.codec,
                         projection=self.projection, batch_size=self.batch_size, batch_wait_ms=0,
                         poll_timeout_ms=100)  # fmt: skip

    def _replay(self, projector: Projector) -> int:
        """Steps 1 and 2: load everything there is now in bulk, then replay what arrived
        meanwhile, until the shadow is close enough to the live views to catch up with
        writes held back. Returns the events the bulk load applied."""
        total = sum(self.log.end_offsets().values())
        self.progress.start(total)
        bulk = BulkLoad(self.log, projector.store, codec=self.codec, projection=self.projection,
                        chunk_size=self.batch_size, progress=self.progress.update)  # fmt: skip
        bulk_events = bulk.run()
        loaded = bulk.records
        projector.add_commit_listener(lambda stats: self.progress.update(loaded + stats.events + stats.dead_letters))
        while True:
            projector.run_until_caught_up()
            live = self.swapper.live.offsets(self.projection, self.log.topic)
            behind = sum(live.values()) - sum(projector.store.offsets(self.projection, self.log.topic).values())
            if behind <= self.batch_size:
                break
            self.progress.start(sum(self.log.end_offsets().values()))
        self.progress.finish()
        return bulk_events

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
