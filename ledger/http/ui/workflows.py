"""The workflow pages: ``/ui/workflows`` (a form: any task id of a workflow, or its root id)
and ``/ui/workflows/{task_id}``: the workflow that task belongs to (the same query as
``GET /tasks/{id}/workflow``) drawn as a graph, with its state, duration and critical path
(``domain.critical_path``), large groups collapsed (``graph``).

No list of recent workflows: the views have no cheap query for "the latest roots" (a root
is a task no other task sent, known only by looking at the others); the tasks page finds
any task, and its page links to its workflow.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ledger.domain.critical_path import critical_path
from ledger.http.params import Text
from ledger.http.resources import BackendsDep
from ledger.http.ui.graph import workflow_graph
from ledger.http.ui.site import render

__all__ = ["router"]

router = APIRouter()


@router.get("/workflows", response_class=HTMLResponse)
def workflows_page(request: Request, task_id: Annotated[Text | None, Query()] = None) -> Response:
    """The form; submitted (a task id given), the workflow's page."""
    if task_id is not None:
        return RedirectResponse(f"/ui/workflows/{quote(task_id.strip(), safe='')}", status_code=303)
    return render(request, "workflows.html", page="workflows")


@router.get("/workflows/{task_id}", response_class=HTMLResponse)
def workflow_page(request: Request, backends: BackendsDep, task_id: Text) -> HTMLResponse:
    with backends.views() as reader:
        flow = reader.workflow(task_id)
    if flow is None:
        raise HTTPException(404, detail=f"task {task_id!r} is unknown to the ledger: no workflow holds it")
    path = critical_path(flow)
    names = {t.task_id: t for t in flow.tasks}
    return render(request, "workflow.html", page="workflows", flow=flow, task_id=task_id,
                  graph=workflow_graph(flow, path), path=[names[t] for t in path.tasks],
                  json_url=f"/tasks/{quote(task_id, safe='')}/workflow")  # fmt: skip
