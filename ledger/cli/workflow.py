"""``ledger workflow <task-id>``: the whole workflow a task belongs to, as a tree (or its
nodes and edges as JSON, the HTTP API's shape)."""

from __future__ import annotations

from typing import Annotated

import typer

from ledger import render
from ledger.bootstrap import build_view_reader
from ledger.cli.base import CliError, app, parse_identifier, run, settings
from ledger.workflow_models import WorkflowOut


@app.command()
def workflow(
    task_id: str,
    show_all: Annotated[bool, typer.Option("--all", help="every member of big groups (default: the first 20)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="nodes and edges as JSON (GET /tasks/{id}/workflow)")] = False,
) -> None:
    """The workflow a task belongs to (root, chains, groups, chord callbacks): each task's
    status, attempts, worker and runtime, and the workflow's state and duration."""

    def go() -> None:
        parse_identifier(task_id, "TASK_ID")
        with build_view_reader(settings()) as reader:
            flow = reader.workflow(task_id)
        if flow is None:
            raise CliError(f"unknown task {task_id!r}: the ledger has no event of it")
        if as_json:
            typer.echo(WorkflowOut.from_workflow(flow).model_dump_json(indent=2))
        else:
            render.console().print(render.workflow_tree(flow, members=None if show_all else 20))

    run(go)
