"""``subscribe``: the status events of the ledger, for other Python services.

    from ledger.subscribe import subscribe

    for event in subscribe(group="billing-alerts", statuses=["FAILURE"], names=["billing.charge"]):
        alert(event.task_id, event.exc_message)   # saved once this body returns

Non-Python services read the topic directly: the JSON Schema (``ledger schema``) describes
each record's value and the CloudEvents headers (``ce_type``, ``ce_id``…) allow routing
without parsing it.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.bootstrap import build_subscriber
from ledger.consumers.subscriber import EventFilter, StartAt, Subscriber
from ledger.settings import Settings, load_settings


def subscribe(
    group: str | None,
    *,
    statuses: Iterable[str] = (),
    names: Iterable[str] = (),
    task_ids: Iterable[str] = (),
    start: StartAt = "stored",
    settings: Settings | None = None,
) -> Subscriber:
    """A subscriber for consumer group ``group``: resumes where the group left off
    (``start="stored"``; the end the first time), or starts at ``"beginning"``, ``"end"``,
    a ``datetime`` or explicit ``{partition: offset}`` positions. Iterate it for typed
    events, or call ``.run(handler)``."""
    wanted = EventFilter(statuses, names, task_ids)
    return build_subscriber(settings or load_settings(), group=group, start=start, wanted=wanted)
