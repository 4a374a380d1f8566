"""The emit SDK against an in-memory, list-backed EventLog (a unit-test fake)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledger.codec import PLAIN, Codec, generate_cipher_key
from ledger.domain.events import (
    AnyEvent,
    FailureGroupReopened,
    FailureGroupResolved,
    PeriodicTaskRegistered,
    PeriodicTaskTriggered,
    PeriodicTaskUnregistered,
    TaskFailed,
    TaskPending,
    TaskRetried,
    TaskStarted,
    TaskSucceeded,
)
from ledger.eventlog.base import AppendError, EventLog, LogRecord, Position, Start, StoredRecord
from ledger.sdk import InvalidEvent, Ledger, NotSerializable, Retry
from ledger.wire import decode


class ListLog(EventLog):
    """One partition in a list; ``failing`` makes every append fail like a down broker."""

    topic, partitions = "events", 1

    def __init__(self, failing: bool = False) -> None:
        self.records: list[StoredRecord] = []
        self.failing = failing

    def append(self, records: Sequence[LogRecord]) -> list[Position]:
        if self.failing:
            raise AppendError("broker down")
        positions = []
        for record in records:
            offset = len(self.records)
            self.records.append(
                StoredRecord(
                    self.topic, 0, offset, record.key.encode(), record.value, record.headers
                )
            )
            positions.append(Position(0, offset))
        return positions

    def _read_ranges(self, ranges: dict[int, tuple[int, int]]) -> Iterator[StoredRecord]:
        first, last = ranges.get(0, (0, 0))
        return iter(list(self.records)[first:last])

    def subscribe(self, start: Start = "end", *, stop_event: threading.Event | None = None,
                  poll_timeout_ms: int | None = None) -> Iterator[list[StoredRecord]]:  # fmt: skip
        raise NotImplementedError

    def end_offsets(self) -> dict[int, int]:
        return {0: len(self.records)}

    def beginning_offsets(self) -> dict[int, int]:
        return {0: 0}

    def offsets_for_time(self, timestamp_ms: int) -> dict[int, int]:
        raise NotImplementedError

    def partition_for(self, key: str) -> int:
        return 0

    def close(self) -> None:
        pass


class Boom(Exception):
    pass


@pytest.fixture
def log() -> ListLog:
    return ListLog()


@pytest.fixture
def ledger(log: ListLog) -> Ledger:
    return Ledger(log, worker="celery@test")


def emitted(log: ListLog, codec: Codec = PLAIN) -> list[AnyEvent]:
    return [decode(record, codec) for record in log.records]


def test_track_success_emits_started_then_succeeded_with_result_and_runtime(
    ledger: Ledger, log: ListLog
) -> None:
    with ledger.track("t1", "tasks.add", attempt=2, args=(1, 2), kwargs={"z": 3}) as run:
        time.sleep(0.01)
        run.result = {"sum": 3}
    started, done = emitted(log)
    assert isinstance(started, TaskStarted) and isinstance(done, TaskSucceeded)
    assert (started.task_id, started.task_name, started.args, started.kwargs) == (
        "t1",
        "tasks.add",
        [1, 2],
        {"z": 3},
    )
    assert done.result == {"sum": 3} and done.attempt == started.attempt == 2
    assert done.runtime is not None and done.runtime >= 0.01 and run.runtime == done.runtime
    assert done.emitter.worker == "celery@test"


def test_track_failure_records_and_reraises_the_users_exception(
    ledger: Ledger, log: ListLog
) -> None:
    error = Boom("kaput")
    with pytest.raises(Boom) as caught, ledger.track("t2", "tasks.explode"):
        raise error
    assert caught.value is error
    started, failed = emitted(log)
    assert isinstance(started, TaskStarted) and isinstance(failed, TaskFailed)
    assert failed.exc_type == "tests.unit.test_sdk.Boom" and failed.exc_message == "kaput"
    assert failed.traceback is not None and "raise error" in failed.traceback
    assert failed.runtime is not None and failed.runtime >= 0


def test_track_retry_records_retry_and_reraises(ledger: Ledger, log: ListLog) -> None:
    eta = datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(Retry), ledger.track("t3", "tasks.flaky", attempt=1):
        raise Retry(eta=eta, countdown=5, exc=KeyError("missing"))
    started, retried = emitted(log)
    assert isinstance(started, TaskStarted) and isinstance(retried, TaskRetried)
    assert (retried.attempt, retried.eta, retried.countdown) == (1, eta, 5.0)
    assert retried.exc_type == "KeyError" and retried.exc_message == "'missing'"


def test_emission_failure_inside_track_is_logged_counted_and_swallowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ledger = Ledger(ListLog(failing=True))
    with caplog.at_level(logging.ERROR, logger="ledger.sdk"), ledger.track("t4", "tasks.ok") as run:
        run.result = 42
    assert ledger.emit_errors == 2
    assert "could not record task 't4' started" in caplog.text
    with pytest.raises(Boom), ledger.track("t5", "tasks.bad"):  # the user's error, not AppendError
        raise Boom
    assert ledger.emit_errors == 4


def test_direct_calls_raise_append_errors() -> None:
    ledger = Ledger(ListLog(failing=True))
    with pytest.raises(AppendError, match="broker down"):
        ledger.emit(TaskStarted(task_id="t"))
    with pytest.raises(AppendError):
        ledger.pending("t", "tasks.add")
    assert ledger.emit_errors == 0


def test_convenience_methods_and_emit_many(ledger: Ledger, log: ListLog) -> None:
    eta = datetime.now(UTC) + timedelta(minutes=5)
    assert ledger.pending("t6", "tasks.add", args=[1], eta=eta) == Position(0, 0)
    ledger.received("t6", "tasks.add")
    ledger.revoked("t6", reason="user", terminated=True)
    positions = ledger.emit_many([TaskStarted(task_id="a"), TaskStarted(task_id="b")])
    assert positions == [Position(0, 3), Position(0, 4)] and ledger.emit_many([]) == []
    events = emitted(log)
    assert [e.type for e in events] == [
        "task.pending",
        "task.received",
        "task.revoked",
        "task.started",
        "task.started",
    ]
    pending = events[0]
    assert isinstance(pending, TaskPending) and pending.eta == eta and pending.args == [1]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda sdk: sdk.pending("", "n"), "task_id: String should have at least 1 character"),
        (lambda sdk: sdk.started("   "), "task_id: must not be blank"),
        (
            lambda sdk: sdk.pending("t", attempt=-1),
            "attempt: Input should be greater than or equal to 0",
        ),
        (
            lambda sdk: sdk.pending("t", eta=datetime(2030, 1, 1)),
            "eta: Input should have timezone info",
        ),
        (
            lambda sdk: sdk.succeeded("t", runtime=-1.0),
            "runtime: Input should be greater than or equal to 0",
        ),
        (
            lambda sdk: sdk.register_periodic("p", "x", 0),
            "interval_seconds: Input should be greater than 0",
        ),
    ],
)
def test_invalid_input_raises_invalid_event_naming_the_field(
    ledger: Ledger, log: ListLog, call: Any, message: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        call(ledger)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError) and log.records == []


def test_non_json_values_fall_back_to_repr_with_a_warning(
    ledger: Ledger, log: ListLog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ledger.sdk"):
        ledger.started("t7", args=(Decimal("1.5"), (1, 2)), kwargs={"when": datetime(2024, 1, 1)})
        ledger.succeeded("t7", result={1, 2})
    started, done = emitted(log)
    assert isinstance(started, TaskStarted) and isinstance(done, TaskSucceeded)
    assert started.args == ["Decimal('1.5')", [1, 2]]  # tuples are JSON arrays, not a fallback
    assert started.kwargs == {"when": "datetime.datetime(2024, 1, 1, 0, 0)"}
    assert done.result == "{1, 2}"
    assert "args[0]" in caplog.text and "kwargs['when']" in caplog.text and "result" in caplog.text
    assert "args[1]" not in caplog.text


def test_strict_mode_raises_naming_the_field(log: ListLog) -> None:
    ledger = Ledger(log, strict=True)
    with pytest.raises(NotSerializable, match=r"^args\[1\]: Decimal is not JSON"):
        ledger.started("t8", args=[1, Decimal("2")])
    with pytest.raises(NotSerializable, match=r"^result: float is not JSON"):
        ledger.succeeded("t8", result=float("nan"))
    assert log.records == []


def test_decorator_tracks_each_call(ledger: Ledger, log: ListLog) -> None:
    seen: list[dict[str, Any]] = []

    @ledger.task()
    def add(x: int, y: int, **options: Any) -> int:
        seen.append(options)
        return x + y

    assert add(1, 2) == 3 and add(2, 3, scale=1) == 5
    assert add(4, 5, task_id="chosen") == 9
    assert seen == [{}, {"scale": 1}, {}]  # task_id was stripped
    events = emitted(log)
    assert [e.type for e in events] == ["task.started", "task.succeeded"] * 3
    ids = [e.task_id for e in events]  # type: ignore[union-attr]
    assert ids[0] == ids[1] != ids[2] == ids[3] and ids[4] == ids[5] == "chosen"
    first = events[0]
    assert isinstance(first, TaskStarted) and first.task_name is not None
    assert first.task_name == f"{__name__}.{test_decorator_tracks_each_call.__name__}.<locals>.add"
    assert first.args == [1, 2] and events[2].kwargs == {"scale": 1}  # type: ignore[union-attr]
    assert events[1].result == 3  # type: ignore[union-attr]


def test_decorator_failure_and_retry(ledger: Ledger, log: ListLog) -> None:
    @ledger.task("tasks.flaky")
    def flaky(mode: str) -> None:
        raise Retry(countdown=1) if mode == "retry" else Boom(mode)

    with pytest.raises(Boom):
        flaky("fail")
    with pytest.raises(Retry):
        flaky("retry")
    assert [e.type for e in emitted(log)] == [
        "task.started",
        "task.failed",
        "task.started",
        "task.retried",
    ]
    assert {e.task_name for e in emitted(log)} == {"tasks.flaky"}  # type: ignore[union-attr]


def test_delay_periodic_dispatches_then_records_the_run(ledger: Ledger, log: ListLog) -> None:
    ledger.register_periodic("nightly", "reports.build", 86_400)
    dispatched: list[str] = []

    def dispatch() -> str:
        dispatched.append("run-1")
        return "run-1"

    assert ledger.delay_periodic("nightly", dispatch, task="reports.build") == "run-1"
    ledger.unregister_periodic("nightly", reason="retired")
    registered, triggered, unregistered = emitted(log)
    assert isinstance(registered, PeriodicTaskRegistered) and registered.interval_seconds == 86_400
    assert isinstance(triggered, PeriodicTaskTriggered)
    assert (triggered.name, triggered.task_id, triggered.task) == (
        "nightly",
        "run-1",
        "reports.build",
    )
    assert isinstance(unregistered, PeriodicTaskUnregistered) and dispatched == ["run-1"]
    with pytest.raises(InvalidEvent, match=r"^name: "):
        ledger.delay_periodic("", dispatch)
    assert dispatched == ["run-1"]  # an invalid name dispatches nothing


def test_delay_periodic_reports_a_dispatched_but_uncounted_run() -> None:
    ledger = Ledger(ListLog(failing=True))
    with pytest.raises(AppendError) as caught:
        ledger.delay_periodic("nightly", lambda: "run-9")
    assert "dispatched as task 'run-9' but not counted" in "".join(caught.value.__notes__)


def test_encrypted_ledger_round_trips(log: ListLog) -> None:
    codec = Codec.with_key(generate_cipher_key())
    Ledger(log, codec).succeeded("t9", "tasks.secret", result="classified")
    assert b"classified" not in log.records[0].value  # type: ignore[operator]
    (done,) = emitted(log, codec)
    assert isinstance(done, TaskSucceeded) and done.result == "classified"


def test_a_bad_worker_name_is_refused_up_front(log: ListLog) -> None:
    with pytest.raises(InvalidEvent, match=r"^worker: String should have at most 255 characters"):
        Ledger(log, worker="w" * 256)


ARGS_RULE = "must be a list or tuple of positional arguments"
KWARGS_RULE = "must be a mapping of argument names to values"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda sdk: sdk.started("t", args="abc"), f"args: {ARGS_RULE}, got str"),
        (lambda sdk: sdk.started("t", args={"a": 1}), f"args: {ARGS_RULE}, got dict"),
        (lambda sdk: sdk.started("t", kwargs=[1, 2]), f"kwargs: {KWARGS_RULE}, got list"),
        (lambda sdk: sdk.failed("t", exc="oops"), "exc: must be an exception instance, got str"),
        (lambda sdk: sdk.failed("t", exc=None), "exc: must be an exception instance, got NoneType"),
        (lambda sdk: sdk.started("t\x00u"), "task_id: must not contain NUL characters"),
        (lambda sdk: sdk.started("t", occurred_at=datetime(2026, 1, 1)),
         "occurred_at: Input should have timezone info"),
        (lambda sdk: sdk.started("t", emitter={"host": "h", "pid": -1}),
         "emitter.pid: Input should be greater than or equal to 0"),
    ],
)
def test_one_rule_per_field_names_the_field(ledger: Ledger, log: ListLog, call: Any, message: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        call(ledger)
    assert str(caught.value) == message
    assert log.records == []


def test_the_same_field_rules_guard_the_topic() -> None:
    from pydantic import TypeAdapter, ValidationError

    from ledger.domain.fields import TaskId

    for bad in ("t\x00u", "", "  "):
        with pytest.raises(ValidationError):
            TypeAdapter(TaskId).validate_python(bad)
    with pytest.raises(ValidationError, match="args"):
        TaskStarted.model_validate({"task_id": "t", "args": "abc"})


def test_text_taken_from_an_exception_keeps_a_nul_as_a_replacement_character(ledger: Ledger, log: ListLog) -> None:
    ledger.failed("t", exc=ValueError("bad\x00byte"))
    ledger.succeeded("u", result={"raw": "a\x00b"})
    failed, done = emitted(log)
    assert isinstance(failed, TaskFailed) and failed.exc_message == "bad\ufffdbyte"
    assert failed.exc_args == ["bad\ufffdbyte"]
    assert isinstance(done, TaskSucceeded) and done.result == {"raw": "a\ufffdb"}


def test_an_impossible_step_is_refused_before_anything_is_appended(ledger: Ledger, log: ListLog) -> None:
    from ledger.domain.aggregates import InvalidTransition

    ledger.received("t", "tasks.add")
    ledger.started("t", "tasks.add")
    ledger.succeeded("t", "tasks.add", result=3)
    with pytest.raises(InvalidTransition, match=r"is finished \(DONE at attempt 0\): cannot record DONE"):
        ledger.succeeded("t", "tasks.add", result=4)
    with pytest.raises(InvalidTransition, match="cannot record STARTED"):
        ledger.started("t")
    assert [e.type for e in emitted(log)] == ["task.received", "task.started", "task.succeeded"]


def test_inside_track_a_refused_step_is_counted_and_logged_never_raised(
    ledger: Ledger, log: ListLog, caplog: pytest.LogCaptureFixture
) -> None:
    ledger.revoked("t", reason="cancelled by user")
    with caplog.at_level(logging.WARNING, logger="ledger.sdk"), ledger.track("t", "tasks.add") as run:
        run.result = 1  # a revoked task must not start: both steps are refused, the body runs
    assert run.result == 1 and (ledger.refused_steps, ledger.emit_errors) == (2, 0)
    assert "refused to record task 't' started" in caplog.text and "REVOKED" in caplog.text
    assert [e.type for e in emitted(log)] == ["task.revoked"]


def test_event_ids_come_from_the_steps_and_a_retry_moves_to_the_next_attempt(ledger: Ledger, log: ListLog) -> None:
    from ledger.domain.aggregates import step_event_id
    from ledger.domain.statuses import TaskStatus

    ledger.started("t")
    ledger.retried("t", exc=ConnectionError("busy"), countdown=5)
    ledger.received("t")  # the next attempt: no attempt= needed
    started, retried, received = emitted(log)
    assert started.event_id == step_event_id("t", TaskStatus.STARTED, 0)
    assert (retried.attempt, received.attempt) == (0, 1)  # type: ignore[union-attr]
    assert isinstance(retried, TaskRetried) and retried.eta == retried.occurred_at + timedelta(seconds=5)


def test_a_failed_append_forgets_the_run_so_the_call_can_be_retried() -> None:
    log = ListLog(failing=True)
    ledger = Ledger(log)
    with pytest.raises(AppendError):
        ledger.succeeded("t", result=1)
    log.failing = False
    ledger.succeeded("t", result=1)  # not "finished": whether the first reached the log is unknown
    (done,) = emitted(log)
    assert isinstance(done, TaskSucceeded) and done.result == 1


def test_importing_a_history_keeps_its_times_ids_and_emitters(ledger: Ledger, log: ListLog) -> None:
    t0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    worker = {"host": "vm-7", "pid": 4242, "worker": "celery@vm-7"}
    ledger.pending("old", "etl.load", args=[1], occurred_at=t0, event_id="7d7cb5a5-0bf1-4a4c-8f6a-6bd3a9b2f001",
                   emitter={"host": "web-1", "pid": 10})  # fmt: skip
    ledger.started("old", "etl.load", occurred_at=t0 + timedelta(seconds=3), emitter=worker, attempt=2)
    pending, started = emitted(log)
    assert (pending.occurred_at, str(pending.event_id), pending.emitter.host) == (
        t0, "7d7cb5a5-0bf1-4a4c-8f6a-6bd3a9b2f001", "web-1")
    assert (started.attempt, started.emitter.pid, started.emitter.worker) == (2, 4242, "celery@vm-7")  # type: ignore[union-attr]


def test_an_async_task_records_its_awaited_outcome(ledger: Ledger, log: ListLog) -> None:
    import asyncio

    @ledger.task("tasks.fetch")
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        if x < 0:
            raise Boom("negative")
        return x * 2

    assert asyncio.run(fetch(21)) == 42
    with pytest.raises(Boom):
        asyncio.run(fetch(-1))
    _, done, _, failed = emitted(log)
    assert isinstance(done, TaskSucceeded) and done.result == 42
    assert isinstance(failed, TaskFailed) and failed.exc_message == "negative"


def test_a_generator_function_cannot_be_tracked(ledger: Ledger) -> None:
    with pytest.raises(TypeError, match=r"cannot track generator function '.*numbers'"):

        @ledger.task()
        def numbers() -> Iterator[int]:
            yield 1


def test_track_records_the_linkage_it_is_given(ledger: Ledger, log: ListLog) -> None:
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    with ledger.track("t", "tasks.add", parent_id="p", root_id="r", group_id="g", callback_id="cb",
                      queue="high", expires=expires):  # fmt: skip
        pass
    started = emitted(log)[0]
    assert isinstance(started, TaskStarted)
    assert (started.root_id, started.parent_id, started.group_id, started.callback_id) == ("r", "p", "g", "cb")
    assert (started.queue, started.expires) == ("high", expires)
    ledger.pending("u", "tasks.add", parent_id="t", root_id="r", routing_key="high")  # direct calls too
    pending = emitted(log)[-1]
    assert isinstance(pending, TaskPending) and (pending.parent_id, pending.routing_key) == ("t", "high")
    with pytest.raises(InvalidEvent, match="parent_id"):
        ledger.pending("v", parent_id="")


def test_a_task_recorded_inside_another_is_its_child_and_shares_its_root(ledger: Ledger, log: ListLog) -> None:
    @ledger.task("tasks.leaf")
    def leaf() -> int:
        return 1

    @ledger.task("tasks.branch")
    def branch() -> int:
        with ledger.track("explicit", "tasks.other", parent_id="elsewhere"):  # given: kept
            pass
        return leaf() + leaf()

    with ledger.track("root", "tasks.root"):
        branch(task_id="branch")
    leaf()  # outside every run: no parent
    starts = {e.task_id: e for e in emitted(log) if isinstance(e, TaskStarted)}
    links = {task_id: (e.parent_id, e.root_id) for task_id, e in starts.items()}
    leaves = [task_id for task_id, e in starts.items() if e.task_name == "tasks.leaf"]
    assert links["root"] == (None, None)  # a root is its own: nothing to record
    assert links["branch"] == ("root", "root")
    assert links["explicit"] == ("elsewhere", None)
    assert [links[task_id] for task_id in leaves] == [("branch", "root"), ("branch", "root"), (None, None)]


def test_async_tasks_inherit_their_parent_per_asyncio_task(ledger: Ledger, log: ListLog) -> None:
    import asyncio

    @ledger.task("tasks.child")
    async def child() -> None:
        await asyncio.sleep(0)

    async def main() -> None:
        async with ledger.track("parent", "tasks.parent"):
            await asyncio.gather(child(task_id="a"), child(task_id="b"))
        await child(task_id="c")

    asyncio.run(main())
    starts = {e.task_id: e.parent_id for e in emitted(log) if isinstance(e, TaskStarted)}
    assert starts == {"parent": None, "a": "parent", "b": "parent", "c": None}

def test_resolving_a_failure_group_appends_one_event_keyed_by_its_fingerprint(ledger: Ledger, log: ListLog) -> None:
    ledger.resolve_failure_group("0123456789abcdef", resolved_by="ops", note="fixed in 1.2")
    (event,) = emitted(log)
    assert isinstance(event, FailureGroupResolved) and log.records[0].key == b"0123456789abcdef"
    assert (event.fingerprint, event.resolved_by, event.note) == ("0123456789abcdef", "ops", "fixed in 1.2")
    with pytest.raises(InvalidEvent, match=r"^fingerprint: "):
        ledger.resolve_failure_group("0123")
    with pytest.raises(InvalidEvent, match=r"^resolved_by: "):
        ledger.resolve_failure_group("0123456789abcdef", resolved_by="x" * 300)
    assert len(log.records) == 1  # nothing appended for bad input


def test_reopening_a_failure_group_appends_one_event_keyed_by_its_fingerprint(ledger: Ledger, log: ListLog) -> None:
    ledger.reopen_failure_group("0123456789abcdef", reopened_by="ops", note="still failing")
    (event,) = emitted(log)
    assert isinstance(event, FailureGroupReopened) and log.records[0].key == b"0123456789abcdef"
    assert (event.type, event.fingerprint, event.reopened_by, event.note) == (
        "failures.reopened", "0123456789abcdef", "ops", "still failing")  # fmt: skip
    with pytest.raises(InvalidEvent, match=r"^fingerprint: "):
        ledger.reopen_failure_group("not-hex-digits!!")
    with pytest.raises(InvalidEvent, match=r"^reopened_by: "):
        ledger.reopen_failure_group("0123456789abcdef", reopened_by="x" * 300)
    assert len(log.records) == 1  # nothing appended for bad input
