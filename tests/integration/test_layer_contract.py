"""The layer contract in pyproject.toml (import-linter, run by scripts/dev test before
pytest): it holds on the code as it is, and it fails on an inward-pointing import, on an
adapter or driver imported away from the edge, and on an import cycle, each planted in a
copy of the package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), str(root / "pyproject.toml"), "--no-cache"],
        cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_code_keeps_the_contract() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("domain/statuses.py", "import ledger.consumers.projector", "ledger.domain.statuses -> ledger.consumers"),
        ("consumers/lag.py", "import ledger.eventlog.kafka", "ledger.consumers.lag -> ledger.eventlog.kafka"),
        ("http/params.py", "import psycopg2", "ledger.http.params -> psycopg2"),
        ("projections/reader.py", "import ledger.projections.sqlite",
         "ledger.projections.reader -> ledger.projections.sqlite"),
        ("codec.py", "import ledger.wire", "No cycles are allowed in ledger"),
    ],
    ids=["inward", "adapter", "driver", "views-adapter", "cycle"],
)
def test_a_planted_import_breaks_it(tmp_path: Path, module: str, line: str, broken: str) -> None:
    shutil.copytree(ROOT / "ledger", tmp_path / "ledger", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    planted = tmp_path / "ledger" / module
    planted.write_text(planted.read_text() + f"\n{line}  # planted by the test\n")
    done = lint(tmp_path)
    assert done.returncode != 0
    assert broken in done.stdout, done.stdout
