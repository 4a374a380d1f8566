"""Record every task of a Celery app in the ledger, without touching task code.

    recorder = install(app, build_ledger(settings))

connects Celery's signals for ``app`` only: a publish is PENDING (args, kwargs, eta,
retries; recorded at publish time, which Celery's result backends never store), then
RECEIVED, STARTED, and RETRY (reason, eta) / FAILURE (exception, traceback) / DONE
(result) / REVOKED, each with the worker's name. Recording never breaks or slows a task:
failures are logged and counted (``recorder.emit_errors``), Kafka appends do not wait for
acknowledgements, and workers flush on shutdown (``recorder.flush()`` elsewhere).

Beat: ``app.conf.beat_scheduler = "ledger.contrib.celery:LedgerScheduler"`` records each
schedule entry and each dispatch. Reads: ``task_state(task_id, queries)`` answers as a
result backend; ``duplicate_firings(runs, interval)`` flags runs dispatched in one slot.

Celery is an optional extra (``task-ledger[celery]``); only this module and its
``celery_*`` siblings import it.
"""

from __future__ import annotations

from ledger.contrib.celery_beat import LedgerScheduler, LedgerSchedulerMixin, schedule_interval
from ledger.contrib.celery_results import TaskResult, celery_status, task_state
from ledger.contrib.celery_signals import CeleryLedger, install, installed
from ledger.projections.queries import duplicate_firings

__all__ = [
    "CeleryLedger",
    "LedgerScheduler",
    "LedgerSchedulerMixin",
    "TaskResult",
    "celery_status",
    "duplicate_firings",
    "install",
    "installed",
    "schedule_interval",
    "task_state",
]
