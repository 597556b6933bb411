"""How fast is the local platform? Create-task and get-task requests per second, and event-stream throughput.

    .venv/bin/python -m bench.local_platform [--duration 5] [--connections 32] [--streams 100] [--chunks 100]

The platform runs as `xpander-bridge local-platform` in a child process pinned to CPU 0, as one core. Create
and get are driven by h2load over HTTP/1.1 (a C client, pinned to CPU 1, so the client is not what gets
measured; without h2load on PATH an aiohttp client stands in). Event streams are read by aiohttp here, also
on CPU 1. Phases:

- create: `POST /agent-execution/demo-agent` with an SDK-shaped body, `events_streaming` on, so every task
  also plays its scripted run and records its ~9 events, as under the bridge's benchmarks;
- get: `GET /agent-execution/{id}/status` of a finished task;
- events-live: `--streams` tasks with `#chunks=<--chunks> #delay=0`, each created and streamed at once;
- events-replay: finished streams read again, `--streams` at a time.

Each phase prints one JSON line: `per_second` (wall clock), `platform_cpu` (the share of its core the platform
used) and `per_platform_cpu_second`, which is what one fully used core would do. On a machine shared with
other work the last figure is the steadier one. Bounded: each phase stops after `--duration` seconds, and only
127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.stats import percentiles

ROOT = Path(__file__).resolve().parent.parent
_READY = re.compile(rb"ready at (http://\S+)")
_TICKS = os.sysconf("SC_CLK_TCK")
_JSON = "content-type: application/json"

BODY: dict[str, Any] = {
    "id": None,
    "input": {"text": "count the words of this benchmark prompt", "files": [], "user": None},
    "payload_extension": None, "source": "sdk", "worker_id": None, "output_format": None,
    "output_schema": None, "run_locally": False, "events_streaming": True, "additional_context": None,
    "instructions_override": None, "test_run_node_id": None, "user_oidc_token": None, "expected_output": None,
    "mcp_servers": [], "triggering_agent_id": None, "title": None, "think_mode": "default",
    "disable_attachment_injection": False, "tool_call_limit": None, "user_tokens": None,
    "return_metrics": False, "llm_model_provider": None, "llm_model_name": None, "llm_reasoning_effort": None,
    "harness_cli": None, "permission_mode": None,
}  # fmt: skip


class _Platform:
    """The platform child: started with the real CLI, stopped by its own pid."""

    def __init__(self, step_delay: float, log: Path, *, pin: bool) -> None:
        command = [sys.executable, "-m", "bridge", "local-platform", "--listen", "127.0.0.1:0"]
        command += ["--step-delay", str(step_delay)]
        # Its log goes to a file, not a pipe: a pipe nobody drains would block the platform once it filled.
        self.log = log
        self.process = subprocess.Popen(command, cwd=ROOT, stderr=log.open("wb"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            match = _READY.search(log.read_bytes())
            if match:
                self.url = match.group(1).decode()
                break
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError(f"the local platform did not start:\n{log.read_text()}")
        self.pinned = pin and len(os.sched_getaffinity(0)) >= 2
        if self.pinned:
            # One core each: the figures are what one platform core does, not two processes fighting.
            os.sched_setaffinity(self.process.pid, {0})
            os.sched_setaffinity(0, {1})

    def cpu_seconds(self) -> float:
        """User + system CPU time the platform process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _figures(
    name: str, done: int, seconds: float, cpu: float, latency_ms: dict[str, float]
) -> dict[str, Any]:
    return {
        "phase": name,
        "done": done,
        "per_second": round(done / seconds),
        "platform_cpu": f"{cpu / seconds:.0%}",
        "per_platform_cpu_second": round(done / cpu) if cpu else None,
        "latency_ms": latency_ms,
    }


async def _loops(
    name: str, platform: _Platform, concurrency: int, duration: float, call: Callable[[int], Awaitable[int]]
) -> dict[str, Any]:
    """Run `call(worker)` in `concurrency` loops for `duration` seconds; `call` returns the units it did."""
    latencies: list[float] = []
    done = 0
    stop_at = time.perf_counter() + duration

    async def worker(index: int) -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            units = await call(index)  # not `done += await ...`: that reads `done` before awaiting
            done += units
            latencies.append((time.perf_counter() - started) * 1000)

    cpu_before, started = platform.cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    seconds = time.perf_counter() - started
    return _figures(
        name, done, seconds, platform.cpu_seconds() - cpu_before, percentiles(latencies).as_dict()
    )


