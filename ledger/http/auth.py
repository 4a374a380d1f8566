"""Optional bearer-token auth: on when the settings carry an ``api_token``.

The ledger's task data (arguments, results, tracebacks) can be sensitive, so an operator
exposing the API beyond localhost sets a token. ``/health`` stays open (load balancers and
orchestrators probe it without secrets), and so do ``/openapi.json`` and ``/docs``: they
describe the API, they hold no data. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.settings import Settings

__all__ = ["REALM", "api_token", "token_guard"]

REALM = "task-ledger"
_bearer = HTTPBearer(auto_error=False, description="the token in LEDGER_API_TOKEN")


def api_token(settings: Settings) -> str | None:
    """The configured token, or None when auth is off. The one place that reads it."""
    return settings.api_token.get_secret_value() or None if settings.api_token is not None else None


def _unauthorized(message: str, error: str | None) -> HTTPException:
    challenge = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": challenge})


def token_guard(token: str) -> Callable[[HTTPAuthorizationCredentials | None], None]:
    """A route dependency that lets a request through only with ``Authorization: Bearer
    <token>``."""
    expected = token.encode()

    def guard(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if credentials is None:
            raise _unauthorized("missing bearer token (Authorization: Bearer <token>)", None)
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise _unauthorized("invalid bearer token", "invalid_token")

    return guard
