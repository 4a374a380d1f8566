"""``ledger tail`` / ``subscribe`` print one line per event: a failure group's decisions name
the group and who made them, a worker's events the worker and its counts."""

from __future__ import annotations

from ledger.cli.streams import line
from ledger.domain.events import FailureGroupReopened, FailureGroupResolved, WorkerHeartbeat, WorkerOffline

GROUP = "0123456789abcdef"


def test_a_failure_group_decision_is_one_line_naming_the_group_and_who() -> None:
    resolved = line(FailureGroupResolved(fingerprint=GROUP, resolved_by="ops"), as_json=False)
    reopened = line(FailureGroupReopened(fingerprint=GROUP, reopened_by="dev"), as_json=False)
    assert resolved.split()[2:] == ["failures.resolved", GROUP, "ops"]
    assert reopened.split()[2:] == ["failures.reopened", GROUP, "dev"]
    assert line(FailureGroupReopened(fingerprint=GROUP), as_json=False).split()[2:] == ["failures.reopened", GROUP, "-"]
    assert '"type":"failures.reopened"' in line(FailureGroupReopened(fingerprint=GROUP), as_json=True)


def test_a_worker_event_is_one_line_naming_the_worker_and_its_counts() -> None:
    beat = line(WorkerHeartbeat(hostname="celery@vm-3", active=2, processed=40), as_json=False)
    assert beat.split()[2:] == ["worker.heartbeat", "celery@vm-3", "active=2", "processed=40"]
    assert line(WorkerOffline(hostname="celery@vm-3"), as_json=False).split()[2:] == [
        "worker.offline", "celery@vm-3", "active=-", "processed=-"]
