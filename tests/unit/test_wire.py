from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest

from ledger.codec import PLAIN, Codec, generate_cipher_key
from ledger.domain.events import (
    LINKAGE_FIELDS,
    AnyEvent,
    Emitter,
    FailureGroupReopened,
    FailureGroupResolved,
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    PeriodicTaskUnregistered,
    TaskExpired,
    TaskFailed,
    TaskPending,
    TaskReceived,
    TaskRetried,
    TaskRevoked,
    TaskStarted,
    TaskSucceeded,
    WorkerHeartbeat,
    WorkerOffline,
    WorkerOnline,
    event_key,
)
from ledger.eventlog.base import LogRecord, StoredRecord
from ledger.settings import Settings
from ledger.wire import (
    EVENT_ADAPTER,
    FIT_EVENT_BYTES,
    MAX_EVENT_BYTES,
    SCHEMA_ID,
    InvalidRecord,
    decode,
    decode_with_json,
    dump_event,
    encode,
    json_schema,
    write_json_schema,
)

NOW = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
HERE = Emitter(host="worker-7", pid=4242, worker="celery@worker-7")
KEY = generate_cipher_key()
COMMON: dict[str, Any] = {"occurred_at": NOW, "emitter": HERE}
TASK: dict[str, Any] = {**COMMON, "task_id": "task-1", "task_name": "tasks.add", "attempt": 1}
SAMPLES: list[AnyEvent] = [
    TaskPending(**TASK, args=[1, "two", {"three": 3.0}], kwargs={"k": [None, True]}, eta=NOW),
    TaskReceived(**TASK, eta=NOW, queue="celery", exchange="", routing_key="celery", expires=NOW),
    TaskStarted(**TASK, root_id="root-1", parent_id="parent-1", group_id="group-1", callback_id="cb-1"),
    TaskRetried(**TASK, exc_type="IOError", exc_message="disk", traceback="tb", countdown=1.5),
    TaskFailed(**TASK, exc_type="ValueError", exc_message="bad", traceback="tb", runtime=0.25),
    TaskSucceeded(**TASK, result={"secret-result": [1, 2]}, runtime=0.5),
    TaskRevoked(**TASK, reason="user asked", terminated=True),
    TaskExpired(**TASK, expired_before=NOW - timedelta(days=1)),
    PeriodicTaskRegistered(**COMMON, name="nightly", task="reports.build", interval_seconds=60),
    PeriodicTaskTriggered(
        **COMMON, name="nightly", task_id="run-1", task="reports.build", scheduled_for=NOW
    ),
    PeriodicTaskUnregistered(**COMMON, name="nightly", reason="retired"),
    FailureGroupResolved(**COMMON, fingerprint="0123456789abcdef", resolved_by="ops", note="fixed in 1.2"),
    FailureGroupReopened(**COMMON, fingerprint="0123456789abcdef", reopened_by="ops", note="still failing"),
    WorkerOnline(**COMMON, hostname="celery@worker-7", freq=2.0, sw_ident="py-celery", sw_ver="5.7.0", sw_sys="Linux",
                 loadavg=(0.5, 0.25, 0.125), processed=0, active=0),
    WorkerHeartbeat(**COMMON, hostname="celery@worker-7", freq=2.0, loadavg=(1.5, 1.0, 0.5), processed=42, active=3),
    WorkerOffline(**COMMON, hostname="celery@worker-7", processed=57, active=0),
]
CODECS = {
    "plain": PLAIN,
    "zlib": Codec(compressor=Codec.with_key(KEY, compress=True).compressor),
    "aes": Codec.with_key(KEY),
    "zlib+aes": Codec.with_key(KEY, compress=True),
}


def stored(record: LogRecord, **changes: Any) -> StoredRecord:
    fields: dict[str, Any] = {
        "topic": "events",
        "partition": 0,
        "offset": 7,
        "key": record.key.encode(),
        "value": record.value,
        "headers": record.headers,
    }
    return StoredRecord(**{**fields, **changes})


