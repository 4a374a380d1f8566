"""Views that were never created (no ``ledger migrate`` or projector yet): every reader of
either backend raises the one ``ViewsNotCreated`` saying where it looked and what to run,
and creates nothing on the way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.bootstrap import build_view_reader, build_view_writer
from ledger.projections.store import TaskFilter, ViewsNotCreated, ViewStoreUnavailable
from ledger.settings import Settings


@pytest.fixture
def fresh(settings: Settings, tmp_path: Path) -> Settings:
    """``settings`` pointing at views nobody created: a data dir or schema that does not exist."""
    if settings.backend.value == "embedded":
        return settings.model_copy(update={"data_dir": tmp_path / "never" / "created"})
    return settings


def test_every_reader_says_what_to_run_and_creates_nothing(fresh: Settings, tmp_path: Path) -> None:
    store, reader = build_view_writer(fresh), build_view_reader(fresh)
    reads: list[Callable[[], object]] = [
        reader.status_counts, reader.periodic_tasks, reader.periodic_runs, lambda: reader.task_state("t-1"),
        lambda: reader.list_tasks(TaskFilter(), after=None, limit=10), lambda: reader.offsets("views", fresh.topic),
        lambda: store.offsets("views", fresh.topic), lambda: store.load_tasks(["t-1"]),
    ]  # fmt: skip
    for read in reads:
        with pytest.raises(ViewsNotCreated, match=r"no ledger views in .* yet: run `ledger migrate`"):
            read()
    with pytest.raises(ViewsNotCreated):
        reader.status_counts_as_of(datetime.now(UTC))
    with pytest.raises(ViewsNotCreated):
        reader.task_events("t-1")
    assert not (tmp_path / "never").exists()
    assert store.migrate()  # a writer creates what it needs
    assert reader.status_counts() == {}
    store.close()
    reader.close()


@pytest.mark.parametrize("settings", ["embedded"], indirect=True)
def test_an_empty_or_foreign_views_file(settings: Settings) -> None:
    views = settings.data_dir / "views.db"
    views.touch()  # empty: a file SQLite would happily use, without the tables
    with pytest.raises(ViewsNotCreated, match=str(views)):
        build_view_reader(settings).status_counts()
    views.write_bytes(b"this is not a database, but something else of the user's" * 100)
    with pytest.raises(ViewStoreUnavailable, match=str(views)):
        build_view_reader(settings).status_counts()
