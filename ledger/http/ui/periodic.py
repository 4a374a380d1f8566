"""The periodic tasks page: the seed's ``PeriodicTaskMeta`` (name, task, last run, total
runs) with what the query API derives (``PeriodicOut``, as ``GET /periodic-tasks``): the
interval, whether enabled, the last run's outcome, missed runs, duplicate firings, the next
run and whether it is due. Each row is anchored by its name (the overview links to
``/ui/periodic#<name>``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ledger.http.resources import BackendsDep
from ledger.http.schemas import PeriodicOut
from ledger.http.ui.site import render

__all__ = ["router"]

router = APIRouter()


@router.get("/periodic", response_class=HTMLResponse)
def periodic_page(request: Request, backends: BackendsDep) -> HTMLResponse:
    with backends.queries() as queries:
        rows = [PeriodicOut.from_meta(m) for m in queries.periodic_tasks()]
    return render(request, "periodic.html", page="periodic", title="Periodic tasks", rows=rows)
