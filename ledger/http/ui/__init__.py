"""The dashboard: ``ledger serve`` serves it under ``/ui/`` (``/`` redirects there).

Server-rendered pages (Jinja2) reading through the same query layer as the JSON API, so a
page and its endpoint never disagree; htmx swaps fragments (filters, paging, live updates)
without a client-side application to build; uPlot draws charts from the API's aggregates
and dagre lays out workflow graphs. Those scripts come from npm (``ui/package.json``) into
``static/vendor`` at setup (``scripts/dev``): nothing is fetched at run time.

One module per page (``overview``, ``tasks``, …), the shared frame in ``site``, the login
in ``login``; ``mount`` wires them into the application.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.http.ui import failures, login, overview, periodic, task, tasks, time_travel, workers, workflows
from ledger.http.ui.errors import http_error, invalid_input
from ledger.http.ui.forms import FormQuery
from ledger.http.ui.site import STATIC, LoginRequired, login_redirect, page_guard

__all__ = ["mount"]

PAGES = (overview.router, tasks.router, task.router,  # /tasks/rows before /tasks/{task_id}
         workflows.router, failures.router, workers.router, periodic.router, time_travel.router)  # fmt: skip


def mount(app: FastAPI, token: str | None) -> None:
    """Add the dashboard to ``app``: its pages (behind the login when ``token`` is set), its
    static files (no data: open), and ``/`` → ``/ui/``."""
    guarded = [Depends(page_guard(token))] if token else []
    for router in PAGES:
        app.include_router(router, prefix="/ui", dependencies=guarded, include_in_schema=False)
    app.include_router(login.router(token), prefix="/ui", include_in_schema=False)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.add_exception_handler(LoginRequired, login_redirect)
    app.add_exception_handler(RequestValidationError, invalid_input)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(FormQuery)
    app.add_api_route("/", lambda: RedirectResponse("/ui/", status_code=307), include_in_schema=False)
