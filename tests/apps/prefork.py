"""A Celery app for tests that need a real prefork worker (a separate process, its pool
children forked from it): the broker is Kombu's filesystem transport in the folder
``LEDGER_TEST_BROKER_DIR``, and every task is recorded with ``install(app)`` from the
``LEDGER_*`` environment, separately in each process, as the README advises for prefork.

    celery -A tests.apps.prefork worker -P prefork -c 1 -n crw@%h
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from celery import Celery
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

from ledger.contrib.celery import install


class AtomicChannel(filesystem.Channel):  # type: ignore[misc]
    """Kombu's filesystem channel, but a message file appears whole: it is written under a
    name the reader skips, then renamed. (Kombu's own writes in place and its reader does
    not wait for the writer's lock, so a worker can read a big message half-written.)"""

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        staged = os.path.join(self.data_folder_out, f".staged-{name}")
        with open(staged, "wb") as handle:
            handle.write(str_to_bytes(dumps(payload)))
        os.replace(staged, os.path.join(self.data_folder_out, name))


class AtomicFilesystemTransport(filesystem.Transport):  # type: ignore[misc]
    Channel = AtomicChannel


def make_app(broker_dir: Path) -> Celery:
    for folder in ("queue", "processed", "control"):
        (broker_dir / folder).mkdir(parents=True, exist_ok=True)
    app = Celery("prefork", broker="filesystem://", set_as_current=False)
    app.conf.broker_transport = "tests.apps.prefork:AtomicFilesystemTransport"
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
