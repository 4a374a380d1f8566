"""Alert rules: what an operator writes in ``alerts.toml``, validated at the boundary.

    [[rule]]
    name = "charge-failures"     # unique; names the alert in every notification
    when = "status"              # a task of `task` reaches `status`; resolves when it leaves it
    task = "billing.*"           # shell-style pattern on the task name ("*": every task)
    status = "FAILURE"
    webhook = "http://127.0.0.1:9000/alerts"
    format = "json"              # or "slack": a Slack-compatible {"text": …} body

    [[rule]]
    name = "many-failures"
    when = "count"               # at least `threshold` matching events within `window`
    status = "FAILURE"           # fires when reached, resolves when the count falls below
    threshold = 5
    window = "10m"
    webhook = "http://127.0.0.1:9000/alerts"

    [[rule]]
    name = "stuck"
    when = "stuck"               # a task not finished `after` its last transition
    after = "15m"
    webhook = "http://127.0.0.1:9000/alerts"

    [[rule]]
    name = "new-cause"
    when = "failure-group"       # per failure group (domain.failures' fingerprint)
    task = "billing.*"           # groups of these tasks; or `fingerprint = "…"`: one group
    threshold = 1                # failures of one group (default 1) …
    window = "1h"                # … within this window (optional: see FailureGroupRule)
    webhook = "http://127.0.0.1:9000/alerts"

Every error is one line naming the rule and the field.
"""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from ledger.domain.failures import is_fingerprint
from ledger.domain.statuses import TaskStatus, parse_status

__all__ = ["AlertRule", "CountRule", "FailureGroupRule", "RulesError", "StatusRule", "StuckRule", "parse_rules"]
KINDS = ("status", "count", "stuck", "failure-group")
"""The values of ``when``."""

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class RulesError(ValueError):
    """A rules file that cannot be used: one line naming the rule and the field."""


def _duration(value: object) -> timedelta:
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a duration like 90s, 15m, 1h or 2d")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= 366 * 86400:
        raise ValueError(f"{value!r} must be above 0 and at most 366d")
    return timedelta(seconds=seconds)


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
    task: Annotated[str, Field(min_length=1, max_length=255)] = "*"
    webhook: Annotated[str, Field(pattern=r"^https?://[^\s/]+")]
    format: Literal["json", "slack"] = "json"


class _OnStatus(_Rule):
    status: TaskStatus

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: object) -> TaskStatus:
        try:
            return parse_status(str(value))
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix("status: ")) from None


class StatusRule(_OnStatus):
    when: Literal["status"]


class CountRule(_OnStatus):
    when: Literal["count"]
    threshold: Annotated[int, Field(ge=1, le=100_000)]
    window: timedelta

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: object) -> timedelta:
        return _duration(value)


class StuckRule(_Rule):
    when: Literal["stuck"]
    after: timedelta

    @field_validator("after", mode="before")
    @classmethod
    def _after(cls, value: object) -> timedelta:
        return _duration(value)


class FailureGroupRule(_Rule):
    """Per failure group (its fingerprint), of the tasks ``task`` matches (or the one group
    ``fingerprint``): fires when the group has ``threshold`` failures after its latest
    resolution, within ``window`` if given. Resolves when an operator resolves the group
    (``failures.resolved``), or once the window holds fewer than ``threshold``. So with the
    defaults it fires on a new root cause and again each time a resolved one reopens."""

    when: Literal["failure-group"]
    fingerprint: str | None = None
    threshold: Annotated[int, Field(ge=1, le=100_000)] = 1
    window: timedelta | None = None

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is not None and not is_fingerprint(value):
            raise ValueError(f"{value!r} is not a fingerprint (16 lowercase hex digits, as `ledger failures` shows)")
        return value

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: object) -> timedelta | None:
        return None if value is None else _duration(value)


AlertRule = Annotated[StatusRule | CountRule | StuckRule | FailureGroupRule, Field(discriminator="when")]
_RULE: TypeAdapter[AlertRule] = TypeAdapter(AlertRule)


def parse_rules(text: str) -> tuple[AlertRule, ...]:
    """The rules of a TOML document (``[[rule]]`` tables), or ``RulesError``."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"not valid TOML: {exc}") from None
    unknown = set(document) - {"rule"}
    if unknown:
        raise RulesError(f"{sorted(unknown)[0]}: unknown table (rules are [[rule]] tables)")
    tables = document.get("rule")
    if not isinstance(tables, list) or not tables:
        raise RulesError("rule: no [[rule]] table: a rules file needs at least one rule")
    rules = [_rule(i, table) for i, table in enumerate(tables)]
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.name in seen:
            raise RulesError(f"rule[{i}] ({rule.name}).name: used by an earlier rule: names must be unique")
        seen.add(rule.name)
    return tuple(rules)


def _rule(index: int, table: object) -> AlertRule:
    name = table.get("name") if isinstance(table, dict) else None
    where = f"rule[{index}]" + (f" ({name})" if isinstance(name, str) else "")
    try:
        return _RULE.validate_python(table)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(part) for part in error["loc"]]
        if len(loc) > 1 and loc[0] in KINDS:
            loc = loc[1:]  # the discriminator's tag, not a field
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
            loc, message = ["when"], f"must be one of {', '.join(KINDS)}"
        raise RulesError(f"{where}.{'.'.join(loc)}: {message}") from None
