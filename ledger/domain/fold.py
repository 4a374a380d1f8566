"""Events → the current state of one task: the rule of the ``task_meta`` view, as data.

Every event has an intrinsic ``rank``: (attempt, status precedence, occurred_at, event id).
The top-ranked event decides the "status group" of fields; the "gap fields" come from the
highest-ranked event that carries them. Because the rank belongs to the event, folding any
permutation (or duplication) of a task's events gives the same state. The log position is
deliberately NOT part of the rank: a shuffled or re-appended delivery changes positions,
so the offset is only recorded (``last_offset``), never used to decide.

One field is about the log rather than the events' content: ``first_seen``, the
``occurred_at`` of the task's first event in log order (lowest offset). It never changes
once the task exists, so listings ordered by it page without repeats however tasks change
(one task's events share a partition and arrive in offset order, and a replay of the same
log finds the same first event).

``evolve`` is the incremental step, exact when the event outranks the current top (the
normal, in-order case). ``is_late`` tells the projector when it is not; the projector then
refolds the task's history with ``fold``. The hot path builds plain tuples, no pydantic.

An expiry (``TaskExpired``) is not folded: it removes the task, if ``expires`` says so at
the point of the log where it stands, and the events after it start the task afresh. The
projector applies that rule as it reads the log; ``fold`` applies the same rule in log
order, so the two agree on every interleaving of expiries and status events.

The pieces, one job each: the record (``task_state``), the merge rules as data
(``fold_rules``), the rank (``ranking``), the expiry rule (``expiry``); this module applies
them, and its names are the fold's public surface (callers import them from here).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from operator import attrgetter
from typing import Any, Final

from ledger.domain.events import TaskEvent, TaskExpired
from ledger.domain.expiry import expires
from ledger.domain.fold_rules import GAP_FIELDS, STATUS_DATES, STATUS_GROUP, status_group_values
from ledger.domain.ranking import Rank, is_late, precedence_of, rank, top_rank
from ledger.domain.statuses import READY_STATES, TaskStatus
from ledger.domain.task_state import TaskState
from ledger.domain.timing import DURATIONS, seconds_between

__all__ = [
    "GAP_FIELDS",
    "STATUS_DATES",
    "STATUS_GROUP",
    "Rank",
    "TaskState",
    "evolve",
    "expires",
    "fold",
    "is_late",
    "rank",
    "top_rank",
]

# -- the rules as indexes into a state's field values (the hot path works on a list) -------
FIELDS: Final = tuple(f.name for f in fields(TaskState))
_values_of = attrgetter(*FIELDS)
_STATUS_IDX: Final = tuple(FIELDS.index(name) for name in STATUS_GROUP)
_GAP_IDX: Final = tuple((FIELDS.index(name), source) for name, source in GAP_FIELDS.items())
_DATE_IDX: Final[dict[TaskStatus | None, int]] = {status: FIELDS.index(name) for status, name in STATUS_DATES.items()}
_TASK_ID, _OFFSET, _FIRST_SEEN, _STATUS = (FIELDS.index(name) for name in ("task_id", "last_offset", "first_seen",
                                                                          "status"))  # fmt: skip
_DURATION_IDX: Final = tuple((FIELDS.index(name), FIELDS.index(start), FIELDS.index(end))
                             for name, (start, end) in DURATIONS.items())  # fmt: skip
_TOTAL: Final = FIELDS.index("total_time")
_RULES: dict[type[TaskEvent], tuple[int, int | None]] = {}


def _rules(cls: type[TaskEvent]) -> tuple[int, int | None]:
    """(precedence, date field index) of an event class: the tables, looked up once per class."""
    rules = _RULES.get(cls)
    if rules is None:
        rules = _RULES[cls] = (precedence_of(cls), _DATE_IDX.get(cls.status))
    return rules


# -- folding --------------------------------------------------------------------------------
def evolve(state: TaskState | None, event: TaskEvent, offset: int | None = None) -> TaskState:
    """Apply one event. Exact when it outranks the current top; a late event only fills
    gap fields that are still empty (``is_late`` says when to ``fold`` instead). An
    expiry is not a step of the state: ``expires`` decides what it does."""
    if isinstance(event, TaskExpired):
        raise ValueError("event: an expiry removes a task (see expires), it does not evolve one")
    if state is None:
        values = _blank(event.task_id)
        values[_FIRST_SEEN] = event.occurred_at
        _step(values, None, event, offset)
        return _state(values)
    if state.task_id != event.task_id:
        raise ValueError(f"task_id: event for {event.task_id!r} applied to {state.task_id!r}")
    values = list(_values_of(state))
    _step(values, top_rank(state), event, offset)
    return _state(values)


def fold(events: Iterable[tuple[TaskEvent, int | None]]) -> TaskState | None:
    """The state after all ``(event, offset)`` pairs, whatever their order or duplication:
    dedupe by event id (earliest offset wins), sort by rank, evolve in rank order;
    ``first_seen`` from the event with the lowest offset (unknown offsets last, ties by rank).
    Expiries act where they stand in the log (``expires``); None when nothing is left."""
    unique: dict[int, tuple[TaskEvent, int | None]] = {}  # by UUID.int: UUID's hash is slow
    for event, offset in events:
        seen = unique.get(event.event_id.int)
        if seen is None or _earlier(offset, seen[1]):
            unique[event.event_id.int] = (event, offset)
    pairs = list(unique.values())
    if any(isinstance(event, TaskExpired) for event, _ in pairs):
        pairs = _after_expiries(pairs)
    return _fold_ranked(pairs) if pairs else None


def _after_expiries(pairs: list[tuple[TaskEvent, int | None]]) -> list[tuple[TaskEvent, int | None]]:
    """The status events left once each expiry, taken in log order, has removed the task
    (or not) as it stood at that point."""
    live: list[tuple[TaskEvent, int | None]] = []
    for event, offset in sorted(pairs, key=lambda pair: (pair[1] is None, pair[1] or 0)):
        if not isinstance(event, TaskExpired):
            live.append((event, offset))
        elif live and expires(_fold_ranked(live), event):
            live = []
    return live


def _fold_ranked(pairs: list[tuple[TaskEvent, int | None]]) -> TaskState:
    """Status events, unique by id, folded in rank order."""
    ordered = sorted(pairs, key=lambda pair: rank(pair[0]))
    task_id = ordered[0][0].task_id
    values = _blank(task_id)
    values[_FIRST_SEEN] = min(ordered, key=lambda pair: (pair[1] is None, pair[1] or 0))[0].occurred_at
    top: Rank | None = None
    for event, offset in ordered:  # evolve's step, building one TaskState at the end
        if event.task_id != task_id:
            raise ValueError(f"task_id: events of {task_id!r} and {event.task_id!r} mixed")
        top = _step(values, top, event, offset)
    return _state(values)


def _step(values: list[Any], top: Rank | None, event: TaskEvent, offset: int | None) -> Rank:
    """Apply one event to a state's field values (``FIELDS`` order) in place, given the
    rank of its top event (None: no state yet); return the new top rank."""
    precedence, date_index = _rules(type(event))
    event_rank = (event.attempt, precedence, event.occurred_at, event.event_id)
    if top is None or event_rank > top:
        for index, value in zip(_STATUS_IDX, status_group_values(event, offset), strict=True):
            values[index] = value
        _fill_gaps(values, event, date_index, overwrite=True)
        return event_rank
    if event_rank == top:  # the top event again: keep its earliest offset
        if _earlier(offset, values[_OFFSET]):
            values[_OFFSET] = offset
    else:  # late: it may only fill what no event has filled yet
        _fill_gaps(values, event, date_index, overwrite=False)
    return top


def _fill_gaps(values: list[Any], event: TaskEvent, date_index: int | None, *, overwrite: bool) -> None:
    carried = event.__dict__  # pydantic keeps fields there: no attribute-miss exceptions
    for index, source in _GAP_IDX:
        value = carried.get(source)
        if value is not None and (overwrite or values[index] is None):
            values[index] = value
    if date_index is not None and (overwrite or values[date_index] is None):
        values[date_index] = event.occurred_at


def _state(values: list[Any]) -> TaskState:
    """The state of these field values, with ``DURATIONS`` derived from them."""
    for index, since, until in _DURATION_IDX:
        values[index] = seconds_between(values[since], values[until])
    if values[_STATUS] not in READY_STATES:
        values[_TOTAL] = None
    return TaskState(*values)


def _blank(task_id: str) -> list[Any]:
    values: list[Any] = [None] * len(FIELDS)
    values[_TASK_ID] = task_id
    return values


def _earlier(offset: int | None, than: int | None) -> bool:
    """Offset order with ``None`` (position unknown) after every real offset."""
    return offset is not None and (than is None or offset < than)