def _h2load(
    name: str, platform: _Platform, url: str, args: argparse.Namespace, body: Path | None
) -> dict[str, Any]:
    """One closed-loop h2load run over HTTP/1.1; its per-request log goes to a private scratch file."""
    log = args.scratch / f"{name}.log"
    argv = [
        "h2load",
        "--h1",
        "-c",
        str(args.connections),
        "-t",
        "1",
        "-D",
        f"{args.duration:g}",
        f"--log-file={log}",
    ]
    if body is not None:
        argv += ["-d", str(body), "-H", _JSON]
    if platform.pinned:
        argv = ["taskset", "-c", "1", *argv]
    cpu_before = platform.cpu_seconds()
    output = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=args.duration + 60, check=True
    )
    cpu = platform.cpu_seconds() - cpu_before
    finished = re.search(r"finished in ([\d.]+)s", output.stdout)
    succeeded = re.search(r"(\d+) succeeded", output.stdout)
    ok = re.search(r"status codes: (\d+) 2xx", output.stdout)
    if not (finished and succeeded and ok) or ok.group(1) != succeeded.group(1) or ok.group(1) == "0":
        raise RuntimeError(f"{name}: unexpected h2load result:\n{output.stdout}")
    latencies = [
        int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines() if line.count("\t") >= 2
    ]
    figures = _figures(
        name, int(ok.group(1)), float(finished.group(1)), cpu, percentiles(latencies).as_dict()
    )
    figures["client"] = "h2load"
    return figures


async def _read_events(session: aiohttp.ClientSession, path: str) -> int:
    async with session.get(path) as resp:
        body = await resp.read()
    # Every event frame carries exactly one "\ndata: " (JSON escapes the newlines inside strings).
    return body.count(b"\ndata: ")


async def _run(args: argparse.Namespace, body_file: Path) -> list[dict[str, Any]]:
    platform = _Platform(args.step_delay, args.scratch / "platform.log", pin=not args.no_pin)
    results: list[dict[str, Any]] = []
    try:
        url = platform.url
        async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=0)) as session:

            async def create(_: int) -> int:
                async with session.post("/agent-execution/demo-agent", json=BODY) as resp:
                    await resp.read()
                return 1

            async def settled_task() -> str:
                # Made after the create phase, whose tens of thousands of tasks evict the earliest finished.
                async with session.post("/agent-execution/demo-agent", json=BODY) as resp:
                    task_id: str = (await resp.json())["id"]
                for _ in range(100):
                    async with session.get(f"/agent-execution/{task_id}/status") as resp:
                        if (await resp.json())["status"] == "completed":
                            return task_id
                    await asyncio.sleep(0.05)
                raise RuntimeError("the task to get never completed")

            status_path = ""

            async def get(_: int) -> int:
                async with session.get(status_path) as resp:
                    await resp.read()
                return 1

            h2load = shutil.which("h2load") and not args.aiohttp_only
            if h2load:
                create_url = url + "/agent-execution/demo-agent"
                results.append(_h2load("create", platform, create_url, args, body_file))
            else:
                results.append(await _loops("create", platform, args.connections, args.duration, create))
            status_path = f"/agent-execution/{await settled_task()}/status"
            if h2load:
                results.append(_h2load("get", platform, url + status_path, args, None))
            else:
                results.append(await _loops("get", platform, args.connections, args.duration, get))

            # The answer must be at least --chunks characters long to be cut in that many chunks.
            prompt = "stream " * args.chunks + f"#chunks={args.chunks} #delay=0"
            streamed: list[str] = []

            async def live(_: int) -> int:
                async with session.post(
                    "/agent-execution/demo-agent", json={**BODY, "input": {"text": prompt}}
                ) as resp:
                    task_id = (await resp.json())["id"]
                streamed.append(task_id)
                return await _read_events(session, f"/local-org/agent-execution/{task_id}/events")

            async def replay(worker: int) -> int:
                task_id = streamed[worker % len(streamed)]
                return await _read_events(session, f"/local-org/agent-execution/{task_id}/events")

            for name, call in (("events-live", live), ("events-replay", replay)):
                figures = await _loops(name, platform, args.streams, args.duration, call)
                figures["unit"] = "events; latency is per whole stream"
                results.append(figures)
    finally:
        platform.stop()
        logged = platform.log.read_text().splitlines()
        if len(logged) > 2:  # more than "ready" and "stopping": show what went wrong
            print("\n".join(logged[-20:]), file=sys.stderr)
    return results


def main() -> None:
    """Parse flags, run every phase, print one JSON line per phase."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections for create/get")
    parser.add_argument("--streams", type=int, default=100, help="concurrent event streams")
    parser.add_argument("--chunks", type=int, default=100, help="chunk events per streamed task")
    parser.add_argument("--step-delay", type=float, default=0.05, help="the platform's default step delay")
    parser.add_argument("--no-pin", action="store_true", help="leave both processes to the scheduler")
    parser.add_argument(
        "--aiohttp-only", action="store_true", help="drive create/get with aiohttp, not h2load"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        args.scratch = Path(scratch)
        body_file = args.scratch / "create.json"
        body_file.write_text(json.dumps(BODY))
        for result in asyncio.run(_run(args, body_file)):
            print(json.dumps(result))


if __name__ == "__main__":
    main()
