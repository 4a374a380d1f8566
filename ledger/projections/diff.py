"""Row-by-row comparison of two copies of the views (``ledger rebuild --verify``): rows only
in one side, and rows that differ with the columns that differ."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ledger.projections.schema import PRIMARY_KEYS
from ledger.projections.store import ViewWriter

EXAMPLES = 20


@dataclass
class TableDiff:
    table: str
    compared: int = 0
    only_live: list[object] = field(default_factory=list)
    only_shadow: list[object] = field(default_factory=list)
    differing: list[tuple[object, list[str]]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"only_live": 0, "only_shadow": 0, "differing": 0})

    def note(self, kind: str, entry: object) -> None:
        self.counts[kind] += 1
        examples: list[object] = getattr(self, kind)
        if len(examples) < EXAMPLES:
            examples.append(entry)

    @property
    def clean(self) -> bool:
        return not any(self.counts.values())


@dataclass
class Diff:
    tables: list[TableDiff]

    @property
    def clean(self) -> bool:
        return all(t.clean for t in self.tables)

    def report(self) -> str:
        lines = []
        for t in self.tables:
            c = t.counts
            lines.append(f"{t.table}: {t.compared:,} rows compared, {c['only_live']} only in live, "
                         f"{c['only_shadow']} only in rebuilt, {c['differing']} differ")  # fmt: skip
            lines += [f"  only in live: {key}" for key in t.only_live]
            lines += [f"  only in rebuilt: {key}" for key in t.only_shadow]
            lines += [f"  differs: {key} ({', '.join(columns)})" for key, columns in t.differing]
        lines.append("identical" if self.clean else "DIFFERENT")
        return "\n".join(lines)


def compare(live: ViewWriter, shadow: ViewWriter) -> Diff:
    return Diff([_compare_table(live, shadow, table) for table in PRIMARY_KEYS])


def _compare_table(live: ViewWriter, shadow: ViewWriter, table: str) -> TableDiff:
    """A merge join of both sides, each ordered by primary key (first column)."""
    result = TableDiff(table)
    columns, left = live.table_rows(table)
    _, right = shadow.table_rows(table)
    a, b = _next(left), _next(right)
    while a is not None or b is not None:
        result.compared += 1
        if b is None or (a is not None and _key(a) < _key(b)):
            result.note("only_live", a[0] if a else None)
            a = _next(left)
        elif a is None or _key(b) < _key(a):
            result.note("only_shadow", b[0])
            b = _next(right)
        else:
            different = [name for name, x, y in zip(columns, a, b, strict=True) if x != y]
            if different:
                result.note("differing", (a[0], different))
            a, b = _next(left), _next(right)
    return result


def _next(rows: Iterator[tuple[object, ...]]) -> tuple[object, ...] | None:
    return next(rows, None)


def _key(row: tuple[object, ...]) -> str:
    return str(row[0])
