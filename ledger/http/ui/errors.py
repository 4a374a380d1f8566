"""Errors on the dashboard's pages as pages: a bad filter is a 422 naming the field and the
rule, an unknown task a 404, in the site's frame (the JSON API keeps its JSON bodies)."""

from __future__ import annotations

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ledger.http.ui.forms import PREFIX
from ledger.http.ui.site import render

__all__ = ["http_error", "invalid_input"]


def _page(request: Request, status: int, messages: list[str]) -> Response:
    response = render(request, "error.html", title=f"Error {status}", status=status, messages=messages)
    response.status_code = status
    return response


async def invalid_input(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not request.url.path.startswith(PREFIX):
        return await request_validation_exception_handler(request, exc)
    messages = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error.get("loc", ())[1:]) or "request"
        messages.append(f"{field}: {error.get('msg', 'invalid')}")
    return _page(request, 422, messages)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not request.url.path.startswith(PREFIX) or exc.status_code in (401, 303):
        return await http_exception_handler(request, exc)
    return _page(request, exc.status_code, [str(exc.detail)])
