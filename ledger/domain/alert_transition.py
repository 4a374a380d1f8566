"""What an alert rule's evaluation emits: a rule fired or resolved for a subject.

Apart from the evaluator (``domain.alerts``) and the per-kind state machines, so each rule
kind's machine can live in its own module and every one builds the same ``Transition``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["Detail", "Transition", "moment"]

Detail = dict[str, str | int | float | None]


@dataclass(frozen=True, slots=True)
class Transition:
    """A rule fired or resolved for ``subject`` (a task id; a fingerprint for a failure group;
    the rule's name for a count), caused by the event read at ``cause`` ("partition:offset"),
    at the log's time ``at``."""

    rule: str
    kind: Literal["fired", "resolved"]
    subject: str
    at: datetime
    cause: str
    detail: Detail = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The idempotency key: the same transition from the same event gives the same key."""
        text = "\x00".join((self.rule, self.kind, self.subject, self.cause))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def as_data(self) -> dict[str, Any]:
        return {"rule": self.rule, "kind": self.kind, "subject": self.subject, "at": self.at.isoformat(),
                "cause": self.cause, "detail": dict(self.detail)}  # fmt: skip

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Transition:
        kind: Literal["fired", "resolved"] = "fired" if data["kind"] == "fired" else "resolved"
        return cls(data["rule"], kind, data["subject"], datetime.fromisoformat(data["at"]), data["cause"],
                   dict(data["detail"]))  # fmt: skip


def moment(seconds: float) -> datetime:
    """The log's clock (POSIX seconds) as an aware datetime."""
    return datetime.fromtimestamp(seconds, UTC)
