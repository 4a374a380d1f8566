"""Workers over HTTP: ``GET /workers`` (every Celery worker the ledger has heard from,
online or offline now) and ``GET /workers/{hostname}`` (one, with the tasks it ran).

Routes translate and delegate to ``WorkerQueries``; the rule of online / offline is the
domain's (``domain.workers.presence``). Behind the API token like every data route.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Path, Query

from ledger.domain.fields import Identifier
from ledger.http.resources import BackendsDep
from ledger.http.schemas import ErrorOut, WorkerDetailOut, WorkerOut
from ledger.projections.workers import MAX_LIMIT, WorkerQueries

__all__ = ["router"]

router = APIRouter(tags=["workers"])
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": ErrorOut, "description": "no event of this worker"},
    503: {"model": ErrorOut, "description": "a backend failed"},
}
Hostname = Annotated[Identifier, Path(description="the worker's hostname, e.g. celery@host (as GET /workers lists)")]


@router.get("/workers", responses=_ERRORS)
def list_workers(backends: BackendsDep,
                 limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 200) -> list[WorkerOut]:  # fmt: skip
    """Every worker by hostname: online or offline now, its last heartbeat, load, counts
    and software, from its own worker-online / -heartbeat / -offline events."""
    with backends.views() as reader:
        workers = WorkerQueries(reader).workers(limit=limit)
    return [WorkerOut.from_worker(w) for w in workers]


@router.get("/workers/{hostname}", responses=_ERRORS)
def get_worker(backends: BackendsDep, hostname: Hostname) -> WorkerDetailOut:
    """One worker, with how many of its tasks are in each status and its newest task ids."""
    with backends.views() as reader:
        worker = WorkerQueries(reader).worker(hostname)
    if worker is None:
        raise HTTPException(404, detail=f"unknown worker {hostname!r}: no event of it")
    return WorkerDetailOut.from_detail(worker)
