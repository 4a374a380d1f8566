"""Where a Celery task stands in its workflow and how it was routed, read from a message.

The same fields reach the ledger twice: at publish time from the message's headers (task
protocol 2: ``root_id``, ``parent_id``, ``group``, ``expires``) and its embed (``chord``: the
callback signature a chord's header tasks feed), with the exchange, routing key and queue
``before_task_publish`` names; on the worker from the request, whose fields merge the same
headers and embed, and from its ``delivery_info``. A protocol 1 message keeps them in its
body (``taskset`` for the group). Celery's own events (``task-sent``, ``task-received``)
carry the root, parent, expiry and routing, not the group. Pure translation: no Celery
import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

__all__ = ["linkage", "queue_of"]


def linkage(
    fields: Mapping[str, Any],
    *,
    exchange: Any = None,
    routing_key: Any = None,
    queue: Any = None,
    declare: Sequence[Any] | None = None,
    aware: Callable[[Any], datetime | None],
) -> dict[str, Any]:
    """The ``Linkage`` of a message's fields (headers merged with the embed, a worker's
    request, or a Celery event): ids as text, ``expires`` made aware by ``aware``, the
    ``queue`` given or told from the rest; an absent field is None."""
    return {
        "root_id": _text(fields.get("root_id")),
        "parent_id": _text(fields.get("parent_id")),
        "group_id": _text(fields.get("group") or fields.get("taskset")),
        "callback_id": _callback_id(fields.get("chord")),
        "queue": _text(queue) or queue_of(exchange, routing_key, declare),
        "exchange": exchange if isinstance(exchange, str) else None,  # "": the default exchange
        "routing_key": _text(routing_key),
        "expires": aware(fields.get("expires")),
    }


def queue_of(exchange: Any, routing_key: Any, declare: Sequence[Any] | None = None) -> str | None:
    """The queue a message went to, where it can be told: the one declared for it, else
    Celery's own rule (``Task.signature_from_request``): sent to the anonymous exchange,
    the routing key is the queue's name."""
    for declared in declare or ():
        name = getattr(declared, "name", None)
        if isinstance(name, str) and name:
            return name
    return _text(routing_key) if exchange == "" else None


def _callback_id(chord: Any) -> str | None:
    """The task id of a chord's callback signature (a mapping with ``options.task_id``).
    A callback that is a chain (``group | a | b`` makes a chord whose body is ``a | b``)
    runs its first task first: that one is the callback (a chain's own id is its last)."""
    if not isinstance(chord, Mapping):
        return None
    tasks = chord.get("kwargs", {}).get("tasks") if chord.get("subtask_type") == "chain" else None
    if isinstance(tasks, Sequence) and tasks:
        return _callback_id(tasks[0])
    options = chord.get("options")
    return _text(options.get("task_id")) if isinstance(options, Mapping) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
