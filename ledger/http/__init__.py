"""The HTTP API (FastAPI): ``create_app(settings)`` and ``serve(settings, host, port)``."""

from ledger.http.app import create_app, serve

__all__ = ["create_app", "serve"]
