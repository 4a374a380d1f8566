"""Row "project, late": the projector on a stream where 30 % of the events are out of place,
against the same projector on the same fleet's events in emission order, in the same run.

The fleet is ``bench.data``'s (``simulate``: about 4.4 events a task). The late stream is the
in-order one with 15 % of its events each moved later by up to ``REACH`` positions (a worker
whose events were held back: a RECEIVED after its STARTED, a PENDING after the outcome) and
15 % appended again a little later (a producer's retries): what a projector sees from a
fleet that is not in order. Each stream is emitted through the SDK (untimed) into a topic
of its own, then projected from the start into views of their own until caught up (timed).
The views must come out the same (every column but the log positions, ``last_offset`` and
``first_seen``, which follow the order by design): the rule's order-proofness, checked at size.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, Final

from bench.data import event_chunks
from bench.runctx import BenchRun
from bench.stats import rate
from ledger.bootstrap import build_ledger, build_projector, build_view_writer
from ledger.domain.events import AnyEvent
from ledger.progress import Progress

DISPLACED: Final = 0.15
DUPLICATED: Final = 0.15
REACH: Final = 5_000
"""Positions an out-of-place event lands after its own, at most (about two projector batches)."""
BY_POSITION: Final = frozenset({"last_offset", "first_seen"})


def measure_late(run: BenchRun, events: int, *, seed: int = 11) -> dict[str, Any]:
    in_order = [event for chunk in event_chunks(events, seed=seed) for event in chunk]
    late = out_of_place(in_order, random.Random(seed))
    ordered_run, ordered_rows = _project(run, "in-order", in_order)
    late_run, late_rows = _project(run, "late", late)
    differing = len(ordered_rows ^ late_rows)
    return {"in_order": ordered_run, "late": late_run, "same_views": differing == 0 and bool(ordered_rows),
            "differing_rows": differing, "tasks": len(ordered_rows), "displaced": DISPLACED,
            "duplicated": DUPLICATED, "reach": REACH}  # fmt: skip


def out_of_place(events: list[AnyEvent], rng: random.Random) -> list[AnyEvent]:
    """``events`` with ``DISPLACED`` of them moved later and ``DUPLICATED`` appended again later."""
    placed = [(index + (rng.uniform(1, REACH) if rng.random() < DISPLACED else 0.0), event)
              for index, event in enumerate(events)]  # fmt: skip
    placed += [(index + rng.uniform(1, REACH), event) for index, event in enumerate(events)
               if rng.random() < DUPLICATED]  # fmt: skip
    placed.sort(key=lambda pair: pair[0])
    return [event for _, event in placed]


def _project(run: BenchRun, name: str, events: list[AnyEvent]) -> tuple[dict[str, float], set[tuple[Any, ...]]]:
    """``events`` emitted into this row's topic ``name``, then projected into its own views:
    the projection's figures and the ``task_meta`` rows (without the positional columns)."""
    settings = run.settings.model_copy(update={
        "topic": run.scratch_topic(f"late-{name}"),
        "postgres_schema": run.scratch_schema(f"late_{name.replace('-', '_')}"),
        "projector_group": f"{run.settings.projector_group}-late-{name}",
    })  # fmt: skip
    progress = Progress(f"late row: emit {name}")
    progress.start(len(events))
    with build_ledger(settings) as ledger:
        for first in range(0, len(events), 5000):
            ledger.emit_many(events[first : first + 5000])
            progress.update(min(first + 5000, len(events)))
    progress.finish()
    writer = build_view_writer(settings)
    writer.migrate()
    projector, progress = build_projector(settings), Progress(f"late row: project {name}")
    projector.add_commit_listener(lambda stats: progress.update(stats.events))
    progress.start(len(events))
    try:
        started = time.perf_counter()
        projector.run_until_caught_up()
        seconds = time.perf_counter() - started
    finally:
        progress.finish()
        projector.close()
    try:
        columns, rows = writer.table_rows("task_meta")
        kept = [i for i, column in enumerate(columns) if column not in BY_POSITION]
        views = {tuple(_comparable(row[i]) for i in kept) for row in rows}
    finally:
        writer.close()
    return {"events_per_s": rate(len(events), seconds), "seconds": round(seconds, 3), "events": len(events)}, views


def _comparable(value: Any) -> Any:
    """A column's value as a set member (a JSON column's lists and objects as their text)."""
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else value
