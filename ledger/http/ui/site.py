"""What every page shares: the templates and their filters, the static files, the login
guard of the pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import quote

from fastapi import Cookie, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from ledger.domain.statuses import TaskStatus
from ledger.http.auth import COOKIE, token_matches

__all__ = ["SPANS", "STATIC", "LoginRequired", "login_redirect", "page_guard", "render"]

HERE: Final = Path(__file__).parent
STATIC: Final = HERE / "static"
SPANS: Final[dict[str, timedelta]] = {
    "15m": timedelta(minutes=15), "1h": timedelta(hours=1), "6h": timedelta(hours=6),
    "24h": timedelta(days=1), "7d": timedelta(days=7),
}  # fmt: skip
"""The "last …" spans a page offers, by the name its URL carries; each page picks its own."""
NAV: Final = (("overview", "/ui/", "Overview"), ("tasks", "/ui/tasks", "Tasks"),
              ("workflows", "/ui/workflows", "Workflows"), ("failures", "/ui/failures", "Failures"),
              ("workers", "/ui/workers", "Workers"), ("periodic", "/ui/periodic", "Periodic tasks"),
              ("time", "/ui/time-travel", "Time travel"))  # fmt: skip


def when(value: datetime | None) -> str:
    """A time as the pages show it: UTC, to the millisecond."""
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def seconds(value: float | None) -> str:
    """A duration, short: 850 ms, 12.3 s, 4 min 05 s, 2 h 03 min."""
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{int(value // 60)} min {int(value % 60):02d} s"
    return f"{int(value // 3600)} h {int(value % 3600 // 60):02d} min"


def status_name(value: TaskStatus | str | None) -> str:
    return "" if value is None else value.value if isinstance(value, TaskStatus) else str(value)


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(when=when, seconds=seconds, status=status_name)
templates.env.globals.update(nav=NAV)


def render(request: Request, template: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, context)


class LoginRequired(Exception):
    """A page asked for without the token's cookie: the login page, then back to it."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


def page_guard(token: str) -> Callable[..., None]:
    """A page dependency: through with the cookie holding the token, else to the login."""

    def guard(request: Request, cookie: Annotated[str | None, Cookie(alias=COOKIE)] = None) -> None:
        if not token_matches(cookie, token):
            raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))

    return guard


async def login_redirect(_: Request, exc: Exception) -> Response:
    back_to = exc.back_to if isinstance(exc, LoginRequired) else "/ui/"
    return RedirectResponse(f"/ui/login?next={quote(back_to, safe='')}", status_code=303)
