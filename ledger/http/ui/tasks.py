"""The tasks page: the table of tasks (keyset pages of ``PAGE``, in the order chosen by a
click on a sortable column's header: ``TaskOrder``) with the JSON API's filters, kept in the
URL so a view can be shared, and live: the page listens to the event stream and refreshes
its first page as events arrive (``app.js``), unless paused, paged, or oldest first (new
and changed tasks would land on the last page: the events are counted instead).

``/ui/tasks/rows`` is the table alone, what the filters, the pager and the live refresh
swap in (htmx)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal, get_args

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import QueryParams

from ledger.domain.events import AnyTaskEvent
from ledger.domain.statuses import TaskStatus
from ledger.http.resources import BackendsDep
from ledger.http.routes import PagePosition, PagePositionDep, TaskFilterDep
from ledger.http.schemas import TaskOut
from ledger.http.ui.site import SPANS, render
from ledger.projections.store import TaskOrder

__all__ = ["router"]

router = APIRouter()
PAGE: Final = 50
Range = Literal["15m", "1h", "6h", "24h", "7d"]
RANGES: Final[dict[str, timedelta]] = {within: SPANS[within] for within in ("15m", "1h", "6h", "24h", "7d")}
RangeParam = Annotated[Range | None, Query(alias="range", description="changed in the last …")]
TASK_EVENT_TYPES: Final = tuple(member.model_fields["type"].default for member in get_args(get_args(AnyTaskEvent)[0]))
"""The stream's event names (``event: task.started``…) a live table listens to."""


SORTABLE: Final = {"first_seen": "First seen", "changed": "Changed"}
"""The columns a header click sorts by (``TaskOrder`` without its direction), with their labels."""


def _headers(kept: list[tuple[str, str]], current: TaskOrder) -> dict[str, dict[str, str | None]]:
    """Per sortable column: the URL query of a click on its header (newest first, or the
    other direction when it is the current order's column), and its aria-sort and arrow."""
    headers: dict[str, dict[str, str | None]] = {}
    others = [(k, v) for k, v in kept if k != "sort"]
    for column in SORTABLE:
        active = current.value.lstrip("-") == column
        click = TaskOrder(column if active and current.descending else f"-{column}")
        headers[column] = {
            "query": str(QueryParams([*others, ("sort", click.value)])),
            "aria": ("descending" if current.descending else "ascending") if active else None,
            "arrow": ("▼" if current.descending else "▲") if active else "",
        }
    return headers


def _page(request: Request, backends: BackendsDep, where: TaskFilterDep, position: PagePosition,
          within: Range | None) -> dict[str, object]:  # fmt: skip
    if within is not None and where.since is None:
        where = replace(where, since=datetime.now(UTC) - RANGES[within])
    order = position.order
    with backends.queries() as queries:
        page = queries.list_tasks(where, cursor=position.cursor, limit=PAGE, order=order)
    params = request.query_params
    kept = [(k, v) for k, v in params.multi_items() if k != "cursor"]
    column = order.value.lstrip("-")
    return {
        "tasks": [TaskOut.from_state(s) for s in page.items],
        "next_url": None if page.next_cursor is None else f"?{QueryParams([*kept, ('cursor', page.next_cursor)])}",
        "first_url": "?" + str(QueryParams(kept)),
        "paged": position.cursor is not None,
        "live": order.descending and position.cursor is None,
        "descending": order.descending,
        "order_label": f"{SORTABLE[column].lower()}, {'newest' if order.descending else 'oldest'} first",
        "headers": _headers(kept, order),
        "query": str(QueryParams(kept)),
    }


@router.get("/tasks", response_class=HTMLResponse)
def tasks_page(request: Request, backends: BackendsDep, where: TaskFilterDep, position: PagePositionDep,
               within: RangeParam = None) -> HTMLResponse:  # fmt: skip
    params = request.query_params
    kwargs = [(k.removeprefix("kwarg."), v) for k, v in params.multi_items() if k.startswith("kwarg.")]
    return render(request, "tasks.html", page="tasks", statuses=[s.value for s in TaskStatus],
                  event_types=" ".join(TASK_EVENT_TYPES),
                  chosen=set(params.getlist("status")), form=params, kwargs=kwargs, ranges=list(RANGES),
                  **_page(request, backends, where, position, within))  # fmt: skip


@router.get("/tasks/rows", response_class=HTMLResponse)
def task_rows(request: Request, backends: BackendsDep, where: TaskFilterDep, position: PagePositionDep,
              within: RangeParam = None) -> HTMLResponse:  # fmt: skip
    return render(request, "tasks_rows.html", **_page(request, backends, where, position, within))
