"""The benchmark: every figure of the ledger measured next to a raw baseline on the same
data, in one run (``scripts/dev bench`` or ``python -m bench --events N``).

Ratios are what count: the machine (2 cores, shared with Kafka, PostgreSQL and maybe other
work) changes the absolute figures, but both sides of a ratio ran on it at the same time.
Timings are never asserted in the test suite; ``tests/e2e/test_bench_smoke.py`` only checks
that a tiny run produces every row.
"""
