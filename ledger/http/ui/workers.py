"""The workers page: every Celery worker the ledger has heard from (``WorkerQueries``, as
``GET /workers``), online or offline now with the reason as text as well as colour, its
last heartbeat, load average, processed / active counts and software, and a link to the
tasks it ran (the tasks page filtered by ``worker=``)."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ledger.domain.workers import MISSED_BEATS
from ledger.http.resources import BackendsDep
from ledger.http.schemas import WorkerOut
from ledger.http.ui.site import render
from ledger.projections.workers import WorkerQueries

__all__ = ["router"]

router = APIRouter()
LIMIT: Final = 1000


@router.get("/workers", response_class=HTMLResponse)
def workers_page(request: Request, backends: BackendsDep) -> HTMLResponse:
    with backends.views() as reader:
        workers = [WorkerOut.from_worker(w) for w in WorkerQueries(reader).workers(limit=LIMIT)]
    online = sum(1 for w in workers if w.status == "online")
    return render(request, "workers.html", page="workers", title="Workers", workers=workers, online=online,
                  limit=LIMIT, missed=MISSED_BEATS)  # fmt: skip
