from __future__ import annotations

import pytest

from ledger.domain.statuses import (
    PRECEDENCE,
    READY_STATES,
    STATUS_ALIASES,
    TASK_STATUS_DONE,
    TASK_STATUS_FAILURE,
    TASK_STATUS_PENDING,
    TASK_STATUS_RETRY,
    TASK_STATUSES,
    TASK_STATUSES_CHOICES,
    UNREADY_STATES,
    TaskStatus,
    parse_status,
)


def test_seed_constants_are_the_seed_strings() -> None:
    assert (TASK_STATUS_PENDING, TASK_STATUS_RETRY, TASK_STATUS_FAILURE, TASK_STATUS_DONE) == (
        "PENDING",
        "RETRY",
        "FAILURE",
        "DONE",
    )
    assert all(status.value == status.name for status in TaskStatus)


def test_statuses_list_every_status_once_with_the_seeds_four_first() -> None:
    assert TASK_STATUSES[:4] == ("PENDING", "RETRY", "FAILURE", "DONE")
    assert sorted(TASK_STATUSES) == sorted(TaskStatus)
    assert len(set(TASK_STATUSES)) == 7


def test_choices_are_django_value_label_pairs() -> None:
    assert TASK_STATUSES_CHOICES[0] == ("PENDING", "PENDING")
    assert [value for value, _ in TASK_STATUSES_CHOICES] == list(TASK_STATUSES)
    assert all(value == label for value, label in TASK_STATUSES_CHOICES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DONE", TaskStatus.DONE),
        ("done", TaskStatus.DONE),
        (" Started ", TaskStatus.STARTED),
        ("SUCCESS", TaskStatus.DONE),
        ("success", TaskStatus.DONE),
        ("revoked", TaskStatus.REVOKED),
    ],
)
def test_parse_status_accepts_any_case_and_the_alias(text: str, expected: TaskStatus) -> None:
    assert parse_status(text) is expected


@pytest.mark.parametrize("text", ["", "FINISHED", "DONE!", "PEND"])
def test_parse_status_rejects_unknown_text_naming_the_allowed_values(text: str) -> None:
    with pytest.raises(ValueError, match="is not one of") as caught:
        parse_status(text)
    message = str(caught.value)
    assert message.startswith("status: ")
    assert all(status in message for status in TaskStatus)
    assert "SUCCESS" in message


def test_alias_maps_to_done() -> None:
    assert STATUS_ALIASES == {"SUCCESS": TaskStatus.DONE}


def test_precedence_orders_progress_and_ties_the_outcomes() -> None:
    p = PRECEDENCE
    assert p[TaskStatus.PENDING] < p[TaskStatus.RECEIVED] < p[TaskStatus.STARTED]
    outcomes = {TaskStatus.RETRY, TaskStatus.FAILURE, TaskStatus.DONE, TaskStatus.REVOKED}
    assert {p[status] for status in outcomes} == {3}
    assert set(p) == set(TaskStatus)


def test_ready_and_unready_partition_the_statuses() -> None:
    assert {TaskStatus.FAILURE, TaskStatus.DONE, TaskStatus.REVOKED} == READY_STATES
    assert set(TaskStatus) == READY_STATES | UNREADY_STATES
    assert not READY_STATES & UNREADY_STATES
    assert TaskStatus.RETRY in UNREADY_STATES
