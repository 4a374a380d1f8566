"""A user's Celery application, found the way ``celery -A`` finds it: for the commands that
read what the app is configured with (its broker, its result backend) rather than run in it."""

from __future__ import annotations

from typing import Any

__all__ = ["load_app"]


def load_app(spec: str) -> Any:
    """The Celery app ``spec`` names (``proj``, ``proj.celery``, ``proj.celery:app``);
    ``ValueError`` naming ``--app`` when Celery is missing or the app cannot be loaded."""
    try:
        from celery import Celery  # type: ignore[import-untyped]
        from celery.app.utils import find_app  # type: ignore[import-untyped]
    except ImportError:
        raise ValueError("--app: Celery is not installed (pip install 'task-ledger[celery]')") from None
    try:
        app = find_app(spec)
    except Exception as exc:  # importing the user's module: anything it raises is the answer
        raise ValueError(f"--app: cannot load the Celery application {spec!r}: {exc}") from None
    if not isinstance(app, Celery):
        raise ValueError(f"--app: {spec!r} is a {type(app).__name__}, not a Celery application")
    return app
