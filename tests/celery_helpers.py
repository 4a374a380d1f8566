"""Helpers for the Celery integration tests: a log that can be broken on demand, waiting
for a worker that acknowledges results before it sends its last signals, histories, and
(for the zero-change route) a real worker of an app with no ledger code, a real
``ledger ingest celery`` process and raw messages on the event exchange."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery, Signature
from celery.result import AsyncResult
from kombu import Connection, Exchange, Queue

from ledger.eventlog.base import AppendError, EventLog, LogRecord, PendingAppend, Position, Start, StoredRecord
from ledger.projections.store import ViewWriter


class BreakableLog(EventLog):
    """``inner``, except that every append raises ``AppendError`` while ``broken``."""

    def __init__(self, inner: EventLog) -> None:
        self.inner, self.topic, self.partitions = inner, inner.topic, inner.partitions
        self.broken = False

    def _check(self) -> None:
        if self.broken:
            raise AppendError("the log is broken (test)")

    def append(self, records: Sequence[LogRecord]) -> list[Position]:
        self._check()
        return self.inner.append(records)

    def append_nowait(self, records: Sequence[LogRecord]) -> PendingAppend:
        self._check()
        return self.inner.append_nowait(records)

    def flush(self, timeout: float | None = None) -> None:
        self.inner.flush(timeout)

    def _read_ranges(self, ranges: dict[int, tuple[int, int]]) -> Iterator[StoredRecord]:
        return self.inner._read_ranges(ranges)

    def subscribe(self, start: Start = "end", *, stop_event: threading.Event | None = None,
                  poll_timeout_ms: int | None = None) -> Iterator[list[StoredRecord]]:
        return self.inner.subscribe(start, stop_event=stop_event, poll_timeout_ms=poll_timeout_ms)

    def end_offsets(self) -> dict[int, int]:
        return self.inner.end_offsets()

    def beginning_offsets(self) -> dict[int, int]:
        return self.inner.beginning_offsets()

    def offsets_for_time(self, timestamp_ms: int) -> dict[int, int]:
        return self.inner.offsets_for_time(timestamp_ms)

    def partition_for(self, key: str) -> int:
        return self.inner.partition_for(key)

    def close(self) -> None:
        self.inner.close()


def eventually(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait for ``check()``: a worker stores a result before it sends ``task_success``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def history(store: ViewWriter, task_ids: Sequence[str]) -> Mapping[str, list[tuple[int, str]]]:
    """Per task, ``(attempt, event type)`` in log order within each attempt. Across
    attempts the log order is a race (a retry's RETRY and the next attempt's RECEIVED come
    from two threads), within one attempt it is causal."""
    rows: dict[str, list[tuple[int, str]]] = {task_id: [] for task_id in task_ids}
    for row in store.task_history(task_ids):
        rows[row.key].append((row.attempt, row.type))
    return {task_id: sorted(events, key=lambda e: e[0]) for task_id, events in rows.items()}


# -- real Celery workers and a real ingester, on a real broker (the zero-change route) --------

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Fleet:
    """A real ``celery worker`` (prefork, 2 processes, ``-E``) of an app (``tests.apps.plain``
    unless told) on a queue of its own, and a client of the same broker and result backend."""

    broker: str
    queue: str
    client: Celery
    worker: subprocess.Popen[str]

    def send(self, name: str, *args: Any, **options: Any) -> AsyncResult:
        return self.client.send_task(name, args=args, queue=self.queue, **options)

    def signature(self, name: str, *args: Any) -> Signature:
        return self.client.signature(name, args=args, queue=self.queue)


def result_backend(broker: str) -> str:
    """The same Redis, or RPC over RabbitMQ (results sent back to the client)."""
    return broker if broker.startswith("redis") else "rpc://"


@contextmanager
def celery_fleet(
    broker: str, app: str = "tests.apps.plain", environ: Mapping[str, str] | None = None
) -> Iterator[Fleet]:
    """``app``'s worker with ``environ`` (default: this process's environment; an app that
    records with ``install(app)`` reads its ``LEDGER_*`` settings there)."""
    queue = f"ingest-{uuid.uuid4().hex[:10]}"
    backend = result_backend(broker)
    env = {**(os.environ if environ is None else environ), "LEDGER_TEST_CELERY_BROKER": broker,
           "LEDGER_TEST_CELERY_BACKEND": backend, "LEDGER_TEST_CELERY_QUEUE": queue,
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    # its log goes to a file: a pipe nobody reads fills up (64 KiB, about 80 failures'
    # tracebacks) and then blocks the worker in the middle of a task
    with tempfile.TemporaryFile("w+") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", app, "worker", "-P", "prefork", "-c", "2", "-E",
             "-Q", queue, "-n", f"{queue}@%h", "--without-mingle", "--without-gossip", "-l", "WARNING"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, text=True,
        )  # fmt: skip
        client = Celery("client", broker=broker, backend=backend, set_as_current=False)
        client.conf.update(task_send_sent_event=True, result_extended=True)
        try:
            deadline = time.monotonic() + 60
            while not client.control.ping(destination=[f"{queue}@{socket.gethostname()}"], timeout=0.5):
                if worker.poll() is not None:
                    log.seek(0)
                    raise AssertionError(f"the worker exited: {log.read()}")
                assert time.monotonic() < deadline, "the worker did not answer a ping"
            yield Fleet(broker, queue, client, worker)
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            if not broker.startswith("redis"):
                delete_queues(broker, [queue])
            client.close()


def delete_queues(broker: str, names: Sequence[str]) -> None:
    """Remove RabbitMQ queues a test declared (a durable queue outlives its test)."""
    with Connection(broker) as connection:
        channel = connection.channel()
        for name in names:
            Queue(name, channel=channel).delete()


def queue_depth(broker: str, name: str) -> int:
    """Messages ready in a RabbitMQ queue (not counting those delivered and unacknowledged)."""
    with Connection(broker) as connection:
        _, ready, _ = connection.channel().queue_declare(name, passive=True)
        return int(ready)


def publish_raw(broker: str, messages: Sequence[tuple[str, bytes, str]], exchange: str = "celeryev") -> None:
    """Publish ``(routing key, body, content type)`` to the event exchange as any client could."""
    kind = "fanout" if broker.startswith("redis") else "topic"
    with Connection(broker) as connection:
        producer = connection.Producer(exchange=Exchange(exchange, type=kind))
        for routing_key, body, content_type in messages:
            producer.publish(body, routing_key=routing_key, content_type=content_type, content_encoding="utf-8",
                             declare=[producer.exchange])  # fmt: skip


class IngesterProcess:
    """``python -m ledger ingest celery`` as a child process, its stderr read as it comes
    (at INFO: each connection to the broker logs ``consuming``)."""

    def __init__(self, env: Mapping[str, str], *options: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ledger", "ingest", "celery", *options],
            env={**env, "LEDGER_LOG_LEVEL": "INFO", "PYTHONPATH": str(ROOT)}, cwd=ROOT, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def consuming(self, times: int = 1, timeout: float = 60) -> None:
        """Wait until the ingester has connected ``times`` times (its queue bound, subscribed)."""
        def connected() -> bool:
            return sum("'consuming'" in line for line in self.lines) >= times or self.process.poll() is not None

        eventually(connected, timeout, "the ingester to consume")
        assert self.process.poll() is None, "".join(self.lines)

    def stop(self) -> int:
        """SIGTERM, then its exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError("the ingester did not stop on SIGTERM:\n" + "".join(self.lines)) from None
        self._reader.join(10)
        return code

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self._reader.join(10)

    @property
    def output(self) -> str:
        return "".join(self.lines)
