"""``GET /events/stream``: the ledger's events as Server-Sent Events, filtered server-side
and resumable without a gap or a duplicate.

Each message's ``id`` is a full cursor: the next offset to read in EVERY partition,
``"0:13,1:7,2:40"`` (the Kafka committed-offset convention), as of just after that event.
One partition's position alone could not say where the others were, so a resume from it
would skip or repeat events there; the full cursor fully determines the resume. A client
sends it back as ``Last-Event-ID`` (browsers' ``EventSource`` does so by itself), and the
stream restarts exactly after that event. The first message is an id-only one with the
starting cursor, and when only filtered-out events went by, the keep-alive carries the
advanced cursor (id-only messages move ``lastEventId`` without dispatching an event), so a
reconnect neither rescans nor misses anything.

``EventLog.subscribe`` blocks, so a thread reads it and hands messages to the response's
async generator through a bounded queue (a slow client slows its reader, not the server's
memory); the thread stops when the client goes away.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterable, Mapping
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from ledger.codec import Codec
from ledger.consumers.subscriber import EventFilter
from ledger.eventlog.base import EventLog, StoredRecord
from ledger.http.params import Status, Text, invalid, parse_positions
from ledger.http.resources import BackendsDep, backend_errors
from ledger.wire import EVENT_ADAPTER, InvalidRecord, decode

__all__ = ["Subscription", "event_stream", "format_positions", "router"]

log = logging.getLogger(__name__)
QUEUE_SIZE: Final = 1000
RETRY_MS: Final = 2000
HAND_OFF_WAIT_S: Final = 0.5
router = APIRouter(tags=["events"])


def format_positions(positions: Mapping[int, int]) -> str:
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
    reason: str


Item = Message | Failure


class Subscription:
    """The reader thread's side: follow the log from ``positions``, decode, filter."""

    def __init__(
        self, log: EventLog, codec: Codec, positions: dict[int, int], where: EventFilter, poll_timeout_ms: int
    ) -> None:
        self.log, self.codec, self.where = log, codec, where
        self.positions = dict(positions)
        self.start_id = format_positions(positions)
        self.poll_timeout_ms = poll_timeout_ms

    def run(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Item], stop: threading.Event) -> None:
        hand = _HandOff(loop, queue, stop)
        try:
            self._follow(hand, stop)
        except Exception as exc:
            if not stop.is_set():
                log.warning("event stream failed", extra={"error": repr(exc)})
                hand(Failure(f"event_log: {type(exc).__name__}: {exc}"))

    def _follow(self, hand: _HandOff, stop: threading.Event) -> None:
        batches = self.log.subscribe(dict(self.positions), stop_event=stop, poll_timeout_ms=self.poll_timeout_ms)
        try:
            for batch in batches:
                if stop.is_set() or not self._forward(batch, hand):
                    return
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()  # the Kafka adapter closes its consumer here

    def _forward(self, batch: Iterable[StoredRecord], hand: _HandOff) -> bool:
        skipped = False
        for record in batch:
            self.positions[record.partition] = record.offset + 1
            message = self._message(record)
            skipped = message is None
            if message is not None and not hand(message):
                return False
        return hand(Message(format_positions(self.positions))) if skipped else True

    def _message(self, record: StoredRecord) -> Message | None:
        try:
            event = decode(record, self.codec)
        except InvalidRecord:
            return None  # the projector dead-letters it; subscribers never see it
        if not self.where(event):
            return None
        data = EVENT_ADAPTER.dump_json(event).decode()
        return Message(format_positions(self.positions), event.type, data)


class _HandOff:
    """Puts items on the response's queue from the reader thread, waiting while it is full
    (back-pressure); returns False once the stream stopped or the loop is gone."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Item], stop: threading.Event) -> None:
        self.loop, self.queue, self.stop = loop, queue, stop

    def __call__(self, item: Item) -> bool:
        try:
            future = asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop)
        except RuntimeError:  # the event loop closed under us
            return False
        while not self.stop.is_set():
            try:
                future.result(HAND_OFF_WAIT_S)
                return True
            except TimeoutError:
                continue
            except (CancelledError, asyncio.CancelledError):
                return False
        future.cancel()
        return False


async def event_stream(subscription: Subscription, keepalive_s: float) -> AsyncIterator[str]:
    """The response body. Checkpoints (id-only messages) are held back and sent in place of
    a keep-alive comment, so a busy stream of filtered-out events stays quiet."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=QUEUE_SIZE)
    stop = threading.Event()
    reader = threading.Thread(target=subscription.run, args=(loop, queue, stop), name="sse-reader", daemon=True)
    reader.start()
    try:
        yield f"retry: {RETRY_MS}\nid: {subscription.start_id}\n\n"
        written, checkpoint = loop.time(), None
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), max(0.0, written + keepalive_s - loop.time()))
            except TimeoutError:
                yield checkpoint.render() if checkpoint else ": keep-alive\n\n"
                written, checkpoint = loop.time(), None
                continue
            if isinstance(item, Failure):
                yield f"event: error\ndata: {json.dumps({'detail': item.reason})}\n\n"
                return
            if item.data is None:
                checkpoint = item
                continue
            yield item.render()
            written, checkpoint = loop.time(), None
    finally:
        stop.set()  # the reader notices within one poll timeout and closes its consumer


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    summary="Stream events (Server-Sent Events)",
    responses={200: {"content": {"text/event-stream": {}}, "description": "an endless text/event-stream"}},
)
def stream_events(
    backends: BackendsDep,
    status: Annotated[list[Status] | None, Query(description="repeatable")] = None,
    name: Annotated[list[Text] | None, Query(description="task name, repeatable")] = None,
    task_id: Annotated[list[Text] | None, Query(description="repeatable")] = None,
    start: Annotated[Literal["beginning", "end"], Query(alias="from", description="first connection only")] = "end",
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", description="resume after this id")] = None,
) -> StreamingResponse:
    """Events as they are appended; ``Last-Event-ID`` resumes exactly after that event."""
    where = EventFilter(status or (), name or (), task_id or ())
    event_log = backends.log
    positions = _start(event_log, start, last_event_id)
    subscription = Subscription(event_log, backends.codec, positions, where, backends.sse_poll_timeout_ms)
    return StreamingResponse(
        event_stream(subscription, backends.sse_keepalive_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _start(event_log: EventLog, start: str, last_event_id: str | None) -> dict[int, int]:
    """Resolved now, before the response starts: events appended once the client has the
    first message are never missed."""
    with backend_errors("event_log"):
        if last_event_id is None:
            return event_log.resolve(start)
        ends = event_log.end_offsets()
    try:
        positions = parse_positions(last_event_id.strip(), event_log.partitions)
    except ValueError as exc:
        raise invalid(("header", "Last-Event-ID"), str(exc), last_event_id) from None
    for partition, offset in positions.items():
        if offset > ends.get(partition, 0):
            message = f"offset {offset} of partition {partition} is past the log's end ({ends.get(partition, 0)})"
            raise invalid(("header", "Last-Event-ID"), message, last_event_id)
    with backend_errors("event_log"):
        return event_log.resolve(positions)
