"""Celery's signals → the ledger's task events, for one app (see ``ledger.contrib.celery``).

Celery's signals are global: every app in the process sends them. Worker-side signals
name their app (the task, the consumer, the worker they come from); publishing signals do
not, so ``install`` wraps the app's ``send_task`` (every publish goes through it: delay,
apply_async, retries, canvas callbacks, beat) to mark the publishes that are this app's.

Every receiver records through ``Ledger.quietly``: a failure to record, or a signal shaped
unlike the Celery version this was written against, is logged and counted in the ledger's
``emit_errors``, and the task runs on as if nothing happened.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import datetime
from time import perf_counter
from typing import Any, Final
from weakref import WeakKeyDictionary

from celery import signals  # type: ignore[import-untyped]
from celery.utils.time import maybe_iso8601, maybe_make_aware  # type: ignore[import-untyped]

from ledger.contrib.celery_linkage import linkage
from ledger.contrib.celery_recorder import Recorder
from ledger.sdk import Ledger
from ledger.settings import Settings

__all__ = ["CeleryLedger", "install", "installed"]

_publishing: ContextVar[object | None] = ContextVar("ledger_celery_publishing", default=None)
_installed: WeakKeyDictionary[Any, CeleryLedger] = WeakKeyDictionary()
_REMEMBERED: Final = 10_000
"""Received tasks remembered per process (attempt and worker) for failures reported outside
the task (a hard time limit, a lost pool child), where the task's request is not at hand."""


def install(app: Any, ledger: Ledger | None = None, *, settings: Settings | None = None) -> CeleryLedger:
    """Record every task of ``app``: connect Celery's signals to ``ledger``.

    Without ``ledger``, one is built from ``settings``, else ``app.conf.ledger_settings``
    (a ``Settings`` or a mapping of its fields), else the ``LEDGER_*`` environment, and
    rebuilt in each forked process (prefork pool children). A given ``ledger`` is used as
    is in every process: under the prefork pool, prefer settings. Installing the same app
    again returns the first installation.
    """
    existing = _installed.get(app)
    if existing is not None:
        if ledger is None or existing.writes_to(ledger):
            return existing
        raise ValueError(f"app {app.main!r} is already recorded by another ledger: uninstall() it first")
    recorder = CeleryLedger(app, ledger, settings)
    recorder.connect()
    _installed[app] = recorder
    return recorder


def installed(app: Any) -> CeleryLedger | None:
    """The installation recording ``app``, if any."""
    return _installed.get(app)


