"""The failures pages: the failure groups of a window (``FailureQueries``, as ``GET
/failures``) with counts, a sparkline of each trend, first / last seen and open or resolved;
one group with its examples; and the resolve and reopen buttons.

Resolving and reopening are ``POST /failures/{fp}/resolve`` and ``/reopen`` themselves
(``failures.resolved`` and ``failures.reopened`` events in the log), sent by a form (the
cookie is SameSite=Strict: another site cannot post it) and answered by a redirect back
(303). The views show the decision once the projector has applied it, which the page says.
A failure after the resolution reopens the group by itself too (``domain.failures.is_open``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.exceptions import HTTPException

from ledger.domain.fields import FreeText
from ledger.http.failures import Fingerprint, reopen_failure_group, resolve_failure_group
from ledger.http.params import Text
from ledger.http.resources import BackendsDep
from ledger.http.schemas import FailureGroupOut, ReopeningIn, ResolutionIn
from ledger.http.ui.site import SPANS, render
from ledger.projections.failures import FailureQueries

__all__ = ["router", "sparkline"]

router = APIRouter()
Window = Literal["1h", "24h", "7d"]
WINDOWS: Final[dict[str, tuple[timedelta, int]]] = {
    window: (SPANS[window], buckets) for window, buckets in (("1h", 12), ("24h", 24), ("7d", 28))
}
"""Each window and its trend's buckets (5 min, 1 h, 6 h)."""
WindowParam = Annotated[Window, Query(description="failures of the last 1h, 24h or 7d")]
LIMIT: Final = 100
SPARK_W: Final = 120
SPARK_H: Final = 24
By = Annotated[str | None, Form(min_length=1, max_length=255)]
Recorded = Annotated[Literal["resolved", "reopened"] | None, Query(description="the decision just recorded")]


def sparkline(trend: list[int], width: int = SPARK_W, height: int = SPARK_H) -> str:
    """The points of an SVG polyline drawing ``trend`` (oldest left; the tallest bucket at
    the top, zero on the bottom line, 1 px of margin)."""
    if not trend:
        return ""
    top = max(max(trend), 1)
    step = (width - 2) / max(len(trend) - 1, 1)
    return " ".join(f"{1 + i * step:.1f},{height - 1 - (height - 2) * n / top:.1f}" for i, n in enumerate(trend))


def _since(window: str) -> datetime:
    return datetime.now(UTC) - WINDOWS[window][0]


@router.get("/failures", response_class=HTMLResponse)
def failures_page(request: Request, backends: BackendsDep, window: WindowParam = "24h",
                  name: Text | None = None) -> HTMLResponse:  # fmt: skip
    with backends.views() as reader:
        groups = FailureQueries(reader).groups(since=_since(window), name=name, limit=LIMIT,
                                               buckets=WINDOWS[window][1])  # fmt: skip
    return render(request, "failures.html", page="failures", title="Failures", window=window, windows=list(WINDOWS),
                  name=name or "", groups=[FailureGroupOut.from_group(g) for g in groups], limit=LIMIT,
                  sparkline=sparkline)  # fmt: skip


@router.get("/failures/{fingerprint}", response_class=HTMLResponse)
def failure_group_page(request: Request, backends: BackendsDep, fingerprint: Fingerprint, window: WindowParam = "7d",
                       recorded: Recorded = None) -> HTMLResponse:  # fmt: skip
    with backends.views() as reader:
        group = FailureQueries(reader).group(fingerprint, since=_since(window), buckets=WINDOWS[window][1])
    if group is None:
        raise HTTPException(404, detail=f"failure group {fingerprint!r} has no failure in the last {window}")
    out = FailureGroupOut.from_group(group)
    return render(request, "failure_group.html", page="failures", title=f"Failure group {fingerprint}", group=out,
                  window=window, windows=list(WINDOWS), recorded=recorded, sparkline=sparkline)  # fmt: skip


@router.post("/failures/{fingerprint}/resolve")
def resolve(backends: BackendsDep, fingerprint: Fingerprint, resolved_by: By = None,
            note: Annotated[FreeText | None, Form()] = None) -> RedirectResponse:  # fmt: skip
    """The JSON API's resolve (its 404 for a group with no failure too), then back to the
    group's page, which says the resolution was recorded."""
    resolve_failure_group(backends, fingerprint, ResolutionIn(resolved_by=resolved_by, note=note))
    return RedirectResponse(f"/ui/failures/{fingerprint}?recorded=resolved", status_code=303)


@router.post("/failures/{fingerprint}/reopen")
def reopen(backends: BackendsDep, fingerprint: Fingerprint, reopened_by: By = None,
           note: Annotated[FreeText | None, Form()] = None) -> RedirectResponse:  # fmt: skip
    """The JSON API's reopen, then back to the group's page, which says it was recorded."""
    reopen_failure_group(backends, fingerprint, ReopeningIn(reopened_by=reopened_by, note=note))
    return RedirectResponse(f"/ui/failures/{fingerprint}?recorded=reopened", status_code=303)
