"""Workers end to end, on both backends (issue 16): Celery's own worker events, imported
through the translator and projected, become ``GET /workers`` and ``ledger workers``: a
worker that beats is online, one whose heartbeats stopped and one that said goodbye are
offline, each with the tasks it ran; the same heartbeat imported twice is one, and a
rebuild from the log gives the same rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ledger.bootstrap import build_ledger, build_rebuild
from ledger.contrib.celery_events import import_celery_events
from ledger.eventlog.base import EventLog
from ledger.http import create_app
from ledger.projections.store import ViewWriter
from ledger.settings import Settings
from tests.cli import ledger
from tests.streams import project_all
from tests.worker_fleet import BUSY, KILLED, STOPPED, captured, celery_events


def imported(settings: Settings, log: EventLog, now: datetime, *, times: int = 1) -> None:
    lines = [json.dumps(event) for event in celery_events(now)]
    for _ in range(times):
        import_celery_events(lines, build_ledger(settings, log))
    project_all(settings)


def by_host(client: TestClient) -> dict[str, dict[str, Any]]:
    response = client.get("/workers")
    assert response.status_code == 200, response.text
    return {w["hostname"]: w for w in response.json()}


def test_workers_online_and_offline_with_their_tasks_imported_twice_and_rebuilt_alike(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    imported(settings, log, datetime.now(UTC), times=2)  # two ingesters delivered every event
    with TestClient(create_app(settings)) as client:
        workers = by_host(client)
        assert list(workers) == [BUSY, KILLED, STOPPED]
        busy, killed, stopped = workers[BUSY], workers[KILLED], workers[STOPPED]
        assert (busy["status"], busy["processed"], busy["active"], busy["freq"]) == ("online", 25, 2, 600.0)
        assert busy["loadavg"] == [2.5, 1.75, 1.25] and busy["software"] == "py-celery 5.7.0 (Linux)"
        assert (killed["status"], killed["offline_at"], killed["processed"]) == ("offline", None, 30)
        assert killed["silent_since"] is not None and killed["silent_since"] > killed["last_heartbeat"]
        assert (stopped["status"], stopped["sw_ver"]) == ("offline", "5.6.2")
        assert stopped["offline_at"] is not None and stopped["silent_since"] is None
        one = client.get(f"/workers/{BUSY}")
        assert one.status_code == 200, one.text
        assert one.json()["tasks"] == {"DONE": 9, "FAILURE": 3}
        assert one.json()["newest_tasks"] == [f"busy-{i:02d}" for i in range(11, 1, -1)]
        assert client.get(f"/workers/{KILLED}").json()["tasks"] == {"DONE": 4, "FAILURE": 1}
        assert client.get(f"/workers/{STOPPED}").json()["tasks"] == {}
        before = {host: {k: v for k, v in w.items() if k != "checked_at"} for host, w in workers.items()}

    report = build_rebuild(settings).run(verify=True)
    assert report.swapped and report.diff is not None and report.diff.clean, report.diff and report.diff.report()
    with TestClient(create_app(settings)) as client:
        after = {host: {k: v for k, v in w.items() if k != "checked_at"} for host, w in by_host(client).items()}
    assert after == before


def test_bad_requests_are_422_naming_the_parameter_and_unknown_workers_404(
    settings: Settings, store: ViewWriter
) -> None:
    with TestClient(create_app(settings)) as client:
        for path, params, loc in (("/workers", {"limit": 0}, ["query", "limit"]),
                                  ("/workers", {"limit": 1001}, ["query", "limit"]),
                                  ("/workers/a%00b", {}, ["path", "hostname"]),
                                  ("/workers/%20", {}, ["path", "hostname"])):  # fmt: skip
            response = client.get(path, params=params)
            assert response.status_code == 422, (path, params, response.text)
            assert any(e["loc"] == loc and e["msg"] for e in response.json()["detail"]), (loc, response.text)
        unknown = client.get("/workers/celery@nowhere")
        assert unknown.status_code == 404 and "celery@nowhere" in unknown.json()["detail"]
        assert client.get("/workers").json() == []


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
def test_a_configured_token_guards_the_worker_routes(settings: Settings, store: ViewWriter) -> None:
    guarded = settings.model_copy(update={"api_token": SecretStr("s3cret-token")})
    with TestClient(create_app(guarded)) as client:
        assert client.get("/workers").status_code == 401
        assert client.get(f"/workers/{BUSY}").status_code == 401
        assert client.get("/workers", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
def test_the_cli_imports_lists_and_shows_workers(settings: Settings, store: ViewWriter, tmp_path: Path) -> None:
    env = {"LEDGER_DATA_DIR": str(settings.data_dir), "LEDGER_TOPIC": settings.topic,
           "LEDGER_PARTITIONS": str(settings.partitions)}  # fmt: skip
    done = ledger("import", "celery-events", str(captured(tmp_path / "events.jsonl", datetime.now(UTC))), env=env)
    assert done.returncode == 0, done.stderr
    project_all(settings)
    listed = ledger("workers", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert {w["hostname"]: w["status"] for w in json.loads(listed.stdout)} == {
        BUSY: "online", KILLED: "offline", STOPPED: "offline"}
    table = ledger("workers", env=env)
    assert table.returncode == 0 and "3 workers, 1 online" in table.stdout, table.stdout
    assert "offline (no heartbeat)" in table.stdout and "offline (stopped)" in table.stdout
    shown = ledger("workers", "show", BUSY, "--json", env=env)
    assert json.loads(shown.stdout)["tasks"] == {"DONE": 9, "FAILURE": 3}
    text = ledger("workers", "show", KILLED, env=env)
    assert text.returncode == 0 and "killed-04" in text.stdout and "FAILURE" in text.stdout, text.stdout
    for args, message in ((("workers", "show", "celery@nowhere"), "unknown worker 'celery@nowhere'"),
                          (("workers", "show", " "), "HOSTNAME: must not be blank"),
                          (("workers", "--limit", "0"), "--limit")):  # fmt: skip
        bad = ledger(*args, env=env)
        assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and message in bad.stderr, bad.stderr
