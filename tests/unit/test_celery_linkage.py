"""Reading a Celery message's linkage and routing (pure: no broker, no worker)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from ledger.contrib.celery_linkage import linkage, queue_of

WHEN = datetime(2030, 1, 1, tzinfo=UTC)


def aware(value: Any) -> datetime | None:
    return WHEN if value else None


def test_protocol_2_headers_and_embed() -> None:
    fields = {"id": "t", "root_id": "r", "parent_id": "p", "group": "g", "expires": "2030-01-01T00:00:00+00:00",
              "chord": {"task": "flows.total", "options": {"task_id": "cb"}}, "callbacks": None}  # fmt: skip
    assert linkage(fields, exchange="", routing_key="celery", aware=aware) == {
        "root_id": "r", "parent_id": "p", "group_id": "g", "callback_id": "cb",
        "queue": "celery", "exchange": "", "routing_key": "celery", "expires": WHEN,
    }  # fmt: skip


def test_protocol_1_body_and_absent_fields() -> None:
    assert linkage({"id": "t", "taskset": "g", "chord": None}, aware=aware) == {
        "root_id": None, "parent_id": None, "group_id": "g", "callback_id": None,
        "queue": None, "exchange": None, "routing_key": None, "expires": None,
    }  # fmt: skip


def test_odd_shapes_are_not_taken_for_ids() -> None:
    odd = linkage({"root_id": 7, "parent_id": "", "chord": {"options": "x"}}, aware=aware)
    assert (odd["root_id"], odd["parent_id"], odd["callback_id"]) == (None, None, None)


def test_the_queue_is_the_declared_one_else_the_anonymous_exchanges_routing_key() -> None:
    assert queue_of("tasks", "high.x", [SimpleNamespace(name="high")]) == "high"
    assert queue_of("", "low", None) == "low"
    assert queue_of("tasks", "high.x", None) is None  # a topic exchange: the queue is not known here


def test_a_chord_whose_callback_is_a_chain_links_to_the_chains_first_task() -> None:
    body = {"task": "celery.chain", "subtask_type": "chain", "options": {"task_id": "last"},
            "kwargs": {"tasks": [{"task": "total", "options": {"task_id": "first"}},
                                 {"task": "add", "options": {"task_id": "last"}}]}}  # fmt: skip
    assert linkage({"chord": body}, aware=aware)["callback_id"] == "first"
