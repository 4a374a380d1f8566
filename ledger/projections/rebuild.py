"""The backend half of a rebuild (``consumers.rebuild`` drives it): a fresh shadow copy of
the views, and the atomic swap that makes it the live views, so readers see either the old
views or the new ones, never a half-built view.

PostgreSQL: schemas, advisory locks and a schema rename in one transaction; SQLite: a lock
file and an atomic file rename, with the projector stopped, as befits the single-process
embedded backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager

from ledger.projections.store import ViewWriter

CatchUp = Callable[[], None]
"""Brings the shadow to exactly the live offsets (called while live writes are held back)."""
Inspect = Callable[[], bool]
"""Called once the shadow equals the live offsets; returns whether to swap."""


class RebuildInProgress(RuntimeError):
    """Another rebuild holds the lock."""


class Swapper(ABC):
    """The backend-specific half of a rebuild."""

    @property
    @abstractmethod
    def live(self) -> ViewWriter:
        """The live views this swapper rebuilds."""

    @abstractmethod
    def lock(self) -> AbstractContextManager[None]:
        """Held for the whole rebuild; raises ``RebuildInProgress`` if already held."""

    @abstractmethod
    def create_shadow(self) -> ViewWriter:
        """A fresh, migrated, empty copy of the views (leftovers of a crashed rebuild go)."""

    @abstractmethod
    def swap(self, shadow: ViewWriter, catch_up: CatchUp, inspect: Inspect) -> bool:
        """Hold live writes back, ``catch_up`` the shadow to the live offsets, ``inspect``,
        and if it says so make the shadow the live views atomically. Returns whether it did."""
