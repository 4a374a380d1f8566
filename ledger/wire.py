"""The wire format: ledger events ⇄ log records, versioned, with CloudEvents headers.

A record's value is the event's JSON (``EVENT_ADAPTER``), optionally compressed and/or
encrypted by a ``Codec``. Its key is ``event_key(event)`` (the task id or periodic name),
so one task's events share a partition. Headers follow the CloudEvents Kafka protocol
binding (binary content mode), so any subscriber can route and filter on plaintext
headers without parsing, or decrypting, the value:

==================  =====================================  ====================================
Kafka header        CloudEvents attribute                  Value
==================  =====================================  ====================================
``ce_specversion``  specversion                            ``1.0``
``ce_id``           id                                     the event's ``event_id``
``ce_type``         type                                   ``io.taskledger.`` + ``type``
``ce_source``       source                                 ``/ledger/<host>/<pid>`` (emitter)
``ce_time``         time                                   ``occurred_at``, RFC 3339
``content-type``    datacontenttype                        ``application/json``, or with a
                                                           codec ``application/vnd.taskledger
                                                           .event+json; encoding=zlib+aes-gcm``
==================  =====================================  ====================================

``decode`` trusts nothing: every way a record can be wrong raises ``InvalidRecord`` whose
``reason`` names the field and the rule, so the projector can dead-letter it and move on.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from ledger.codec import PLAIN, Codec, CodecError, generate_cipher_key
from ledger.domain.events import SCHEMA_VERSION, AnyEvent, LedgerEvent, event_key
from ledger.domain.limits import fit
from ledger.eventlog.base import Headers, LogRecord, StoredRecord

__all__ = [
    "CE_TYPE_PREFIX",
    "EVENT_ADAPTER",
    "FIT_EVENT_BYTES",
    "MAX_EVENT_BYTES",
    "PLAIN",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "Codec",
    "CodecError",
    "InvalidRecord",
    "decode",
    "decode_with_json",
    "describe_validation_error",
    "dump_event",
    "encode",
    "generate_cipher_key",
    "headers",
    "json_schema",
    "write_json_schema",
]

EVENT_ADAPTER: Final[TypeAdapter[AnyEvent]] = TypeAdapter(AnyEvent)
SCHEMA_ID: Final = f"https://taskledger.io/schemas/event/v{SCHEMA_VERSION}.json"
SPEC_VERSION: Final = "1.0"
CE_TYPE_PREFIX: Final = "io.taskledger."
MAX_EVENT_BYTES: Final = 1024 * 1024
"""Largest event JSON (decoded) a record may carry, whatever the settings: a reader's
memory bound and Kafka's default ``message.max.bytes``."""
FIT_EVENT_BYTES: Final = MAX_EVENT_BYTES - 64 * 1024
"""What ``encode`` cuts a bigger event down to (``limits.fit``): room left for the key, the
headers and Kafka's record overhead under a broker's default 1 MiB message limit."""
_CODEC_OVERHEAD: Final = 1024  # room for a nonce, tag and incompressible zlib framing
_TAGS: Final = frozenset(EVENT_ADAPTER.json_schema()["discriminator"]["mapping"])


