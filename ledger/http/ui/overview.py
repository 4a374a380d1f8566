"""The overview: tasks by status now, throughput / failure rate / runtime p95 over a
chosen window, the top failure groups, the projector's lag and the backends' health, and
the periodic tasks that need a look. The live part is one fragment the page polls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from ledger.domain.statuses import TaskStatus
from ledger.http.resources import BackendsDep
from ledger.http.routes import check_health
from ledger.http.schemas import FailureGroupOut, PeriodicOut
from ledger.http.ui.site import SPANS, render
from ledger.projections.failures import FailureQueries

__all__ = ["router"]

router = APIRouter()
Window = Literal["1h", "6h", "24h", "7d"]
WINDOWS: Final[dict[str, tuple[timedelta, str]]] = {
    window: (SPANS[window], bucket) for window, bucket in (("1h", "1m"), ("6h", "5m"), ("24h", "15m"), ("7d", "1h"))
}
"""Each window and the bucket its charts use (60 to 168 points)."""
TOP_GROUPS: Final = 5


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, window: Annotated[Window, Query()] = "1h") -> HTMLResponse:
    span, bucket = WINDOWS[window]
    return render(request, "overview.html", page="overview", window=window, windows=list(WINDOWS), bucket=bucket,
                  span_seconds=int(span.total_seconds()))  # fmt: skip


@router.get("/overview/live", response_class=HTMLResponse)
def overview_live(request: Request, backends: BackendsDep, window: Annotated[Window, Query()] = "1h") -> HTMLResponse:
    """What the page refreshes: counts, health and lag, failure groups, periodic tasks."""
    since = datetime.now(UTC) - WINDOWS[window][0]
    with backends.queries() as queries:
        counts = queries.status_counts()
        periodic = [PeriodicOut.from_meta(m) for m in queries.periodic_tasks()]
    with backends.views() as reader:
        groups = FailureQueries(reader).groups(since=since, limit=TOP_GROUPS)
    attention = [p for p in periodic if p.due or p.missed_runs or p.duplicate_firings]
    return render(request, "overview_live.html", counts=[(s.value, counts.get(s, 0)) for s in TaskStatus],
                  total=sum(counts.values()), health=check_health(backends), window=window,
                  groups=[FailureGroupOut.from_group(g) for g in groups], periodic=attention)  # fmt: skip
