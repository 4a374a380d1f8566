"""A Celery app for tests that need a real prefork worker (a separate process, its pool
children forked from it): the broker is Kombu's filesystem transport in the folder
``LEDGER_TEST_BROKER_DIR``, and every task is recorded with ``install(app)`` from the
``LEDGER_*`` environment, separately in each process, as the README advises for prefork.

    celery -A tests.apps.prefork worker -P prefork -c 1 -n crw@%h
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import Celery

from ledger.contrib.celery import install


def make_app(broker_dir: Path) -> Celery:
    for folder in ("queue", "processed", "control"):
        (broker_dir / folder).mkdir(parents=True, exist_ok=True)
    app = Celery("prefork", broker="filesystem://", set_as_current=False)
    app.conf.broker_transport_options = {
        "data_folder_in": str(broker_dir / "queue"),
        "data_folder_out": str(broker_dir / "queue"),
        "processed_folder": str(broker_dir / "processed"),
        "control_folder": str(broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.05,
    }
    app.conf.worker_hijack_root_logger = False

    @app.task(name="prefork.measure")
    def measure(blob: str) -> int:
        return len(blob)

    @app.task(name="prefork.stall", time_limit=1)
    def stall(seconds: float) -> None:
        time.sleep(seconds)

    install(app)
    return app


app = make_app(Path(os.environ.get("LEDGER_TEST_BROKER_DIR", "/tmp/ledger-test-broker")))
