"""Small helpers shared by the tests."""

from __future__ import annotations

import uuid


def unique_name(prefix: str) -> str:
    """A topic / schema / group name no other test (or earlier run) uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"
