"""Trends end to end, on both backends: ``GET /stats/series`` and ``ledger stats --series``
count what the log holds per bucket (duplicate appends once), the series is the same after
a rebuild from the log, and bad input is one line (CLI, exit 1) or a 422 naming the option."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from ledger.bootstrap import build_rebuild
from ledger.domain.events import AnyEvent, TaskEvent
from ledger.domain.series import COUNTED, axis
from ledger.eventlog.base import EventLog
from ledger.http import create_app
from ledger.projections.store import ViewWriter
from ledger.settings import Settings
from ledger.simulate import simulate
from tests.cli import ledger
from tests.streams import append_all, project_all

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
WINDOW = {"bucket": "5m", "since": T0.isoformat(), "until": (T0 + timedelta(hours=1)).isoformat()}


def events() -> list[AnyEvent]:
    """A simulated fleet from T0 (retries, failures, revokes, 1 % duplicate appends, late
    events), its tasks spread over two queues (on every event that names a queue)."""
    fleet = simulate(400, seed=21, start=T0, periodic=1, duplicates=4, late=4)
    return [e.model_copy(update={"queue": "bulk" if e.task_id[0] in "0123" else "fast"})
            if isinstance(e, TaskEvent) and e.queue is not None else e for e in fleet]  # fmt: skip


def expected_counts(history: list[AnyEvent], bucket: int) -> list[dict[str, int]]:
    """What the series must count: each distinct event of a counted status, in its bucket."""
    window = axis(bucket, T0, T0 + timedelta(hours=1))
    seen = {e.event_id: e for e in history if isinstance(e, TaskEvent) and e.status in COUNTED}
    tally = Counter((window.index(e.occurred_at), COUNTED[e.status]) for e in seen.values() if e.status)
    return [{label: tally[(i, label)] for label in COUNTED.values()} for i in range(window.count)]


def series(client: TestClient, **params: str) -> dict[str, Any]:
    response = client.get("/stats/series", params={**WINDOW, **params})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_series_counts_the_log_and_a_rebuild_gives_the_same(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    history = events()
    append_all(log, history)
    project_all(settings)
    with TestClient(create_app(settings)) as client:
        before = series(client), series(client, queue="bulk"), series(client, name="email.send", bucket="1m")
    everything, bulk, _ = before
    assert [{k: p[k] for k in COUNTED.values()} for p in everything["points"]] == expected_counts(history, 300)
    assert 0 < sum(p["published"] for p in bulk["points"]) < sum(p["published"] for p in everything["points"])
    assert any(p["runtime"]["p99"] for p in everything["points"]) and any(
        p["queue_wait"]["p50"] for p in bulk["points"]
    )

    report = build_rebuild(settings).run(verify=True)
    assert report.swapped and report.diff is not None and report.diff.clean, report.diff and report.diff.report()
    with TestClient(create_app(settings)) as client:
        assert (series(client), series(client, queue="bulk"), series(client, name="email.send", bucket="1m")) == before


def test_bad_requests_are_422_naming_the_parameter(settings: Settings, store: ViewWriter) -> None:
    with TestClient(create_app(settings)) as client:
        cases: list[tuple[dict[str, Any], list[Any]]] = [
            ({"bucket": "2m"}, ["query", "bucket"]),
            ({"since": None}, ["query", "since"]),
            ({"since": "2026-03-01T02:00:00"}, ["query", "since"]),
            ({"until": T0.isoformat()}, ["query", "until"]),
            ({"bucket": "1m", "since": (T0 - timedelta(days=8)).isoformat()}, ["query", "since"]),
            ({"name": "a\x00b"}, ["query", "name"]),
            ({"queue": ""}, ["query", "queue"]),
        ]
        for params, loc in cases:
            response = client.get(
                "/stats/series", params={k: v for k, v in {**WINDOW, **params}.items() if v is not None}
            )
            assert response.status_code == 422, (params, response.text)
            assert any(e["loc"] == loc and e["msg"] for e in response.json()["detail"]), (loc, response.text)


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
def test_the_cli_prints_the_series_and_refuses_bad_options(
    settings: Settings, log: EventLog, store: ViewWriter
) -> None:
    history = events()
    append_all(log, history)
    project_all(settings)
    env = {"LEDGER_DATA_DIR": str(settings.data_dir), "LEDGER_TOPIC": settings.topic,
           "LEDGER_PARTITIONS": str(settings.partitions)}  # fmt: skip
    window = ("--since", WINDOW["since"], "--until", WINDOW["until"])
    listed = ledger("stats", "--series", "5m", *window, "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert [{k: p[k] for k in COUNTED.values()} for p in found["points"]] == expected_counts(history, 300)
    table = ledger("stats", "--series", "15m", *window, "--queue", "fast", env=env)
    assert table.returncode == 0 and "published" in table.stdout and "queue fast" in table.stdout, table.stderr
    for args, option in ((("--series", "2m"), "--series"), (("--series", "1m", "--since", "soon"), "--since"),
                         (("--series", "1m", "--since", "1h", "--until", "2h"), "--until"),
                         (("--series", "1m", "--since", "8d"), "--since"), (("--since", "1h"), "--since"),
                         (("--series", "1m", "--as-of", "1h"), "--as-of"),
                         (("--series", "1m", "--name", " "), "--name")):  # fmt: skip
        bad = ledger("stats", *args, env=env)
        assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and bad.stderr.startswith(f"error: {option}:"), (
            args, bad.stderr)  # fmt: skip


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
def test_a_configured_token_guards_the_series(settings: Settings, store: ViewWriter) -> None:
    guarded = settings.model_copy(update={"api_token": SecretStr("s3cret-token")})
    with TestClient(create_app(guarded)) as client:
        assert client.get("/stats/series", params=WINDOW).status_code == 401
        ok = client.get("/stats/series", params=WINDOW, headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200 and len(ok.json()["points"]) == 12
