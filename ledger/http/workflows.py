"""Workflows over HTTP: ``GET /tasks/{id}/workflow`` (the workflow any task belongs to) and
``GET /workflows/{root_id}`` (the workflow of a root). Routes translate and delegate to
the view reader's ``workflow`` query; the shape is ``WorkflowOut``'s."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, HTTPException, Response

from ledger.domain.workflow import Workflow
from ledger.http.params import Text
from ledger.http.resources import BackendsDep
from ledger.http.schemas import ErrorOut
from ledger.workflow_models import WorkflowOut

__all__ = ["router"]

router = APIRouter(tags=["workflows"])
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": ErrorOut, "description": "no workflow of this id"},
    503: {"model": ErrorOut, "description": "a backend failed"},
}


def _answer(flow: Workflow) -> Response:
    """The JSON, serialized once: returning the model would have FastAPI validate it again
    (the model is still the route's documented response)."""
    return Response(WorkflowOut.from_workflow(flow).model_dump_json(), media_type="application/json")


@router.get("/tasks/{task_id}/workflow", response_model=WorkflowOut, responses=_ERRORS)
def task_workflow(backends: BackendsDep, task_id: Text) -> Response:
    """Every task that shares a root or a group with this one (chains, groups, chord
    callbacks), as nodes and edges, with the workflow's state and duration."""
    with backends.views() as reader:
        flow = reader.workflow(task_id)
    if flow is None:
        raise HTTPException(404, detail=f"task {task_id!r} is unknown to the ledger")
    return _answer(flow)


@router.get("/workflows/{root_id}", response_model=WorkflowOut, responses=_ERRORS)
def workflow(backends: BackendsDep, root_id: Text) -> Response:
    """The workflow whose root is ``root_id`` (a root: a task no other task sent; each
    member of a group sent from outside a task is one)."""
    with backends.views() as reader:
        flow = reader.workflow(root_id)
    if flow is None or not flow.rooted_at(root_id):
        raise HTTPException(404, detail=f"{root_id!r} is not the root of a workflow the ledger knows"
                            " (GET /tasks/{id}/workflow finds the workflow of any task)")  # fmt: skip
    return _answer(flow)
