"""A Celery application with no ledger code at all, as a team that only runs ``celery
worker -E`` has: the broker, the result backend and the default queue come from
``LEDGER_TEST_CELERY_BROKER``, ``LEDGER_TEST_CELERY_BACKEND`` and ``LEDGER_TEST_CELERY_QUEUE``
(a queue per test, so workers of two tests never take each other's tasks).

    celery -A tests.apps.plain worker -P prefork -c 2 -E
"""

from __future__ import annotations

import os
import time

from celery import Celery, Task

app = Celery("plain", broker=os.environ.get("LEDGER_TEST_CELERY_BROKER"),
             backend=os.environ.get("LEDGER_TEST_CELERY_BACKEND"))  # fmt: skip
app.conf.update(
    task_default_queue=os.environ.get("LEDGER_TEST_CELERY_QUEUE", "celery"),
    task_send_sent_event=True,
    worker_send_task_events=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    result_extended=True,  # the backend keeps the retries (what the ingest tests compare the views with)
)


@app.task(name="plain.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="plain.fail")
def fail(message: str) -> None:
    raise ValueError(message)


@app.task(name="plain.flaky", bind=True, max_retries=2)
def flaky(self: Task, failures: int) -> int:
    """Fails ``failures`` times, retried after each; a third failure is final (``max_retries``)."""
    if self.request.retries < failures:
        raise self.retry(exc=KeyError(f"attempt {self.request.retries}"), countdown=0.05)
    return int(self.request.retries)


@app.task(name="plain.slow", soft_time_limit=0.3)
def slow(seconds: float) -> float:
    """Past ``soft_time_limit``, Celery raises ``SoftTimeLimitExceeded`` in here."""
    time.sleep(seconds)
    return seconds


@app.task(name="plain.wait")
def wait(seconds: float) -> float:
    """Runs ``seconds``, then succeeds: a task still running when an ingester stops."""
    time.sleep(seconds)
    return seconds
