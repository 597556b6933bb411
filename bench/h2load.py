"""Driving h2load (Debian `nghttp2-client`) and reading its summary and per-request log.

h2load knows HTTP, not gRPC: a call that fails with a gRPC status still ends with HTTP 200 and counts as
"succeeded". Callers therefore count gRPC successes from the DATA bytes received (a failed unary call carries
no message) and compare with the upstream's own request counters.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import log_dir, pinned
from bench.stats import Percentiles, percentiles

__all__ = ["H2loadResult", "available", "run_h2load"]

_SIZE = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


@dataclass
class H2loadResult:
    """What one h2load run measured."""

    seconds: float
    req_per_s: float
    done: int
    succeeded: int
    failed: int
    errored: int
    timeout: int
    status_2xx: int
    data_bytes: int
    latency: Percentiles
    latencies_us: list[int] = field(repr=False, default_factory=list)
    output: str = field(repr=False, default="")

    def as_dict(self) -> dict[str, object]:
        """The figures, without the raw samples."""
        return {
            "seconds": self.seconds,
            "req_per_s": self.req_per_s,
            "done": self.done,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "errored": self.errored,
            "timeout": self.timeout,
            "status_2xx": self.status_2xx,
            "data_bytes": self.data_bytes,
            "latency_ms": self.latency.as_dict(),
        }


def available() -> bool:
    """Whether h2load is on PATH."""
    return shutil.which("h2load") is not None


def _number(pattern: str, text: str, default: float = 0.0) -> float:
    match = re.search(pattern, text)
    return float(match.group(1)) if match else default


def _parse(output: str, latencies_us: list[int]) -> H2loadResult:
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", output)
    if finished is None:
        raise RuntimeError(f"unexpected h2load output:\n{output}")
    seconds = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    requests = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, "
        r"(\d+) timeout",
        output,
    )
    assert requests is not None, output
    traffic = re.search(r"traffic: .*?, [\d.]+([KMG]?)B \((\d+)\) data", output)
    data_bytes = int(traffic.group(2)) if traffic else 0
    return H2loadResult(
        seconds=seconds,
        req_per_s=float(finished.group(3)),
        done=int(requests.group(3)),
        succeeded=int(requests.group(4)),
        failed=int(requests.group(5)),
        errored=int(requests.group(6)),
        timeout=int(requests.group(7)),
        status_2xx=int(_number(r"status codes: (\d+) 2xx", output)),
        data_bytes=data_bytes,
        latency=percentiles([us / 1000 for us in latencies_us]),
        latencies_us=latencies_us,
        output=output,
    )


def run_h2load(
    url: str,
    *,
    data: Path | None = None,
    headers: Sequence[str] = (),
    requests: int | None = None,
    duration: float | None = None,
    warm_up: float | None = None,
    clients: int = 1,
    streams: int = 1,
    rps_per_client: float | None = None,
    h1: bool = False,
    cores: str | None = "1",
    timeout: float = 600.0,
) -> H2loadResult:
    """Run h2load against `url` and return its figures, latencies taken from its per-request log.

    Closed loop: `requests` (or `duration`) with `clients` connections of `streams` concurrent requests each.
    Open loop: add `rps_per_client`; the offered rate is `rps_per_client * clients`, and `streams` only bounds
    how many may be outstanding per connection (keep it well above rate * latency).
    """
    handle, name = tempfile.mkstemp(prefix="h2load-", suffix=".log", dir=log_dir())
    os.close(handle)
    log = Path(name)
    argv = ["h2load", "-c", str(clients), "-m", str(streams), "-t", "1", f"--log-file={log}"]
    if requests is not None:
        argv += ["-n", str(requests)]
    if duration is not None:
        argv += ["-D", f"{duration:g}"]
        if warm_up:
            argv += [f"--warm-up-time={warm_up:g}"]
    if rps_per_client is not None:
        argv += [f"--rps={rps_per_client:g}"]
    if data is not None:
        argv += ["-d", str(data)]
    for header in headers:
        argv += ["-H", header]
    if h1:
        argv.append("--h1")
    argv.append(url)
    done = subprocess.run(pinned(cores, argv), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"h2load failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    latencies: list[int] = []
    if log.exists():
        for line in log.read_text().splitlines():
            columns = line.split("\t")
            if len(columns) >= 3 and columns[1].isdigit():
                latencies.append(int(columns[2]))
    log.unlink(missing_ok=True)
    return _parse(done.stdout, latencies)
