"""Commands that read the log itself: tail (follow live), replay (a window), dlq."""

from __future__ import annotations

import threading
from typing import Annotated

import typer

from ledger.bootstrap import build_codec, build_event_log, build_subscriber
from ledger.cli.base import CliError, app, parse_identifier, parse_moment, run, settings
from ledger.consumers.deadletter import dead_letter_topic, original, read_dead_letter
from ledger.consumers.replay import replay as replay_window
from ledger.consumers.runner import install_stop_signals
from ledger.consumers.subscriber import EventFilter
from ledger.domain.events import AnyEvent, FailureGroupReopened, FailureGroupResolved, TaskEvent, WorkerEvent
from ledger.wire import EVENT_ADAPTER

dlq = typer.Typer(no_args_is_help=True, help="The dead-letter topic: records that could not be projected.")
app.add_typer(dlq, name="dlq")
Repeated = Annotated[list[str] | None, typer.Option()]


def line(event: AnyEvent, as_json: bool) -> str:
    """One event as one line: JSON (the wire envelope) or a human summary."""
    if as_json:
        return EVENT_ADAPTER.dump_json(event).decode()
    when = event.occurred_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(event, FailureGroupResolved):
        return f"{when} {event.type:<20} {event.fingerprint} {event.resolved_by or '-'}"
    if isinstance(event, FailureGroupReopened):
        return f"{when} {event.type:<20} {event.fingerprint} {event.reopened_by or '-'}"
    if isinstance(event, WorkerEvent):
        counts = f"active={_count(event.active)} processed={_count(event.processed)}"
        return f"{when} {event.type:<20} {event.hostname} {counts}"
    if not isinstance(event, TaskEvent):
        return f"{when} {event.type:<20} {event.name}"
    who = event.emitter.worker or event.emitter.host
    detail = getattr(event, "exc_type", None) or ""
    return f"{when} {event.type:<20} {event.task_id} {event.task_name or '-'} attempt={event.attempt} {who} {detail}"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


@app.command()
def tail(
    status: Repeated = None,
    name: Repeated = None,
    task_id: Repeated = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON event per line")] = False,
) -> None:
    """Follow new events live, filtered by status, task name or task id (Ctrl-C stops)."""

    def go() -> None:
        names = [parse_identifier(n, "--name") or n for n in name or ()]
        ids = [parse_identifier(t, "--task-id") or t for t in task_id or ()]
        wanted = EventFilter(status or (), names, ids)
        stop = threading.Event()
        install_stop_signals(stop)
        for delivery in build_subscriber(settings(), group=None, start="end", wanted=wanted).deliveries(stop):
            typer.echo(line(delivery.event, as_json))

    run(go)


@app.command()
def replay(
    since: Annotated[str | None, typer.Option(help="from this record time (ISO 8601 or e.g. 2h)")] = None,
    until: Annotated[str | None, typer.Option(help="up to this record time (exclusive)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON event per line")] = False,
) -> None:
    """Print the events of a window of the log (Kafka's offsets-for-times), oldest first per
    partition; without --since, from the beginning."""

    def go() -> None:
        config = settings()
        window = replay_window(
            build_event_log(config, create=False), build_codec(config),
            since=parse_moment(since, "--since") if since is not None else None,
            until=parse_moment(until, "--until") if until is not None else None,
        )  # fmt: skip
        for item in window:
            if item.event is not None:
                typer.echo(line(item.event, as_json))
            else:
                typer.echo(f"undecodable record {item.record.partition}:{item.record.offset}: {item.error}", err=True)

    run(go)


@dlq.command("list")
def dlq_list() -> None:
    """Every dead letter: where it came from and why it was refused."""

    def go() -> None:
        config = settings()
        for record in build_event_log(config, topic=dead_letter_topic(config.topic), create=False).read("beginning"):
            letter = read_dead_letter(record)
            typer.echo(f"{letter.topic}:{letter.partition}:{letter.offset}  {letter.reason}")

    run(go)


@dlq.command("replay")
def dlq_replay(
    partition: Annotated[int | None, typer.Option(help="only the letter from this partition…")] = None,
    offset: Annotated[int | None, typer.Option(help="…and this offset")] = None,
) -> None:
    """Append dead letters back onto the event topic (after fixing what refused them);
    a record still invalid comes back to the dead-letter topic, a valid duplicate is harmless."""

    def go() -> None:
        if (partition is None) != (offset is None):
            raise CliError("--partition and --offset go together")
        config = settings()
        dead = build_event_log(config, topic=dead_letter_topic(config.topic), create=False)
        letters = [read_dead_letter(r) for r in dead.read()]
        chosen = [d for d in letters if partition is None or (d.partition, d.offset) == (partition, offset)]
        if not chosen:
            raise CliError("no such dead letter" if partition is not None else "the dead-letter topic is empty")
        build_event_log(config).append([original(d) for d in chosen])
        typer.echo(f"replayed {len(chosen)} dead letter(s) onto {config.topic}")

    run(go)
