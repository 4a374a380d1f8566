"""``python -m bench [--events N]``: every row of the benchmark in one run, each next to its
raw baseline; prints the table and writes ``bench/results/bench-<UTC time>.json``.

Needs the real services (``LEDGER_BACKEND=kafka+postgres``, and RabbitMQ for the ingest row):
``scripts/dev bench`` starts them and exports the settings. Everything happens on this run's own topics and schemas,
which are removed at the end.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console

from bench import report
from bench.baselines import consume_raw, copy_raw
from bench.children import Child
from bench.dashboard import measure_tasks_page
from bench.data import RawRecord, SizeStats
from bench.emit_rules import measure_emit_rules
from bench.failures import measure_failures
from bench.ingest import measure_ingest
from bench.late import measure_late
from bench.latency import measure_latency
from bench.machine import machine_info
from bench.members import measure_members
from bench.peer import measure_celery_state
from bench.produce import confluent_installed, produce_confluent, produce_kafka_python, produce_ledger
from bench.query import measure_queries
from bench.quiet import wait_until_quiet
from bench.runctx import BenchRun, bench_run
from bench.search import measure_search
from bench.trends import measure_series
from bench.verify import check_exactly_once, differing_tables, views_digest
from bench.workflow import measure_workflow
from ledger.bootstrap import build_event_log, build_view_writer
from ledger.consumers.celery_broker import SCHEMES, check_broker_url, redact
from ledger.settings import Backend, SettingsError, load_settings

SKIPPABLE = ("series", "latency", "failure groups", "query", "search", "tasks page", "workflow", "in-memory peer",
             "emit rules", "ingest", "project late")
"""Rows that nothing else needs: produce, project and replay make the data the others read."""
STANDALONE = ("latency", "emit rules", "ingest", "project late")
"""Rows that read none of that data: ``--only`` runs them without it (minutes, not a quarter hour)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to produce, project and replay")
    parser.add_argument("--latency-rate", type=int, default=1000, help="events/s of the latency phase")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument(
        "--latency-batch-wait-ms",
        type=int,
        default=20,
        help="also measure latency with this projector batch wait (-1: skip)",
    )
    parser.add_argument("--latency-fast-rate", type=int, default=5000,
                        help="also measure latency at this rate, default settings (0: skip)")
    parser.add_argument("--project-processes", type=int, default=os.cpu_count() or 1,
                        help="also project the backlog with ledger project --processes N (default: the cores; 1: skip)")
    parser.add_argument("--query-rows", type=int, default=1_000_000, help="task_meta rows for the query phase")
    parser.add_argument("--no-confluent", action="store_true", help="skip the confluent-kafka baseline")
    parser.add_argument("--rules-tasks", type=int, default=20_000, help="tasks of the emit-rules phase")
    parser.add_argument("--output", default=None, help="directory of the JSON result (default bench/results)")
    parser.add_argument("--workflow-tasks", type=int, default=10_001, help="tasks of the workflow row (a chord)")
    parser.add_argument("--ingest-events", type=int, default=200_000,
                        help="Celery events of the ingest row (a pre-filled RabbitMQ queue)")
    parser.add_argument("--late-events", type=int, default=200_000,
                        help="events of the project late row (projected twice: in order and 30 %% out of place)")
    parser.add_argument("--rabbitmq", default=os.environ.get("LEDGER_RABBITMQ_URL"),
                        help="the RabbitMQ of the ingest row (default LEDGER_RABBITMQ_URL, from scripts/services env)")
    parser.add_argument("--settle-s", type=float, default=120.0,
                        help="wait up to this long for the machine's load to settle before starting")
    parser.add_argument("--only", default="", help=f"comma-separated rows to run alone, of: {', '.join(STANDALONE)} "
                        "(no produce, project or replay)")
    parser.add_argument("--skip", default="", help=f"comma-separated rows to leave out, of: {', '.join(SKIPPABLE)}")
    args = parser.parse_args(argv)
    if args.events < 100:
        parser.error("--events: at least 100")
    if args.workflow_tasks < 3:
        parser.error("--workflow-tasks: at least 3 (two members and the callback)")
    args.skip = sorted({name.strip() for name in args.skip.split(",") if name.strip()})
    if unknown := set(args.skip) - set(SKIPPABLE):
        parser.error(f"--skip: unknown row {sorted(unknown)[0]!r}; one of {', '.join(SKIPPABLE)}")
    args.only = sorted({name.strip() for name in args.only.split(",") if name.strip()})
    if unknown := set(args.only) - set(STANDALONE):
        parser.error(f"--only: {sorted(unknown)[0]!r} cannot run alone; one of {', '.join(STANDALONE)}")
    if args.only and args.skip:
        parser.error("--only and --skip: give one of them")
    if "ingest" not in args.skip and (not args.only or "ingest" in args.only):
        _check_ingest(parser, args)
    if args.late_events < 100:
        parser.error("--late-events: at least 100")
    return args


