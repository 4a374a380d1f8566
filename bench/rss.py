"""Resident memory of a process from ``/proc`` (Linux): the current RSS and the kernel's own
high-water mark (VmHWM), so no sample can miss the peak. No psutil needed."""

from __future__ import annotations

from pathlib import Path


def _status(pid: int | str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def rss(pid: int | str = "self") -> int:
    """Current resident set size in bytes (0 if unknown)."""
    return _status(pid, "VmRSS")


def peak_rss(pid: int | str = "self") -> int:
    """Peak resident set size in bytes so far (0 if unknown)."""
    return _status(pid, "VmHWM")
