"""``tests.apps.plain`` with ``install(app)``: the same tasks recorded by the app itself
(from the ``LEDGER_*`` environment, rebuilt in each prefork child, as the README advises)
while its worker's events (``-E``) reach ``ledger ingest celery`` too: both routes at once.

    celery -A tests.apps.installed worker -P prefork -c 2 -E
"""

from __future__ import annotations

from ledger.contrib.celery import install
from tests.apps.plain import app

__all__ = ["app"]

install(app)
