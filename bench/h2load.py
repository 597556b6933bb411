"""Driving h2load (Debian `nghttp2-client`), the load generator, and reading its summary and request log.

h2load knows HTTP, not gRPC: a call that fails with a gRPC status still ends with HTTP 200, so callers count
gRPC successes from the DATA bytes received (a failed call carries no message).
"""

import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.loadloop import percentiles
from bench.procs import log_dir, pinned

_GRPC_HEADERS = ("-H", "content-type: application/grpc", "-H", "te: trailers")


def run_h2load(url: str, data: Path, cores: str | None, skip: int = 0, **options: int) -> dict[str, Any]:
    """gRPC calls posting `data` to `url`: `requests` in all, over `clients` connections (1) of `streams`
    (1) each; with `rps`, an open loop offering `rps * clients` calls/s. Latencies leave out the first
    `skip` calls."""
    with tempfile.NamedTemporaryFile(prefix="h2load-", dir=log_dir()) as log:
        argv = ["h2load", "-t", "1", f"--log-file={log.name}", "-d", str(data), *_GRPC_HEADERS]
        argv += ["-n", str(options["requests"]), "-c", str(options.get("clients", 1))]
        rps = [f"--rps={options['rps']}"] if "rps" in options else []
        argv += ["-m", str(options.get("streams", 1)), *rps]
        done = subprocess.run(pinned(cores, [*argv, url]), capture_output=True, text=True, timeout=600)
        # Columns: start (µs since the epoch), HTTP status, duration (µs).
        rows = [line.split("\t") for line in Path(log.name).read_text().splitlines()]
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", done.stdout)
    requests = re.search(r"requests: \d+ total, \d+ started, (\d+) done", done.stdout)
    traffic = re.search(r"traffic: .*?\((\d+)\) data", done.stdout)
    if done.returncode != 0 or not (finished and requests and traffic):
        raise RuntimeError(f"h2load failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    rows = sorted((row for row in rows if len(row) >= 3), key=lambda row: int(row[0]))
    latencies = [int(row[2]) / 1000 for row in rows]
    return {
        "seconds": float(finished[1]) / (1000 if finished[2] == "ms" else 1),
        "req_per_s": float(finished[3]),
        "done": int(requests[1]),
        "data_bytes": int(traffic[1]),
        "latency_ms": percentiles(latencies[skip:]),
    }