def reason_of(record: StoredRecord, codec: Codec = PLAIN) -> str:
    with pytest.raises(InvalidRecord) as caught:
        decode(record, codec)
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


def with_header(record: LogRecord, name: str, value: bytes) -> StoredRecord:
    headers = tuple((n, value if n == name else v) for n, v in record.headers)
    return stored(record, headers=headers)


def raw(document: dict[str, Any], key: str = "task-1") -> StoredRecord:
    return StoredRecord("events", 0, 0, key.encode(), json.dumps(document).encode())


def valid_document() -> dict[str, Any]:
    return json.loads(EVENT_ADAPTER.dump_json(SAMPLES[2]))  # type: ignore[no-any-return]


def test_samples_cover_every_event_type() -> None:
    assert {event.type for event in SAMPLES} == set(json_schema()["discriminator"]["mapping"])


@pytest.mark.parametrize("codec", CODECS.values(), ids=CODECS.keys())
@pytest.mark.parametrize("event", SAMPLES, ids=lambda event: event.type)
def test_every_event_round_trips(event: AnyEvent, codec: Codec) -> None:
    record = encode(event, codec)
    assert record.key == event_key(event)
    decoded = decode(stored(record), codec)
    assert decoded == event and type(decoded) is type(event)


@pytest.mark.parametrize("codec", CODECS.values(), ids=CODECS.keys())
@pytest.mark.parametrize("event", SAMPLES, ids=lambda event: event.type)
def test_the_json_kept_for_the_history_is_the_events_plaintext(event: AnyEvent, codec: Codec) -> None:
    decoded, payload = decode_with_json(stored(encode(event, codec)), codec)
    assert decoded == event
    assert payload == dump_event(event)  # decrypted and inflated: what the projector stores as the payload


@pytest.mark.parametrize("event", SAMPLES, ids=lambda event: event.type)
def test_cloudevents_headers(event: AnyEvent) -> None:
    headers = dict(encode(event).headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == str(event.event_id).encode()
    assert headers["ce_type"] == f"io.taskledger.{event.type}".encode()
    assert headers["ce_source"] == b"/ledger/worker-7/4242"
    assert headers["ce_time"] == b"2024-05-01T12:30:15.123456Z"
    assert datetime.fromisoformat(headers["ce_time"].decode()) == event.occurred_at
    assert headers["content-type"] == b"application/json"


def test_content_type_names_the_codec() -> None:
    types = {
        name: dict(encode(SAMPLES[0], codec).headers)["content-type"]
        for name, codec in CODECS.items()
    }
    assert types == {
        "plain": b"application/json",
        "zlib": b"application/vnd.taskledger.event+json; encoding=zlib",
        "aes": b"application/vnd.taskledger.event+json; encoding=aes-gcm",
        "zlib+aes": b"application/vnd.taskledger.event+json; encoding=zlib+aes-gcm",
    }


@pytest.mark.parametrize("codec", [CODECS["aes"], CODECS["zlib+aes"]], ids=["aes", "zlib+aes"])
def test_encryption_hides_payloads_and_decode_restores_them(codec: Codec) -> None:
    pending, succeeded = SAMPLES[0], SAMPLES[5]
    for event, secret in ((pending, b"three"), (succeeded, b"secret-result")):
        record = encode(event, codec)
        assert secret in EVENT_ADAPTER.dump_json(event)
        assert secret not in record.value and b"task-1" not in record.value
        assert decode(stored(record), codec) == event
    again = decode(stored(encode(succeeded, codec)), codec)
    assert isinstance(again, TaskSucceeded) and again.result == {"secret-result": [1, 2]}


def test_a_wrong_key_or_missing_codec_is_refused() -> None:
    record = encode(SAMPLES[5], CODECS["aes"])
    assert reason_of(stored(record), Codec.with_key(generate_cipher_key())).startswith(
        "value: cannot decrypt"
    )
    assert reason_of(stored(record)).startswith(
        "header content-type: 'application/vnd.taskledger.event+json; encoding=aes-gcm' "
        "but this reader expects 'application/json'"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "value: missing (an empty record or a tombstone)"),
        (b"", "value: missing (an empty record or a tombstone)"),
        (b"\xff\xfe\xfa", "value: not valid JSON"),
        (b"{not json", "value: not valid JSON"),
        (b"[1, 2]", "value: Input should be an object"),
    ],
)
def test_unreadable_values(value: bytes | None, expected: str) -> None:
    assert reason_of(StoredRecord("events", 0, 0, b"task-1", value)) == expected


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"task_id": None}, "task_id: Input should be a valid string"),
        ({"occurred_at": "2024-05-01T12:00:00"}, "occurred_at: Input should have timezone info"),
        ({"version": 3}, "version: Input should be 1 or 2"),
        ({"version": 3, "new_field": 1}, "version: Input should be 1 or 2"),  # a future schema
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"attempt": -1}, "attempt: Input should be greater than or equal to 0"),
        ({"task_id": "  "}, "task_id: must not be blank"),
        (
            {"emitter": {"host": "h", "pid": -1}},
            "emitter.pid: Input should be greater than or equal to 0",
        ),
    ],
)
def test_schema_violations_name_the_field_and_rule(change: dict[str, Any], expected: str) -> None:
    document = {**valid_document(), **change}
    assert reason_of(raw(document)) == expected


