"""Row "ingest": ``ledger ingest celery`` draining a pre-filled RabbitMQ queue of Celery's own
task events, next to Celery's own ``EventReceiver`` (what ``celery events`` and Flower read
with) draining the same events with a no-op handler.

Publishing (not timed) goes through Celery's ``EventDispatcher``, as a fleet publishes: a
client's ``task-sent`` one message each (``task.sent``), a prefork worker's
``task-received``, ``task-started`` and ``task-succeeded`` (one task in ten
``task-failed``, with a traceback) buffered and published as ``task.multi`` lists of up to
24 events (a worker with an event loop buffers its task events, ``buffer_group=['task']``,
and flushes at ``buffer_limit``, 24, or at the loop's next tick). The exchange is this run's
own topic exchange (the same kind as ``celeryev``), so a shared broker's other events stay
out; both queues are bound to it before the first message, so each holds the same messages.

Timed, one after the other, each from connecting until every event is handled:
- the receiver: ``app.events.Receiver`` on its own queue (declared as Celery declares it:
  ``<event_queue_prefix>.<node id>``, auto-deleted, not durable, no acks; message TTL and
  expiry an hour instead of Celery's 5 s / 60 s, or the pre-filled events would expire), its
  ``*`` handler only counting, until it has seen every event;
- the ingester, once per Kafka client (``LEDGER_KAFKA_CLIENT``: kafka-python, confluent),
  each on its own queue bound beside the receiver's: ``build_ingester`` as ``ledger ingest
  celery`` builds it (its durable queue, batches of 500, prefetch 1,000, acks after the
  log), into this run's own topic, until every message is acknowledged; then the queue is
  checked empty and the topic holding every event;
- the floor: what any durable ingester does at the least, on the same reader and the same
  log (``BrokerEvents``, batches of 500, acks after the log, the confluent client) with no
  translation: each event's JSON re-encoded as it came and appended. Its ratio to the
  receiver is the most the ingester's could be on this machine; the gap between the floor
  and the ingester is the translation (the Celery rules, the validated event, its JSON).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any, Final

from kombu.connection import Connection
from kombu.entity import Queue

from bench.runctx import BenchRun
from bench.stats import rate
from ledger.bootstrap import build_event_log, build_ingester
from ledger.consumers.celery_broker import BrokerEvents, EventSourceConfig
from ledger.consumers.celery_messages import celery_events
from ledger.contrib.celery_events import CeleryEventTranslator
from ledger.eventlog.base import LogRecord
from ledger.progress import Progress
from ledger.settings import KafkaClient

EVENTS_PER_TASK: Final = 4
BUFFER_LIMIT: Final = 24
"""Celery's ``EventDispatcher`` default: a worker's buffered task events per ``task.multi``."""
QUEUE_HOLD_S: Final = 3600.0
BATCH: Final = 500
"""The ingester's batch (``ledger ingest celery --batch``'s default; prefetch twice that)."""
FAILING_EVERY: Final = 10
STALLED_S: Final = 120.0
"""A reader that handles nothing for this long fails the row (instead of hanging the run)."""
TRACEBACK: Final = ("Traceback (most recent call last):\n"
                    '  File "/srv/app/celery/app/trace.py", line 453, in trace_task\n'
                    "    R = retval = fun(*args, **kwargs)\n"
                    '  File "/srv/app/shop/orders.py", line 88, in process\n'
                    "    raise ValueError(f'no stock for {sku}')\n"
                    "ValueError: no stock for SKU-{n}\n")  # fmt: skip


def measure_ingest(run: BenchRun, broker: str, events: int) -> dict[str, Any]:
    """Both readers over the same ``events`` (rounded up to whole tasks of four events)."""
    from celery import Celery

    tasks = math.ceil(events / EVENTS_PER_TASK)
    total = tasks * EVENTS_PER_TASK
    exchange = f"bench-{run.run_id}.celeryev"
    app = Celery("bench", broker=broker, set_as_current=False)
    app.conf.update(event_exchange=exchange, event_queue_ttl=QUEUE_HOLD_S, event_queue_expires=QUEUE_HOLD_S)
    sources = {client: EventSourceConfig(broker, queue=f"bench-{run.run_id}.ingest-{client}", exchange=exchange,
                                         expires_s=QUEUE_HOLD_S, prefetch=2 * BATCH)
               for client in KafkaClient}  # fmt: skip
    floor_source = EventSourceConfig(broker, queue=f"bench-{run.run_id}.floor", exchange=exchange,
                                     expires_s=QUEUE_HOLD_S, prefetch=2 * BATCH)  # fmt: skip
    receiver_queue = f"{app.conf.event_queue_prefix}.bench-{run.run_id}"
    try:
        with Connection(broker) as connection, Connection(broker) as own:
            receiver = _declare_receiver(app, own, receiver_queue)
            for source in (*sources.values(), floor_source):
                _declare_ingester_queue(source)
            messages = _publish(app, connection, tasks)
            _wait_depth(own, receiver_queue, messages)
            for source in (*sources.values(), floor_source):
                _wait_depth(connection, source.queue, messages)
            receiver_figures = _drain_receiver(receiver, total)
        ingesters = {str(client): _drain_ingester(run, source, total, messages, client)
                     for client, source in sources.items()}  # fmt: skip
        floor = _drain_floor(run, floor_source, total, messages)
    finally:
        _delete(broker, (receiver_queue, floor_source.queue, *(s.queue for s in sources.values())), exchange)
    return {"ingesters": ingesters, "floor": floor, "receiver": receiver_figures, "events": total,
            "messages": messages}  # fmt: skip


# -- the queues and what fills them ---------------------------------------------------------
def _declare_receiver(app: Any, connection: Connection, name: str) -> Any:
    """Celery's receiver on a queue of a known name, declared (and bound) now on
    ``connection``, which it then consumes on: Celery declares the queue exclusive (only
    its declaring connection may use it), and a receiver would otherwise consume on a clone."""
    prefix, _, node_id = name.partition(".")
    receiver = app.events.Receiver(connection, handlers={}, node_id=node_id, queue_prefix=prefix)
    receiver.queue(connection.default_channel).declare()
    receiver.create_connection = lambda: connection  # kombu's ConsumerMixin hook: the declaring connection
    return receiver


def _declare_ingester_queue(source: EventSourceConfig) -> None:
    """The ingester's own declaration: it opens (declares, binds, consumes an empty queue)
    and closes, so its queue is there before the first event."""
    probe = BrokerEvents(source)
    try:
        probe.open()
    finally:
        probe.close()


def _publish(app: Any, connection: Connection, tasks: int) -> int:
    """``tasks`` tasks' events through Celery's dispatchers; the number of messages."""
    client = app.events.Dispatcher(connection, hostname="client@bench", buffer_while_offline=False)
    worker = app.events.Dispatcher(connection, hostname="celery@bench-worker", buffer_while_offline=False,
                                   buffer_group=["task"], buffer_limit=BUFFER_LIMIT)  # fmt: skip
    progress = Progress("publish")
    progress.start(tasks * EVENTS_PER_TASK)
    try:
        for n in range(tasks):
            task_id = str(uuid.uuid4())
            client.send("task-sent", uuid=task_id, root_id=task_id, parent_id=None, name="shop.orders.process",
                        args=f"({n}, 'SKU-{n % 977}')", kwargs="{'priority': 3}", retries=0, eta=None,
                        expires=None, queue="celery", exchange="", routing_key="celery")  # fmt: skip
            worker.send("task-received", uuid=task_id, name="shop.orders.process", args=f"({n}, 'SKU-{n % 977}')",
                        kwargs="{'priority': 3}", root_id=task_id, parent_id=None, retries=0, eta=None,
                        expires=None)  # fmt: skip
            worker.send("task-started", uuid=task_id)
            if n % FAILING_EVERY == FAILING_EVERY - 1:
                worker.send("task-failed", uuid=task_id, exception=f"ValueError('no stock for SKU-{n % 977}')",
                            traceback=TRACEBACK.replace("{n}", str(n % 977)))  # fmt: skip
            else:
                worker.send("task-succeeded", uuid=task_id, result=f"{{'order': {n}, 'total': 12.5}}",
                            runtime=0.0123)  # fmt: skip
            progress.update((n + 1) * EVENTS_PER_TASK)
        worker.flush()
    finally:
        progress.finish()
        client.close()
        worker.close()
    return tasks + math.ceil(tasks * (EVENTS_PER_TASK - 1) / BUFFER_LIMIT)


def _wait_depth(connection: Connection, name: str, messages: int, timeout_s: float = 120.0) -> None:
    """Until the queue holds every message published (RabbitMQ counts them asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while (ready := _depth(connection, name)) != messages:
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench ingest: queue {name!r} holds {ready:,} messages, {messages:,} were published")
        time.sleep(0.2)


def _depth(connection: Connection, name: str) -> int:
    _, ready, _ = connection.default_channel.queue_declare(name, passive=True)
    return int(ready)


def _delete(broker: str, queues: tuple[str, ...], exchange: str) -> None:
    with Connection(broker) as connection:
        channel = connection.channel()
        for name in queues:
            Queue(name, channel=channel).delete()
        channel.exchange_delete(exchange)


# -- the two readers ----------------------------------------------------------------------------
def _drain_receiver(receiver: Any, total: int) -> dict[str, float]:
    """Celery's ``EventReceiver`` (no acks, its own queue) until ``total`` events reached its handler."""
    seen = [0]

    def handled(event: dict[str, Any]) -> None:  # the no-op: it only counts
        seen[0] += 1

    receiver.handlers = {"*": handled}
    progress = Progress("receiver")
    progress.start(total)
    try:
        started = time.perf_counter()
        for drained, _ in enumerate(receiver.consume(timeout=STALLED_S, wakeup=False)):
            if seen[0] >= total:
                break
            if drained % 1000 == 0:
                progress.update(seen[0])
        seconds = time.perf_counter() - started
        progress.update(seen[0])
    finally:
        progress.finish()
    return {"events_per_s": rate(total, seconds), "seconds": round(seconds, 3)}


def _drain_ingester(run: BenchRun, source: EventSourceConfig, total: int, messages: int,
                    client: KafkaClient) -> dict[str, float]:  # fmt: skip
    """The ledger's ingester on ``client`` until every message is acknowledged (after the
    log acked its events); then the queue must be empty and its topic hold ``total`` events."""
    topic = run.scratch_topic(f"ingest-{client}")
    settings = run.settings.model_copy(update={"topic": topic, "kafka_client": client})
    ingester = build_ingester(settings, source, CeleryEventTranslator().translate, batch_size=BATCH)
    progress = Progress(f"ingest ({client})")
    progress.start(total)
    try:
        started = last = time.perf_counter()
        while ingester.stats.messages < messages:
            if ingester.step():
                last = time.perf_counter()
            elif time.perf_counter() - last > STALLED_S:
                raise RuntimeError(f"bench ingest: the ingester acknowledged nothing for {STALLED_S:.0f} s")
            progress.update(ingester.stats.events)
        seconds = time.perf_counter() - started
        held = sum(ingester.log.end_offsets().values())
        stats = ingester.stats
    finally:
        progress.finish()
        ingester.close()
    with Connection(source.url) as connection:
        left = _depth(connection, source.queue)
    if (stats.events, stats.dead_letters, held, left) != (total, 0, total, 0):
        raise RuntimeError(f"bench ingest: {stats.events:,} events appended, {held:,} in the topic, "
                           f"{left:,} messages left, {stats.dead_letters:,} dead letters; "
                           f"expected {total:,}, 0 left")  # fmt: skip
    return {"events_per_s": rate(total, seconds), "seconds": round(seconds, 3), "batches": stats.batches}


def _drain_floor(run: BenchRun, source: EventSourceConfig, total: int, messages: int) -> dict[str, float]:
    """The least a durable ingester does (the same reader, log and acks; no translation)
    until every message is acknowledged; then the topic must hold ``total`` events."""
    settings = run.settings.model_copy(update={"topic": run.scratch_topic("ingest-floor"),
                                               "kafka_client": KafkaClient.CONFLUENT})  # fmt: skip
    log, reader = build_event_log(settings), BrokerEvents(source)
    progress = Progress("ingest floor (no translation)")
    progress.start(total)
    try:
        reader.open()
        acked = appended = 0
        started = last = time.perf_counter()
        while acked < messages:
            batch = reader.drain(BATCH, 0.5)
            if not batch:
                if time.perf_counter() - last > STALLED_S:
                    raise RuntimeError(f"bench ingest: the floor reader got nothing for {STALLED_S:.0f} s")
                continue
            records = [LogRecord(key=str(event.get("uuid")), value=json.dumps(event).encode())
                       for message in batch for event in celery_events(message.body, message.content_type)]  # fmt: skip
            log.append(records)
            reader.ack(batch)
            acked, appended, last = acked + len(batch), appended + len(records), time.perf_counter()
            progress.update(appended)
        seconds = time.perf_counter() - started
        held = sum(log.end_offsets().values())
    finally:
        progress.finish()
        reader.close()
        log.close()
    if (appended, held) != (total, total):
        raise RuntimeError(f"bench ingest floor: {appended:,} events appended, {held:,} in the topic; "
                           f"expected {total:,}")  # fmt: skip
    return {"events_per_s": rate(total, seconds), "seconds": round(seconds, 3)}
