"""The HTTP API on both backends: each endpoint's answers checked against the domain fold of
a projected stream, keyset pages, time travel, 404/422/401/503 bodies, metrics, health."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from ledger.domain.events import TaskEvent, TaskPending, TaskSucceeded
from ledger.domain.fold import fold
from ledger.domain.statuses import TaskStatus
from ledger.eventlog.base import EventLog
from ledger.http import create_app
from ledger.http.schemas import TaskOut
from ledger.projections.store import ViewReader, ViewWriter
from ledger.sdk import Ledger
from ledger.settings import Settings
from tests.e2e.http_helpers import Projected, project_stream
from tests.streams import T0, append_all, project_all, stream


@pytest.fixture
def projected(settings: Settings, log: EventLog, store: ViewWriter) -> Projected:
    return project_stream(settings, log, seed=31, tasks=80)


@pytest.fixture
def client(settings: Settings, projected: Projected) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def as_json(state_out: TaskOut) -> dict[str, Any]:
    return state_out.model_dump(mode="json")


def walk(client: TestClient, between_pages: Callable[[], object] = lambda: None, **params: Any) -> list[dict[str, Any]]:
    """Every item of a listing, following next_cursor (``between_pages`` runs after each)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = client.get("/tasks", params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items
        between_pages()


def test_a_task_now_and_as_of_a_time_and_unknown_ids(client: TestClient, projected: Projected) -> None:
    for task_id, state in sorted(projected.tasks.items())[:15]:
        response = client.get(f"/tasks/{task_id}")
        assert response.status_code == 200 and response.json() == as_json(TaskOut.from_state(state))
    missing = client.get("/tasks/never-seen")
    assert missing.status_code == 404 and "never-seen" in missing.json()["detail"]
    pending = client.get("/tasks/never-seen", params={"pending_if_unknown": "true"}).json()
    assert (pending["status"], pending["known"], pending["result"]) == ("PENDING", False, None)

    task_id, state = next((t, s) for t, s in sorted(projected.tasks.items()) if s.status is TaskStatus.FAILURE)
    own = sorted((e for e in projected.events if isinstance(e, TaskEvent) and e.task_id == task_id),
                 key=lambda e: e.occurred_at)  # fmt: skip
    before_last = own[-1].occurred_at - timedelta(microseconds=1)
    then = fold((e, None) for e in own if e.occurred_at <= before_last)
    assert then is not None and then.status is not TaskStatus.FAILURE
    answer = client.get(f"/tasks/{task_id}", params={"as_of": before_last.isoformat()})
    assert answer.status_code == 200 and answer.json()["status"] == then.status.value
    latest = client.get(f"/tasks/{task_id}", params={"as_of": "2100-01-01T00:00:00+02:00"}).json()
    assert latest["status"] == "FAILURE" and latest["exc_type"] == state.exc_type
    too_early = client.get(
        f"/tasks/{task_id}", params={"as_of": (own[0].occurred_at - timedelta(seconds=1)).isoformat()}
    )
    assert too_early.status_code == 404 and task_id in too_early.json()["detail"]


def test_listing_walks_every_task_once_and_filters(
    client: TestClient, projected: Projected, settings: Settings, log: EventLog
) -> None:
    tasks = projected.tasks
    seen = [item["task_id"] for item in walk(client, limit=7)]
    assert sorted(seen) == sorted(tasks) and len(seen) == len(set(seen))
    by_status = {s: {t for t, st in tasks.items() if st.status is s} for s in TaskStatus}
    assert {i["task_id"] for i in walk(client, status="failure")} == by_status[TaskStatus.FAILURE]
    assert {i["task_id"] for i in walk(client, status="SUCCESS", limit=5)} == by_status[TaskStatus.DONE]
    both = walk(client, status=["FAILURE", "revoked"])
    assert {i["task_id"] for i in both} == by_status[TaskStatus.FAILURE] | by_status[TaskStatus.REVOKED]
    assert {i["task_id"] for i in walk(client, name="billing.charge")} == {
        t for t, s in tasks.items() if s.name == "billing.charge"
    }
    worker = next(s.worker for s in tasks.values() if s.worker)
    assert {i["task_id"] for i in walk(client, worker=worker)} == {t for t, s in tasks.items() if s.worker == worker}
    times = sorted(s.date_done for s in tasks.values())
    middle = times[len(times) // 2]
    since = {i["task_id"] for i in walk(client, since=middle.isoformat())}
    until = {i["task_id"] for i in walk(client, until=middle.isoformat())}
    assert since == {t for t, s in tasks.items() if s.date_done >= middle}
    assert until == {t for t, s in tasks.items() if s.date_done < middle}
    page = client.get("/tasks", params={"limit": 1000}).json()
    assert page["next_cursor"] is None and len(page["items"]) == len(tasks)
    ledger, written = Ledger(log), []

    def concurrent_writes() -> None:
        """New tasks land before the cursor (changed now): the walk neither repeats nor skips."""
        if len(written) < 3:
            written.append(ledger.succeeded(f"new-{len(written)}", "email.send"))
            project_all(settings)

    during = [item["task_id"] for item in walk(client, concurrent_writes, limit=9)]
    assert sorted(during) == sorted(tasks) and len(during) == len(set(during)) and len(written) == 3


def test_the_listing_sorts_in_each_order_and_a_cursor_keeps_its_own(client: TestClient, projected: Projected) -> None:
    """``sort``: each order walks every task once, by its key then task id in one direction;
    a cursor continues only the order it came from; a version 2 cursor (first_seen|task_id,
    before orders) still continues the default order."""
    key = {"first_seen": "first_seen", "changed": "date_done"}
    for sort in ("-first_seen", "first_seen", "-changed", "changed"):
        items = walk(client, sort=sort, limit=7)
        assert sorted(i["task_id"] for i in items) == sorted(projected.tasks), sort
        keys = [(datetime.fromisoformat(i[key[sort.lstrip("-")]]), i["task_id"]) for i in items]
        assert keys == sorted(keys, reverse=sort.startswith("-")), sort
    assert walk(client, limit=9) == walk(client, sort="-first_seen", limit=9)
    changed = client.get("/tasks", params={"sort": "-changed", "limit": 5}).json()
    wrong = client.get("/tasks", params={"sort": "first_seen", "cursor": changed["next_cursor"]})
    assert wrong.status_code == 422
    [error] = wrong.json()["detail"]
    assert error["loc"] == ["query", "cursor"] and "sort=-changed, not sort=first_seen" in error["msg"]
    first = client.get("/tasks", params={"limit": 5}).json()["items"]
    v2 = base64.urlsafe_b64encode(f"2|{first[-1]['first_seen']}|{first[-1]['task_id']}".encode()).decode()
    second = client.get("/tasks", params={"limit": 5, "cursor": v2})
    assert second.status_code == 200, second.text
    default = client.get("/tasks", params={"limit": 10}).json()["items"]
    assert second.json()["items"] == default[5:]
    documented = client.get("/openapi.json").json()["paths"]["/tasks"]["get"]["parameters"]
    [sort_param] = [p for p in documented if p["name"] == "sort"]
    assert "-changed" in sort_param["description"] and sort_param["schema"]["default"] == "-first_seen"


def test_a_skewed_late_outcome_does_not_bring_a_walked_task_back(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    """Issue 12, defect 5: take a page of DONE tasks, then a worker whose clock is three
    hours behind reports attempt 5 of five tasks already seen; the rest of the walk must
    neither repeat them nor miss any other task."""
    now = datetime.now(UTC)
    done = [f"job-{i:03d}" for i in range(40)]
    append_all(log, [event for i, task_id in enumerate(done) for event in (
        TaskPending(task_id=task_id, task_name="report.build", occurred_at=now - timedelta(minutes=30, seconds=i)),
        TaskSucceeded(task_id=task_id, task_name="report.build", occurred_at=now - timedelta(minutes=20, seconds=i)),
    )])  # fmt: skip
    project_all(settings)
    with TestClient(create_app(settings)) as client:
        first = client.get("/tasks", params={"limit": 10, "status": "DONE"}).json()
        walked = [item["task_id"] for item in first["items"]]
        skewed = walked[:5]
        append_all(log, [TaskSucceeded(task_id=t, attempt=5, occurred_at=now - timedelta(hours=3)) for t in skewed])
        project_all(settings)
        assert {client.get(f"/tasks/{t}").json()["retries"] for t in skewed} == {5}
        cursor = first["next_cursor"]
        rest: list[str] = []
        while cursor:
            page = client.get("/tasks", params={"limit": 10, "status": "DONE", "cursor": cursor}).json()
            rest += [item["task_id"] for item in page["items"]]
            cursor = page["next_cursor"]
    assert set(rest) & set(skewed) == set()
    assert sorted(walked + rest) == sorted(done)


def test_history_stats_and_periodic_tasks(client: TestClient, projected: Projected) -> None:
    late_seen = False
    for task_id, state in projected.tasks.items():
        timeline = client.get(f"/tasks/{task_id}/history").json()
        entries = timeline["entries"]
        ids = {e.event_id for e in projected.events if isinstance(e, TaskEvent) and e.task_id == task_id}
        assert {e["event_id"] for e in entries} == {str(i) for i in ids} and len(entries) == len(ids)
        assert [(e["partition"], e["offset"]) for e in entries] == sorted(
            (e["partition"], e["offset"]) for e in entries
        )
        assert entries[-1]["status_after"] == state.status.value and all(e["emitter"]["host"] for e in entries)
        late_seen |= any(e["late"] and e["status_after"] == e["status_before"] for e in entries)
    assert late_seen, "the stream has late RECEIVED events: some timeline must flag one"
    assert client.get("/tasks/never-seen/history").status_code == 404

    counts = client.get("/stats").json()
    assert counts["total"] == len(projected.tasks) and counts["as_of"] is None
    for status in TaskStatus:
        assert counts["counts"][status.value] == sum(1 for s in projected.tasks.values() if s.status is status)
    assert client.get("/stats", params={"as_of": (T0 - timedelta(seconds=1)).isoformat()}).json()["total"] == 0
    future = client.get("/stats", params={"as_of": "2100-01-01T00:00:00Z"}).json()
    assert future["counts"] == counts["counts"]

    periodic = client.get("/periodic-tasks").json()
    assert {p["name"]: p["total_run_count"] for p in periodic} == {
        n: s.total_run_count for n, s in projected.periodic.items()
    }
    due = client.get("/periodic-tasks/due").json()
    assert [p["name"] for p in due] == [p["name"] for p in periodic if p["due"]]


V1_CURSOR = base64.urlsafe_b64encode(b"2026-03-01T02:00:00+00:00|task-1").decode()
"""A next_cursor as versions ordered by date_done issued it."""


def test_bad_parameters_are_422_naming_the_parameter(settings: Settings, store: ViewWriter) -> None:
    naive = "2026-03-01T02:00:00"
    cases: list[tuple[str, dict[str, Any], dict[str, str], list[Any]]] = [
        ("/tasks", {"status": "bogus"}, {}, ["query", "status", 0]),
        ("/tasks", {"status": ["DONE", "nope"]}, {}, ["query", "status", 1]),
        ("/tasks", {"limit": 0}, {}, ["query", "limit"]),
        ("/tasks", {"limit": 1001}, {}, ["query", "limit"]),
        ("/tasks", {"cursor": "not-a-cursor"}, {}, ["query", "cursor"]),
        ("/tasks", {"cursor": V1_CURSOR}, {}, ["query", "cursor"]),
        ("/tasks", {"sort": "date_done"}, {}, ["query", "sort"]),
        ("/tasks", {"since": naive}, {}, ["query", "since"]),
        ("/tasks", {"until": "yesterday"}, {}, ["query", "until"]),
        ("/tasks", {"name": "a\x00b"}, {}, ["query", "name"]),
        ("/tasks/some-id", {"as_of": naive}, {}, ["query", "as_of"]),
        ("/tasks/some-id", {"as_of": "0001-01-01T00:00:00+05:00"}, {}, ["query", "as_of"]),
        ("/stats", {"as_of": naive}, {}, ["query", "as_of"]),
        ("/events/stream", {"status": "bogus"}, {}, ["query", "status", 0]),
        ("/events/stream", {"from": "middle"}, {}, ["query", "from"]),
        ("/events/stream", {}, {"Last-Event-ID": "garbage"}, ["header", "Last-Event-ID"]),
        ("/events/stream", {}, {"Last-Event-ID": "0:0,99:0"}, ["header", "Last-Event-ID"]),
        ("/events/stream", {}, {"Last-Event-ID": "0:999999"}, ["header", "Last-Event-ID"]),
    ]
    with TestClient(create_app(settings)) as client:
        for path, params, headers, loc in cases:
            response = client.get(path, params=params, headers=headers)
            assert response.status_code == 422, (path, params, headers, response.text)
            errors = response.json()["detail"]
            assert any(e["loc"] == loc and e["msg"] for e in errors), (loc, errors)
        old = client.get("/tasks", params={"cursor": V1_CURSOR}).json()["detail"][0]["msg"]
        assert "cursor: issued by an older version of the ledger" in old and "without a cursor" in old


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
def test_a_configured_token_guards_everything_but_health_and_docs(settings: Settings, store: ViewWriter) -> None:
    guarded = settings.model_copy(update={"api_token": SecretStr("s3cret-token")})
    with TestClient(create_app(guarded)) as client:
        for path in ("/tasks", "/tasks/x", "/stats", "/periodic-tasks", "/metrics", "/events/stream"):
            missing = client.get(path)
            assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
            wrong = client.get(path, headers={"Authorization": "Bearer s3cret-tokeN"})
            assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
        ok = {"Authorization": "Bearer s3cret-token"}
        assert client.get("/tasks", headers=ok).status_code == 200
        assert client.get("/tasks/x", headers=ok).status_code == 404
        assert client.get("/metrics", headers=ok).status_code == 200
        assert client.get("/health").status_code == 200
        schema = client.get("/openapi.json").json()
        assert "HTTPBearer" in schema["components"]["securitySchemes"]


def test_metrics_have_bounded_labels_and_health_reports_lag(
    settings: Settings, log: EventLog, reader: ViewReader
) -> None:
    events = stream(seed=41, tasks=40)
    append_all(log, events)
    project_all(settings)
    append_all(log, stream(seed=42, tasks=3, periodic=0, duplicates=0, late=0))

    with TestClient(create_app(settings)) as client:
        text = client.get("/metrics").text
        health = client.get("/health")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"ledger_tasks", "ledger_projector_lag", "ledger_backend_up"} <= set(families)
    # `ledger serve` never projects: counters it could not move are not published (the
    # projector process serves them, LEDGER_PROJECTOR_METRICS_PORT)
    projector_only = {"ledger_events_projected", "ledger_batches", "ledger_dead_letters",
                      "ledger_refused_batches", "ledger_batch_duration_seconds"}  # fmt: skip
    assert not projector_only & set(families)
    labels = {k for f in families.values() for s in f.samples for k in s.labels}
    assert labels <= {"status", "type", "partition", "component", "le"}
    forbidden = {e.task_id for e in events if isinstance(e, TaskEvent)} | {"worker-0.example", "celery@worker-0"}
    assert not [word for word in forbidden if word in text]
    counts = reader.status_counts()
    assert {s.labels["status"]: s.value for s in families["ledger_tasks"].samples} == {
        status.value: float(counts.get(status, 0)) for status in TaskStatus
    }
    lag_samples = {s.labels["partition"]: s.value for s in families["ledger_projector_lag"].samples}

    assert health.status_code == 200, health.text
    report = health.json()
    assert report["status"] == "ok" and report["failing"] == [] and report["backend"] == settings.backend.value
    assert report["lag_total"] > 0 and report["lag_total"] == sum(report["lag"].values())
    assert {str(p): float(v) for p, v in report["lag"].items()} == lag_samples


def test_unreachable_views_are_503_naming_them(settings: Settings, log: EventLog, tmp_path: Any) -> None:
    if settings.backend.value == "embedded":
        broken = settings.model_copy(update={"data_dir": tmp_path / "never-projected"})
    else:
        broken = settings.model_copy(update={"postgres_dsn": "postgresql://ledger:ledger@127.0.0.1:1/ledger"})
    with TestClient(create_app(broken)) as client:
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["failing"] == ["views"]
        views = next(c for c in health.json()["components"] if c["name"] == "views")
        assert views["error"] and views["target"] and "ledger:ledger" not in views["target"]
        tasks = client.get("/tasks")
        assert tasks.status_code == 503 and tasks.json()["detail"].startswith("views:")
        at = datetime(2026, 3, 1).isoformat() + "Z"
        assert client.get("/stats", params={"as_of": at}).status_code == 503
        assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
def test_what_the_sdk_records_the_api_reads_and_what_one_refuses_both_refuse(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    from ledger.sdk import InvalidEvent

    sdk = Ledger(log)
    odd_ids = ["x" * 255, "ünïcode task", "with space", "a:b;c"]
    for task_id in odd_ids:
        sdk.succeeded(task_id, "app.odd", result=1)
    with pytest.raises(InvalidEvent, match="task_id: must not contain NUL characters"):
        sdk.started("a\x00b")
    project_all(settings)
    with TestClient(create_app(settings)) as client:
        for task_id in odd_ids:
            response = client.get("/tasks/" + task_id.replace(";", "%3B"))
            assert response.status_code == 200 and response.json()["task_id"] == task_id, response.text
        refused = client.get("/tasks/a%00b")
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["msg"].endswith("must not contain NUL characters")