class CeleryLedger(Recorder):
    """The signal receivers of one app, and the ledger they write to."""

    def __init__(self, app: Any, ledger: Ledger | None, settings: Settings | None) -> None:
        super().__init__(app, ledger, settings)
        self._began: dict[str, float] = {}
        self._received: dict[str, tuple[int, str | None]] = {}
        self._connected: list[tuple[Any, Callable[..., None]]] = []
        self._send_task: Any = None

    def uninstall(self) -> None:
        """Disconnect every receiver and unwrap ``send_task``; the ledger stays open."""
        for signal, receiver in self._connected:
            signal.disconnect(receiver)
        self._connected.clear()
        if self._send_task is not None and self.app.__dict__.get("send_task") is self._send_task:
            del self.app.send_task
        self._send_task = None
        if _installed.get(self.app) is self:
            del _installed[self.app]

    # -- wiring ---------------------------------------------------------------------------
    def connect(self) -> None:
        for signal, receiver in (
            (signals.before_task_publish, self._on_publish),
            (signals.task_received, self._on_received),
            (signals.task_prerun, self._on_prerun),
            (signals.task_success, self._on_success),
            (signals.task_failure, self._on_failure),
            (signals.task_retry, self._on_retry),
            (signals.task_revoked, self._on_revoked),
            (signals.task_postrun, self._on_postrun),
            (signals.worker_shutdown, self._on_worker_shutdown),
            (signals.worker_process_shutdown, self._on_process_shutdown),
        ):
            signal.connect(receiver, weak=False)
            self._connected.append((signal, receiver))
        self._mark_publishes()

    def _mark_publishes(self) -> None:
        """Wrap the app's ``send_task`` so ``before_task_publish`` can tell its publishes."""
        app, original = self.app, self.app.send_task

        def send_task(*args: Any, **kwargs: Any) -> Any:
            token = _publishing.set(app)
            try:
                return original(*args, **kwargs)
            finally:
                _publishing.reset(token)

        app.send_task = self._send_task = send_task

    def _mine(self, sender: Any) -> bool:
        return getattr(sender, "app", None) is self.app

    # -- receivers: one per signal --------------------------------------------------------
    def _on_publish(self, sender: Any = None, headers: Any = None, body: Any = None, **route: Any) -> None:
        if _publishing.get() is not self.app:
            return
        self.record(f"publish of {sender!r}", None, lambda w: self._pending(w, headers, body, route))

    def _pending(self, writer: Ledger, headers: Mapping[str, Any] | None, body: Any, route: Mapping[str, Any]) -> None:
        if isinstance(body, Mapping):  # task protocol 1: everything in the body
            fields, args, kwargs = body, body.get("args"), body.get("kwargs")
        else:  # protocol 2: (args, kwargs, embed), the rest in the headers
            args, kwargs, *rest = body
            embed = rest[0] if rest and isinstance(rest[0], Mapping) else {}
            fields = {**(headers or {}), **embed}
        name = fields.get("shadow") or fields.get("task")
        writer.pending(
            fields["id"],
            name,
            args=args,
            kwargs=kwargs,
            eta=self._eta(fields.get("eta")),
            attempt=fields.get("retries") or 0,
            **linkage(
                fields,
                exchange=route.get("exchange"),
                routing_key=route.get("routing_key"),
                declare=route.get("declare"),
                aware=self._eta,
            ),
        )

    def _on_received(self, sender: Any = None, request: Any = None, **_: Any) -> None:
        if not self._mine(sender):
            return
        attempt = request.request_dict.get("retries") or 0
        self._remember(request.id, attempt, request.hostname)
        placed = self._placed(request.request_dict, request.delivery_info)
        self.record(
            f"task {request.id!r} received",
            request.hostname,
            lambda w: w.received(
                request.id, request.name, args=request.args, kwargs=request.kwargs, eta=request.eta, attempt=attempt,
                **placed,
            ),
        )

    def _on_prerun(self, sender: Any = None, task_id: str = "", **_: Any) -> None:
        if not self._mine(sender):
            return
        self._began[task_id] = perf_counter()
        context = sender.request
        placed = self._placed(vars(context), context.delivery_info)  # eager runs have no RECEIVED
        self.record(
            f"task {task_id!r} started",
            context.hostname,
            lambda w: w.started(task_id, sender.name, attempt=context.retries or 0, **placed),
        )

    def _on_success(self, sender: Any = None, result: Any = None, runtime: float | None = None, **_: Any) -> None:
        if not self._mine(sender):
            return
        context = sender.request
        self.record(
            f"task {context.id!r} succeeded",
            context.hostname,
            lambda w: w.succeeded(
                context.id, sender.name, result=result, runtime=runtime, attempt=context.retries or 0
            ),
        )

    def _on_failure(self, sender: Any = None, task_id: str = "", exception: Any = None, **_: Any) -> None:
        if not self._mine(sender):
            return
        context = sender.request
        if context.id == task_id:
            attempt, hostname = context.retries or 0, context.hostname
        else:  # reported by the main process without the request (hard time limit): as received
            attempt, hostname = self._received.get(task_id, (0, None))
        began = self._began.get(task_id)
        runtime = perf_counter() - began if began is not None else None
        exc = exception if isinstance(exception, BaseException) else RuntimeError(repr(exception))
        self.record(
            f"task {task_id!r} failed",
            hostname,
            lambda w: w.failed(task_id, sender.name, exc=exc, runtime=runtime, attempt=attempt),
        )

    def _on_retry(self, sender: Any = None, request: Any = None, reason: Any = None, **_: Any) -> None:
        if not self._mine(sender):
            return
        when = getattr(reason, "when", None)
        eta = when if isinstance(when, datetime) else None
        countdown = float(when) if isinstance(when, int | float) else None
        cause = getattr(reason, "exc", None) or reason
        exc = cause if isinstance(cause, BaseException) else None
        self.record(
            f"task {request.id!r} retried",
            request.hostname,
            lambda w: w.retried(
                request.id, sender.name, exc=exc, eta=self._eta(eta), countdown=countdown, attempt=request.retries or 0
            ),
        )

    def _on_revoked(
        self,
        sender: Any = None,
        request: Any = None,
        terminated: bool = False,
        signum: Any = None,
        expired: bool = False,
        **_: Any,
    ) -> None:
        if not self._mine(sender):
            return
        reason = "expired" if expired else f"terminated by signal {signum}" if terminated else "revoked"
        self.record(
            f"task {request.id!r} revoked",
            request.hostname,
            lambda w: w.revoked(
                request.id, sender.name, reason=reason, terminated=bool(terminated), attempt=request.retries or 0
            ),
        )

    def _on_postrun(self, sender: Any = None, task_id: str = "", **_: Any) -> None:
        if self._mine(sender):
            self._began.pop(task_id, None)
            self._received.pop(task_id, None)

    def _on_worker_shutdown(self, sender: Any = None, **_: Any) -> None:
        if self._mine(sender):
            self.flush()

    def _on_process_shutdown(self, **_: Any) -> None:
        self.flush()  # a pool child: it names no app, and its appends in flight are ours

    # -- helpers --------------------------------------------------------------------------
    def _placed(self, fields: Mapping[str, Any], delivery: Mapping[str, Any] | None) -> dict[str, Any]:
        """A worker's request's linkage and routing (its ``delivery_info``)."""
        delivery = delivery or {}
        return linkage(fields, exchange=delivery.get("exchange"), routing_key=delivery.get("routing_key"),
                       aware=self._eta)  # fmt: skip

    def _remember(self, task_id: str, attempt: int, hostname: str | None) -> None:
        """The attempt and worker that received a task, for a failure the main process
        reports (a time limit, a lost child), where the task's own request is not at hand."""
        if len(self._received) >= _REMEMBERED:
            self._received.pop(next(iter(self._received)), None)
        self._received[task_id] = (attempt, hostname)

    def _eta(self, value: Any) -> datetime | None:
        """Celery's eta (an ISO string in messages, a datetime on requests) made aware the
        way Celery reads it: naive means the app's timezone."""
        if value is None:
            return None
        when = maybe_iso8601(value) if isinstance(value, str) else value
        aware: datetime = maybe_make_aware(when, self.app.timezone)
        return aware
