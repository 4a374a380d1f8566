"""One reader of the event log per server process, feeding every ``/events/stream`` client.

Why: a log consumer per open browser tab does not scale (500 tabs, 500 consumers on the
broker). The hub's thread follows the log from its end as of the first stream, decodes
each record once and hands every joined stream (a ``Listener``) what its filter wants.

Exact resume. Every message id is the stream's full cursor: the next offset in every
partition, as of just after that message. A stream starts at a cursor ``C`` (its
``Last-Event-ID``, or the log's end or beginning); the hub is at its live position ``H``,
the cursor after the last record it handed out. Under the hub's lock, which every
hand-out also holds:

- ``C`` behind ``H`` in no partition: the stream joins; it gets every record the hub reads
  after ``H``. Where ``C`` is ahead of ``H`` (the stream resolved the log's end while the
  hub was still reading towards it), records before ``C`` are skipped and the stream's ids
  are its own cursor until the hub reaches ``C``.
- ``C`` behind somewhere: the stream catches up on its own (``read`` from ``C`` up to
  ``H``), then tries to join against the hub's new ``H``, and so on until it joins. Reads
  stop at ``H`` and joining is atomic with hand-outs, so every record after ``C`` reaches
  the stream once: no gap, no duplicate. At most ``catch_up_readers`` streams read at once
  (a restarted server's clients all resume together), and a catch-up whose mailbox is full
  closes its reader and gives its slot back until its client has taken some.

Bounded memory. A stream's mailbox holds at most ``backlog`` messages (shared by all
streams). The hub never waits for one stream: a joined stream whose mailbox would overflow
is dropped with ``event: error`` (its client resumes with ``Last-Event-ID``). The hub waits
only when no joined stream has room, at the pace of the fastest one.

The hub starts with the first stream, stops with the server, and reopens a failed reader
at ``H`` (``ledger.retry``). Streams beyond ``max_streams`` get ``StreamLimit`` (a 503).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, TypeVar

from ledger.codec import Codec
from ledger.consumers.subscriber import EventFilter
from ledger.eventlog.base import EventLog, StoredRecord
from ledger.http.feed import BACKLOG, Entry, Item, Listener, Mailbox, format_positions
from ledger.http.resources import BackendUnavailable, backend_errors
from ledger.retry import Backoff

__all__ = ["Hub", "HubStats", "StreamLimit"]

_log = logging.getLogger(__name__)
T = TypeVar("T")
SLICE: Final = 500
"""Most records handed out at once (a Kafka poll may bring 20,000)."""
CATCH_UP_READERS: Final = 8
"""Most streams reading the log on their own at once (resumed from behind the hub)."""


class StreamLimit(RuntimeError):
    """As many streams are open as the server allows."""


@dataclass(frozen=True, slots=True)
class HubStats:
    streams: int  # open streams, joined or catching up
    readers: int  # log readers open for them: the hub's one, plus catch-ups under way
    dropped: int  # streams dropped for being too slow, since start


class Hub:
    """The server's one feed of ``/events/stream``; thread-safe."""

    def __init__(self, open_log: Callable[[], EventLog], codec: Codec, *, max_streams: int,
                 poll_timeout_ms: int, backlog: int = BACKLOG,
                 catch_up_readers: int = CATCH_UP_READERS) -> None:  # fmt: skip
        self._open_log, self._codec = open_log, codec
        self.max_streams, self.poll_timeout_ms, self.backlog = max_streams, poll_timeout_ms, backlog
        self._slice = max(1, min(SLICE, backlog // 4))
        self._lock = threading.Lock()  # guards everything below, and every hand-out
        self._start_lock = threading.Lock()
        self._live: dict[int, int] = {}
        self._joined: set[Listener] = set()
        self._open: set[Listener] = set()
        self._streams = self._readers = self._dropped = 0
        self._catch_ups = threading.BoundedSemaphore(catch_up_readers)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._room = threading.Event()  # a mailbox was emptied or a stream closed

    # -- streams (request threads) ---------------------------------------------------------
    def open(self, where: EventFilter, start: Callable[[EventLog], Mapping[int, int]]) -> Listener:
        """A new stream from the cursor ``start(log)`` gives; ``StreamLimit`` when full.
        ``close`` it when its response ends."""
        with self._lock:
            if self._streams >= self.max_streams:
                raise StreamLimit(f"{self._streams} event streams are open, the most this server allows "
                                  "(LEDGER_SSE_MAX_STREAMS); retry later")  # fmt: skip
            self._streams += 1
        try:
            log = self._open_log()
            listener = Listener(where, start(log), Mailbox(self.backlog, self._room.set))
            self._start(log)
            self._attach(listener, log)
        except BaseException:
            with self._lock:
                self._streams -= 1
            raise
        return listener

    def close(self, listener: Listener) -> None:
        """The stream ended (idempotent): its readers stop, its slot is free."""
        with self._lock:
            if listener.stop.is_set():
                return
            listener.stop.set()
            self._joined.discard(listener)
            self._open.discard(listener)
            self._streams -= 1
        self._room.set()

    def stats(self) -> HubStats:
        with self._lock:
            return HubStats(self._streams, self._readers, self._dropped)

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop the reader (the server is going away); streams still open end with an error."""
        self._stop.set()
        self._room.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        with self._lock:
            remaining = list(self._open)
        for listener in remaining:
            listener.mailbox.fail("the server is shutting down; reconnect with Last-Event-ID to resume")
            self.close(listener)

    def _start(self, log: EventLog) -> None:
        with self._start_lock:
            if self._stop.is_set():
                raise BackendUnavailable("event_log", "the server is shutting down")
            if self._thread is not None and self._thread.is_alive():
                return
            if self._thread is None:  # else a reader that died goes on from where it was
                with backend_errors("event_log"):
                    live = log.end_offsets()
                with self._lock:
                    self._live = live
            self._thread = threading.Thread(target=self._run, args=(log,), name="sse-hub", daemon=True)
            self._thread.start()

    def _attach(self, listener: Listener, log: EventLog) -> None:
        with self._lock:
            self._open.add(listener)
            if self._join(listener):
                return
        threading.Thread(target=self._catch_up, args=(listener, log), name="sse-reader", daemon=True).start()

    def _join(self, listener: Listener) -> bool:
        """Called holding the lock: join the live feed if the stream is not behind it."""
        if listener.behind(self._live):
            return False
        listener.join(self._live)
        self._joined.add(listener)
        return True

    # -- catch-up (a thread per stream that starts behind the hub; few reading at once) -----
    def _catch_up(self, listener: Listener, log: EventLog) -> None:
        try:
            while not (listener.stop.is_set() or self._stop.is_set()):
                with self._lock:
                    if listener.stop.is_set() or self._join(listener):
                        return
                    target = dict(self._live)
                if not listener.mailbox.wait_for_room(self._slice + 1, listener.stop):
                    return  # the stream ended while its client was taking what it had
                with self._catch_up_slot(listener.stop) as reading:
                    if reading:
                        self._read(listener, log, target)
        except Exception as exc:
            if not listener.stop.is_set():
                _log.warning("event stream catch-up failed", extra={"error": repr(exc)})
                listener.mailbox.fail(f"event_log: {type(exc).__name__}: {exc}")

    @contextmanager
    def _catch_up_slot(self, stop: threading.Event) -> Iterator[bool]:
        """One of the ``catch_up_readers`` reading slots (False if ``stop`` came first), so
        a burst of resuming clients (a server restart) never opens a reader per client."""
        while not self._catch_ups.acquire(timeout=0.2):
            if stop.is_set() or self._stop.is_set():
                yield False
                return
        with self._lock:
            self._readers += 1
        try:
            yield True
        finally:
            with self._lock:
                self._readers -= 1
            self._catch_ups.release()

    def _read(self, listener: Listener, log: EventLog, target: dict[int, int]) -> None:
        """Feed ``listener`` from its cursor towards ``target`` until it gets there or its
        mailbox is full: the reader and its slot are given back rather than held while a
        client takes its time (only this thread adds to the mailbox, so room stays room)."""
        positions, mailbox, need = listener.positions, listener.mailbox, self._slice + 1
        with _closing(log.read(dict(positions), stop=target)) as records:
            batch: list[Entry] = []
            for record in records:
                positions[record.partition] = record.offset + 1
                batch.append(Entry(record, self._codec, format_positions(positions)))
                if len(batch) == self._slice:
                    _give(mailbox, listener.select(batch, batch[-1].cursor))
                    batch = []
                    if listener.stop.is_set() or not mailbox.has_room(need):
                        return
        for partition, offset in target.items():  # offsets that hold no record (compaction)
            positions[partition] = max(positions.get(partition, 0), offset)
        _give(mailbox, listener.select(batch, format_positions(positions)))

    # -- the live reader (the hub's thread) --------------------------------------------------
    def _run(self, log: EventLog) -> None:
        """Follow the log until the hub stops; a failed reader (broker away) is reopened at
        the hub's position with the backend retry policy, its streams kept waiting."""
        backoff = Backoff("event stream reader failed, retrying", _log)
        while not self._stop.is_set():
            try:
                self._follow(log, backoff)
            except Exception as exc:
                backoff.failed(exc)
                backoff.wait(self._stop)

    def _follow(self, log: EventLog, backoff: Backoff) -> None:
        with self._lock:
            start = dict(self._live)
            self._readers += 1
        try:
            with _closing(log.subscribe(start, stop_event=self._stop, poll_timeout_ms=self.poll_timeout_ms)) as batches:
                for batch in batches:
                    backoff.succeeded()
                    for first in range(0, len(batch), self._slice):
                        self._hand_out(batch[first : first + self._slice])
        finally:
            with self._lock:
                self._readers -= 1

    def _hand_out(self, records: Sequence[StoredRecord]) -> None:
        """Give ``records`` to every joined stream, dropping those with no room left."""
        if not self._wait_for_room(len(records) + 1):
            return
        with self._lock:
            if not self._joined:  # nobody listens: move on without decoding
                for record in records:
                    self._live[record.partition] = record.offset + 1
                return
            live = dict(self._live)  # only this thread changes it
        entries = []
        for record in records:
            live[record.partition] = record.offset + 1
            entries.append(Entry(record, self._codec, format_positions(live)))
        with self._lock:
            for listener in list(self._joined):
                items = listener.select(entries, entries[-1].cursor)
                if items and not listener.mailbox.offer(items):
                    self._drop(listener)
            self._live = live

    def _wait_for_room(self, need: int) -> bool:
        """Wait until some joined stream can take ``need`` more messages (or none is joined);
        False once the hub stops."""
        while not self._stop.is_set():
            self._room.clear()
            with self._lock:
                if not self._joined or any(s.mailbox.has_room(need) for s in self._joined):
                    return True
            self._room.wait(0.5)
        return False

    def _drop(self, listener: Listener) -> None:
        """Called holding the lock: the stream is too slow; it ends with an error."""
        self._joined.discard(listener)
        self._dropped += 1
        _log.info("slow event stream dropped", extra={"backlog": self.backlog})
        listener.mailbox.fail(
            f"too slow: {self.backlog} messages were waiting for this stream, so it was dropped "
            "(the others go on); reconnect with Last-Event-ID to resume where it stopped"
        )


def _give(mailbox: Mailbox, items: Sequence[Item]) -> None:
    """A catch-up's hand-over, which had room: a refusal would be a gap, so it fails loudly."""
    if not mailbox.offer(items):
        raise RuntimeError(f"a catch-up found no room for {len(items)} messages it had room for")


@contextmanager
def _closing(iterator: Iterator[T]) -> Iterator[Iterator[T]]:
    """Close an iterator of the log when done with it (the Kafka adapter's consumer goes)."""
    try:
        yield iterator
    finally:
        if close := getattr(iterator, "close", None):
            close()
