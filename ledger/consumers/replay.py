"""Replay a window of the log to a consumer: for a service that must reprocess what it saw
(a bug fixed, a new subscriber backfilled) without touching the views or any group offset.

Windows are cut on RECORD timestamps (``StoredRecord.timestamp_ms``: the producer's create
time on Kafka, the append time on the embedded log), resolved per partition with
``EventLog.offsets_for_time`` (Kafka's offsets-for-times), so a window is the same set of
records however often it is replayed. ``[since, until)`` is half-open: consecutive
windows tile the log without overlap. A record is never dropped: one that cannot be decoded
is yielded with the reason, for the caller to skip, count or dead-letter.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from ledger.codec import Codec
from ledger.domain.events import AnyEvent
from ledger.eventlog.base import EventLog, Start, StoredRecord
from ledger.timeutil import ceil_ms, require_aware
from ledger.wire import InvalidRecord, decode

__all__ = ["Replayed", "replay"]


@dataclass(frozen=True, slots=True)
class Replayed:
    """One record of the window: its event, or (``event`` None) why it has none."""

    event: AnyEvent | None
    record: StoredRecord
    error: str | None


def replay(
    log: EventLog,
    codec: Codec,
    *,
    since: datetime | None = None,
    start: Mapping[int, int] | str | None = None,
    until: datetime | None = None,
) -> Iterator[Replayed]:
    """Every record from ``since`` (record time, inclusive) or ``start`` (positions, or
    "beginning"/"end"; default "beginning") up to ``until`` (record time, exclusive; default:
    the end offsets now: a replay never waits for new records), in log order per partition.
    ``codec`` must be the producers' (a wrong one makes every record an error, loudly).
    Arguments are checked and the window's offsets resolved at the call, not at the first
    ``next``: a bad argument fails where it was given, and the window does not drift."""
    if since is not None and start is not None:
        raise ValueError("since, start: give one of them, not both")
    begin: Start = "beginning" if start is None else start
    if since is not None:
        begin = log.offsets_for_time(ceil_ms(require_aware(since, "since")))
    stop = log.offsets_for_time(ceil_ms(require_aware(until, "until"))) if until is not None else None
    return _decoded(log.read(begin, stop=stop), codec)


def _decoded(records: Iterator[StoredRecord], codec: Codec) -> Iterator[Replayed]:
    for record in records:
        try:
            yield Replayed(decode(record, codec), record, None)
        except InvalidRecord as exc:
            yield Replayed(None, record, exc.reason)
