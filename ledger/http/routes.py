"""The read endpoints: tasks, their history, counts, periodic tasks, health and metrics.

Each route translates parameters (typed in ``params``), delegates to the query API
(``TaskQueries``), the view reader (``as_of``, ``status_counts_as_of``) or
``build_timeline``, and wraps the answer in a response model. Sync functions on purpose:
FastAPI runs them in its thread pool, and each borrows its own database connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from ledger import bootstrap
from ledger.consumers.lag import projector_lag
from ledger.domain.fold import TaskState
from ledger.http.metrics import exposition
from ledger.http.params import Cursor, Instant, Status, Text, invalid
from ledger.http.resources import Backends, BackendsDep
from ledger.http.schemas import ComponentOut, ErrorOut, HealthOut, PageOut, PeriodicOut, StatsOut, TaskOut, TimelineOut
from ledger.http.search import SearchDep
from ledger.projections.history import as_of as task_as_of
from ledger.projections.queries import decode_cursor
from ledger.projections.store import DEFAULT_ORDER, TaskFilter, TaskOrder
from ledger.projections.timeline import build_timeline
from ledger.settings import Settings

__all__ = ["PagePosition", "PagePositionDep", "TaskFilterDep", "check_health", "health_router", "router", "task_filter"]

router = APIRouter()
health_router = APIRouter(tags=["operations"])
PROJECTION: Final = "views"
_UNAVAILABLE: Final[dict[int | str, dict[str, Any]]] = {503: {"model": ErrorOut, "description": "a backend failed"}}
_NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {404: {"model": ErrorOut, "description": "unknown task id"}}
AsOf = Annotated[Instant | None, Query(description="ISO 8601 with an offset, e.g. 2026-03-01T02:13:00Z")]


def _unknown(task_id: str, when: str = "") -> HTTPException:
    return HTTPException(404, detail=f"task {task_id!r} is unknown to the ledger{when}")


@router.get("/tasks/{task_id}", tags=["tasks"], responses={**_NOT_FOUND, **_UNAVAILABLE})
def get_task(
    backends: BackendsDep,
    task_id: Text,
    as_of: AsOf = None,
    pending_if_unknown: Annotated[bool, Query(description="answer PENDING for an unknown id, as Celery")] = False,
) -> TaskOut:
    """A task's current row, or its state at ``as_of`` folded from its history."""
    state: TaskState | None
    if as_of is None:
        with backends.queries() as queries:
            state = queries.task_state(task_id)
    else:
        with backends.views() as reader:
            state = task_as_of(reader, task_id, as_of)
    if state is not None:
        return TaskOut.from_state(state)
    if pending_if_unknown:
        return TaskOut.unknown(task_id)
    raise _unknown(task_id, f" as of {as_of.isoformat()}" if as_of else "")


def task_filter(
    search: SearchDep,
    status: Annotated[list[Status] | None, Query(description="repeatable")] = None,
    name: Text | None = None,
    worker: Text | None = None,
    since: Annotated[Instant | None, Query(description="changed at or after")] = None,
    until: Annotated[Instant | None, Query(description="changed before")] = None,
) -> TaskFilter:
    """The filters of a task listing, as the JSON API and the dashboard both take them."""
    return TaskFilter(tuple(dict.fromkeys(status or ())), name, worker, since, until, **search)


TaskFilterDep = Annotated[TaskFilter, Depends(task_filter)]
_SORT: Final = (
    "the order: -first_seen (newest first by first appearance; the default), first_seen (oldest first), "
    "-changed / changed (by date_done, when the status last changed: newest / oldest first); "
    "ties by task id. A task that changes during a walk in a changed order moves to its new place"
)


@dataclass(frozen=True, slots=True)
class PagePosition:
    """Where a page of a listing starts: its order, and the cursor of the page before (None:
    the first page). A cursor only continues the order it was issued for."""

    order: TaskOrder
    cursor: str | None


def page_position(
    cursor: Annotated[Cursor | None, Query(description="next_cursor of the previous page, with the same sort")] = None,
    sort: Annotated[TaskOrder, Query(description=_SORT)] = DEFAULT_ORDER,
) -> PagePosition:
    """The shared ``sort`` and ``cursor`` parameters of a listing (JSON API and dashboard)."""
    if cursor is not None:
        try:
            decode_cursor(cursor, sort)
        except ValueError as exc:
            raise invalid(("query", "cursor"), str(exc), cursor) from None
    return PagePosition(sort, cursor)


