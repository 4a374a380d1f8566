"""Search end to end: ``GET /tasks?q=…&kwarg.<key>=…`` on both backends (the contract's
corpus, the same answers, pages by cursor) and ``ledger tasks --search/--kwarg/…``; a bad
value is one line naming it (CLI: exit 1; HTTP: 422 naming the parameter)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ledger.bootstrap import build_ledger
from ledger.eventlog.base import EventLog
from ledger.http import create_app
from ledger.projections.store import ViewWriter
from ledger.settings import Settings, load_settings
from tests.cli import ledger
from tests.contract.search_contract import corpus
from tests.e2e.test_cli_errors import one_line_error
from tests.streams import append_all, project_all

SEARCHES: list[tuple[list[tuple[str, str]], list[str]]] = [
    ([("q", "INVOICE")], ["inv-2", "inv-1"]),
    ([("q", "smtperror later")], ["mail-3"]),
    ([("q", "needle-at-the-end")], ["big-5"]),
    ([("kwarg.user_id", "42")], ["inv-2", "inv-1"]),
    ([("kwarg.user_id", '"42"')], ["mail-3"]),
    ([("kwarg.user_id", "42"), ("kwarg.flag", "true")], ["inv-2"]),
    ([("queue", "mail"), ("retried", "true")], ["mail-4", "mail-3"]),
    ([("root_id", "inv-1"), ("parent_id", "inv-2")], ["mail-4"]),
    ([("runtime_above", "0.2"), ("runtime_below", "30")], ["inv-1"]),
    ([("q", "billing"), ("status", "FAILURE")], ["inv-2"]),
]


def test_the_http_search_answers_and_pages(settings: Settings, log: EventLog, store: ViewWriter) -> None:
    append_all(log, corpus())
    project_all(settings)
    with TestClient(create_app(settings)) as client:
        for params, ids in SEARCHES:
            page = client.get("/tasks", params=params)
            assert page.status_code == 200, page.text
            assert [t["task_id"] for t in page.json()["items"]] == ids, params
        walked, cursor = [], None
        while True:
            page = client.get("/tasks", params={"q": "user_id", "limit": 1, **({"cursor": cursor} if cursor else {})})
            walked += [t["task_id"] for t in page.json()["items"]]
            if (cursor := page.json()["next_cursor"]) is None:
                break
        assert walked == ["mail-4", "mail-3", "inv-2", "inv-1"]


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
@pytest.mark.parametrize(
    ("params", "loc", "needle"),
    [
        ({"q": "ab"}, ["query", "q"], "q: each term needs at least 3 characters"),
        ({"q": " "}, ["query", "q"], "q: needs at least one term"),
        ({"kwarg.user-id": "1"}, ["query", "kwarg.user-id"], "the key must be a Python identifier"),
        ({"kwarg.user_id": "[42]"}, ["query", "kwarg.user_id"], "kwarg.user_id: only a scalar can be matched"),
        ({"kwarg.user_id": "NaN"}, ["query", "kwarg.user_id"], "kwarg.user_id: the value must be a finite number"),
        ({"runtime_above": "-1"}, ["query", "runtime_above"], "greater than or equal to 0"),
        ({"runtime_above": "inf"}, ["query", "runtime_above"], "finite number"),
        ({"runtime_above": "3", "runtime_below": "1"}, ["query", "runtime_below"], "must be greater than"),
        ({"retried": "maybe"}, ["query", "retried"], "boolean"),
        ({"queue": "a\x00b"}, ["query", "queue"], "NUL"),
    ],
)
def test_a_bad_search_parameter_is_422_naming_it(
    settings: Settings, store: ViewWriter, params: dict[str, str], loc: list[str], needle: str
) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.get("/tasks", params=params)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"] == loc and needle in e["msg"] for e in errors), errors


def _filled(tmp_path: Path) -> dict[str, str]:
    with build_ledger(load_settings(backend="embedded", data_dir=tmp_path)) as sdk:
        sdk.emit_many(corpus())
    env = {"LEDGER_DATA_DIR": str(tmp_path)}
    assert ledger("project", "--until-caught-up", env=env).returncode == 0
    return env


def test_the_cli_searches_with_every_option(tmp_path: Path) -> None:
    env = _filled(tmp_path)

    def ids(*args: str) -> list[str]:
        done = ledger("tasks", "--json", *args, env=env)
        assert done.returncode == 0, done.stderr
        return [t["task_id"] for t in json.loads(done.stdout)]

    assert ids("--search", "Invoice") == ["inv-2", "inv-1"]
    assert ids("--search", "smtperror later") == ["mail-3"]
    assert ids("--kwarg", "user_id=42") == ["inv-2", "inv-1"]
    assert ids("--kwarg", 'user_id="42"') == ["mail-3"]
    assert ids("--kwarg", "user_id=42", "--kwarg", "flag=true") == ["inv-2"]
    assert ids("--queue", "mail", "--retried") == ["mail-4", "mail-3"]
    assert ids("--root", "inv-1", "--parent", "inv-2") == ["mail-4"]
    assert ids("--runtime-above", "0.2", "--runtime-below", "30") == ["inv-1"]
    assert ids("--search", "billing", "--until", "2026-04-01T09:04:00Z") == ["inv-1"]
    table = ledger("tasks", "--search", "timeouterror", env=env)
    assert "inv-2" in table.stdout and "TimeoutError" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--search", "ab"], "--search: each term needs at least 3 characters, got 'ab'"),
        (["--search", ""], "--search: needs at least one term"),
        (["--kwarg", "user_id"], "--kwarg: expected KEY=VALUE, e.g. user_id=42, got 'user_id'"),
        (["--kwarg", "user-id=1"], "--kwarg: the key must be a Python identifier"),
        (["--kwarg", "tags=[1]"], "--kwarg: only a scalar can be matched"),
        (["--runtime-above", "-1"], "--runtime-above: must be a number of seconds, 0 or more"),
        (["--runtime-above", "3", "--runtime-below", "1"], "--runtime-below: must be greater than --runtime-above"),
        (["--runtime-below", "soon"], "--runtime-below"),
        (["--until", "whenever"], "--until"),
        (["--queue", ""], "--queue"),
    ],
)
def test_a_bad_search_option_is_one_line_naming_it(tmp_path: Path, args: list[str], message: str) -> None:
    env = {"LEDGER_DATA_DIR": str(tmp_path)}
    assert ledger("migrate", env=env).returncode == 0
    assert message in one_line_error(ledger("tasks", *args, env=env))