class InvalidRecord(ValueError):
    """A record that is not a valid ledger event. ``reason`` is one line naming the field
    and the rule, e.g. ``task_id: Field required``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- encode ---------------------------------------------------------------------------------
def encode(event: LedgerEvent, codec: Codec = PLAIN) -> LogRecord:
    """The record to append for ``event``. An event over ``FIT_EVENT_BYTES`` is appended
    with its bulky fields cut and named in ``truncated`` (``limits.fit``): never dropped,
    and never what ``decode`` would reject."""
    payload = dump_event(event)
    if len(payload) > FIT_EVENT_BYTES:
        event = fit(event, FIT_EVENT_BYTES)
        payload = dump_event(event)
    value = codec.encode(payload)
    return LogRecord(key=event_key(event), value=value, headers=headers(event, codec))


def dump_event(event: LedgerEvent) -> bytes:
    """The event's JSON: its own class's serializer gives the same bytes as
    ``EVENT_ADAPTER.dump_json`` (the union's) at about half the cost."""
    return type(event).__pydantic_serializer__.to_json(event)


_SPEC_HEADER: Final = ("ce_specversion", SPEC_VERSION.encode())


@lru_cache(maxsize=64)
def _type_header(event_type: str) -> tuple[str, bytes]:
    return ("ce_type", (CE_TYPE_PREFIX + event_type).encode())


@lru_cache(maxsize=4096)
def _source_header(host: str, pid: int) -> tuple[str, bytes]:
    return ("ce_source", f"/ledger/{host}/{pid}".encode())


@lru_cache(maxsize=16)
def content_type(codec: Codec) -> str:
    """``codec.content_type``, computed once per codec (it is asked for every record)."""
    return codec.content_type


@lru_cache(maxsize=16)
def _content_header(codec: Codec) -> tuple[str, bytes]:
    return ("content-type", content_type(codec).encode())


def headers(event: LedgerEvent, codec: Codec = PLAIN) -> Headers:
    """The CloudEvents headers of ``event`` (see the table above). The parts that repeat
    (type, source, content type) are built once: this runs for every event emitted."""
    emitter = event.emitter
    return (
        _SPEC_HEADER,
        ("ce_id", str(event.event_id).encode()),
        _type_header(event.type),
        _source_header(emitter.host, emitter.pid),
        ("ce_time", event.occurred_at.isoformat().replace("+00:00", "Z").encode()),
        _content_header(codec),
    )


# -- decode ---------------------------------------------------------------------------------
def decode(record: StoredRecord, codec: Codec = PLAIN) -> AnyEvent:
    """The event in ``record``, checked against its headers and key; ``InvalidRecord``
    (with a one-line ``reason``) for anything else."""
    return decode_with_json(record, codec)[0]


def decode_with_json(record: StoredRecord, codec: Codec = PLAIN) -> tuple[AnyEvent, bytes]:
    """``decode``, and the event's JSON as the record holds it (decrypted, decompressed):
    valid against the schema, extra fields refused, so it says what ``dump_event`` would
    (a field at its default may be left out) and the projector stores it as the history's
    payload instead of serialising the event again (~8 µs an event)."""
    found = _headers(record.headers)
    _check_envelope(record.value, found, codec)
    assert record.value is not None
    try:
        payload = codec.decode(record.value, limit=MAX_EVENT_BYTES)
    except CodecError as exc:
        raise InvalidRecord(f"value: {exc}") from None
    if len(payload) > MAX_EVENT_BYTES:
        raise InvalidRecord(f"value: payload too large (> {MAX_EVENT_BYTES} bytes decoded)")
    try:
        event = EVENT_ADAPTER.validate_json(payload)
    except ValidationError as exc:
        raise InvalidRecord(describe_validation_error(exc, tagged=True)) from None
    _check_agreement(event, found, record.key)
    return event, payload


def _headers(raw: Headers) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in raw:
        try:
            found[name] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRecord(f"header {name}: not valid UTF-8") from None
    return found


def _check_envelope(value: bytes | None, found: dict[str, str], codec: Codec) -> None:
    """What can be refused before touching the value's content."""
    if not value:
        raise InvalidRecord("value: missing (an empty record or a tombstone)")
    if len(value) > MAX_EVENT_BYTES + _CODEC_OVERHEAD:
        raise InvalidRecord(f"value: payload too large ({len(value)} bytes > {MAX_EVENT_BYTES})")
    spec = found.get("ce_specversion")
    if spec is not None and spec != SPEC_VERSION:
        raise InvalidRecord(
            f"header ce_specversion: {spec!r} is not supported (expected {SPEC_VERSION!r})"
        )
    given = found.get("content-type")
    if given is not None and given != content_type(codec):
        raise InvalidRecord(
            f"header content-type: {given!r} but this reader expects "
            f"{codec.content_type!r} (check cipher_key and compress_payloads)"
        )


def _check_agreement(event: AnyEvent, found: dict[str, str], key: bytes | None) -> None:
    """Headers and key are routing data other services act on: they must not contradict
    the body, or a subscriber filtering on them would see a different event."""
    ce_type = found.get("ce_type")
    if ce_type is not None and ce_type != CE_TYPE_PREFIX + event.type:
        raise InvalidRecord(f"header ce_type: {ce_type!r} does not match event type {event.type!r}")
    ce_id = found.get("ce_id")
    if ce_id is not None and ce_id != str(event.event_id):
        raise InvalidRecord(f"header ce_id: {ce_id!r} does not match event_id '{event.event_id}'")
    expected = event_key(event)
    if key is None or key != expected.encode():
        shown = key.decode("utf-8", "replace") if key is not None else None
        raise InvalidRecord(f"key: {shown!r} does not match the event's key {expected!r}")


def describe_validation_error(exc: ValidationError, *, tagged: bool = False) -> str:
    """One line naming each bad field and its rule. ``tagged``: the error came from the
    discriminated union, whose locations start with the event type (dropped here). A wrong
    ``version`` is reported alone: the other errors are a newer schema's fields."""
    errors = exc.errors(include_url=False)
    versions = [e for e in errors if _location(e["loc"], tagged) == "version"]
    return "; ".join(_describe(error, tagged) for error in versions or errors)


def _describe(error: Any, tagged: bool) -> str:
    kind, message = error["type"], error["msg"]
    if kind == "json_invalid":
        return "value: not valid JSON"
    if kind == "union_tag_invalid":
        known = ", ".join(sorted(_TAGS))
        given = error["input"].get("type") if isinstance(error["input"], dict) else None
        return f"type: unknown event type {given!r} (known: {known})"
    if kind == "union_tag_not_found":
        return "type: Field required"
    message = message.removeprefix("Value error, ")
    return f"{_location(error['loc'], tagged) or 'value'}: {message}"


def _location(loc: tuple[int | str, ...], tagged: bool) -> str:
    if tagged and loc and loc[0] in _TAGS:
        loc = loc[1:]
    return ".".join(str(part) for part in loc)


# -- schema ---------------------------------------------------------------------------------
def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of every ledger event, for other services and languages."""
    schema = EVENT_ADAPTER.json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Task Ledger event",
        "description": "One immutable task or periodic-task event; `type` selects the shape.",
        "version": SCHEMA_VERSION,
        **schema,
    }


def write_json_schema(path: str | Path) -> Path:
    """Write ``json_schema()`` to ``path`` (stable key order, so diffs show real changes)."""
    target = Path(path)
    target.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target
