"""The benchmark's events: a simulated fleet (``ledger.simulate``) in chunks, so a million
events never sit in memory as pydantic objects; the records they encode to are kept as
plain bytes for the raw baselines, which must send exactly the same bytes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ledger.domain.events import AnyEvent
from ledger.simulate import simulate
from ledger.wire import encode

TASKS_PER_CHUNK = 2_000
"""~9,000 events: one ``emit_many`` call of the SDK, like a busy worker's batch."""

RawRecord = tuple[bytes, bytes, list[tuple[str, bytes]]]
"""(key, value, headers) exactly as the SDK hands them to the producer."""


def event_chunks(total: int, *, seed: int = 7, start: datetime | None = None) -> Iterator[list[AnyEvent]]:
    """``total`` events of a realistic fleet (about 4.4 events a task, 1 % duplicate appends,
    1 % late RECEIVED events, a few periodic tasks), in emission order, chunk by chunk."""
    start = start or datetime.now(UTC) - timedelta(days=2)
    left, index = total, 0
    while left > 0:
        tasks = min(TASKS_PER_CHUNK, max(1, left // 4))
        chunk = simulate(tasks, seed=seed + index, start=start + timedelta(seconds=index * TASKS_PER_CHUNK / 10),
                         periodic=3 if index == 0 else 0, duplicates=tasks // 100, late=tasks // 100)  # fmt: skip
        chunk = chunk[:left]
        left -= len(chunk)
        index += 1
        yield chunk


def live_events(count: int, *, seed: int) -> list[AnyEvent]:
    """Fresh tasks for the latency phase: in-order lifecycles only (no duplicates, no late
    events, no periodic tasks), so each event becomes its task's ``last_event_id``."""
    events = simulate(max(1, count // 4), seed=seed, periodic=0, start=datetime.now(UTC))
    return events[:count]


def raw_records(events: Sequence[AnyEvent]) -> list[RawRecord]:
    """The bytes the SDK sends for ``events`` (same encoder, default codec)."""
    records = []
    for event in events:
        record = encode(event)
        records.append((record.key.encode(), record.value, list(record.headers)))
    return records


@dataclass
class SizeStats:
    """Sizes of the records' values (the event JSON), to show the events are realistic."""

    count: int = 0
    total: int = 0
    smallest: int = 0
    largest: int = 0

    def add(self, records: Sequence[RawRecord]) -> None:
        sizes = [len(value) for _, value, _ in records]
        if not sizes:
            return
        self.smallest = min(sizes) if not self.count else min(self.smallest, *sizes)
        self.largest = max(self.largest, *sizes)
        self.count += len(sizes)
        self.total += sum(sizes)

    def as_dict(self) -> dict[str, float]:
        mean = self.total / self.count if self.count else 0.0
        return {"events": self.count, "mean_bytes": round(mean, 1), "min_bytes": self.smallest,
                "max_bytes": self.largest}  # fmt: skip
