"""Where a process spends its time: py-spy samples folded into the functions that cost the most.

`record` runs `py-spy record --format raw` against a pid for a few seconds (while the caller applies load);
`summarise` turns the collapsed stacks into the top functions by own time and by inclusive time, as shares of
all samples, which is what the report quotes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

__all__ = ["available", "record", "summarise"]


def _py_spy() -> str | None:
    # pip puts the binary beside the interpreter of the virtual environment, which may not be on PATH.
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def available() -> bool:
    """Whether py-spy is installed."""
    return _py_spy() is not None


def record(pid: int, seconds: float, output: Path, rate: int = 100) -> subprocess.Popen[bytes]:
    """Start sampling `pid` for `seconds` into `output` (collapsed stacks); the caller waits on the result.

    Native frames are included: much of a grpc.aio server's time is in C (grpc's core, uvloop, syscalls),
    which Python-only sampling would charge to whichever Python frame happens to be on top.
    """
    argv = [
        _py_spy() or "py-spy",
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--native",
        "--output",
        str(output),
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _frame_name(frame: str) -> str:
    # py-spy writes "function (path/to/file.py:line)"; the line number would split one function into many.
    name, _, location = frame.partition(" (")
    path = location.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})" if path else name


def summarise(collapsed: Path, top: int = 25) -> dict[str, object]:
    """Top functions by own and inclusive share of the samples in a py-spy raw (collapsed) file."""
    if not collapsed.exists():
        return {"samples": 0, "own": [], "inclusive": [], "error": "py-spy wrote no samples"}
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(frame) for frame in stack.split(";") if frame]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if total == 0:
        return {"samples": 0, "own": [], "inclusive": []}
    # Frames on (nearly) every stack, the interpreter's and the event loop's entry points, say nothing.
    telling = [(name, n) for name, n in inclusive.most_common() if n < 0.6 * total]
    return {
        "samples": total,
        "own": [[name, round(100 * n / total, 1)] for name, n in own.most_common(top)],
        "inclusive": [[name, round(100 * n / total, 1)] for name, n in telling[:top]],
    }
