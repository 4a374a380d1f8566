"""A captured stream of Celery's own events from three workers, as JSON lines for
``ledger import celery-events`` (the translator and the real projector, no shortcut):

- ``celery@busy`` beats up to a second before ``now``, with a 10-minute interval (it says
  so: ``freq``), so it is online for half an hour whatever the test's pace;
- ``celery@killed`` beat every 2 s until an hour before ``now``, then nothing: offline by
  missed heartbeats;
- ``celery@stopped`` said ``worker-offline`` five minutes before ``now``.

``busy`` and ``killed`` ran tasks (successes and failures) the views record as theirs.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from celery.events import Event

BUSY: Final = "celery@busy"
KILLED: Final = "celery@killed"
STOPPED: Final = "celery@stopped"
SOFTWARE: Final = {"sw_ident": "py-celery", "sw_ver": "5.7.0", "sw_sys": "Linux"}


def _worker(kind: str, hostname: str, at: datetime, **details: Any) -> dict[str, Any]:
    sent = {"freq": 2.0, "active": 0, "processed": 0, "loadavg": (0.1, 0.2, 0.3), **SOFTWARE, **details}
    return Event(kind, hostname=hostname, pid=4000 + len(hostname), timestamp=at.timestamp(), utcoffset=0,  # type: ignore[no-any-return]
                 **sent)  # fmt: skip


def _task(task_id: str, hostname: str, at: datetime, *, fails: bool) -> list[dict[str, Any]]:
    worker = {"hostname": hostname, "pid": 4000 + len(hostname)}
    t = at.timestamp()
    outcome = (Event("task-failed", uuid=task_id, exception="KeyError('sku')", traceback="Traceback…", timestamp=t + 2,
                     **worker) if fails else
               Event("task-succeeded", uuid=task_id, result="42", runtime=0.5, timestamp=t + 2, **worker))  # fmt: skip
    return [
        Event("task-sent", uuid=task_id, name="shop.sync", args="(1,)", kwargs="{}", retries=0, timestamp=t,
              hostname="web@api-1", pid=10),
        Event("task-received", uuid=task_id, name="shop.sync", args="(1,)", kwargs="{}", retries=0,
              timestamp=t + 0.5, **worker),
        Event("task-started", uuid=task_id, timestamp=t + 1, **worker),
        outcome,
    ]  # fmt: skip


def celery_events(now: datetime) -> list[dict[str, Any]]:
    killed_at = now - timedelta(hours=1)
    events = [_worker("worker-online", BUSY, now - timedelta(minutes=30), freq=600.0)]
    events += [_worker("worker-heartbeat", BUSY, now - timedelta(minutes=20 - 10 * i), freq=600.0, processed=10 * i,
                       active=i, loadavg=(1.5, 1.25, 1.0)) for i in range(2)]  # fmt: skip
    events.append(_worker("worker-heartbeat", BUSY, now - timedelta(seconds=1), freq=600.0, processed=25, active=2,
                          loadavg=(2.5, 1.75, 1.25)))  # fmt: skip
    events.append(_worker("worker-online", KILLED, killed_at - timedelta(minutes=1)))
    events += [_worker("worker-heartbeat", KILLED, killed_at - timedelta(seconds=2 * i), processed=30 - i, active=1)
               for i in range(30)]  # fmt: skip
    stopped_at = now - timedelta(minutes=5)
    events.append(_worker("worker-online", STOPPED, stopped_at - timedelta(minutes=10), sw_ver="5.6.2"))
    events.append(_worker("worker-heartbeat", STOPPED, stopped_at - timedelta(seconds=2), processed=3, sw_ver="5.6.2"))
    events.append(_worker("worker-offline", STOPPED, stopped_at, processed=3, sw_ver="5.6.2"))
    for i in range(12):
        events += _task(f"busy-{i:02d}", BUSY, now - timedelta(minutes=25 - i), fails=i % 4 == 0)
    for i in range(5):
        events += _task(f"killed-{i:02d}", KILLED, killed_at - timedelta(minutes=10 - i), fails=i == 4)
    return events


def captured(path: Path, now: datetime) -> Path:
    """The fleet's events at ``path``, one JSON event dict a line, as a monitor captured them."""
    path.write_text("".join(json.dumps(event) + "\n" for event in celery_events(now)))
    return path
