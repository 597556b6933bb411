"""What the machine is and how busy it is: cores, memory, load average and a process's resident memory."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

__all__ = ["describe", "load_average", "rss_bytes", "wait_for_quiet"]


def load_average() -> tuple[float, float, float]:
    """The 1-, 5- and 15-minute load averages."""
    return os.getloadavg()


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid` (VmRSS), in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _mem_total_gib() -> float:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0.0


def describe() -> dict[str, object]:
    """The machine in a few facts: CPU model, core count, memory, kernel and Python version."""
    return {
        "cpu_model": _lscpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(_mem_total_gib(), 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
    }


def wait_for_quiet(threshold: float, max_wait: float, poll: float = 15.0) -> tuple[float, bool]:
    """Wait until the 1-minute load average is below `threshold`, at most `max_wait` seconds.

    Returns the load average last seen and whether it was below the threshold. Figures taken while other
    work shares these two cores say little, so a run waits for the machine to calm down first.
    """
    deadline = time.monotonic() + max_wait
    while True:
        one_minute = load_average()[0]
        if one_minute < threshold:
            return one_minute, True
        if time.monotonic() >= deadline:
            return one_minute, False
        print(f"bench: load average {one_minute:.2f} >= {threshold}; waiting", file=sys.stderr, flush=True)
        time.sleep(poll)
