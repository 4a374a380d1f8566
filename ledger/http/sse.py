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

Every stream of the server is fed by one reader of the log (``ledger.http.hub``: how a
resume from an older cursor catches up exactly, and how a slow client is dropped); this
module translates the request and writes the response.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ledger.consumers.subscriber import EventFilter
from ledger.eventlog.base import EventLog
from ledger.http.feed import Failure, Item, Listener, Message
from ledger.http.hub import Hub, StreamLimit
from ledger.http.params import Status, Text, invalid, parse_positions
from ledger.http.resources import BackendsDep, backend_errors

__all__ = ["event_stream", "router"]

RETRY_MS: Final = 2000
router = APIRouter(tags=["events"])


def _hub(request: Request) -> Hub:
    hub: Hub = request.app.state.sse_hub
    return hub


async def event_stream(listener: Listener, keepalive_s: float) -> AsyncIterator[str]:
    """The response body. Checkpoints (id-only messages) are held back and sent in place of
    a keep-alive comment, so a busy stream of filtered-out events stays quiet."""
    loop = asyncio.get_running_loop()
    yield f"retry: {RETRY_MS}\nid: {listener.start_id}\n\n"
    written, checkpoint = loop.time(), None
    while True:
        items = await listener.mailbox.take(max(0.0, written + keepalive_s - loop.time()))
        chunk, checkpoint, failure = _render(items, checkpoint)
        if chunk:
            yield chunk
            written = loop.time()
        if failure is not None:
            yield f"event: error\ndata: {json.dumps({'detail': failure.reason})}\n\n"
            return
        if loop.time() >= written + keepalive_s:
            yield checkpoint.render() if checkpoint else ": keep-alive\n\n"
            written, checkpoint = loop.time(), None


def _render(items: list[Item], checkpoint: Message | None) -> tuple[str, Message | None, Failure | None]:
    """The events of ``items`` as one chunk, the checkpoint still held back, the failure."""
    parts: list[str] = []
    for item in items:
        if isinstance(item, Failure):
            return "".join(parts), None, item
        if item.data is None:
            checkpoint = item
        else:
            parts.append(item.render())
            checkpoint = None
    return "".join(parts), checkpoint, None


class EventStreamResponse(StreamingResponse):
    """The stream's slot in the hub is given back however the response ends (finished,
    client gone, cancelled), even if its body never started."""

    def __init__(self, hub: Hub, listener: Listener, keepalive_s: float) -> None:
        super().__init__(
            event_stream(listener, keepalive_s),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self.hub, self.listener = hub, listener

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.hub.close(self.listener)


@router.get(
    "/events/stream",
    response_class=StreamingResponse,
    summary="Stream events (Server-Sent Events)",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "an endless text/event-stream"},
        503: {"description": "the event log is unreachable, or too many streams are open"},
    },
)
def stream_events(
    backends: BackendsDep,
    hub: Annotated[Hub, Depends(_hub)],
    status: Annotated[list[Status] | None, Query(description="repeatable")] = None,
    name: Annotated[list[Text] | None, Query(description="task name, repeatable")] = None,
    task_id: Annotated[list[Text] | None, Query(description="repeatable")] = None,
    start: Annotated[Literal["beginning", "end"], Query(alias="from", description="first connection only")] = "end",
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", description="resume after this id")] = None,
) -> StreamingResponse:
    """Events as they are appended; ``Last-Event-ID`` resumes exactly after that event."""
    where = EventFilter(status or (), name or (), task_id or ())
    try:
        listener = hub.open(where, lambda event_log: _start(event_log, start, last_event_id))
    except StreamLimit as exc:
        raise HTTPException(503, detail=str(exc), headers={"Retry-After": "5"}) from None
    return EventStreamResponse(hub, listener, backends.sse_keepalive_s)


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
