"""What the HTTP routes read from: pooled view readers, one event log.

Sync routes run in FastAPI's thread pool, and a reader holds ONE database connection that
psycopg2 forbids sharing between threads, so each request borrows a reader of its own from
a small pool (an injected reader is shared under the same rule: one borrower at a time).
Backends are opened lazily, so a server started while Kafka or PostgreSQL is down still
starts, answers ``/health`` with 503, and recovers when they return.

Every backend call runs inside ``backend_errors``: whatever a driver raises becomes
``BackendUnavailable`` (a 503 naming the component), never a 500.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from ledger import bootstrap
from ledger.codec import Codec
from ledger.eventlog.base import EventLog
from ledger.projections.queries import TaskQueries
from ledger.projections.store import ViewReader
from ledger.settings import Settings

__all__ = ["BackendUnavailable", "Backends", "BackendsDep", "Pool", "backend_errors"]

log = logging.getLogger(__name__)
T = TypeVar("T")
POOL_SIZE = 8
BORROW_TIMEOUT_S = 30.0


class BackendUnavailable(RuntimeError):
    """A backend failed while serving a request; ``component`` is what the client is told."""

    def __init__(self, component: str, reason: str) -> None:
        super().__init__(f"{component}: {reason}")
        self.component = component


@contextmanager
def backend_errors(component: str) -> Iterator[None]:
    try:
        yield
    except (BackendUnavailable, HTTPException, RequestValidationError):
        raise
    except Exception as exc:
        log.warning("backend call failed", extra={"component": component, "error": repr(exc)})
        raise BackendUnavailable(component, f"{type(exc).__name__}: {exc}".strip()) from exc


class Pool(Generic[T]):
    """At most ``size`` objects, each used by one thread at a time. An object whose use
    raised is closed and replaced (its connection may be broken), unless the pool does not
    own it (``close`` is None)."""

    def __init__(self, factory: Callable[[], T], *, size: int, close: Callable[[T], None] | None) -> None:
        self._factory, self._close = factory, close
        self._idle: list[T] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._size = size

    @classmethod
    def shared(cls, item: T) -> Pool[T]:
        """One object the caller owns (an injected reader), lent to one thread at a time."""
        return cls(lambda: item, size=1, close=None)

    @contextmanager
    def borrow(self, component: str) -> Iterator[T]:
        if not self._slots.acquire(timeout=BORROW_TIMEOUT_S):
            raise BackendUnavailable(component, f"all {self._size} connections busy for {BORROW_TIMEOUT_S:g}s")
        try:
            with self._lock:
                item = self._idle.pop() if self._idle else None
            if item is None:
                with backend_errors(component):
                    item = self._factory()
            try:
                yield item
            except BaseException:
                self._discard(item)
                raise
            with self._lock:
                self._idle.append(item)
        finally:
            self._slots.release()

    def _discard(self, item: T) -> None:
        if self._close is None:
            with self._lock:
                self._idle.append(item)
            return
        try:
            self._close(item)
        except Exception as exc:  # closing a broken connection may fail too; it is gone anyway
            log.debug("closing a discarded connection failed", extra={"error": repr(exc)})

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        if self._close is not None:
            for item in idle:
                self._close(item)


class Backends:
    """The objects one app serves from; owned ones are closed by ``close``."""

    def __init__(self, settings: Settings, *, reader: ViewReader | None = None, log: EventLog | None = None) -> None:
        self.settings = settings
        self.codec: Codec = bootstrap.build_codec(settings)
        self._views: Pool[ViewReader] = (
            Pool.shared(reader)
            if reader is not None
            else Pool(lambda: bootstrap.build_view_reader(settings), size=POOL_SIZE, close=lambda r: r.close())
        )
        self._log, self._owns_log = log, log is None
        self._log_lock = threading.Lock()
        self.sse_keepalive_s = settings.sse_keepalive_seconds
        self.sse_poll_timeout_ms = min(settings.consumer_poll_timeout_ms, 500)

    @contextmanager
    def views(self) -> Iterator[ViewReader]:
        """A reader of the views: current rows, history and time travel."""
        with self._views.borrow("views") as reader, backend_errors("views"):
            yield reader

    @contextmanager
    def queries(self) -> Iterator[TaskQueries]:
        with self.views() as reader:
            yield bootstrap.build_queries(self.settings, reader)

    @property
    def log(self) -> EventLog:
        """The event log, opened on first use (and again after a failed open). Both adapters
        are safe to share between threads; each subscription gets its own reader."""
        with self._log_lock, backend_errors("event_log"):
            if self._log is None:
                self._log = bootstrap.build_event_log(self.settings)
            return self._log

    def close(self) -> None:
        self._views.close()
        with self._log_lock:
            if self._owns_log and self._log is not None:
                self._log.close()
                self._log = None


def _backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


BackendsDep = Annotated[Backends, Depends(_backends)]
"""What a route declares to be handed the app's backends."""
