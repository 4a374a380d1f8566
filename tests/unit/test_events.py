from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from pydantic import TypeAdapter, ValidationError

from ledger.domain.events import (
    AnyEvent,
    AnyPeriodicEvent,
    AnyTaskEvent,
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    PeriodicTaskUnregistered,
    TaskEvent,
    TaskExpired,
    TaskFailed,
    TaskPending,
    TaskReceived,
    TaskRetried,
    TaskRevoked,
    TaskStarted,
    TaskSucceeded,
    event_key,
)
from ledger.domain.statuses import TaskStatus

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def errors(cls: type[Any], **fields: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        cls(**fields)
    return [(".".join(map(str, e["loc"])), e["msg"]) for e in caught.value.errors()]


def test_each_task_event_maps_to_its_status() -> None:
    expected: dict[type[TaskEvent], tuple[str, TaskStatus | None]] = {
        TaskPending: ("task.pending", TaskStatus.PENDING),
        TaskReceived: ("task.received", TaskStatus.RECEIVED),
        TaskStarted: ("task.started", TaskStatus.STARTED),
        TaskRetried: ("task.retried", TaskStatus.RETRY),
        TaskFailed: ("task.failed", TaskStatus.FAILURE),
        TaskSucceeded: ("task.succeeded", TaskStatus.DONE),
        TaskRevoked: ("task.revoked", TaskStatus.REVOKED),
        TaskExpired: ("task.expired", None),
    }
    for cls, (type_, status) in expected.items():
        assert cls.model_fields["type"].default == type_
        assert cls.status == status


def test_defaults_fill_id_time_and_emitter() -> None:
    event = TaskStarted(task_id="t1")
    assert event.version == 2
    assert isinstance(event.event_id, UUID)
    assert event.occurred_at.tzinfo is not None
    assert event.emitter.pid > 0 and event.emitter.host
    assert TaskStarted(task_id="t1").event_id != event.event_id


def test_events_are_frozen() -> None:
    event = TaskStarted(task_id="t1")
    with pytest.raises(ValidationError, match="frozen"):
        event.task_id = "t2"  # type: ignore[misc]


def test_naive_datetime_is_rejected_naming_the_field() -> None:
    naive = datetime(2024, 5, 1, 12, 0)
    assert errors(TaskStarted, task_id="t", occurred_at=naive) == [
        ("occurred_at", "Input should have timezone info")
    ]
    assert errors(TaskPending, task_id="t", eta=naive)[0][0] == "eta"


def test_unknown_field_is_rejected() -> None:
    assert errors(TaskStarted, task_id="t", colour="red") == [
        ("colour", "Extra inputs are not permitted")
    ]


@pytest.mark.parametrize(
    ("task_id", "message"),
    [
        ("", "String should have at least 1 character"),
        ("   ", "Value error, must not be blank"),
        ("x" * 256, "String should have at most 255 characters"),
    ],
)
def test_task_id_must_be_a_non_blank_short_string(task_id: str, message: str) -> None:
    assert errors(TaskStarted, task_id=task_id) == [("task_id", message)]


def test_wrong_version_is_rejected() -> None:
    assert errors(TaskStarted, task_id="t", version=3) == [("version", "Input should be 1 or 2")]
    assert errors(TaskStarted, task_id="t", version=0) == [("version", "Input should be 1 or 2")]


def test_numeric_rules() -> None:
    assert errors(TaskStarted, task_id="t", attempt=-1)[0][0] == "attempt"
    assert errors(TaskFailed, task_id="t", exc_type="E", runtime=-0.5)[0][0] == "runtime"
    assert errors(TaskRetried, task_id="t", countdown=float("inf"))[0][0] == "countdown"
    assert errors(PeriodicTaskRegistered, name="p", task="x", interval_seconds=0)[0][0] == (
        "interval_seconds"
    )


def test_failed_requires_exc_type_and_expired_requires_its_cutoff() -> None:
    assert errors(TaskFailed, task_id="t") == [("exc_type", "Field required")]
    assert errors(TaskExpired, task_id="t") == [("expired_before", "Field required")]


def test_payload_fields_must_be_json() -> None:
    assert errors(TaskSucceeded, task_id="t", result=object())[0][0] == "result"
    assert errors(TaskStarted, task_id="t", kwargs={"x": {1, 2}})[0][0].startswith("kwargs")
    event = TaskSucceeded(task_id="t", result={"a": [1, 2.5, None, "s", True]})
    assert event.result == {"a": [1, 2.5, None, "s", True]}


def test_periodic_name_rules() -> None:
    assert errors(PeriodicTaskUnregistered, name="")[0][0] == "name"
    assert errors(PeriodicTaskUnregistered, name="n" * 201)[0][0] == "name"


@pytest.mark.parametrize(
    ("adapter", "data", "cls"),
    [
        (AnyEvent, {"type": "task.revoked", "task_id": "t"}, TaskRevoked),
        (
            AnyEvent,
            {"type": "periodic.triggered", "name": "p", "task_id": "t"},
            PeriodicTaskTriggered,
        ),
        (
            AnyTaskEvent,
            {"type": "task.expired", "task_id": "t", "expired_before": NOW},
            TaskExpired,
        ),
        (
            AnyPeriodicEvent,
            {"type": "periodic.unregistered", "name": "p"},
            PeriodicTaskUnregistered,
        ),
    ],
)
def test_unions_dispatch_on_type(adapter: Any, data: dict[str, Any], cls: type[Any]) -> None:
    assert type(TypeAdapter(adapter).validate_python(data)) is cls


def test_task_union_refuses_periodic_types() -> None:
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        TypeAdapter(AnyTaskEvent).validate_python({"type": "periodic.unregistered", "name": "p"})


def test_event_key_is_the_task_id_or_the_periodic_name() -> None:
    assert event_key(TaskStarted(task_id="abc")) == "abc"
    assert event_key(PeriodicTaskUnregistered(name="nightly")) == "nightly"
