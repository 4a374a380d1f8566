"""``ledger alerts run | test | status``: rules from a TOML file, evaluated over the log."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger.bootstrap import build_codec, build_event_log, build_subscriber
from ledger.cli.base import CliError, announce, app, parse_moment, run, settings
from ledger.domain.alert_rules import AlertRule, RulesError, parse_rules
from ledger.settings import Settings

alerts = typer.Typer(no_args_is_help=True, help="Alerts on what the log says: rules posting webhooks.")
app.add_typer(alerts, name="alerts")
RulesFile = Annotated[Path, typer.Option("--rules", help="the rules file (TOML, [[rule]] tables)")]
Group = Annotated[str, typer.Option(help="the runner's consumer group: its stored position and state file")]
SAVE_EVERY = "save state and position once per N events; a crash may repost up to N events' notifications"
StateFile = Annotated[Path | None, typer.Option("--state", help="the state file (default: data dir/alerts/GROUP.json)")]


def load_rules(path: Path) -> tuple[AlertRule, ...]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CliError(f"--rules: cannot read {str(path)!r}: {exc.strerror}") from None
    try:
        return parse_rules(text)
    except RulesError as exc:
        raise CliError(f"--rules {path}: {exc}") from None


def state_path(config: Settings, group: str, state: Path | None) -> Path:
    return state if state is not None else config.data_dir / "alerts" / f"{group}.json"


@alerts.command("run")
def alerts_run(
    rules: RulesFile,
    group: Group = "ledger-alerts",
    state: StateFile = None,
    from_beginning: Annotated[bool, typer.Option(help="the first time (no state yet): read the log from 0")] = False,
    save_every: Annotated[int, typer.Option(min=1, max=10_000, help=SAVE_EVERY)] = 100,
) -> None:
    """Evaluate the rules over new events and post each transition (SIGTERM stops it cleanly;
    a restart resumes from the stored position, missing nothing)."""
    from ledger.consumers.alerts import AlertRunner, AlertState
    from ledger.consumers.runner import install_stop_signals
    from ledger.consumers.webhook import post

    def go() -> None:
        loaded, config = load_rules(rules), settings()
        stored = AlertState(state_path(config, group, state))
        start = "beginning" if from_beginning and not stored.positions else "stored"
        announce("alerts run", config, f" ({len(loaded)} rules, group {group}, state {stored.path})")
        stop = threading.Event()
        install_stop_signals(stop)
        subscriber = build_subscriber(config, group=group, start=start, save_every=save_every)
        result = AlertRunner(loaded, subscriber, stored, post).run(stop)
        typer.echo(f"ledger alerts run: stopped after {result.events} events, {result.delivered} notifications",
                   err=True)  # fmt: skip

    run(go)


@alerts.command("test")
def alerts_test(
    rules: RulesFile,
    since: Annotated[str | None, typer.Option(help="from this record time (ISO 8601 or e.g. 2h); default all")] = None,
) -> None:
    """Check the rules file, then show what the rules would have posted over the log's
    history (nothing is posted, no position is saved)."""
    from ledger.consumers.replay import replay
    from ledger.domain.alerts import Evaluator

    def go() -> None:
        loaded, config = load_rules(rules), settings()
        typer.echo(f"{rules}: {len(loaded)} rules OK: {', '.join(r.name for r in loaded)}")
        evaluator, shown = Evaluator(loaded), 0
        window = replay(build_event_log(config, create=False), build_codec(config),
                        since=parse_moment(since, "--since") if since is not None else None)  # fmt: skip
        for item in window:
            if item.event is None:
                continue
            for t in evaluator.feed(item.event, f"{item.record.partition}:{item.record.offset}"):
                shown += 1
                typer.echo(f"{t.at.isoformat()} {t.rule} {t.kind} {t.subject} key={t.key}")
        typer.echo(f"{shown} transitions would have been posted")

    run(go)


@alerts.command("status")
def alerts_status(
    group: Group = "ledger-alerts",
    state: StateFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="the delivery record as JSON")] = False,
) -> None:
    """Deliveries of a runner: totals, the notification being retried (and why), the latest."""
    from ledger.consumers.alerts import AlertState

    def go() -> None:
        path = state_path(settings(), group, state)
        if not path.exists():
            raise CliError(f"--state: no alert runner state at {path} (has `ledger alerts run` run for {group}?)")
        stored = AlertState(path)
        record: dict[str, Any] = stored.deliveries
        positions = {str(p): o for p, o in sorted(stored.positions.items())}
        if as_json:
            typer.echo(json.dumps({**record, "positions": positions}))
            return
        typer.echo(f"delivered {record['delivered']}, failed attempts {record['failed_attempts']}, "
                   f"next offsets {positions}")  # fmt: skip
        pending = record["pending"]
        if pending:
            typer.echo(f"RETRYING {pending['rule']} {pending['transition']} {pending['subject']} "
                       f"attempt {pending['attempts']}: {pending['error']}")  # fmt: skip
        for entry in record["recent"][-10:]:
            typer.echo(f"{entry['at']} {entry['rule']} {entry['transition']} {entry['subject']} key={entry['key']}")

    run(go)
