"""Failure groups end to end, on both backends (issue 14's acceptance): 1,000 failures of 3
root causes whose messages vary in ids, numbers and quoted values give exactly 3 groups;
resolving one (through the HTTP API: an event in the log) and a recurrence reopen it, so does
an operator's reopen; a rebuild from the log gives the same groups, decisions included."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ledger.bootstrap import build_ledger, build_rebuild
from ledger.domain.events import TaskFailed
from ledger.domain.failures import fingerprint
from ledger.eventlog.base import EventLog
from ledger.http import create_app
from ledger.projections.store import ViewWriter
from ledger.settings import Settings
from tests.cli import ledger
from tests.streams import append_all, project_all

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
WINDOW = {"since": T0.isoformat(), "until": (T0 + timedelta(hours=2)).isoformat(), "buckets": 4}


def _message(cause: int, rng: random.Random) -> tuple[str, str, str]:
    """(task name, exception type, message) of one of 3 root causes, varying as real ones do."""
    if cause == 0:
        return "shop.sync", "KeyError", f"order {rng.randrange(10**9)} not found in batch {uuid.uuid4()}"
    if cause == 1:
        host = "".join(rng.choices("abcdefghij", k=8))
        return (
            "shop.charge",
            "TimeoutError",
            f"no reply from '{host}' after {rng.random() * 30:.2f}s (0x{rng.getrandbits(48):x})",
        )
    return (
        "shop.mail",
        "SMTPError",
        f'550 mailbox "{rng.randrange(10**6)}@example.com" full at {T0 + timedelta(seconds=rng.randrange(9999))}',
    )


def failures(count: int, seed: int = 7) -> list[TaskFailed]:
    rng = random.Random(seed)
    events = []
    for i in range(count):
        name, exc_type, message = _message(i % 3, rng)
        events.append(TaskFailed(task_id=f"t-{i}", task_name=name, exc_type=exc_type, exc_message=message,
                                 occurred_at=T0 + timedelta(seconds=i * 6)))  # fmt: skip
    return events


def groups(client: TestClient) -> list[dict[str, Any]]:
    response = client.get("/failures", params=WINDOW)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_1000_failures_of_3_causes_are_3_groups_resolved_reopened_and_rebuilt_alike(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    events = failures(1000)
    append_all(log, list(events))
    project_all(settings)
    with TestClient(create_app(settings)) as client:
        found = groups(client)
        assert len(found) == 3
        assert sorted(g["count"] for g in found) == [333, 333, 334] and all(g["tasks"] == g["count"] for g in found)
        assert {g["fingerprint"] for g in found} == {
            fingerprint(e.task_name, e.exc_type, e.exc_message) for e in events
        }
        assert all(sum(g["trend"]) == g["count"] and len(g["examples"]) == 5 for g in found)
        mail = next(g for g in found if g["task_name"] == "shop.mail")
        assert mail["message"] == "<n> mailbox '<str>' full at <time>" and mail["status"] == "open"

        resolved = client.post(f"/failures/{mail['fingerprint']}/resolve", json={"resolved_by": "ops"})
        assert resolved.status_code == 200, resolved.text
        project_all(settings)
        after = client.get(f"/failures/{mail['fingerprint']}").json()
        assert after["status"] == "resolved" and after["resolved_by"] == "ops"
        assert [g["status"] for g in groups(client) if g["fingerprint"] != mail["fingerprint"]] == ["open", "open"]

        recurrence = failures(3, seed=99)[2]  # a shop.mail failure, new ids, after the resolution
        build_ledger(settings, log).emit(recurrence.model_copy(update={
            "task_id": "t-again", "occurred_at": datetime.now(UTC)}))  # fmt: skip
        project_all(settings)
        reopened = client.get(f"/failures/{mail['fingerprint']}").json()
        assert reopened["status"] == "open" and reopened["resolved_at"] == after["resolved_at"]
        assert reopened["examples"][0] == "t-again"

        assert client.post(f"/failures/{mail['fingerprint']}/resolve", json={"resolved_by": "ops"}).status_code == 200
        project_all(settings)
        assert client.get(f"/failures/{mail['fingerprint']}").json()["status"] == "resolved"
        reopening = client.post(f"/failures/{mail['fingerprint']}/reopen", json={"reopened_by": "dev", "note": "no"})
        assert reopening.status_code == 200 and reopening.json()["reopened_by"] == "dev", reopening.text
        project_all(settings)
        by_hand = client.get(f"/failures/{mail['fingerprint']}").json()
        assert by_hand["status"] == "open" and by_hand["reopened_at"] == reopening.json()["reopened_at"]
        assert by_hand["reopened_by"] == "dev" and by_hand["resolved_at"] < by_hand["reopened_at"]
        before = groups(client), client.get(f"/failures/{mail['fingerprint']}", params=WINDOW).json()

    report = build_rebuild(settings).run(verify=True)
    assert report.swapped and report.diff is not None and report.diff.clean, report.diff and report.diff.report()
    with TestClient(create_app(settings)) as client:
        assert (groups(client), client.get(f"/failures/{mail['fingerprint']}", params=WINDOW).json()) == before


def test_bad_requests_are_422_naming_the_parameter_and_unknown_groups_404(
    settings: Settings, store: ViewWriter
) -> None:
    with TestClient(create_app(settings)) as client:
        cases: list[tuple[str, str, dict[str, Any], list[Any]]] = [
            ("get", "/failures/NOT-HEX", {}, ["path", "fingerprint"]),
            ("post", "/failures/0123/resolve", {}, ["path", "fingerprint"]),
            ("post", "/failures/0123/reopen", {}, ["path", "fingerprint"]),
            ("get", "/failures", {"since": "2026-03-01T02:00:00"}, ["query", "since"]),
            ("get", "/failures", {"since": T0.isoformat(), "until": T0.isoformat()}, ["query", "until"]),
            ("get", "/failures", {"limit": 0}, ["query", "limit"]),
            ("get", "/failures", {"buckets": 1001}, ["query", "buckets"]),
            ("get", "/failures", {"name": "a\x00b"}, ["query", "name"]),
        ]
        for method, path, params, loc in cases:
            response = client.request(method, path, params=params)
            assert response.status_code == 422, (path, params, response.text)
            assert any(e["loc"] == loc and e["msg"] for e in response.json()["detail"]), (loc, response.text)
        assert client.get("/failures/0123456789abcdef").status_code == 404
        assert client.post("/failures/0123456789abcdef/resolve").status_code == 404
        assert client.post("/failures/0123456789abcdef/reopen").status_code == 404
        blank_name = client.post("/failures/0123456789abcdef/reopen", json={"reopened_by": ""})
        assert blank_name.status_code == 422 and blank_name.json()["detail"][0]["loc"] == ["body", "reopened_by"]
        assert client.get("/failures").json() == []


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
def test_a_configured_token_guards_the_failure_routes(settings: Settings, store: ViewWriter) -> None:
    guarded = settings.model_copy(update={"api_token": SecretStr("s3cret-token")})
    with TestClient(create_app(guarded)) as client:
        for method, path in (("get", "/failures"), ("get", "/failures/0123456789abcdef"),
                             ("post", "/failures/0123456789abcdef/resolve"),
                             ("post", "/failures/0123456789abcdef/reopen")):  # fmt: skip
            assert client.request(method, path).status_code == 401
        assert client.get("/failures", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
def test_the_cli_lists_shows_resolves_and_reopens_groups(settings: Settings, log: EventLog, store: ViewWriter) -> None:
    append_all(log, list(failures(30)))
    project_all(settings)
    env = {"LEDGER_DATA_DIR": str(settings.data_dir), "LEDGER_TOPIC": settings.topic,
           "LEDGER_PARTITIONS": str(settings.partitions)}  # fmt: skip
    listed = ledger("failures", "--since", T0.isoformat(), "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert len(found) == 3 and sum(g["count"] for g in found) == 30
    table = ledger("failures", "--name", "shop.sync", env=env)
    assert table.returncode == 0 and "KeyError" in table.stdout and "TimeoutError" not in table.stdout
    shown = ledger("failures", "show", found[0]["fingerprint"], "--json", env=env)
    assert json.loads(shown.stdout)["fingerprint"] == found[0]["fingerprint"]
    done = ledger("failures", "resolve", found[0]["fingerprint"], "--by", "me", env=env)
    assert done.returncode == 0 and "resolved" in done.stdout, done.stderr
    project_all(settings)
    assert (
        json.loads(ledger("failures", "show", found[0]["fingerprint"], "--json", env=env).stdout)["status"]
        == "resolved"
    )
    again = ledger("failures", "reopen", found[0]["fingerprint"], "--by", "you", "--note", "still failing", env=env)
    assert again.returncode == 0 and "reopened" in again.stdout, again.stderr
    project_all(settings)
    shown = ledger("failures", "show", found[0]["fingerprint"], "--json", env=env)
    assert [json.loads(shown.stdout)[k] for k in ("status", "reopened_by")] == ["open", "you"]
    listed = ledger("failures", "--since", T0.isoformat(), env=env)
    assert "open (reopened)" in listed.stdout, listed.stdout
    for args, option in ((("failures", "--since", "soon"), "--since"), (("failures", "resolve", "xyz"), "FINGERPRINT"),
                         (("failures", "reopen", "xyz"), "FINGERPRINT"),
                         (("failures", "show", "0123456789abcdef"), "unknown failure group")):  # fmt: skip
        bad = ledger(*args, env=env)
        assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and option in bad.stderr, bad.stderr
