"""The runs and schedule entries this process has recorded, kept for their rules.

Each is an aggregate of ``domain.aggregates`` (``TaskRun``, ``PeriodicTask``). A worker
records millions of tasks, so memory is bounded: the least recently used entries are
forgotten beyond ``limit``, and a forgotten run is judged again from its next step, as
if another process had recorded its earlier ones (the rules never refuse a first step).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Final, Generic, TypeVar

from ledger.domain.aggregates import PeriodicTask, TaskRun

__all__ = ["REMEMBERED", "Registry", "new_periodic_tasks", "new_task_runs"]

T = TypeVar("T")
R = TypeVar("R")
REMEMBERED: Final = 10_000
"""Runs remembered per process: a few MB, and far longer than any task's life."""


class Registry(Generic[T]):
    """Aggregates by key, least recently used first out. Only an aggregate the caller
    keeps (``keep``) is remembered, so a step refused for bad input leaves no trace. Two
    threads recording the same task at once may both take a step: harmless, as the same
    step has the same event id."""

    def __init__(self, factory: Callable[[str], T], limit: int = REMEMBERED) -> None:
        self._factory, self._limit = factory, limit
        self._items: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> T:
        """The remembered aggregate of ``key``, or a new one (not yet remembered)."""
        item = self._items.get(key)  # a dict read is atomic: no lock
        return item if item is not None else self._factory(key)

    def keep(self, key: str, item: T) -> None:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def keep_while(self, key: str, item: T, append: Callable[[], R]) -> R:
        """Keep ``item`` for the step just taken and ``append`` its events; if the append
        fails, forget ``item``: whether the step reached the log is unknown, so the next
        step is judged afresh (and a retried call is not refused)."""
        self.keep(key, item)
        try:
            return append()
        except Exception:
            with self._lock:
                self._items.pop(key, None)
            raise


def new_task_runs(limit: int = REMEMBERED) -> Registry[TaskRun]:
    return Registry(TaskRun, limit)


def new_periodic_tasks(limit: int = REMEMBERED) -> Registry[PeriodicTask]:
    return Registry(PeriodicTask, limit)
