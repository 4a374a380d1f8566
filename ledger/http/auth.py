"""Optional bearer-token auth: on when the settings carry an ``api_token``.

The ledger's task data (arguments, results, tracebacks) can be sensitive, so an operator
exposing the API beyond localhost sets a token. ``/health`` stays open (load balancers and
orchestrators probe it without secrets), and so do ``/openapi.json`` and ``/docs``: they
describe the API, they hold no data. Tokens are compared in constant time.

The dashboard (``ledger.http.ui``) asks for the token once and keeps it in an HttpOnly,
SameSite=Strict cookie (``COOKIE``): a browser's EventSource cannot send a header, so every
guarded route takes the cookie as well as the header.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Cookie, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.settings import Settings

__all__ = ["COOKIE", "REALM", "api_token", "token_guard", "token_matches"]

REALM = "task-ledger"
COOKIE = "ledger_token"
_bearer = HTTPBearer(auto_error=False, description="the token in LEDGER_API_TOKEN")


def api_token(settings: Settings) -> str | None:
    """The configured token, or None when auth is off. The one place that reads it."""
    return settings.api_token.get_secret_value() or None if settings.api_token is not None else None


def _unauthorized(message: str, error: str | None) -> HTTPException:
    challenge = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": challenge})


def token_matches(given: str | None, token: str) -> bool:
    """Whether ``given`` is the token, in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def token_guard(token: str) -> Callable[..., None]:
    """A route dependency that lets a request through only with ``Authorization: Bearer
    <token>`` or the dashboard's cookie holding it."""

    def guard(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        cookie: Annotated[str | None, Cookie(alias=COOKIE, include_in_schema=False)] = None,
    ) -> None:
        if credentials is None:
            if token_matches(cookie, token):
                return
            raise _unauthorized("missing bearer token (Authorization: Bearer <token>)", None)
        if not token_matches(credentials.credentials, token):
            raise _unauthorized("invalid bearer token", "invalid_token")

    return guard
