"""The dashboard's forms submit by plain GET, so their URLs can be shared: this middleware
turns what a form sends into the JSON API's parameters before the routes validate them.

- An empty field (``name=``) is a filter not set, not an empty name.
- The kwarg field holds ``key=value`` pairs separated by spaces (``user_id=42 flag=true``):
  each becomes the API's ``kwarg.<key>=<value>``; a pair without ``=`` is kept as given,
  so the API's rule names it (``kwarg.<pair>``: a key needs a value).
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["FormQuery", "normalise"]

PREFIX: Final = "/ui/"
KWARG_FIELD: Final = "kwarg"


def normalise(query: str) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if not value.strip():
            continue
        if key == KWARG_FIELD:
            for pair in value.split():
                name, sep, given = pair.partition("=")
                pairs.append((f"kwarg.{name}", given if sep else ""))
        else:
            pairs.append((key, value))
    return urlencode(pairs)


class FormQuery:
    """ASGI middleware: the dashboard's query strings normalised (``normalise``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX) and scope.get("query_string"):
            query = scope["query_string"].decode("latin-1")
            scope = {**scope, "query_string": normalise(query).encode("latin-1")}
        await self.app(scope, receive, send)
