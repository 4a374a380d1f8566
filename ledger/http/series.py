"""Trends over HTTP: ``GET /stats/series`` (``SeriesQueries``, as ``ledger stats --series``).

The route translates and delegates; the rules (the bucket widths, the window of whole
buckets, its longest length) are the domain's, reported as 422 naming the parameter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from ledger.domain.series import BUCKETS, Percentiles, SeriesPoint
from ledger.http.params import Instant, Text, invalid
from ledger.http.resources import BackendsDep
from ledger.http.schemas import ErrorOut
from ledger.projections.series import Series, SeriesQueries

__all__ = ["router"]

router = APIRouter(tags=["stats"])
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {503: {"model": ErrorOut, "description": "a backend failed"}}
Bucket = Literal["1m", "5m", "15m", "1h", "6h", "1d"]
assert set(Bucket.__args__) == set(BUCKETS), "the parameter's choices are the domain's"  # type: ignore[attr-defined]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)


class PercentilesOut(_Out):
    """Nearest-rank percentiles in seconds (null: no value in the bucket)."""

    p50: float | None
    p95: float | None
    p99: float | None


class PointOut(_Out):
    """One bucket: transitions recorded in it, runtimes of the tasks that finished in it,
    queue waits of the tasks received in it."""

    start: datetime
    published: int
    started: int
    succeeded: int
    failed: int
    retried: int
    revoked: int
    runtime: PercentilesOut
    queue_wait: PercentilesOut


class SeriesOut(_Out):
    """The buckets of [start, end), oldest first."""

    bucket: str
    start: datetime
    end: datetime
    name: str | None
    queue: str | None
    points: list[PointOut]


def _point(p: SeriesPoint) -> PointOut:
    def cut(q: Percentiles) -> PercentilesOut:
        return PercentilesOut(p50=q.p50, p95=q.p95, p99=q.p99)

    counts = {k: getattr(p, k) for k in ("published", "started", "succeeded", "failed", "retried", "revoked")}
    return PointOut(start=p.start, **counts, runtime=cut(p.runtime), queue_wait=cut(p.queue_wait))


def _out(series: Series) -> SeriesOut:
    return SeriesOut(bucket=series.bucket, start=series.start, end=series.end, name=series.name, queue=series.queue,
                     points=[_point(p) for p in series.points])  # fmt: skip


@router.get("/stats/series", responses=_ERRORS)
def stats_series(
    backends: BackendsDep,
    since: Annotated[Instant, Query(description="from (ISO 8601 with an offset); the series starts at its bucket")],
    bucket: Annotated[Bucket, Query(description="bucket width")] = "1m",
    until: Annotated[Instant | None, Query(description="until, exclusive (default: now)")] = None,
    name: Annotated[Text | None, Query(description="only tasks of this name")] = None,
    queue: Annotated[Text | None, Query(description="only tasks of this queue")] = None,
) -> SeriesOut:
    """Per bucket of the window: transitions counted (published, started, succeeded, failed,
    retried, revoked) and runtime and queue-wait p50/p95/p99, for every task or one name or queue."""
    with backends.views() as reader:
        try:
            series = SeriesQueries(reader).series(bucket, since, until, name=name, queue=queue)
        except ValueError as exc:  # the window's rules: "since: …" / "until: …"
            field, _, rule = str(exc).partition(": ")
            given = until if field == "until" and until is not None else since
            raise invalid(("query", field), rule, given.isoformat()) from None
    return _out(series)
