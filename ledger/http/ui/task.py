"""The task page: every field of one task, its arguments, result and traceback, and the
timeline of its events."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from ledger.http.params import Text
from ledger.http.resources import BackendsDep
from ledger.http.schemas import TaskOut, TimelineOut
from ledger.http.ui.site import render
from ledger.projections.timeline import build_timeline

__all__ = ["router"]

router = APIRouter()


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_page(request: Request, backends: BackendsDep, task_id: Text) -> HTMLResponse:
    with backends.queries() as queries:
        state = queries.task_state(task_id)
    if state is None:
        raise HTTPException(404, detail=f"task {task_id!r} is unknown to the ledger")
    with backends.views() as reader:
        rows = reader.task_events(task_id)
    timeline = TimelineOut.from_timeline(build_timeline(rows)) if rows else None
    return render(request, "task.html", page="tasks", task=TaskOut.from_state(state), timeline=timeline)
