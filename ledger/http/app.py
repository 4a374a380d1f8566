"""The HTTP API: ``create_app(settings)`` builds the FastAPI application, ``serve`` runs it.

Entry point only: routes translate and delegate (``routes``, ``sse``); backends are pooled
in ``resources``; auth, metrics and response models have their own modules. Errors keep
one shape: 422 is FastAPI's validation body naming the parameter, 401/404/503 are
``{"detail": "..."}``; a backend failure is a 503 naming the component, never a 500.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from ledger import __version__
from ledger.eventlog.base import EventLog, EventLogUnavailable
from ledger.http import failures, routes, series, sse, ui, workers, workflows
from ledger.http.auth import api_token, token_guard
from ledger.http.hub import Hub
from ledger.http.metrics import app_registry
from ledger.http.resources import Backends, BackendUnavailable
from ledger.projections.store import ViewReader, ViewStoreUnavailable
from ledger.settings import Settings

__all__ = ["CannotListen", "create_app", "listen", "serve"]

DESCRIPTION = """Read the ledger's views over HTTP: tasks (now or as of any past time), each
task's event timeline, the workflow a task belongs to (nodes and edges), counts by status,
periodic tasks, failure groups, workers, a Server-Sent Events stream of new events, health
and Prometheus metrics.

With `LEDGER_API_TOKEN` set, every endpoint but `/health`, `/docs` and `/openapi.json` needs
`Authorization: Bearer <token>`."""


def create_app(settings: Settings, *, reader: ViewReader | None = None, log: EventLog | None = None) -> FastAPI:
    """The application. ``reader`` and ``log``, when given, are used instead of building
    them from ``settings`` and are left open (their owner closes them)."""
    backends = Backends(settings, reader=reader, log=log)
    hub = Hub(
        lambda: backends.log,
        backends.codec,
        max_streams=settings.sse_max_streams,
        poll_timeout_ms=backends.sse_poll_timeout_ms,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        hub.shutdown()  # before the log it reads is closed
        backends.close()

    app = FastAPI(title="Task Ledger", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.backends = backends
    app.state.sse_hub = hub
    app.state.registry = app_registry(backends, hub)
    token = api_token(settings)
    guarded = [Depends(token_guard(token))] if token else []
    app.include_router(routes.health_router)
    app.include_router(routes.router, dependencies=guarded)
    app.include_router(sse.router, dependencies=guarded)
    app.include_router(failures.router, dependencies=guarded)
    app.include_router(series.router, dependencies=guarded)
    app.include_router(workflows.router, dependencies=guarded)
    app.include_router(workers.router, dependencies=guarded)
    ui.mount(app, token)
    app.add_exception_handler(BackendUnavailable, _unavailable)
    app.add_exception_handler(ViewStoreUnavailable, _unavailable)
    app.add_exception_handler(EventLogUnavailable, _unavailable)
    return app


async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})


class CannotListen(RuntimeError):
    """The address to serve on cannot be bound (in use, not local, not resolvable)."""


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, ready for uvicorn; ``CannotListen`` naming the
    address when it cannot be bound (uvicorn itself would log it and exit with status 3)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: restart over TIME_WAIT
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "the address is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
        raise CannotListen(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, *, sock: socket.socket | None = None) -> None:
    """Run the API under uvicorn until SIGINT/SIGTERM (what ``ledger serve`` calls), on
    ``sock`` if given (see ``listen``), else on ``host:port``. Open event streams get 5 s to
    finish on shutdown, then are cut; the process exits 0."""
    import signal
    from contextlib import nullcontext

    import uvicorn

    sock = sock or listen(host, port)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,  # keep the ledger's own logging (``ledger.logs``)
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal after its graceful shutdown (exit status -15); a stop
    # that was asked for is a clean exit here, so handle the signals ourselves
    server.capture_signals = nullcontext  # type: ignore[method-assign,assignment]
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, server.handle_exit)
    server.run(sockets=[sock])
