"""``subscribe``: the status events of the ledger, for other Python services.

    from ledger.subscribe import subscribe

    with subscribe("billing-alerts", statuses=["FAILURE"], names=["billing.charge"]) as failures:
        for event in failures:
            alert(event.task_id, event.exc_message)   # the position is saved once this body ran

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
    save_every: int = 1,
    settings: Settings | None = None,
) -> Subscriber:
    """A subscriber for consumer group ``group``: resumes where the group left off
    (``start="stored"``; the end the first time), or starts at ``"beginning"``, ``"end"``,
    a ``datetime`` or explicit ``{partition: offset}`` positions (each time it starts).
    Iterate it for typed events, or call ``.run(handler)``; use it in a ``with`` block (or
    call ``.close()``) so it saves its positions and leaves the group when done.

    Each event's position is saved once its body (or handler) has run. ``save_every=N``
    saves once every N events instead (and before each poll), which is much faster on
    Kafka, at a price: a crash then delivers again up to N-1 events whose body had run."""
    wanted = EventFilter(statuses, names, task_ids)
    return build_subscriber(settings or load_settings(), group=group, start=start, wanted=wanted,
                            save_every=save_every)  # fmt: skip