V1_RECORD: Final = (
    b'{"version": 1, "type": "task.started", "event_id": "0b9e4a52-3f4e-4a56-9d3b-8a0f1c6e2d11",'
    b' "occurred_at": "2024-05-01T12:30:15Z", "emitter": {"host": "h", "pid": 7, "worker": null},'
    b' "task_id": "task-1", "task_name": "tasks.add", "attempt": 0, "args": null, "kwargs": null,'
    b' "truncated": null}'
)
"""A task event as schema version 1 wrote it, before the linkage and routing fields."""


def test_a_version_1_record_still_decodes_without_the_newer_fields() -> None:
    event = decode(StoredRecord("events", 0, 0, b"task-1", V1_RECORD))
    assert isinstance(event, TaskStarted) and event.version == 1
    assert (event.task_id, event.task_name) == ("task-1", "tasks.add")
    assert all(getattr(event, name) is None for name in LINKAGE_FIELDS)
    assert decode(stored(encode(event))) == event  # re-encoded, it stays a version-1 event


def test_missing_field_and_unknown_or_missing_type() -> None:
    document = valid_document()
    del document["task_id"]
    assert reason_of(raw(document)) == "task_id: Field required"
    assert reason_of(raw({**valid_document(), "type": "task.exploded"})) == (
        "type: unknown event type 'task.exploded' (known: failures.reopened, failures.resolved, periodic.registered, "
        "periodic.triggered, periodic.unregistered, task.expired, task.failed, task.pending, task.received, "
        "task.retried, task.revoked, task.started, task.succeeded, worker.heartbeat, worker.offline, worker.online)"
    )
    untyped = valid_document()
    del untyped["type"]
    assert reason_of(raw(untyped)) == "type: Field required"


def test_headers_that_contradict_the_body() -> None:
    record = encode(SAMPLES[0])
    assert reason_of(with_header(record, "ce_type", b"x")) == (
        "header ce_type: 'x' does not match event type 'task.pending'"
    )
    assert reason_of(with_header(record, "ce_id", b"not-the-id")) == (
        f"header ce_id: 'not-the-id' does not match event_id '{SAMPLES[0].event_id}'"
    )
    assert reason_of(with_header(record, "ce_specversion", b"0.3")) == (
        "header ce_specversion: '0.3' is not supported (expected '1.0')"
    )
    assert (
        reason_of(with_header(record, "ce_source", b"\xff")) == "header ce_source: not valid UTF-8"
    )


