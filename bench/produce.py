"""Row "produce": the emit SDK against raw producers sending the same bytes, same settings.

Every producer uses the ledger's settings: acks=all, idempotence, lz4 (``compression``),
``linger_ms``, ``batch_size``, 5 requests in flight. The SDK path is ``Ledger.emit_many``
(encode + partition + send + wait for the acknowledgements of its batch), on each client
(``LEDGER_KAFKA_CLIENT``); each raw producer gets pre-encoded bytes and its own
partitioner (the same murmur2 mapping), and only waits once, at the end.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterable
from typing import Any

from kafka import KafkaProducer

from bench.data import RawRecord, SizeStats, event_chunks, raw_records
from bench.runctx import BenchRun
from bench.stats import Stopwatch, rate
from ledger.bootstrap import build_event_log, build_ledger
from ledger.domain.events import AnyEvent
from ledger.progress import Progress
from ledger.settings import KafkaClient


def producer_config(run: BenchRun) -> dict[str, Any]:
    """kafka-python producer settings equal to the ledger's (``KafkaEventLog``)."""
    s = run.settings
    return {
        "bootstrap_servers": run.bootstrap, "acks": "all", "enable_idempotence": True,
        "retries": 2_147_483_647, "max_in_flight_requests_per_connection": 5,
        "compression_type": None if s.compression.value == "none" else s.compression.value,
        "linger_ms": s.linger_ms, "batch_size": s.batch_size, "max_request_size": 8 << 20,
        "delivery_timeout_ms": s.delivery_timeout_ms, "metrics_enabled": False,
    }  # fmt: skip


def produce_ledger(run: BenchRun, total: int, sizes: SizeStats, records: list[RawRecord], *,
                   confluent: bool) -> dict[str, dict[str, float]]:  # fmt: skip
    """Emit ``total`` simulated events through the SDK on kafka-python into the run's topic
    and, with ``confluent``, the same chunks again through the SDK on confluent-kafka into
    a topic of its own (each timed alone); fills ``records`` with their bytes."""
    ledgers = {KafkaClient.KAFKA_PYTHON: build_ledger(run.settings)}
    if confluent:
        settings = run.settings.model_copy(update={"topic": run.scratch_topic("sdk-ck"),
                                                   "kafka_client": KafkaClient.CONFLUENT})  # fmt: skip
        ledgers[KafkaClient.CONFLUENT] = build_ledger(settings)
    watches, progress = {client: Stopwatch() for client in ledgers}, Progress("produce")
    progress.start(total)
    try:
        for chunk in event_chunks(total):
            encoded = raw_records(chunk)  # untimed: the raw baselines' copy of the same bytes
            sizes.add(encoded)
            records.extend(encoded)
            for client, ledger in ledgers.items():
                _emit(ledger, chunk, watches[client])
            progress.update(len(records))
    finally:
        progress.finish()
        for ledger in ledgers.values():
            ledger.close()
    return {str(client): {"events_per_s": rate(len(records), watch.seconds), "seconds": round(watch.seconds, 3)}
            for client, watch in watches.items()}  # fmt: skip


def _emit(ledger: Any, chunk: list[AnyEvent], watch: Stopwatch) -> None:
    with watch:
        for first in range(0, len(chunk), 5000):
            ledger.emit_many(chunk[first : first + 5000])


def ensure_topic(run: BenchRun, topic: str) -> None:
    """Create ``topic`` like the ledger's own (same partition count)."""
    build_event_log(run.settings, topic=topic).close()


def produce_kafka_python(run: BenchRun, records: list[RawRecord]) -> dict[str, float]:
    topic = run.scratch_topic("raw")
    ensure_topic(run, topic)
    producer = KafkaProducer(**producer_config(run))
    progress = Progress("raw-prod")
    progress.start(len(records))
    started = time.perf_counter()
    try:
        send = producer.send
        for index, (key, value, headers) in enumerate(records):
            send(topic, value, key, headers)
            if index % 10_000 == 0:
                progress.update(index)
        producer.flush()
        seconds = time.perf_counter() - started
    finally:
        progress.finish()
        producer.close()
    return {"events_per_s": rate(len(records), seconds), "seconds": round(seconds, 3)}


def confluent_installed() -> bool:
    """Whether confluent-kafka can be imported (the ``confluent`` extra)."""
    return importlib.util.find_spec("confluent_kafka") is not None


def produce_confluent(run: BenchRun, records: Iterable[RawRecord], count: int) -> dict[str, float] | None:
    """The same bytes through librdkafka (``confluent-kafka``), if installed; else None."""
    try:
        from confluent_kafka import Producer
    except ImportError:
        return None
    topic = run.scratch_topic("ck")
    ensure_topic(run, topic)
    s = run.settings
    producer = Producer({
        "bootstrap.servers": run.bootstrap, "acks": "all", "enable.idempotence": True,
        "max.in.flight.requests.per.connection": 5, "compression.type": s.compression.value,
        "linger.ms": s.linger_ms, "batch.size": s.batch_size, "queue.buffering.max.messages": 500_000,
    })  # fmt: skip
    started = time.perf_counter()
    for key, value, headers in records:
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:  # local queue full: serve delivery reports, retry
                producer.poll(0.05)
    remaining = producer.flush(s.delivery_timeout_ms / 1000)
    seconds = time.perf_counter() - started
    if remaining:
        raise RuntimeError(f"confluent-kafka: {remaining} records not acknowledged")
    return {"events_per_s": rate(count, seconds), "seconds": round(seconds, 3)}
