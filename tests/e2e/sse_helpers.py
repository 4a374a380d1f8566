"""Helpers of the ``/events/stream`` tests: the app under a real uvicorn server in a thread,
a parser of the event stream, the server's own counts of its streams (``/metrics``) and
the connections this process holds to the broker (what the broker sees)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI

DEADLINE_S = 20.0


@dataclass
class Message:
    id: str | None = None
    event: str | None = None
    data: str | None = None
    comment: bool = False


class Server:
    """The app under uvicorn in a background thread, on a free port of 127.0.0.1."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class _Parser:
    """SSE lines → messages (blank line ends one; ``:`` starts a comment)."""

    def __init__(self) -> None:
        self.current = Message()

    def feed(self, line: str) -> Message | None:
        if not line:
            done, self.current = self.current, Message()
            return done if done != Message() else None
        if line.startswith(":"):
            self.current.comment = True
        else:
            field, _, value = line.partition(":")
            if field in ("id", "event", "data"):
                setattr(self.current, field, value.removeprefix(" "))
        return None


def parse(lines: Iterable[str]) -> Iterator[Message]:
    parser = _Parser()
    for line in lines:
        message = parser.feed(line)
        if message is not None:
            yield message


def messages(response: httpx.Response) -> Iterator[Message]:
    return parse(response.iter_lines())


async def amessages(response: httpx.Response) -> AsyncIterator[Message]:
    parser = _Parser()
    async for line in response.aiter_lines():
        message = parser.feed(line)
        if message is not None:
            yield message


def collect(received: Iterator[Message], want: int, *, idle_after: int = 2) -> tuple[list[Message], str | None]:
    """Events until ``want`` arrived, then ``idle_after`` keep-alives (so late extras would
    show); returns the events and the last id seen, as a browser's EventSource keeps it."""
    events: list[Message] = []
    last_id, idle, deadline = None, 0, time.monotonic() + DEADLINE_S
    for message in received:
        assert time.monotonic() < deadline, f"only {len(events)} of {want} events arrived"
        last_id = message.id or last_id
        if message.event is not None:
            events.append(message)
        elif len(events) >= want:
            idle += 1
        if len(events) >= want and (idle >= idle_after or idle_after == 0):
            break
    return events, last_id


def stream_counts(base_url: str) -> dict[str, float]:
    """The server's ``ledger_sse_*`` samples from ``/metrics``: open streams, log readers,
    streams dropped."""
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    counts = {}
    for line in text.splitlines():
        if line.startswith("ledger_sse_"):
            name, _, value = line.partition(" ")
            counts[name.removeprefix("ledger_sse_")] = float(value)
    return counts


def wait_for_counts(base_url: str, **expected: float) -> dict[str, float]:
    """Wait until ``/metrics`` shows ``expected`` (e.g. ``streams=0``); fail after a while."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        counts = stream_counts(base_url)
        if all(counts.get(name) == value for name, value in expected.items()):
            return counts
        assert time.monotonic() < deadline, f"the server's stream counts stayed {counts}, expected {expected}"
        time.sleep(0.05)


def connections_to(port: int) -> int:
    """TCP connections this process (the test and the server under it) has established to
    ``port`` on any host: read from ``/proc``, as ``ss -tp`` would show them."""
    sockets = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            sockets.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                remote_port, state, inode = int(fields[2].rsplit(":", 1)[1], 16), fields[3], fields[9]
                count += remote_port == port and state == "01" and inode in sockets  # 01: ESTABLISHED
    return count
