"""``ledger alerts test | status`` as a user meets them (``run`` is the fault test's): a bad
rules file is one line naming the rule and the field, ``test`` shows what the rules would
have posted over the history, ``status`` shows the deliveries and the one being retried."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.bootstrap import build_codec, build_event_log
from ledger.consumers.alerts import AlertState
from ledger.domain.alerts import Transition
from ledger.settings import load_settings
from tests.cli import ledger
from tests.e2e.test_cli_errors import one_line_error
from tests.streams import append_all
from tests.webhooks import (
    alert_history,
    cause_fingerprint,
    expected_keys,
    failure_group_history,
    group_rules_toml,
    rules_toml,
)

URL = "http://127.0.0.1:9/hook"


@pytest.mark.parametrize("command", ["test", "run"])
def test_a_bad_rules_file_is_one_line_naming_the_rule_and_field(tmp_path: Path, command: str) -> None:
    rules = tmp_path / "alerts.toml"
    rules.write_text(rules_toml(URL).replace("threshold = 3", 'threshold = "many"'))
    error = one_line_error(ledger("alerts", command, "--rules", str(rules), env={"LEDGER_DATA_DIR": str(tmp_path)}))
    assert error == f"error: --rules {rules}: rule[1] (failure-burst).threshold: Input should be a valid integer, " \
                    "unable to parse string as an integer"  # fmt: skip
    error = one_line_error(ledger("alerts", command, "--rules", str(tmp_path / "none.toml")))
    assert error.startswith("error: --rules: cannot read")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("window = \"1m\"", "window = \"soon\""), "rule[1] (cause-burst).window: 'soon' is not a duration"),
        (("task = \"billing.*\"", "fingerprint = \"xyz\""), "rule[0] (new-cause).fingerprint: 'xyz' is not a"),
        (("threshold = 5", "threshold = 0"), "rule[1] (cause-burst).threshold: Input should be greater than"),
        (("threshold = 5", "status = \"FAILURE\""), "rule[1] (cause-burst).status: Extra inputs are not"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["test", "run"])
def test_a_bad_failure_group_rule_is_one_line_naming_the_rule_and_field(
    tmp_path: Path, command: str, change: tuple[str, str], message: str
) -> None:
    rules = tmp_path / "alerts.toml"
    rules.write_text(group_rules_toml(URL).replace(*change))
    error = one_line_error(ledger("alerts", command, "--rules", str(rules), env={"LEDGER_DATA_DIR": str(tmp_path)}))
    assert error.startswith(f"error: --rules {rules}: {message}")


def test_alerts_test_shows_what_failure_group_rules_would_have_posted(tmp_path: Path) -> None:
    settings = load_settings(backend="embedded", data_dir=tmp_path, partitions=1)
    with build_event_log(settings) as log:
        append_all(log, failure_group_history(6))
        expected = expected_keys(log, build_codec(settings), group_rules_toml(URL))
    rules = tmp_path / "alerts.toml"
    rules.write_text(group_rules_toml(URL))
    done = ledger("alerts", "test", "--rules", str(rules), env={"LEDGER_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{rules}: 2 rules OK: new-cause, cause-burst"
    assert [line.rsplit("key=", 1)[1] for line in lines[1:-1]] == expected
    first = cause_fingerprint(0)
    assert [line.split()[1:4] for line in lines[1:-1] if "new-cause" in line and first in line] == [
        ["new-cause", "fired", first], ["new-cause", "resolved", first], ["new-cause", "fired", first]]  # fmt: skip


def test_alerts_test_shows_what_the_rules_would_have_posted(tmp_path: Path) -> None:
    settings = load_settings(backend="embedded", data_dir=tmp_path, partitions=1)
    with build_event_log(settings) as log:
        append_all(log, alert_history(20))
        expected = expected_keys(log, build_codec(settings), rules_toml(URL))
    rules = tmp_path / "alerts.toml"
    rules.write_text(rules_toml(URL))
    done = ledger("alerts", "test", "--rules", str(rules), env={"LEDGER_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{rules}: 3 rules OK: billing-failed, failure-burst, stuck"
    assert [line.rsplit("key=", 1)[1] for line in lines[1:-1]] == expected
    assert lines[-1] == f"{len(expected)} transitions would have been posted"


def test_alerts_status_shows_the_deliveries_and_the_one_being_retried(tmp_path: Path) -> None:
    env = {"LEDGER_DATA_DIR": str(tmp_path)}
    error = one_line_error(ledger("alerts", "status", env=env))
    assert "no alert runner state at" in error and "ledger-alerts" in error
    state = AlertState(tmp_path / "alerts" / "ledger-alerts.json")
    sent = Transition("stuck", "fired", "t-1", datetime(2024, 1, 1, tzinfo=UTC), "0:7")
    state.record(sent, URL, 1, None)
    state.record(Transition("stuck", "resolved", "t-1", datetime(2024, 1, 1, tzinfo=UTC), "0:9"), URL, 4, "503")
    state.save()
    done = ledger("alerts", "status", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [
        "delivered 1, failed attempts 1, next offsets {}",
        "RETRYING stuck resolved t-1 attempt 4: 503",
    ]
    assert f"stuck fired t-1 key={sent.key}" in done.stdout


def test_alerts_status_on_a_damaged_state_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    error = one_line_error(ledger("alerts", "status", "--state", str(path), env={"LEDGER_DATA_DIR": str(tmp_path)}))
    assert error.startswith(f"error: alert state file {path}: cannot be read")
