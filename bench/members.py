"""The project row's second figure: ``ledger project --processes N --until-caught-up`` (the
product's own command: N members of one consumer group, one a core) on the same backlog,
into views of their own, timed from its start to its exit (start-up and the group's joins
included). It counts only if its views equal the single projector's."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from bench.runctx import BenchRun
from bench.verify import differing_tables, views_digest
from ledger.progress import Progress

POLL_S = 0.5


def measure_members(run: BenchRun, processes: int, total: int, projected: dict[str, tuple[int, str]]) -> dict[str, Any]:
    """Project the run's topic again with ``processes`` members; ``projected`` is the
    single projector's ``views_digest``."""
    schema = run.scratch_schema("members")
    env = {**run.child_env(), "LEDGER_POSTGRES_SCHEMA": schema, "LEDGER_PROJECTOR_GROUP": f"{run.topic}-members"}
    command = [sys.executable, "-m", "ledger", "project", "--processes", str(processes), "--until-caught-up"]
    progress, done = Progress(f"project, {processes} processes"), threading.Event()
    progress.start(total)
    watcher = threading.Thread(target=_follow, args=(run, schema, progress, done), daemon=True)
    started = time.perf_counter()
    member = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watcher.start()
    _, stderr = member.communicate()
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    progress.finish()
    if member.returncode != 0:
        raise RuntimeError(f"ledger project --processes {processes} failed (exit {member.returncode}): "
                           f"{stderr.strip()[-500:]}")  # fmt: skip
    differing = differing_tables(projected, views_digest(run, schema))
    return {"processes": processes, "events_per_s": round(total / seconds, 1), "seconds": round(seconds, 3),
            "events": total, "same_views": not differing, "differing_tables": differing}  # fmt: skip


def _follow(run: BenchRun, schema: str, progress: Progress, done: threading.Event) -> None:
    """The members' progress: the offsets they have stored, summed."""
    query = sql.SQL("SELECT coalesce(sum(next_offset), 0) FROM {}").format(
        sql.Identifier(schema, "projection_offsets"))  # fmt: skip
    conn = psycopg2.connect(run.dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            while not done.wait(POLL_S):
                try:
                    cur.execute(query)
                except psycopg2.errors.UndefinedTable:
                    continue  # not migrated yet
                progress.update(int((cur.fetchone() or (0,))[0]))
    finally:
        conn.close()