PagePositionDep = Annotated[PagePosition, Depends(page_position)]


@router.get("/tasks", tags=["tasks"], responses=_UNAVAILABLE)
def list_tasks(
    backends: BackendsDep,
    where: TaskFilterDep,
    position: PagePositionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> PageOut:
    """Tasks in ``sort`` order (default: newest first by first appearance, ``first_seen``), in
    keyset pages: following ``next_cursor`` (with the same ``sort``) returns every task that
    existed when the walk began exactly once, whatever changes meanwhile (with filters: every
    such task still matching when reached); tasks created during the walk may or may not
    appear. In the ``changed`` orders a task that changes during the walk moves with its
    ``date_done``. ``since``/``until`` bound ``date_done``, when the status last changed.
    Search: ``q`` (free text), and ``kwarg.<key>=<value>`` (repeatable; e.g.
    ``kwarg.user_id=42``) beside the filters below."""
    with backends.queries() as queries:
        page = queries.list_tasks(where, cursor=position.cursor, limit=limit, order=position.order)
    return PageOut(items=[TaskOut.from_state(s) for s in page.items], next_cursor=page.next_cursor)


@router.get("/tasks/{task_id}/history", tags=["tasks"], responses={**_NOT_FOUND, **_UNAVAILABLE})
def task_history(backends: BackendsDep, task_id: Text) -> TimelineOut:
    """Every event of the task in log order: who sent it, the status before and after, late
    events, and what looks missing."""
    with backends.views() as reader:
        rows = reader.task_events(task_id)
    if not rows:
        raise _unknown(task_id)
    return TimelineOut.from_timeline(build_timeline(rows))


@router.get("/stats", tags=["tasks"], responses=_UNAVAILABLE)
def stats(backends: BackendsDep, as_of: AsOf = None) -> StatsOut:
    """Tasks per status now, or as they were at ``as_of``."""
    if as_of is None:
        with backends.queries() as queries:
            counts = queries.status_counts()
    else:
        with backends.views() as reader:
            counts = reader.status_counts_as_of(as_of)
    return StatsOut.from_counts(counts, as_of)


@router.get("/periodic-tasks", tags=["periodic tasks"], responses=_UNAVAILABLE)
def periodic_tasks(backends: BackendsDep) -> list[PeriodicOut]:
    """Every periodic task with its last run, run outcomes and missed runs."""
    with backends.queries() as queries:
        return [PeriodicOut.from_meta(m) for m in queries.periodic_tasks()]


@router.get("/periodic-tasks/due", tags=["periodic tasks"], responses=_UNAVAILABLE)
def due_periodic_tasks(backends: BackendsDep) -> list[PeriodicOut]:
    """Enabled periodic tasks due now (Celery 0.3's ``get_waiting_tasks``)."""
    with backends.queries() as queries:
        return [PeriodicOut.from_meta(m) for m in queries.get_waiting_tasks()]


@router.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    return Response(exposition(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)


@health_router.get("/health", responses={503: {"model": HealthOut, "description": "a component is unreachable"}})
def health(backends: BackendsDep, response: Response) -> HealthOut:
    """Reachability of the event log and the views, and the projector's lag. Never needs
    a token."""
    report = check_health(backends)
    if report.failing:
        response.status_code = 503
    return report


def check_health(backends: Backends) -> HealthOut:
    settings = backends.settings
    event_log = _probe("event_log", _log_target(settings), lambda: backends.log.end_offsets())
    lag: dict[int, int] | None = None

    def views() -> None:
        nonlocal lag
        with backends.views() as store:
            store.offsets(PROJECTION, settings.topic)
            if event_log.ok:
                lag = projector_lag(backends.log, store, PROJECTION)

    components = [event_log, _probe("views", _views_target(settings), views)]
    failing = [c.name for c in components if not c.ok]
    return HealthOut(
        status="unavailable" if failing else "ok",
        backend=settings.backend.value,
        components=components,
        failing=failing,
        lag=lag,
        lag_total=None if lag is None else sum(lag.values()),
    )


def _probe(name: Any, target: str, call: Callable[[], object]) -> ComponentOut:
    try:
        call()
    except Exception as exc:
        return ComponentOut(name=name, ok=False, target=target, error=str(exc) or type(exc).__name__)
    return ComponentOut(name=name, ok=True, target=target)


def _log_target(settings: Settings) -> str:
    return bootstrap.logs(settings).where(settings)


def _views_target(settings: Settings) -> str:
    return bootstrap.views(settings).where(settings)
