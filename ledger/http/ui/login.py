"""The token login: asked once, kept in an HttpOnly, SameSite=Strict cookie that the pages,
the JSON API and the event stream all accept (``ledger.http.auth``)."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ledger.http.auth import COOKIE, token_matches
from ledger.http.ui.site import render

__all__ = ["router"]

WEEK: Final = 7 * 24 * 3600


def _safe(back_to: str) -> str:
    """Only a path of the dashboard: never another site (an open redirect)."""
    return back_to if back_to.startswith("/ui/") and not back_to.startswith("//") else "/ui/"


def router(token: str | None) -> APIRouter:
    pages = APIRouter()

    @pages.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/ui/") -> Response:
        if token is None:  # no token configured: nothing to log in to
            return RedirectResponse(_safe(next), status_code=303)
        return render(request, "login.html", back_to=_safe(next), error=None)

    @pages.post("/login", response_class=HTMLResponse)
    def login(request: Request, given: Annotated[str, Form(alias="token")] = "",
              next: Annotated[str, Form()] = "/ui/") -> Response:  # fmt: skip
        if token is None:
            return RedirectResponse(_safe(next), status_code=303)
        if not token_matches(given, token):
            refused = render(request, "login.html", back_to=_safe(next), error="token: not the server's token")
            refused.status_code = 401
            return refused
        response = RedirectResponse(_safe(next), status_code=303)
        secure = request.url.scheme == "https"
        response.set_cookie(COOKIE, given, max_age=WEEK, httponly=True, samesite="strict", secure=secure, path="/")
        return response

    @pages.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return pages
