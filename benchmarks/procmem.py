"""Memory figures of a process from Linux's /proc, for the benchmarks' fresh-process runs."""

from __future__ import annotations

from pathlib import Path


def status_mb(field: str, pid: int | str = "self") -> float:
    """A memory line of /proc/PID/status (VmHWM, VmRSS, ...) in MiB; NaN when it is absent."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process (Linux clear_refs 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
