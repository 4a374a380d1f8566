"""Time travel: the status counts and the tasks in flight at a chosen moment, as the views'
history says they were (``status_counts_as_of``, as ``GET /stats?as_of=``, and
``in_flight_as_of``: one ranking rule for both).

The moment comes from a ``datetime-local`` field, which has no zone: a time without an
offset is read as UTC (the pages show UTC); a full ISO time with its offset is taken as
given. Anything else is the 422 page naming ``at``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import AfterValidator

from ledger.domain.statuses import every_status
from ledger.http.resources import BackendsDep
from ledger.http.ui.site import render

__all__ = ["router"]

router = APIRouter()
LIMIT: Final = 100
STEPS: Final = (("-1 h", timedelta(hours=-1)), ("-5 min", timedelta(minutes=-5)),
                ("+5 min", timedelta(minutes=5)), ("+1 h", timedelta(hours=1)))  # fmt: skip


def _utc_unless_given(value: datetime) -> datetime:
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(UTC)


Moment = Annotated[datetime, AfterValidator(_utc_unless_given)]
MomentParam = Annotated[Moment | None, Query(description="ISO 8601; UTC unless an offset is given")]


def field_value(at: datetime) -> str:
    """``at`` as a ``datetime-local`` field holds it (UTC, to the second)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


@router.get("/time-travel", response_class=HTMLResponse)
def time_travel(request: Request, backends: BackendsDep, at: MomentParam = None) -> HTMLResponse:
    context: dict[str, object] = {"at": at, "field": field_value(at or datetime.now(UTC)), "limit": LIMIT}
    if at is not None:
        with backends.views() as reader:
            counts = reader.status_counts_as_of(at)
            context["running"] = reader.in_flight_as_of(at, limit=LIMIT)
        context.update(counts=[(s.value, n) for s, n in every_status(counts).items()], total=sum(counts.values()),
                       iso=at.isoformat(), steps=[(label, (at + step).isoformat()) for label, step in STEPS])
    return render(request, "time_travel.html", page="time", title="Time travel", **context)
