"""Workflows over HTTP on both backends: ``GET /tasks/{id}/workflow`` and
``GET /workflows/{root_id}`` answer nodes and edges a UI can draw (checked against the
domain's ``build_workflow`` of the same rows), 404/422 bodies; and ``GET /tasks/{id}``
shows each task's linkage, routing and durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ledger.domain.events import TaskEvent, TaskFailed, TaskPending, TaskReceived, TaskStarted, TaskSucceeded
from ledger.domain.workflow import build_workflow
from ledger.eventlog.base import EventLog
from ledger.http import create_app
from ledger.projections.store import ViewWriter
from ledger.settings import Settings
from tests.streams import append_all, project_all

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
ROUTING = {"queue": "reports", "exchange": "tasks", "routing_key": "reports.build"}


def run(task_id: str, at: float, *, failed: bool = False, **links: str) -> list[TaskEvent]:
    """One task sent at ``at`` seconds, received, started, then succeeded (or failed)."""
    when = T0 + timedelta(seconds=at)
    end: TaskEvent = (
        TaskFailed(task_id=task_id, exc_type="ValueError", exc_message="no stock", runtime=0.25,
                   occurred_at=when + timedelta(seconds=2))
        if failed else TaskSucceeded(task_id=task_id, result=1, runtime=0.25, occurred_at=when + timedelta(seconds=2))
    )  # fmt: skip
    return [TaskPending(task_id=task_id, task_name="flows.step", occurred_at=when, expires=T0 + timedelta(hours=1),
                        **ROUTING, **links),
            TaskReceived(task_id=task_id, occurred_at=when + timedelta(seconds=0.5), **ROUTING, **links),
            TaskStarted(task_id=task_id, occurred_at=when + timedelta(seconds=1)), end]  # fmt: skip


# a chord as Celery records it: two header tasks (each its own root) of group g feeding the
# callback cb, sent by the last header task; cb then sends "after" (its chain), and "h2"
# sent a task of its own that failed
EVENTS = [
    *run("h1", 0, root_id="h1", group_id="g", callback_id="cb"),
    *run("h2", 1, root_id="h2", group_id="g", callback_id="cb"),
    *run("side", 2, root_id="h2", parent_id="h2", failed=True),
    *run("cb", 4, root_id="h2", parent_id="h2", group_id="g"),
    *run("after", 7, root_id="h2", parent_id="cb", group_id="g"),
    *run("alone", 9),
]


@pytest.fixture
def client(settings: Settings, log: EventLog, store: ViewWriter) -> Any:
    append_all(log, list(EVENTS))
    project_all(settings)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_a_task_shows_its_linkage_routing_and_durations(client: TestClient, store: ViewWriter) -> None:
    answer = client.get("/tasks/after")
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert {k: got[k] for k in ("root_id", "parent_id", "group_id", "callback_id")} == {
        "root_id": "h2", "parent_id": "cb", "group_id": "g", "callback_id": None}  # fmt: skip
    assert {k: got[k] for k in ROUTING} == ROUTING and got["expires"] == "2026-05-01T10:00:00Z"
    assert (got["queue_wait"], got["start_delay"], got["total_time"]) == (0.5, 0.5, 2.0)
    assert client.get("/tasks/h1").json()["callback_id"] == "cb"


def test_the_workflow_of_any_task_is_its_nodes_and_edges(client: TestClient, store: ViewWriter) -> None:
    expected = build_workflow(store.load_tasks(["h1", "h2", "side", "cb", "after"]).values())
    assert expected is not None
    for task_id in ("h1", "side", "cb", "after"):
        answer = client.get(f"/tasks/{task_id}/workflow")
        assert answer.status_code == 200, answer.text
        flow = answer.json()
        assert [n["id"] for n in flow["nodes"]] == ["h1", "h2", "side", "cb", "after", "g"]
        assert {(e["source"], e["target"], e["kind"]) for e in flow["edges"]} == set(expected.edges) == {
            ("g", "h1", "member"), ("g", "h2", "member"), ("h1", "cb", "callback"), ("h2", "cb", "callback"),
            ("h2", "side", "child"), ("cb", "after", "child")}  # fmt: skip
        assert (flow["state"], flow["failed_at"], flow["roots"], flow["tasks"]) == ("failed", ["side"], ["h1", "h2"], 5)
        assert (flow["started_at"], flow["finished_at"], flow["duration"]) == (
            "2026-05-01T09:00:00Z", "2026-05-01T09:00:09Z", 9.0)  # fmt: skip
    nodes = {n["id"]: n for n in flow["nodes"]}
    assert nodes["g"] == {"kind": "group", "id": "g", "size": 2, "statuses": {"DONE": 2}}
    side = nodes["side"]
    assert (side["kind"], side["status"], side["attempts"], side["exc_type"], side["exc_message"]) == (
        "task", "FAILURE", 1, "ValueError", "no stock")  # fmt: skip
    assert (side["runtime"], side["queue"], side["parent_id"], side["root_id"]) == (0.25, "reports", "h2", "h2")


def test_a_workflow_by_its_root_and_what_is_not_one(client: TestClient) -> None:
    by_task = client.get("/tasks/after/workflow").json()
    for root in ("h1", "h2"):
        answer = client.get(f"/workflows/{root}")
        assert answer.status_code == 200 and answer.json() == by_task
    alone = client.get("/workflows/alone").json()
    assert ([n["id"] for n in alone["nodes"]], alone["edges"], alone["state"]) == (["alone"], [], "done")
    for path in ("/workflows/after", "/workflows/never-seen", "/tasks/never-seen/workflow"):
        missing = client.get(path)
        assert missing.status_code == 404, path
        assert missing.json()["detail"].count("\n") == 0 and path.split("/")[2] in missing.json()["detail"]
    assert "not the root" in client.get("/workflows/after").json()["detail"]
    for path in ("/tasks/a%00b/workflow", "/workflows/%20"):
        bad = client.get(path)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][0] == "path", bad.text


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
def test_a_configured_token_guards_the_workflow_routes(settings: Settings, store: ViewWriter) -> None:
    guarded = settings.model_copy(update={"api_token": SecretStr("s3cret-token")})
    with TestClient(create_app(guarded)) as client:
        for path in ("/tasks/h1/workflow", "/workflows/h1"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"Authorization": "Bearer s3cret-token"}).status_code == 404
