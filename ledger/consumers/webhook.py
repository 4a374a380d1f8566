"""Posting a transition to a rule's webhook: the JSON body, or a Slack-compatible one.

The standard library's ``urllib`` does the POST: one request at a time from one loop needs
no connection pool, and httpx is only a test dependency here (adding a runtime dependency for
one POST was not worth it). Every request carries the transition's ``Idempotency-Key``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from ledger.domain.alert_rules import AlertRule
from ledger.domain.alerts import Transition

__all__ = ["IDEMPOTENCY_HEADER", "DeliveryFailed", "Post", "body", "post"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
TIMEOUT_S = 10.0


class DeliveryFailed(Exception):
    """The receiver did not take the notification (unreachable, timeout, a non-2xx answer)."""


Post = Callable[[str, bytes, dict[str, str]], None]
"""(url, body, headers): returns once the receiver answered 2xx, else ``DeliveryFailed``."""


def body(rule: AlertRule, transition: Transition) -> dict[str, Any]:
    """What the receiver gets: every field for ``format = "json"``, a ``text`` for Slack."""
    data = {
        "rule": transition.rule, "transition": transition.kind, "subject": transition.subject,
        "at": transition.at.isoformat(), "key": transition.key, "cause": transition.cause,
        "detail": transition.detail,
    }  # fmt: skip
    if rule.format == "json":
        return data
    mark = ":rotating_light:" if transition.kind == "fired" else ":white_check_mark:"
    facts = ", ".join(f"{k}={v}" for k, v in transition.detail.items() if v is not None)
    return {"text": f"{mark} {transition.rule} {transition.kind} for {transition.subject} ({facts})"}


def post(url: str, payload: bytes, headers: dict[str, str]) -> None:
    request = urllib.request.Request(url, data=payload, method="POST",
                                     headers={"Content-Type": "application/json", **headers})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"{url}: {reason}") from None


def encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True).encode()
