"""``ledger ingest celery``'s errors, as a user meets them: a bad option is one line naming it
(exit 1, before anything starts); a broker that says no (wrong password, a queue declared
with other arguments) ends the command with one line saying so, never a traceback; a
broker that is not up yet is waited for, and SIGTERM ends the wait cleanly."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from kombu import Connection, Queue

from tests.celery_helpers import IngesterProcess, delete_queues, eventually
from tests.cli import Done, ledger
from tests.helpers import unique_name


def one_line_error(done: Done) -> str:
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    error = done.stderr.strip()
    assert error.count("\n") == 0 and "Traceback" not in error, error
    return error


@pytest.mark.parametrize(("args", "expected"), [
    ([], "error: --broker: give the broker's URL (amqp://… or redis://…), or --app with a Celery app"),
    (["--broker", "http://127.0.0.1:80"], "error: --broker: 'http://127.0.0.1:80' is not a RabbitMQ or Redis URL"),
    (["--broker", "amqp://127.0.0.1:99999//"], "error: --broker: 'amqp://127.0.0.1:99999//' is not a URL"),
    (["--broker", "redis://:secret@127.0.0.1:1/0", "--queue", " "], "error: --queue: the queue name must not be blank"),
    (["--broker", "redis://127.0.0.1:1/0", "--expires", "soon"], "error: --expires: 'soon' is not a duration"),
    (["--broker", "redis://127.0.0.1:1/0", "--expires", "0s"], "error: --expires: must be more than 0 s"),
    (["--broker", "redis://127.0.0.1:1/0", "--batch", "0"], "error: Invalid value for '--batch'"),
    (["--app", "tests.apps.nowhere"], "error: --app: cannot load the Celery application 'tests.apps.nowhere'"),
], ids=["no broker", "not a broker", "bad port", "blank queue", "bad expiry", "no expiry", "bad batch",
        "no such app"])  # fmt: skip
def test_a_bad_option_is_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    error = one_line_error(ledger("ingest", "celery", *args, env={"LEDGER_DATA_DIR": str(tmp_path)}))
    assert error.startswith(expected), error
    assert "secret" not in error


def test_a_broker_that_refuses_the_login_ends_it_with_one_line_and_no_password(
    tmp_path: Path, rabbitmq_url: str
) -> None:
    parts = urlsplit(rabbitmq_url)
    wrong = parts._replace(netloc=f"guest:not-the-password@{parts.hostname}:{parts.port}").geturl()
    done = ledger("ingest", "celery", "--broker", wrong, env={"LEDGER_DATA_DIR": str(tmp_path)})
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("ledger ingest celery: embedded ledger in")  # which ledger, then why it stopped
    assert lines[-1].startswith("error: connecting RabbitMQ at amqp://guest:***@") and "ACCESS_REFUSED" in lines[-1]
    assert "Traceback" not in done.stderr and "not-the-password" not in done.stderr


def test_a_queue_declared_with_another_expiry_is_named_with_what_to_do(tmp_path: Path, rabbitmq_url: str) -> None:
    queue = unique_name("ledger.celeryev")
    with Connection(rabbitmq_url) as connection:
        Queue(queue, durable=True, message_ttl=60, channel=connection.channel()).declare()
    try:
        done = ledger("ingest", "celery", "--broker", rabbitmq_url, "--queue", queue, "--expires", "2h",
                      env={"LEDGER_DATA_DIR": str(tmp_path)})  # fmt: skip
    finally:
        delete_queues(rabbitmq_url, [queue])
    assert done.returncode == 1, done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert "PRECONDITION_FAILED" in error and queue in error, error
    assert "exists with other arguments" in error, error
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("broker", ["redis://127.0.0.1:1/0", "amqp://guest:guest@127.0.0.1:1//"])
def test_a_broker_not_up_yet_is_waited_for_and_sigterm_stops_the_wait(tmp_path: Path, broker: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    ingester = IngesterProcess({**env, "LEDGER_DATA_DIR": str(tmp_path)}, "--broker", broker)
    eventually(lambda: "broker away, reconnecting" in ingester.output or ingester.process.poll() is not None, 60,
               "the ingester to wait for the broker")  # fmt: skip
    assert ingester.stop() == 0, ingester.output
    assert "Traceback" not in ingester.output
    assert ingester.output.strip().splitlines()[-1] == (
        "ledger ingest celery: stopped after 0 events (0 dead letters, 0 skipped)")  # fmt: skip