def _check_ingest(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.ingest_events < 100:
        parser.error("--ingest-events: at least 100")
    if not args.rabbitmq:
        parser.error("--rabbitmq: the ingest row needs RabbitMQ: give its URL or set LEDGER_RABBITMQ_URL "
                     "(scripts/services env prints it), or --skip ingest")  # fmt: skip
    try:
        check_broker_url(args.rabbitmq)
    except ValueError as exc:
        parser.error(f"--rabbitmq: {str(exc).removeprefix('--broker: ')}")
    if SCHEMES[urlsplit(args.rabbitmq).scheme] != "rabbitmq":
        parser.error(f"--rabbitmq: {redact(args.rabbitmq)!r} is not a RabbitMQ URL (amqp://…)")


def produce_phase(run: BenchRun, args: argparse.Namespace, records: list[RawRecord]) -> dict[str, Any]:
    sizes = SizeStats()
    sdk = produce_ledger(run, args.events, sizes, records, confluent=not args.no_confluent and confluent_installed())
    raw = produce_kafka_python(run, records)
    confluent = None if args.no_confluent else produce_confluent(run, records, len(records))
    row = report.produce_row(sdk["kafka-python"], raw, confluent, sdk.get("confluent"))
    return {"row": row, "sizes": sizes.as_dict()}


def fold_phases(run: BenchRun, total: int, records: list[RawRecord], processes: int) -> dict[str, Any]:
    """Rows "project" (a backlog, consumer group; then ``processes`` members of one) and
    "replay" (a full rebuild), in children."""
    project = Child(run, "project", total, "project").wait()
    exactly_once = check_exactly_once(run, records)
    consume = consume_raw(run, total)
    copy = copy_raw(run, total)
    projected = views_digest(run)
    members = measure_members(run, processes, total, projected) if processes > 1 else None
    replay = Child(run, "replay", total, "replay").wait()
    rebuilt = views_digest(run)
    project_figures = _figures(project.done)
    replay_figures = _figures(replay.done)
    project_row = report.fold_row(project_figures, consume, copy, replay=False, members=members)
    project_row.update(exactly_once=exactly_once, memory=project.memory())
    replay_row = report.fold_row(replay_figures, consume, copy, replay=True)
    replay_row["memory"] = replay.memory()
    differing = differing_tables(projected, rebuilt)
    replay_row.update(same_views=not differing, differing_tables=differing,
                      met=replay_row["met"] and not differing)  # fmt: skip
    return {"project": project_row, "replay": replay_row, "memory": project.memory()}


def _figures(done: dict[str, Any]) -> dict[str, Any]:
    events, seconds = int(done["events"]) + int(done.get("dead_letters", 0)), float(done["seconds"])
    return {"events_per_s": round(events / max(seconds, 1e-9), 1), "seconds": round(seconds, 3), "events": events}


def _latency_row(run: BenchRun, args: argparse.Namespace) -> report.Row:
    latency = measure_latency(run, args.latency_rate, args.latency_seconds)
    tuned = None
    if args.latency_batch_wait_ms >= 0:
        tuned = measure_latency(run, args.latency_rate, args.latency_seconds, args.latency_batch_wait_ms, seed=4343)
    faster = None
    if args.latency_fast_rate > 0:
        faster = measure_latency(run, args.latency_fast_rate, args.latency_seconds, seed=4444)
    return report.latency_row(latency, tuned, faster)


def standalone_rows(run: BenchRun, args: argparse.Namespace) -> dict[str, Callable[[], report.Row]]:
    return {
        "latency": lambda: _latency_row(run, args),
        "emit rules": lambda: report.rules_row(measure_emit_rules(args.rules_tasks)),
        "ingest": lambda: report.ingest_row(measure_ingest(run, args.rabbitmq, args.ingest_events)),
        "project late": lambda: report.late_row(measure_late(run, args.late_events)),
    }


def run_all(run: BenchRun, args: argparse.Namespace) -> dict[str, Any]:
    if args.only:
        build_view_writer(run.settings).migrate()  # what produce and project would have made:
        build_event_log(run.settings).close()  # the run's views and its topic
        return {"rows": {name: standalone_rows(run, args)[name]() for name in STANDALONE if name in args.only}}
    records: list[RawRecord] = []
    produced = produce_phase(run, args, records)
    # the run's own million records live to its end (the in-memory peer reads them): left to
    # the collector, each full collection in a later row walks them all (1.3 s pauses in the
    # workflow row's samples), a heap no ledger process holds
    gc.collect()
    gc.freeze()
    folded = fold_phases(run, len(records), records, args.project_processes)
    project_rate = folded["project"]["ledger"]["events_per_s"]
    members_rate = folded["project"].get("processes", {}).get("events_per_s")
    alone = standalone_rows(run, args)
    later: dict[str, Callable[[], report.Row]] = {
        # series first: the latency phase's events (now) would move "the data's last 24 hours"
        # off the simulated day, and the top-ups below copy task rows without their events
        # (skewing its percentiles); failure groups rewrite failure messages, after the rebuild
        "series": lambda: report.operator_row(measure_series(run), target_ms=1000, what="24 h at 1 min"),
        "latency": alone["latency"],
        "failure groups": lambda: report.operator_row(measure_failures(run), target_ms=None, what="default window"),
        "query": lambda: report.query_row(measure_queries(run, args.query_rows)),
        "search": lambda: report.operator_row(measure_search(run, args.query_rows), target_ms=200, what="first page"),
        "tasks page": lambda: report.operator_row(measure_tasks_page(run, args.query_rows), target_ms=300,
                                                  what="first page, server time"),
        "workflow": lambda: report.operator_row(
            measure_workflow(run, args.workflow_tasks - 1), target_ms=300, what=f"{args.workflow_tasks:,} tasks"
        ),
        "in-memory peer": lambda: report.peer_row(measure_celery_state(records), project_rate, members_rate),
        "emit rules": alone["emit rules"],
        "ingest": alone["ingest"],
        "project late": alone["project late"],
    }
    rows = {"produce": produced["row"], "project": folded["project"], "replay": folded["replay"],
            "projector memory": report.memory_row(folded["memory"])}
    rows.update({name: measure() for name, measure in later.items() if name not in args.skip})
    if (peer := rows.get("in-memory peer")) is not None:  # the project row's second target
        rows["project"].update(ratio_vs_celery_state=peer["ratio"],
                               ratio_processes_vs_celery_state=peer["ratio_processes"])
    rows["project"]["met"] = report.project_met(rows["project"])
    return {"rows": rows, "event_sizes": produced["sizes"], "projector_memory": folded["memory"]}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    if (settings.log_backend, settings.views_backend) != Backend.KAFKA_POSTGRES.ports:
        print("bench: needs LEDGER_BACKEND=kafka+postgres and the services (use scripts/dev bench)", file=sys.stderr)
        return 1
    quiet = wait_until_quiet(args.settle_s)
    if quiet.busy:
        console.print(f"[bold red]bench: the machine is busy (1-minute load {quiet.load_1m:.2f} > "
                      f"{quiet.limit}) after waiting {quiet.waited_s:.0f} s: this run is flagged; "
                      "compare its ratios, not its absolute figures[/]")  # fmt: skip
    started, began = datetime.now(UTC), time.monotonic()
    with bench_run(settings) as run:
        machine = machine_info(run) | {"quiet_at_start": quiet.as_dict()}
        measured = run_all(run, args)
    machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result = {"started_at": started.isoformat(), "seconds": round(time.monotonic() - began, 1),
              "args": {**vars(args), "rabbitmq": args.rabbitmq and redact(args.rabbitmq)}, "run_id": run.run_id,
              "machine": machine, **measured}  # fmt: skip
    report.print_table(result, console)
    path = report.write_json(result, *([] if args.output is None else [Path(args.output)]))
    console.print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