def test_key_must_be_the_events_key() -> None:
    record = encode(SAMPLES[0])
    assert (
        reason_of(stored(record, key=b"task-2"))
        == "key: 'task-2' does not match the event's key 'task-1'"
    )
    assert (
        reason_of(stored(record, key=None)) == "key: None does not match the event's key 'task-1'"
    )
    assert decode(stored(record), PLAIN) == SAMPLES[0]  # headers are optional, key is not


def test_records_without_headers_decode() -> None:
    record = encode(SAMPLES[3])
    assert decode(stored(record, headers=()), PLAIN) == SAMPLES[3]


def test_payload_too_large_raw_or_inflated() -> None:
    huge = b'{"pad": "' + b"x" * (MAX_EVENT_BYTES + 2048) + b'"}'
    assert reason_of(StoredRecord("events", 0, 0, b"k", huge)).startswith(
        "value: payload too large"
    )
    bomb = zlib.compress(b"{" + b" " * (4 * MAX_EVENT_BYTES) + b"}")
    assert len(bomb) < 10_000
    assert reason_of(StoredRecord("events", 0, 0, b"k", bomb), CODECS["zlib"]) == (
        f"value: payload too large (> {MAX_EVENT_BYTES} bytes decoded)"
    )
    assert reason_of(StoredRecord("events", 0, 0, b"k", b"not zlib"), CODECS["zlib"]).startswith(
        "value: cannot decompress (zlib:"
    )


def test_a_big_event_is_cut_to_fit_never_refused() -> None:
    big = [{"row": i, "blob": "x" * 1000} for i in range(1500)]  # ~1.5 MB of args
    trace = "Traceback (most recent call last):\n" + "  frame\n" * 200_000 + "ValueError: the end"
    event = TaskFailed(task_id="t", task_name="etl.load", args=big, kwargs={"mode": "full"},
                       exc_type="ValueError", exc_message="the end", traceback=trace)  # fmt: skip
    record = encode(event)
    assert len(record.value) <= FIT_EVENT_BYTES
    kept = decode(stored(record), PLAIN)
    assert isinstance(kept, TaskFailed)
    assert (kept.event_id, kept.task_id, kept.exc_type) == (event.event_id, "t", "ValueError")
    assert kept.kwargs == {"mode": "full"}
    assert kept.args is None and kept.truncated is not None
    assert kept.truncated["args"] == len(json.dumps(big, separators=(",", ":")))
    assert kept.traceback is None or kept.traceback.endswith("ValueError: the end")
    small = SAMPLES[0]
    assert decode(stored(encode(small)), PLAIN) == small  # under the limit: untouched


def test_codec_from_settings() -> None:
    assert Codec.from_settings(Settings()) == PLAIN
    codec = Codec.from_settings(Settings(cipher_key=KEY, compress_payloads=True))
    assert codec.content_type.endswith("encoding=zlib+aes-gcm")
    assert decode(stored(encode(SAMPLES[0], codec)), CODECS["zlib+aes"]) == SAMPLES[0]
    assert len(base64.b64decode(generate_cipher_key())) == 32
    with pytest.raises(ValueError, match="cipher_key: not a base64 AES key"):
        Codec.from_settings(Settings(cipher_key="c2hvcnQ="))


def test_json_schema_describes_every_event(tmp_path: Path) -> None:
    schema = json_schema()
    assert schema["$id"] == SCHEMA_ID and schema["version"] == 2 and schema["title"]
    mapping = schema["discriminator"]["mapping"]
    assert schema["discriminator"]["propertyName"] == "type"
    assert len(schema["oneOf"]) == len(mapping) == 16
    for event in SAMPLES:  # each sample fits the definition its type selects
        definition = schema["$defs"][mapping[event.type].rsplit("/", 1)[-1]]
        document = json.loads(EVENT_ADAPTER.dump_json(event))
        assert set(definition["required"]) <= set(document) <= set(definition["properties"])
        assert definition["additionalProperties"] is False
        assert definition["properties"]["type"]["const"] == event.type
    assert set(schema["$defs"]["TaskStarted"]["required"]) == {"task_id"}
    path = write_json_schema(tmp_path / "event.schema.json")
    assert json.loads(path.read_text()) == schema
