"""The task page: every field of one task, its arguments, result and traceback (pretty,
collapsible, copyable), the timeline of its events with a time bar per attempt, the
workflow it belongs to as a graph, and the task "as of" any moment of its life.

``?as_of=`` is the JSON API's parameter (``GET /tasks/{id}?as_of=``) and the same query:
the domain's fold of the events that occurred by then (``projections.history.as_of``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from ledger.domain.critical_path import critical_path
from ledger.http.params import Text
from ledger.http.resources import BackendsDep
from ledger.http.routes import AsOf
from ledger.http.schemas import TaskOut, TimelineOut
from ledger.http.ui.graph import Graph, workflow_graph
from ledger.http.ui.site import render
from ledger.projections.attempts import AttemptSpans, attempt_spans
from ledger.projections.history import as_of as task_as_of
from ledger.projections.store import ViewReader
from ledger.projections.timeline import build_timeline

__all__ = ["payload_blocks", "router", "time_bars"]

router = APIRouter()
_SEGMENTS = (("queue", "queue wait", "queue_wait"), ("delay", "start delay", "start_delay"),
             ("run", "runtime", "runtime"))  # fmt: skip


def payload_blocks(task: TaskOut) -> list[dict[str, str]]:
    """The task's bulky fields as text to show: JSON indented, the traceback as it is."""
    blocks = []
    for key, label, value in (("args", "Args", task.args), ("kwargs", "Kwargs", task.kwargs),
                              ("result", "Result", task.result), ("exc_args", "Exception args", task.exc_args),
                              ("traceback", "Traceback", task.traceback)):  # fmt: skip
        if value is None:
            continue
        as_is = value if key == "traceback" and isinstance(value, str) else None
        text = as_is if as_is is not None else json.dumps(value, indent=2, ensure_ascii=False)
        blocks.append({"key": key, "label": label, "text": text})
    return blocks


def time_bars(spans: list[AttemptSpans]) -> list[dict[str, Any]]:
    """Each attempt's spans as segments of a bar, widths in percent of the longest attempt
    (so attempts compare at a glance)."""
    longest = max((s.total for s in spans), default=0.0) or 1.0
    bars = []
    for span in spans:
        segments = [{"kind": kind, "label": label, "seconds": getattr(span, field),
                     "width": round(100 * getattr(span, field) / longest, 2)}
                    for kind, label, field in _SEGMENTS if getattr(span, field) is not None]  # fmt: skip
        bars.append({"attempt": span.attempt, "segments": segments, "outcome": span.outcome})
    return bars


def _workflow(reader: ViewReader, task_id: str) -> tuple[Graph, dict[str, Any]] | None:
    flow = reader.workflow(task_id)
    if flow is None or (len(flow.tasks) < 2 and not flow.groups):
        return None
    summary = {"state": flow.state, "duration": flow.duration, "tasks": len(flow.tasks)}
    return workflow_graph(flow, critical_path(flow), current=task_id), summary


def _as_of(reader: ViewReader, task_id: str, at: datetime | None) -> dict[str, Any]:
    if at is None:
        return {"as_of": None}
    state = task_as_of(reader, task_id, at)
    return {"as_of": at, "then": None if state is None else TaskOut.from_state(state)}


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_page(request: Request, backends: BackendsDep, task_id: Text, as_of: AsOf = None) -> HTMLResponse:
    with backends.queries() as queries:
        state = queries.task_state(task_id)
    if state is None:
        raise HTTPException(404, detail=f"task {task_id!r} is unknown to the ledger")
    with backends.views() as reader:
        rows = reader.task_events(task_id)
        then = _as_of(reader, task_id, as_of)
        workflow = _workflow(reader, task_id)
    built = build_timeline(rows) if rows else None
    now = TaskOut.from_state(state)
    shown = then.get("then") or now
    return render(request, "task.html", page="tasks", task=shown, now=now, **then,
                  timeline=TimelineOut.from_timeline(built) if built else None,
                  bars=time_bars(attempt_spans(built.entries)) if built else [],
                  blocks=payload_blocks(shown), workflow=workflow)  # fmt: skip
