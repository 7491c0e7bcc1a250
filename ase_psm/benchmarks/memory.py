"""Resident memory of this process (Linux ``/proc/self``), for peak-memory measurements in fresh processes."""

from __future__ import annotations

from pathlib import Path


def status_kib(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss() -> None:
    """Reset the high-water mark VmHWM to the current RSS (``5 > /proc/self/clear_refs``): a process started
    by a large parent can otherwise inherit the parent's peak."""
    Path("/proc/self/clear_refs").write_text("5")
