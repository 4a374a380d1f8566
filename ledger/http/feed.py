"""What one ``/events/stream`` client is fed: its filter and cursor (``Listener``) and the
bounded queue between the reading threads and its response (``Mailbox``).

A record is decoded once (``Entry``) for every listener; a listener picks what it wants and
labels each message with its own full cursor (see ``ledger.http.hub`` for the design).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Final

from ledger.codec import Codec
from ledger.consumers.subscriber import EventFilter
from ledger.domain.events import AnyEvent
from ledger.eventlog.base import StoredRecord
from ledger.wire import InvalidRecord, decode, dump_event

__all__ = ["Entry", "Failure", "Item", "Listener", "Mailbox", "Message", "format_positions"]

BACKLOG: Final = 5000
"""Messages one stream may have waiting in memory; beyond that it is too slow and dropped."""


def format_positions(positions: Mapping[int, int]) -> str:
    """The SSE id: the next offset to read in every partition, ``"0:13,1:7"``."""
    return ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))


@dataclass(frozen=True, slots=True)
class Message:
    """One SSE message: an event, or (``data`` None) an id-only checkpoint."""

    id: str
    type: str | None = None
    data: str | None = None

    def render(self) -> str:
        if self.data is None:
            return f"id: {self.id}\n\n"
        return f"id: {self.id}\nevent: {self.type}\ndata: {self.data}\n\n"


@dataclass(frozen=True, slots=True)
class Failure:
    """The stream ends with ``event: error`` carrying ``reason``."""

    reason: str


Item = Message | Failure


class Entry:
    """A record decoded once for every listener. ``cursor`` is the reader's full cursor just
    after it; ``event`` is None for a record that is no ledger event (the projector
    dead-letters it, streams never show it). The JSON is rendered on first use, once."""

    __slots__ = ("_message", "cursor", "event", "offset", "partition")

    def __init__(self, record: StoredRecord, codec: Codec, cursor: str) -> None:
        self.partition, self.offset, self.cursor = record.partition, record.offset, cursor
        self._message: Message | None = None
        try:
            self.event: AnyEvent | None = decode(record, codec)
        except InvalidRecord:
            self.event = None

    def message(self) -> Message:
        if self._message is None:
            assert self.event is not None
            data = dump_event(self.event).decode()
            self._message = Message(self.cursor, self.event.type, data)
        return self._message


class Listener:
    """One stream: its filter, its cursor and its mailbox. Owned by one thread at a time:
    its catch-up reader, then (once joined) the hub's reader.

    ``positions`` is the stream's cursor. While joined and not ahead of the hub it equals
    the hub's, so the hub's cursor strings are reused and ``positions`` is not kept up to
    date; ``ahead`` holds the partitions where the stream started past the hub (records
    there before its cursor were already delivered, or predate it: they are skipped)."""

    def __init__(self, where: EventFilter, positions: Mapping[int, int], mailbox: Mailbox) -> None:
        self.where, self.mailbox = where, mailbox
        self.positions = dict(positions)
        self.start_id = self.last_id = format_positions(positions)
        self.ahead: dict[int, int] = {}
        self.stop = threading.Event()  # set when the stream ends: its readers give up

    def behind(self, live: Mapping[int, int]) -> bool:
        """True while some partition still has records before ``live`` for this stream."""
        return any(self.positions.get(p, 0) < offset for p, offset in live.items())

    def join(self, live: Mapping[int, int]) -> None:
        """From now on fed by the reader at ``live`` (never ahead of this stream)."""
        self.ahead = {p: o for p, o in self.positions.items() if o > live.get(p, 0)}

    def select(self, entries: Sequence[Entry], end: str) -> list[Item]:
        """The messages of ``entries`` for this stream, then a checkpoint with the cursor
        ``end`` (the reader's, after the last entry) if it moved past the last message."""
        out: list[Item] = []
        for entry in entries:
            if self.ahead and not self._reached(entry):
                continue
            if entry.event is None or not self.where(entry.event):
                continue
            shared = entry.message()
            message = shared if not self.ahead else Message(self._cursor(entry.cursor), shared.type, shared.data)
            out.append(message)
            self.last_id = message.id
        cursor = self._cursor(end)
        if cursor != self.last_id:
            out.append(Message(cursor))
            self.last_id = cursor
        return out

    def _reached(self, entry: Entry) -> bool:
        """False for a record before this stream's cursor; tracks ``positions`` meanwhile."""
        first = self.ahead.get(entry.partition)
        if first is not None:
            if entry.offset < first:
                return False
            del self.ahead[entry.partition]
        self.positions[entry.partition] = entry.offset + 1
        return True

    def _cursor(self, shared: str) -> str:
        return shared if not self.ahead else format_positions(self.positions)


class Mailbox:
    """A stream's bounded queue from a reading thread to the response's event loop.

    The hub ``offer``s (never waits: a full mailbox refuses, the hub drops the stream); a
    catch-up reader offers only what has room, and waits for room with no reader open (it
    reads for this stream alone). The response ``take``s everything pending at once, woken
    through its event loop."""

    def __init__(self, limit: int = BACKLOG, on_take: Callable[[], None] = lambda: None) -> None:
        self.limit = limit
        self._items: deque[Item] = deque()
        self._cond = threading.Condition()
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._on_take = on_take

    @property
    def pending(self) -> int:
        return len(self._items)

    def offer(self, items: Sequence[Item]) -> bool:
        """Add ``items`` unless that would pass the limit (then add nothing)."""
        with self._cond:
            if len(self._items) + len(items) > self.limit:
                return False
            self._items.extend(items)
            self._wake()
        return True

    def has_room(self, need: int) -> bool:
        """Whether ``need`` more messages fit now (an empty mailbox takes anything)."""
        with self._cond:
            return not self._items or len(self._items) + need <= self.limit

    def wait_for_room(self, need: int, stop: threading.Event) -> bool:
        """Wait until ``need`` more messages fit; False once ``stop`` is set."""
        with self._cond:
            while self._items and len(self._items) + need > self.limit:
                if stop.is_set():
                    return False
                self._cond.wait(0.2)
        return not stop.is_set()

    def fail(self, reason: str) -> None:
        """End the stream: what is pending is dropped (its client never had it, so its
        ``Last-Event-ID`` still resumes exactly), the failure is all that is left."""
        with self._cond:
            self._items.clear()
            self._items.append(Failure(reason))
            self._wake()

    async def take(self, timeout: float) -> list[Item]:
        """Everything pending, waiting up to ``timeout`` seconds for something ([] if none)."""
        ready = asyncio.Event()
        with self._cond:
            waiting = not self._items
            if waiting:
                self._waiter = (asyncio.get_running_loop(), ready)
        if waiting:
            with suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), timeout)
        with self._cond:
            self._waiter = None
            items = list(self._items)
            self._items.clear()
            self._cond.notify_all()
        if items:
            self._on_take()
        return items

    def _wake(self) -> None:
        """Called holding the lock: wake the response if it waits."""
        if self._waiter is not None:
            loop, ready = self._waiter
            self._waiter = None
            with suppress(RuntimeError):  # the event loop closed: the stream is gone
                loop.call_soon_threadsafe(ready.set)
