"""STYLE habit 1: ``ledger/domain`` imports only the standard library, pydantic and
``eventsourcing.domain``, so the domain stays pure and every layer may depend on it."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "ledger" / "domain"
ALLOWED_PACKAGES = {"pydantic"}
ALLOWED_MODULES = {"eventsourcing.domain"}


def imported_modules(path: Path) -> list[str]:
    modules: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: inside ledger.domain by construction
                modules.append("ledger.domain")
            else:
                assert node.module is not None
                modules.append(node.module)
    return modules


def allowed(module: str) -> bool:
    top = module.split(".")[0]
    return (
        top in sys.stdlib_module_names
        or top in ALLOWED_PACKAGES
        or module in ALLOWED_MODULES
        or module == "ledger.domain"
        or module.startswith("ledger.domain.")
    )


MODULES = sorted(DOMAIN.glob("*.py"))


def test_the_domain_has_modules_to_check() -> None:
    names = {path.stem for path in MODULES}
    assert {"statuses", "events", "fold", "periodic", "aggregates"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_domain_module_imports_only_what_is_allowed(path: Path) -> None:
    forbidden = [module for module in imported_modules(path) if not allowed(module)]
    assert forbidden == [], f"{path.name} imports {forbidden}"


@pytest.mark.parametrize(
    "module",
    ["ledger.eventlog.base", "ledger.wire", "eventsourcing.persistence", "psycopg2", "kafka"],
)
def test_the_rule_rejects_outer_layers_and_drivers(module: str) -> None:
    assert not allowed(module)
