"""Tracking the user's own work (``Ledger.track``, ``@Ledger.task``): STARTED when it
begins, then its real outcome — the returned value, the raised exception, or a ``Retry``.

A recording failure is logged and counted by the ledger (``Ledger.quietly``), never raised
into the user's code. The run in progress is a context variable (``current_run``), so a
task tracked inside another (in the same thread or asyncio task) records it as its parent
and shares its root: the workflow the views can draw. An ``async def`` is tracked when it
is awaited, so its result is the awaited value, not a coroutine object; a generator
function is refused at decoration: its body runs after the call returns, so no outcome
could be told.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from datetime import datetime
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast
from uuid import uuid4

if TYPE_CHECKING:
    from ledger.sdk import Ledger, Linkage

__all__ = ["Retry", "Run", "current_run", "tracked"]

P = ParamSpec("P")
R = TypeVar("R")


class Retry(Exception):
    """Raised by a tracked body to say "retry me": recorded as RETRY, then re-raised so the
    caller's retry machinery still runs."""

    def __init__(self, *, eta: datetime | None = None, countdown: float | None = None,
                 exc: BaseException | None = None) -> None:  # fmt: skip
        super().__init__(f"retry (eta={eta}, countdown={countdown}, exc={exc!r})")
        self.eta, self.countdown, self.exc = eta, countdown, exc


class Run:
    """One tracked execution (``Ledger.track``): set ``result`` before the block ends."""

    def __init__(self, ledger: Ledger, task_id: str, name: str | None, *, attempt: int | None = None,
                 args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None,
                 linkage: Linkage | None = None) -> None:  # fmt: skip
        self.ledger, self.task_id, self.name, self.attempt = ledger, task_id, name, attempt
        self.args, self.kwargs = args, kwargs
        self.linkage = cast("Linkage", dict(linkage or {}))
        self.result: Any = None
        self.runtime: float | None = None
        self._began = 0.0
        self._token: Token[Run | None] | None = None

    @property
    def root_id(self) -> str:
        """The root of this run's workflow: the one given or inherited, else itself."""
        return self.linkage.get("root_id") or self.task_id

    def __enter__(self) -> Run:
        parent = _current.get()
        if parent is not None and parent is not self and self.linkage.get("parent_id") is None:
            self.linkage["parent_id"] = parent.task_id
            self.linkage.setdefault("root_id", parent.root_id)
        self._token = _current.set(self)
        self.ledger.quietly(f"task {self.task_id!r} started", lambda: self.ledger.started(
            self.task_id, self.name, args=self.args, kwargs=self.kwargs, attempt=self.attempt,
            **self.linkage))  # fmt: skip
        self._began = perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        """Record the outcome; returning None lets the body's exception propagate as is."""
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        self.runtime = perf_counter() - self._began
        outcome = "succeeded" if exc is None else "retried" if isinstance(exc, Retry) else "failed"
        self.ledger.quietly(f"task {self.task_id!r} {outcome}", lambda: self._record(exc))

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:  # fmt: skip
        self.__exit__(kind, exc, tb)

    def _record(self, exc: BaseException | None) -> None:
        ledger, task_id, name, attempt = self.ledger, self.task_id, self.name, self.attempt
        if exc is None:
            ledger.succeeded(task_id, name, result=self.result, runtime=self.runtime, attempt=attempt)
        elif isinstance(exc, Retry):
            ledger.retried(task_id, name, exc=exc.exc, eta=exc.eta, countdown=exc.countdown, attempt=attempt)
        else:
            ledger.failed(task_id, name, exc=exc, runtime=self.runtime, attempt=attempt)


_current: ContextVar[Run | None] = ContextVar("ledger_current_run", default=None)


def current_run() -> Run | None:
    """The tracked run this code executes inside, if any."""
    return _current.get()


def tracked(ledger: Ledger, function: Callable[P, R], name: str | None) -> Callable[P, R]:
    """``function`` wrapped so each call is a tracked run (see ``Ledger.task``)."""
    if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
        raise TypeError(
            f"cannot track generator function {function.__qualname__!r}: its body runs after the call "
            "returns; track the code that consumes it (ledger.track) instead"
        )
    task_name = name or f"{function.__module__}.{function.__qualname__}"

    def begin(kwargs: dict[str, Any]) -> str:
        given = kwargs.pop("task_id", None)
        return str(uuid4()) if given is None else str(given)

    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def tracked_async(*args: Any, **kwargs: Any) -> Any:
            with ledger.track(begin(kwargs), task_name, args=args, kwargs=kwargs) as run:
                run.result = await function(*args, **kwargs)
            return run.result

        return cast(Callable[P, R], tracked_async)

    @functools.wraps(function)
    def tracked_sync(*args: P.args, **kwargs: P.kwargs) -> R:
        with ledger.track(begin(kwargs), task_name, args=args, kwargs=kwargs) as run:
            result = function(*args, **kwargs)
            run.result = result
        return result

    return tracked_sync
