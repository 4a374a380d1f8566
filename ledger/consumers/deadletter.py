"""Dead letters: records that cannot be decoded or validated go to ``<topic>.dlq`` with the
reason and their original coordinates in headers, so no bad record blocks a partition
(invariant 4) and none is lost: ``ledger dlq replay`` can put them back once fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.eventlog.base import EventLog, LogRecord, StoredRecord

DLQ_SUFFIX = ".dlq"
HEADER_TOPIC = "ledger_dlq_topic"
HEADER_PARTITION = "ledger_dlq_partition"
HEADER_OFFSET = "ledger_dlq_offset"
HEADER_REASON = "ledger_dlq_reason"
_DLQ_HEADERS = frozenset({HEADER_TOPIC, HEADER_PARTITION, HEADER_OFFSET, HEADER_REASON})


def dead_letter_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


def dead_letter(record: StoredRecord, reason: str) -> LogRecord:
    """The dead-letter copy of ``record``: same key, value and headers, plus where it came
    from and why it was refused."""
    headers = (
        *(h for h in record.headers if h[0] not in _DLQ_HEADERS),
        (HEADER_TOPIC, record.topic.encode()),
        (HEADER_PARTITION, str(record.partition).encode()),
        (HEADER_OFFSET, str(record.offset).encode()),
        (HEADER_REASON, reason.encode()[:4096]),
    )
    key = (record.key or b"").decode("utf-8", errors="replace")
    return LogRecord(key=key, value=record.value or b"", headers=headers)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead-lettered record as read back from the dead-letter topic."""

    topic: str
    partition: int
    offset: int
    reason: str
    record: StoredRecord


def read_dead_letter(record: StoredRecord) -> DeadLetter:
    headers = {name: value.decode(errors="replace") for name, value in record.headers}
    return DeadLetter(
        topic=headers.get(HEADER_TOPIC, "?"),
        partition=int(headers.get(HEADER_PARTITION, -1)),
        offset=int(headers.get(HEADER_OFFSET, -1)),
        reason=headers.get(HEADER_REASON, "?"),
        record=record,
    )


def original(letter: DeadLetter) -> LogRecord:
    """The record as it was before it was dead-lettered, for a replay onto the main topic."""
    headers = tuple(h for h in letter.record.headers if h[0] not in _DLQ_HEADERS)
    key = (letter.record.key or b"").decode("utf-8", errors="replace")
    return LogRecord(key=key, value=letter.record.value or b"", headers=headers)


@dataclass
class DeadLetterSink:
    """Collects a batch's dead letters; ``flush`` appends them before the batch commits.
    Without a log (a rebuild replaying records the live projector already dead-lettered)
    it only counts them."""

    log: EventLog | None
    pending: list[LogRecord] = field(default_factory=list)
    total: int = 0

    def add(self, record: StoredRecord, reason: str) -> None:
        self.pending.append(dead_letter(record, reason))

    def flush(self) -> int:
        count = len(self.pending)
        if count and self.log is not None:
            self.log.append(self.pending)
        self.total += count
        self.pending = []
        return count
