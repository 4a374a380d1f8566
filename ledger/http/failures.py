"""Failure groups over HTTP: ``GET /failures``, ``GET /failures/{fingerprint}``, ``POST
/failures/{fingerprint}/resolve`` and ``POST /failures/{fingerprint}/reopen`` (events
appended to the log, as the CLI's ``ledger failures resolve`` / ``reopen``; the views show
them once the projector has applied them).

Routes translate and delegate to ``FailureQueries`` and the SDK; the rules (the
fingerprint's shape, the window) are theirs. Behind the API token like every data route.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import StringConstraints

from ledger import bootstrap
from ledger.http.params import Instant, Text, invalid
from ledger.http.resources import Backends, BackendsDep
from ledger.http.schemas import ErrorOut, FailureGroupOut, ReopeningIn, ReopeningOut, ResolutionIn, ResolutionOut
from ledger.projections.failures import FailureQueries
from ledger.sdk import Ledger

__all__ = ["router"]

router = APIRouter(tags=["failures"])
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": ErrorOut, "description": "no failure of this group (in the window)"},
    503: {"model": ErrorOut, "description": "a backend failed"},
}
Fingerprint = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$"),
                        Path(description="16 lowercase hex digits, as GET /failures lists them")]  # fmt: skip
Since = Annotated[Instant | None, Query(description="failures at or after (ISO 8601 with an offset)")]
Until = Annotated[Instant | None, Query(description="failures before")]
Buckets = Annotated[int, Query(ge=1, le=1000, description="trend buckets over the window")]


def _window(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and until <= since:
        raise invalid(("query", "until"), "must be after since", until.isoformat())


@router.get("/failures", responses=_ERRORS)
def list_failures(
    backends: BackendsDep,
    since: Since = None,
    until: Until = None,
    name: Text | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    buckets: Buckets = 12,
) -> list[FailureGroupOut]:
    """Failures grouped by root cause (task name, exception type, message with numbers, ids
    and quoted values masked), the most recently failing first."""
    _window(since, until)
    with backends.views() as reader:
        groups = FailureQueries(reader).groups(since=since, until=until, name=name, limit=limit, buckets=buckets)
    return [FailureGroupOut.from_group(g) for g in groups]


@router.get("/failures/{fingerprint}", responses=_ERRORS)
def get_failure_group(backends: BackendsDep, fingerprint: Fingerprint, since: Since = None, until: Until = None,
                      buckets: Buckets = 12) -> FailureGroupOut:  # fmt: skip
    """One failure group: counts, trend, example task ids, open or resolved."""
    _window(since, until)
    with backends.views() as reader:
        group = FailureQueries(reader).group(fingerprint, since=since, until=until, buckets=buckets)
    if group is None:
        raise HTTPException(404, detail=f"failure group {fingerprint!r} has no failure" +
                            (" in that window" if since or until else ""))  # fmt: skip
    return FailureGroupOut.from_group(group)


@router.post("/failures/{fingerprint}/resolve", responses=_ERRORS)
def resolve_failure_group(backends: BackendsDep, fingerprint: Fingerprint,
                          body: ResolutionIn | None = None) -> ResolutionOut:  # fmt: skip
    """Mark a group resolved: a ``failures.resolved`` event in the log, so a rebuild keeps
    it; a failure of the group that occurs later reopens it. 404 for a group with no failure."""
    given = body or ResolutionIn()
    at = _decide(backends, fingerprint, lambda ledger, at: ledger.resolve_failure_group(
        fingerprint, resolved_by=given.resolved_by, note=given.note, occurred_at=at))  # fmt: skip
    return ResolutionOut(fingerprint=fingerprint, resolved_at=at, resolved_by=given.resolved_by)


@router.post("/failures/{fingerprint}/reopen", responses=_ERRORS)
def reopen_failure_group(backends: BackendsDep, fingerprint: Fingerprint,
                         body: ReopeningIn | None = None) -> ReopeningOut:  # fmt: skip
    """Reopen a resolved group (the fix did not hold) without waiting for its next failure:
    a ``failures.reopened`` event in the log. Reopening an open group records the event and
    changes nothing. 404 for a group with no failure."""
    given = body or ReopeningIn()
    at = _decide(backends, fingerprint, lambda ledger, at: ledger.reopen_failure_group(
        fingerprint, reopened_by=given.reopened_by, note=given.note, occurred_at=at))  # fmt: skip
    return ReopeningOut(fingerprint=fingerprint, reopened_at=at, reopened_by=given.reopened_by)


def _decide(backends: Backends, fingerprint: str, append: Callable[[Ledger, datetime], object]) -> datetime:
    """An operator's decision on a known group, appended to the app's log; when it was made."""
    with backends.views() as reader:
        if FailureQueries(reader).group(fingerprint) is None:
            raise HTTPException(404, detail=f"failure group {fingerprint!r} has no failure")
    at = datetime.now(UTC)
    append(bootstrap.build_ledger(backends.settings, backends.log), at)  # the app's log: not closed here
    return at
