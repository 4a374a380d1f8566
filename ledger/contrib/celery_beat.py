"""Celery beat → periodic-task events: each schedule entry is registered, each dispatch is
a trigger (the seed's ``PeriodicTaskMeta.delay()``), so ``periodic_task_meta`` shows
last_run_at, total_run_count and, joined with ``task_meta``, the last run's outcome.

``app.conf.beat_scheduler = "ledger.contrib.celery:LedgerScheduler"`` (or ``celery beat
-S …``, ``celery worker -B --scheduler …``) runs beat's default persistent scheduler with
recording; ``LedgerSchedulerMixin`` adds the same to any other scheduler class
(``class S(LedgerSchedulerMixin, DatabaseScheduler)``).

Intervals: a ``timedelta`` / ``schedule(run_every)`` entry registers its exact interval. A
``crontab`` (or ``solar``) has none, so it registers the shortest gap between its next
occurrences: exact for regular crontabs (``*/15``), the closest spacing for irregular
ones (``0 9,17``: 8 h), where ``due`` and ``missed_runs`` are then estimates.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Final

from celery.beat import PersistentScheduler, Scheduler  # type: ignore[import-untyped]

from ledger.contrib.celery_signals import CeleryLedger, install, installed

__all__ = ["LedgerScheduler", "LedgerSchedulerMixin", "schedule_interval"]

log = logging.getLogger(__name__)

_OCCURRENCES: Final = 8
"""Occurrences of a crontab sampled for its shortest gap (covers "9 and 17 h" and weekdays)."""
_NUDGE: Final = timedelta(seconds=1)


def schedule_interval(schedule: Any) -> float | None:
    """Seconds between runs of a beat schedule; None when it cannot be told."""
    run_every = getattr(schedule, "run_every", None)
    if run_every is not None:
        seconds = float(run_every.total_seconds())
        return seconds if seconds > 0 else None
    try:
        return _shortest_gap(schedule)
    except Exception:  # a custom schedule class: register nothing rather than fail beat
        log.warning("ledger: cannot tell the interval of schedule %r", schedule, exc_info=True)
        return None


def _shortest_gap(schedule: Any) -> float | None:
    """The shortest time between the next occurrences. ``remaining_estimate(t)`` is the
    time from now to the first occurrence after ``t``; each occurrence found is a few µs
    early (now moves on between calls), hence the second's nudge and the rounding: crontab
    and solar schedules have no finer resolution."""
    now: datetime = schedule.now()
    occurrences = [now + schedule.remaining_estimate(now)]
    for _ in range(_OCCURRENCES - 1):
        after = occurrences[-1] + _NUDGE
        occurrences.append(schedule.now() + schedule.remaining_estimate(after))
    gaps = [round((b - a).total_seconds()) for a, b in pairwise(occurrences)]
    return min((float(gap) for gap in gaps if gap > 0), default=None)


class LedgerSchedulerMixin(Scheduler):  # type: ignore[misc]
    """Records registrations and dispatches of any beat scheduler it is mixed into.

    The ledger is the app's installation (``install(app, ...)`` where the app is defined),
    else one installed here from the app's settings. If even that fails (invalid
    settings), beat keeps scheduling and says why: the ledger never stops the schedule.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._ledger_registered: dict[str, tuple[str, float]] = {}
        self._recorder: CeleryLedger | None = None
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        super().setup_schedule()
        self._recorder = self._find_recorder()
        for entry in list(self.schedule.values()):
            self._register(entry)

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        """Dispatch as beat does, then record the run (only a dispatch that happened)."""
        result = super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        task_id = getattr(result, "id", None)
        recorder = self._recorder
        if recorder is not None and task_id:
            self._register(entry)
            recorder.record(
                f"periodic {entry.name!r} run",
                None,
                lambda w: w.delay_periodic(entry.name, lambda: str(task_id), task=entry.task),
            )
        return result

    def _find_recorder(self) -> CeleryLedger | None:
        recorder = self._recorder or installed(self.app)
        if recorder is not None:
            return recorder
        try:
            return install(self.app)
        except Exception:
            log.exception("ledger: beat runs without recording: no ledger could be built")
            return None

    def _register(self, entry: Any) -> None:
        """Register ``entry`` when new or changed (task or interval): once per beat start."""
        recorder = self._recorder
        interval = schedule_interval(entry.schedule)
        if recorder is None or interval is None:
            return
        wanted = (entry.task, interval)
        if self._ledger_registered.get(entry.name) == wanted:
            return
        self._ledger_registered[entry.name] = wanted
        recorder.record(
            f"periodic {entry.name!r} registration",
            None,
            lambda w: w.register_periodic(entry.name, entry.task, interval),
        )


class LedgerScheduler(LedgerSchedulerMixin, PersistentScheduler):  # type: ignore[misc]
    """Beat's default scheduler (schedule state in a shelve file), recorded in the ledger."""
