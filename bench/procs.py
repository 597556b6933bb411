"""Child processes of a run, each pinned to its cores with `taskset` and stopped by its own pid.

A harness module run as a child takes one JSON document of options as its argument. A server is given a
free port and waited for; a measuring child prints one JSON document (its figures) on stdout and exits; a
holding child prints a JSON line when ready and finishes when its stdin closes.
"""

import contextlib
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
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
_log_dir = [Path(tempfile.gettempdir()) / f"bench-{os.getpid()}"]


def log_dir(path: Path | None = None) -> Path:
    """Where children's stderr and h2load's request logs go; `path` moves it (to a run's work directory)."""
    if path is not None:
        _log_dir[0] = path
    _log_dir[0].mkdir(parents=True, exist_ok=True)
    return _log_dir[0]


def module(name: str, options: dict[str, Any], python: str = PYTHON) -> list[str]:
    """The command line running harness module `name` with `options`."""
    return [python, "-m", name, json.dumps(options, default=str)]


def pinned(cores: str | None, argv: list[str]) -> list[str]:
    """`argv` run on `cores` (a taskset list such as "0"), or unpinned when `cores` is None."""
    return ["taskset", "-c", cores, *argv] if cores and shutil.which("taskset") else argv


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(tree: Path) -> dict[str, str]:
    # `bridge` and the generated code come from `tree`: ahead of the editable install on the path.
    paths = [str(tree), str(tree / "generated"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths)), "PYTHONUNBUFFERED": "1"}


def field(path: str, name: str) -> str:
    """The value of line `name: value` in a /proc file."""
    with open(path, encoding="ascii") as lines:
        return next(
            (v.strip() for k, _, v in (line.partition(":") for line in lines) if k.strip() == name), ""
        )


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid` (VmRSS), in bytes."""
    return int(field(f"/proc/{pid}/status", "VmRSS").split()[0]) * 1024


class Child:
    """A long-running child process: started pinned, stopped by pid when its `with` block ends."""

    def __init__(
        self, name: str, argv: list[str], cores: str | None, port: int = 0, tree: Path = ROOT
    ) -> None:
        self.name, self.argv, self.port, self.tree = name, pinned(cores, argv), port, tree
        self.log_path = log_dir() / f"{name}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        """The child's process id (the program itself: taskset execs it)."""
        assert self.proc is not None
        return self.proc.pid

    def start(self, holding: bool = False, timeout: float = 30.0) -> Self:
        """Start; wait for the port to accept connections or, when `holding`, for the child's ready line."""
        pipe = subprocess.PIPE if holding else None
        with self.log_path.open("w") as log:
            env = {**_env(self.tree), "XPANDER_API_KEY": "bench-key"}
            self.proc = subprocess.Popen(
                self.argv, stdin=pipe, stdout=pipe or log, stderr=log, text=True, env=env, cwd=self.tree
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if holding and self.proc.stdout and select.select([self.proc.stdout], [], [], 1)[0]:
                if self.proc.stdout.readline():
                    return self
            elif not holding:
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                    return self
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not get ready: {self.tail()}")

    def finish(self, timeout: float = 120.0) -> dict[str, Any]:
        """Close the holding child's stdin (its cue to finish), wait for it, return its last JSON line."""
        assert self.proc is not None
        try:
            out, _ = self.proc.communicate(input="", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise RuntimeError(f"{self.name} did not finish within {timeout}s: {self.tail()}") from None
        return _last_json(out, self.proc.returncode, self.tail())

    def tail(self) -> str:
        """The end of the child's stderr log."""
        return self.log_path.read_text()[-3000:]

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_json(argv: list[str], cores: str | None, timeout: float = 1800) -> dict[str, Any]:
    """Run a measuring child to completion and return the JSON document it prints last on stdout."""
    done = subprocess.run(
        pinned(cores, argv), capture_output=True, text=True, timeout=timeout, env=_env(ROOT)
    )
    return _last_json(done.stdout, done.returncode, done.stderr[-3000:])


def _last_json(out: str, returncode: int, log: str) -> dict[str, Any]:
    if returncode != 0 or not out.strip():
        raise RuntimeError(f"a child failed ({returncode}): {log}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result
