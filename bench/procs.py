"""Child processes of a benchmark run, each pinned to its cores with `taskset`.

A server child announces itself with one JSON line on stdout carrying `"port"`; other children write one JSON
document (their figures) to stdout and exit. Every child is stopped by its own pid, never by name.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = [
    "PYTHON",
    "ROOT",
    "Child",
    "free_port",
    "log_dir",
    "pinned",
    "run_json",
    "set_log_dir",
    "wait_port",
]

ROOT = Path(__file__).resolve().parent.parent
"""The repository root."""

PYTHON = sys.executable
"""The interpreter running the harness (the project's virtual environment)."""

_serial = itertools.count(1)
_log_dir = Path(tempfile.gettempdir()) / f"bench-{os.getpid()}"


def set_log_dir(path: Path) -> None:
    """Where children's stderr logs and h2load's request logs go (a run's own work directory)."""
    global _log_dir
    _log_dir = path


def log_dir() -> Path:
    """The current log directory, created on demand."""
    _log_dir.mkdir(parents=True, exist_ok=True)
    return _log_dir


def _env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "generated")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def pinned(cores: str | None, argv: Sequence[str]) -> list[str]:
    """`argv` run on `cores` (a taskset list such as "0" or "1"), or unpinned when `cores` is None."""
    if cores is None or shutil.which("taskset") is None:
        return list(argv)
    return ["taskset", "-c", cores, *argv]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 20.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {timeout}s") from None
            time.sleep(0.05)


class Child:
    """A long-running child process (a server): started pinned, stopped by pid on exit."""

    def __init__(
        self, name: str, argv: Sequence[str], cores: str | None, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = pinned(cores, argv)
        self.env = {**_env(), **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.announcement: dict[str, Any] = {}
        self.log_path = log_dir() / f"{name}-{next(_serial)}.log"

    @property
    def pid(self) -> int:
        """The child's process id (the program itself: taskset execs it)."""
        assert self.proc is not None
        return self.proc.pid

    def start(
        self, announce: bool = True, port: int | None = None, timeout: float = 30.0, stdin: bool = False
    ) -> Child:
        """Start the child; wait for its JSON announcement line, or for `port` to accept connections.

        With `stdin`, the child's standard input stays open until `finish()` closes it (the child's cue to
        wrap up and print its last JSON document).
        """
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if announce else log,
            stderr=log,
            text=True,
            env=self.env,
            cwd=ROOT,
        )
        log.close()
        if announce:
            assert self.proc.stdout is not None
            line = _readline(self.proc.stdout, timeout)
            if not line:
                self.stop()
                raise RuntimeError(f"{self.name} exited or was silent before announcing: {self.tail()}")
            self.announcement = json.loads(line)
        if port is not None:
            try:
                wait_port(port, timeout)
            except TimeoutError:
                raise RuntimeError(f"{self.name} did not listen on {port}: {self.tail()}") from None
        return self

    def finish(self, timeout: float = 60.0) -> dict[str, Any]:
        """Close the child's stdin, wait for it to exit and return the last JSON document it printed."""
        assert self.proc is not None
        try:
            # Empty input: communicate() closes stdin, the child's cue to finish.
            out, _ = self.proc.communicate(input="" if self.proc.stdin else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RuntimeError(f"{self.name} did not finish within {timeout}s: {self.tail()}") from None
        lines = [line for line in out.splitlines() if line.strip()]
        if self.proc.returncode != 0 or not lines:
            raise RuntimeError(f"{self.name} failed ({self.proc.returncode}): {self.tail()}")
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    @property
    def port(self) -> int:
        """The port the child announced."""
        return int(self.announcement["port"])

    def tail(self, lines: int = 20) -> str:
        """The end of the child's stderr log."""
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _readline(stream: IO[str], timeout: float) -> str:
    """One line from `stream`, or "" if none arrives within `timeout` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


def run_json(
    argv: Sequence[str], cores: str | None, timeout: float, python: str | None = None
) -> dict[str, Any]:
    """Run a measuring child to completion and return the JSON document it prints last on stdout."""
    full = pinned(cores, [python or PYTHON, *argv])
    done = subprocess.run(full, capture_output=True, text=True, timeout=timeout, env=_env(), cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"{' '.join(argv)} printed nothing: {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result
