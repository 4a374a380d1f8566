"""Bulk reads without the cyclic garbage collector in the middle.

A read that builds tens of thousands of objects (a workflow of 10,000 tasks: a row, a node
and an edge each) trips CPython's collector on the way: about 90 young collections and,
most calls, a full one that walks every object of the process, to find no cycle (rows,
tuples and named tuples hold none). Measured on a 10,000-task workflow: ~60 ms of a
~250 ms read. Paused, the objects are counted all the same, and the next collection after
the read runs once over them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector around a bulk read of acyclic objects; an already paused
    collector (the application's choice, or another thread's read) stays as it was."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
