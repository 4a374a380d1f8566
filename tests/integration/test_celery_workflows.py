"""Canvas linkage through ``install()`` with a real Celery worker (in-process, in-memory
broker), on both backends: a chain, a group and a chord give the views the root, parent,
group and chord-callback ids Celery's messages carry, and each task its routing; and
``ledger workflow`` shows each shape with its edges and states."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery, chain, chord, group, signals
from celery.contrib.testing.worker import start_worker

from ledger.bootstrap import build_ledger
from ledger.contrib.celery import CeleryLedger, install
from ledger.domain.fold import TaskState
from ledger.domain.workflow import Edge
from ledger.projections.store import ViewReader, ViewWriter
from ledger.settings import Settings
from tests.cli import ledger as ledger_cli
from tests.streams import project_all

app = Celery("flows", broker="memory://", backend="cache+memory://")
app.conf.broker_transport_options = {"polling_interval": 0.01}


@app.task(name="flows.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="flows.total")
def total(numbers: list[int]) -> int:
    return sum(numbers)


@app.task(name="flows.boom")
def boom(x: int) -> int:
    raise ValueError(f"no {x}")


@app.task(name="flows.barrier")
def barrier() -> bool:
    return True


@pytest.fixture(scope="module")
def worker() -> Iterator[Any]:
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30) as running:
        yield running


@pytest.fixture
def recorder(settings: Settings, worker: Any) -> Iterator[CeleryLedger]:
    ledger = build_ledger(settings)
    installation = install(app, ledger)
    yield installation
    installation.uninstall()
    ledger.close()


def settle(settings: Settings, worker: Any) -> None:
    """Every task sent so far has run (the solo pool runs one at a time), the recorder is
    flushed and the views are caught up."""
    assert barrier.delay().get(timeout=10) is True
    signals.worker_shutdown.send(sender=worker)
    project_all(settings)


def links(rows: dict[str, TaskState], task_id: str) -> tuple[str | None, ...]:
    row = rows[task_id]
    return row.root_id, row.parent_id, row.group_id, row.callback_id


def test_a_chain_links_each_step_to_the_one_before(
    settings: Settings, recorder: CeleryLedger, store: ViewWriter, worker: Any
) -> None:
    last = chain(add.s(1, 2), add.s(3), add.s(4)).apply_async()
    assert last.get(timeout=10) == 10
    middle, first = last.parent, last.parent.parent
    settle(settings, worker)
    rows = store.load_tasks([first.id, middle.id, last.id])
    assert links(rows, first.id) == (first.id, None, None, None)
    assert links(rows, middle.id) == (first.id, first.id, None, None)
    assert links(rows, last.id) == (first.id, middle.id, None, None)
    for row in rows.values():  # the default queue, through the anonymous exchange
        assert (row.queue, row.exchange, row.routing_key) == ("celery", "", "celery")
        assert row.queue_wait is not None and row.start_delay is not None and row.total_time is not None


def test_a_group_gives_its_members_its_id(
    settings: Settings, recorder: CeleryLedger, store: ViewWriter, worker: Any
) -> None:
    result = group(add.s(i, i) for i in range(3)).apply_async()
    assert result.get(timeout=10) == [0, 2, 4]
    settle(settings, worker)
    members = [child.id for child in result.results]
    rows = store.load_tasks(members)
    assert {rows[m].group_id for m in members} == {result.id}
    # sent from outside a task, each member is its own root (Celery's rule): the group id joins them
    assert [links(rows, m) for m in members] == [(m, None, result.id, None) for m in members]


def test_a_chord_links_its_header_to_its_callback(
    settings: Settings, recorder: CeleryLedger, store: ViewWriter, worker: Any
) -> None:
    callback = chord([add.s(1, 1), add.s(2, 2)], total.s()).apply_async()
    assert callback.get(timeout=10) == 6
    header = callback.parent
    settle(settings, worker)
    members = [child.id for child in header.results]
    rows = store.load_tasks([*members, callback.id])
    assert {links(rows, m)[2:] for m in members} == {(header.id, callback.id)}
    # the header task that finished last sent the callback (Celery's facts: its parent and
    # root), tagged with the header's group
    sender = rows[callback.id].parent_id
    assert sender in members and links(rows, callback.id) == (rows[sender].root_id, sender, header.id, None)


def test_a_message_expiry_and_its_queue_are_recorded(
    settings: Settings, recorder: CeleryLedger, store: ViewWriter, worker: Any
) -> None:
    sent = add.apply_async((2, 2), expires=3600, queue="celery")
    assert sent.get(timeout=10) == 4
    settle(settings, worker)
    row = store.load_tasks([sent.id])[sent.id]
    assert row.expires is not None and row.date_pending is not None
    assert 3599 <= (row.expires - row.date_pending).total_seconds() <= 3601
    assert (row.queue, row.routing_key) == ("celery", "celery")


def test_workflows_of_a_chain_a_group_and_a_chord_have_their_edges_and_states(
    settings: Settings, recorder: CeleryLedger, reader: ViewReader, worker: Any
) -> None:
    last = chain(add.s(1, 2), add.s(3)).apply_async()
    grouped = group(add.s(i, i) for i in range(2)).apply_async()
    callback = chord([add.s(1, 1), add.s(2, 2)], total.s()).apply_async()
    assert (last.get(timeout=10), grouped.get(timeout=10), callback.get(timeout=10)) == (6, [0, 2], 6)
    settle(settings, worker)

    flow = reader.workflow(last.id)
    assert flow is not None and (flow.state, flow.roots) == ("done", (last.parent.id,))
    assert flow.edges == (Edge(last.parent.id, last.id, "child"),) and flow.duration is not None

    members = [child.id for child in grouped.results]
    flow = reader.workflow(members[1])
    assert flow is not None and flow.state == "done"
    assert flow.groups == {grouped.id: tuple(members)} and [t.task_id for t in flow.tasks] == members

    header = [child.id for child in callback.parent.results]
    flow = reader.workflow(callback.id)
    assert flow is not None and flow.state == "done" and flow.groups == {callback.parent.id: tuple(header)}
    assert {e for e in flow.edges if e.kind == "callback"} == {Edge(h, callback.id, "callback") for h in header}
    assert not [e for e in flow.edges if e.kind == "child"]  # the sender's edge is the callback's


def test_a_failed_chord_header_task_fails_the_workflow_at_that_task(
    settings: Settings, recorder: CeleryLedger, reader: ViewReader, worker: Any
) -> None:
    callback = chord([add.s(1, 1), boom.s(7)], total.s()).apply_async()
    with pytest.raises(Exception, match="no 7"):
        callback.get(timeout=10)
    settle(settings, worker)
    failed = [child.id for child in callback.parent.results][1]
    flow = reader.workflow(failed)
    assert flow is not None and (flow.state, flow.failed_at) == ("failed", (failed,))
    assert callback.id not in {t.task_id for t in flow.tasks}  # never sent: its header failed


def test_a_chain_of_groups_is_one_workflow(
    settings: Settings, recorder: CeleryLedger, reader: ViewReader, worker: Any
) -> None:
    result = chain(group(add.s(1, 1), add.s(2, 2)), total.s(), add.s(10)).apply_async()
    assert result.get(timeout=10) == 16
    settle(settings, worker)
    flow = reader.workflow(result.id)
    assert flow is not None and flow.state == "done"
    names = sorted(t.name or "" for t in flow.tasks)
    assert names == ["flows.add", "flows.add", "flows.add", "flows.total"]
    (header,) = flow.groups.values()
    (summed,) = [t.task_id for t in flow.tasks if t.name == "flows.total"]
    assert len(header) == 2 and {e for e in flow.edges if e.kind == "callback"} == {
        Edge(h, summed, "callback") for h in header
    }  # the chord Celery makes of a group then a task
    assert Edge(summed, result.id, "child") in flow.edges


def cli_env(settings: Settings) -> dict[str, str]:
    """The environment that points ``ledger`` at the ledger of ``settings``."""
    if settings.backend.value == "embedded":
        return {"LEDGER_DATA_DIR": str(settings.data_dir), "LEDGER_TOPIC": settings.topic,
                "LEDGER_PARTITIONS": str(settings.partitions)}  # fmt: skip
    return {"LEDGER_BACKEND": settings.backend.value, "LEDGER_TOPIC": settings.topic,
            "LEDGER_POSTGRES_SCHEMA": settings.postgres_schema, "LEDGER_POSTGRES_DSN": settings.postgres_dsn,
            "LEDGER_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers}  # fmt: skip


def shown(settings: Settings, task_id: str) -> tuple[str, dict[str, Any]]:
    """``ledger workflow`` of ``task_id``: its tree as printed, and its ``--json``."""
    tree = ledger_cli("workflow", task_id, env=cli_env(settings))
    as_json = ledger_cli("workflow", task_id, "--json", env=cli_env(settings))
    assert tree.returncode == 0 and as_json.returncode == 0, tree.stderr + as_json.stderr
    return tree.stdout, json.loads(as_json.stdout)


def edges(flow: dict[str, Any], kind: str) -> set[tuple[str, str]]:
    return {(e["source"], e["target"]) for e in flow["edges"] if e["kind"] == kind}


def placed(tree: str, node_id: str) -> tuple[int, int]:
    """(line number, depth) of the node ``node_id`` in the printed tree (each level is 4
    columns of guides; the first line is the workflow's state)."""
    (found,) = [(n, m.start() // 4) for n, line in enumerate(tree.splitlines()) if n > 0
                if (m := re.search(rf"(?:group |callback )?{re.escape(node_id)}(?:  | · )", line))]  # fmt: skip
    return found


def under(tree: str, child: str, parent: str) -> bool:
    """Whether ``child`` is printed one level below ``parent``, after it."""
    (child_line, child_depth), (parent_line, parent_depth) = placed(tree, child), placed(tree, parent)
    return child_line > parent_line and child_depth == parent_depth + 1


def test_ledger_workflow_shows_each_shape_with_its_edges_and_states(
    settings: Settings, recorder: CeleryLedger, reader: ViewReader, worker: Any
) -> None:
    """Issue 14's acceptance through the CLI: a chain, a group, a chord, a chain of groups,
    a failed chord body (the callback) and a failed chord header."""
    last = chain(add.s(1, 2), add.s(3), add.s(4)).apply_async()
    grouped = group(add.s(i, i) for i in range(3)).apply_async()
    callback = chord([add.s(1, 1), add.s(2, 2)], total.s()).apply_async()
    of_groups = chain(group(add.s(1, 1), add.s(2, 2)), total.s(), add.s(10)).apply_async()
    failed_body = chord([add.s(3, 3), add.s(4, 4)], boom.s()).apply_async()
    failed_header = chord([add.s(5, 5), boom.s(7)], total.s()).apply_async()
    assert (last.get(timeout=10), grouped.get(timeout=10), callback.get(timeout=10), of_groups.get(timeout=10)) == (
        10, [0, 2, 4], 6, 16)  # fmt: skip
    for failing in (failed_body, failed_header):
        with pytest.raises(Exception, match="no "):
            failing.get(timeout=10)
    settle(settings, worker)

    # a chain: one line of child edges, each step under the one before
    steps = [last.parent.parent.id, last.parent.id, last.id]
    tree, flow = shown(settings, steps[1])
    assert (flow["state"], flow["roots"], flow["tasks"]) == ("done", [steps[0]], 3) and flow["duration"] >= 0
    assert edges(flow, "child") == {(steps[0], steps[1]), (steps[1], steps[2])} and not edges(flow, "member")
    assert tree.startswith("DONE") and under(tree, steps[1], steps[0]) and under(tree, steps[2], steps[1])
    assert all(n["status"] == "DONE" and n["attempts"] == 1 and n["worker"] for n in flow["nodes"])

    # a group: a group node, its members under it
    members = [r.id for r in grouped.results]
    tree, flow = shown(settings, members[2])
    assert flow["state"] == "done" and edges(flow, "member") == {(grouped.id, m) for m in members}
    assert [n for n in flow["nodes"] if n["kind"] == "group"] == [
        {"kind": "group", "id": grouped.id, "size": 3, "statuses": {"DONE": 3}}]  # fmt: skip
    assert all(under(tree, m, grouped.id) for m in members) and f"group {grouped.id} · 3 tasks" in tree

    # a chord: header members lead to the callback, printed under the header's group
    header, group_id = [r.id for r in callback.parent.results], callback.parent.id
    tree, flow = shown(settings, callback.id)
    assert flow["state"] == "done" and edges(flow, "callback") == {(h, callback.id) for h in header}
    assert edges(flow, "member") == {(group_id, h) for h in header} and not edges(flow, "child")
    assert under(tree, callback.id, group_id) and f"callback {callback.id}" in tree

    # a chain of groups: the group's chord callback, then the step chained after it
    tree, flow = shown(settings, of_groups.id)
    (summed,) = [n["id"] for n in flow["nodes"] if n.get("name") == "flows.total"]
    (first_group,) = [n["id"] for n in flow["nodes"] if n["kind"] == "group"]
    assert flow["state"] == "done" and flow["tasks"] == 4 and (summed, of_groups.id) in edges(flow, "child")
    assert {source for source, _ in edges(flow, "callback")} == {t for _, t in edges(flow, "member")}
    assert under(tree, summed, first_group) and under(tree, of_groups.id, summed)

    # a failed chord body: the callback failed, so the workflow failed there
    tree, flow = shown(settings, failed_body.id)
    assert (flow["state"], flow["failed_at"]) == ("failed", [failed_body.id])
    (body,) = [n for n in flow["nodes"] if n["id"] == failed_body.id]
    assert (body["status"], body["exc_type"], body["attempts"]) == ("FAILURE", "ValueError", 1)
    assert tree.startswith(f"FAILED at {failed_body.id}") and re.search(
        rf"callback {failed_body.id}  flows.boom  FAILURE  attempts 1 .*ValueError: no \[6, 8\]", tree)  # fmt: skip

    # a failed chord header task: failed at that task; the callback was never sent
    broken = failed_header.parent.results[1].id
    tree, flow = shown(settings, broken)
    assert (flow["state"], flow["failed_at"], flow["tasks"]) == ("failed", [broken], 2)
    assert tree.startswith(f"FAILED at {broken}") and under(tree, broken, failed_header.parent.id)

    unknown = ledger_cli("workflow", "never-sent", env=cli_env(settings))
    assert unknown.returncode == 1
    assert unknown.stderr == "error: unknown task 'never-sent': the ledger has no event of it\n"
    blank = ledger_cli("workflow", " ", env=cli_env(settings))
    assert blank.returncode == 1 and blank.stderr.startswith("error: TASK_ID: ") and blank.stderr.count("\n") == 1
