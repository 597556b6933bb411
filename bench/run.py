"""`make bench`: measure the bridge against the direct client and the official SDK; write the report.

Layout on this two-core machine: the bridge (or the baseline standing in for it) on core 0; the upstream and
the load generator on core 1. The upstream is `bench.responder`, replaying the local platform's captured
responses, because the local platform itself tops out far below what the bridge needs (both ceilings are
measured first and recorded). Closed-loop runs give maximum rates; open-loop runs at fixed offered rates give
latencies. Bridge and baseline runs alternate; medians of the rounds count.

Run: `python -m bench.run [--plan smoke|default|full] [--out DIR] [--no-wait] [--no-plots]`.
Writes DIR/results.json (every figure and the raw measurements), DIR/results.md and DIR/*.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import h2load, machine, profile
from bench.frames import (
    CREATE_PATH,
    GRPC_HEADERS,
    STREAM_PATH,
    create_task_request,
    stream_events_request,
    write_frame,
)
from bench.plan import PLANS, Plan
from bench.procs import PYTHON, ROOT, Child, free_port, run_json, set_log_dir
from bench.stats import percentiles

__all__ = ["Run", "main"]

BRIDGE_CORE = "0"
LOAD_CORE = "1"
SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"
QUIET_LOAD = 0.7


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _git_commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return done.stdout.strip() or "unknown"


class Run:
    """One benchmark run: its processes, its measurements and its results document."""

    def __init__(self, plan: Plan, out: Path, *, wait: bool, reuse_replay: Path | None = None) -> None:
        self.plan = plan
        self.reuse_replay = reuse_replay
        self.out = out
        self.work = out / "work.tmp"
        self.work.mkdir(parents=True, exist_ok=True)
        set_log_dir(self.work)
        self.wait = wait
        self.results: dict[str, Any] = {
            "meta": {
                "plan": plan.name,
                "command": "make bench"
                if plan.name == "default"
                else f"python -m bench.run --plan {plan.name}",
                "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "commit": _git_commit(),
                "machine": machine.describe(),
                "layout": f"bridge or baseline on core {BRIDGE_CORE}; upstream and load generator on core "
                f"{LOAD_CORE} (taskset)",
            },
            "phases": {},
            "runs": {},
        }
        self.responder: Child | None = None
        self.replay = out / "replay.json"
        self.org = "local-org"

    # --- plumbing ---------------------------------------------------------------------------------------

    @contextmanager
    def phase(self, name: str) -> Iterator[dict[str, Any]]:
        """Time a phase and record the load average it started under.

        Only the start of a run waits for a quiet machine: from then on the load average counts the run's own
        previous phase (both cores busy), so a phase's figure is informative, not a reason to wait.
        """
        load = machine.load_average()[0]
        record: dict[str, Any] = {"load_average_1m": round(load, 2)}
        self.results["phases"][name] = record
        _log(f"{name} (load {load:.2f})")
        started = time.monotonic()
        try:
            yield record
        finally:
            record["seconds"] = round(time.monotonic() - started, 1)

    def upstream_stats(self) -> dict[str, Any]:
        """The responder's request counters."""
        import urllib.request

        assert self.responder is not None
        with urllib.request.urlopen(f"{self.upstream_url}/_stats", timeout=5) as answer:
            stats: dict[str, Any] = json.loads(answer.read())
        return stats

    @property
    def upstream_url(self) -> str:
        assert self.responder is not None
        return f"http://127.0.0.1:{self.responder.port}"

    def bridge(self, name: str, flags: tuple[str, ...] = (), cores: str | None = BRIDGE_CORE) -> Child:
        """Start `xpander-bridge serve` against the responder with its defaults plus `flags`.

        Every bridge gets `--max-open-streams 0`: the default (1024) would shed M7's and M8's streams.
        """
        port = free_port()
        argv = [
            PYTHON,
            "-m",
            "bridge",
            "serve",
            "--listen",
            f"127.0.0.1:{port}",
            "--base-url",
            self.upstream_url,
        ]
        argv += ["--organization-id", self.org, "--shutdown-grace", "1", "--max-open-streams", "0", *flags]
        child = Child(name, argv, cores, env={"XPANDER_API_KEY": "bench-key"})
        child.start(announce=False, port=port)
        child.announcement = {"port": port}
        return child

    def client(self, argv: list[str], cores: str = LOAD_CORE, timeout: float = 600) -> dict[str, Any]:
        """Run a Python measuring client (bench.streams) pinned to the load core."""
        return run_json(["-m", *argv], cores, timeout)

    def grpc_h2load(
        self, port: int, path: str, data: Path, *, cores: str | None = LOAD_CORE, **options: Any
    ) -> h2load.H2loadResult:
        """h2load with gRPC headers against `path` on 127.0.0.1:`port`."""
        return h2load.run_h2load(
            f"http://127.0.0.1:{port}{path}", data=data, headers=GRPC_HEADERS, cores=cores, **options
        )

    def split(self, concurrency: int) -> tuple[int, int]:
        """Connections and streams per connection giving `concurrency` calls in flight."""
        clients = 4 if concurrency >= 8 else 1
        return clients, max(1, concurrency // clients)

    # --- steps ----------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Capture the local platform's responses and build the request frames."""
        with self.phase("prepare"):
            if self.reuse_replay is not None:
                self.replay.write_text(self.reuse_replay.read_text())
                self.results["meta"]["replay"] = f"reused {self.reuse_replay.name}"
            else:
                subprocess.run(
                    [PYTHON, "-m", "bench.capture", str(self.replay)], check=True, cwd=ROOT, env=_env()
                )
                self.results["meta"]["replay"] = "captured from the local platform at the start of the run"
            captured = json.loads(self.replay.read_text())
            self.org = captured["organization_id"]
            self.create_body = self.work / "create-body.json"
            self.create_body.write_text(json.dumps(captured["create_body"]))
            self.create_frame = write_frame(self.work / "create.bin", create_task_request())
            burst = f"burst-{self.plan.burst_events}-h2load"
            self.burst_frame = write_frame(self.work / "burst.bin", stream_events_request(burst))
            self.responder = Child(
                "responder", [PYTHON, "-m", "bench.responder", "--replay", str(self.replay)], LOAD_CORE
            ).start()

    def upstream_ceilings(self) -> None:
        """The local platform's and the responder's own maximum create rates (load on the bridge's core)."""
        plan = self.plan
        runs: dict[str, Any] = {}
        with self.phase("upstream ceilings"):
            headers = ("content-type: application/json", "x-api-key: bench-key")
            port = free_port()
            local = Child(
                "local-platform",
                [PYTHON, "-m", "bridge", "local-platform", "--listen", f"127.0.0.1:{port}"],
                LOAD_CORE,
            )
            with local.start(announce=False, port=port):
                result = h2load.run_h2load(
                    f"http://127.0.0.1:{port}/agent-execution/demo-agent",
                    data=self.create_body,
                    headers=headers,
                    requests=plan.upstream_requests // 4,
                    clients=min(plan.concurrency, 100),
                    streams=1,
                    h1=True,
                    cores=BRIDGE_CORE,
                )
            runs["local_platform"] = result.as_dict()
            result = h2load.run_h2load(
                f"{self.upstream_url}/agent-execution/demo-agent",
                data=self.create_body,
                headers=headers,
                requests=plan.upstream_requests,
                clients=min(plan.concurrency, 100),
                streams=1,
                h1=True,
                cores=BRIDGE_CORE,
            )
            runs["responder"] = result.as_dict()
        self.results["runs"]["upstream"] = runs

    def sample(self, bridge: Child) -> dict[str, Any]:
        """Statuses and response sizes of a few calls through `bridge`; keeps its responses for rawgrpc."""
        dump = self.work / "messages.json"
        result = self.client(
            [
                "bench.streams",
                "sample",
                "--target",
                f"127.0.0.1:{bridge.port}",
                "--burst",
                str(self.plan.burst_events),
                "--dump",
                str(dump),
            ]
        )
        if result["create_codes"] != {"OK": 5} or result["stream_codes"] != {"OK": 1}:
            raise RuntimeError(f"the bridge does not answer correctly: {result}")
        self.create_bytes = int(result["create_response_frame_bytes"])
        self.stream_bytes = int(result["stream_frame_bytes"])
        self.stream_events = int(result["stream_events"])
        self.messages = dump
        # uvloop's extension module is mapped into the process only when the bridge runs on it.
        maps = Path(f"/proc/{bridge.pid}/maps").read_text()
        self.results["meta"]["bridge_event_loop"] = "uvloop" if "uvloop" in maps else "asyncio"
        return result

    def bridge_closed(self, bridge: Child, requests: int, concurrency: int) -> dict[str, Any]:
        """Closed-loop CreateTask through the bridge; gRPC successes counted from response bytes."""
        clients, streams = self.split(concurrency)
        before = self.upstream_stats()["requests"].get("create_task", 0)
        result = self.grpc_h2load(
            bridge.port, CREATE_PATH, self.create_frame, requests=requests, clients=clients, streams=streams
        )
        after = self.upstream_stats()["requests"].get("create_task", 0)
        return self._create_figures(result, upstream=after - before)

    def _create_figures(self, result: h2load.H2loadResult, upstream: int | None = None) -> dict[str, Any]:
        ok = result.data_bytes // self.create_bytes if self.create_bytes else 0
        figures = result.as_dict()
        figures["grpc_ok"] = ok
        figures["grpc_errors"] = result.done - ok
        figures["upstream_creates"] = upstream
        figures["ok_per_s"] = round(ok / result.seconds, 1) if result.seconds else 0.0
        return figures

    def bridge_open(self, bridge: Child, rate: float, seconds: float) -> dict[str, Any]:
        """Open-loop CreateTask at `rate` calls/s through one connection; the first second is warm-up."""
        rate_int = max(1, round(rate))
        total = round(rate_int * (seconds + 1))
        result = self.grpc_h2load(
            bridge.port,
            CREATE_PATH,
            self.create_frame,
            requests=total,
            clients=1,
            streams=max(64, self.plan.concurrency),
            rps_per_client=rate_int,
        )
        figures = self._create_figures(result)
        kept = result.latencies_us[rate_int:]
        figures["offered_rate"] = rate_int
        figures["latency_ms"] = percentiles([us / 1000 for us in kept]).as_dict()
        return figures

    def direct(self, mode: str, *options: str) -> dict[str, Any]:
        """The direct-client baseline on the bridge's core (on the bridge's own transport)."""
        argv = ["-m", "bench.direct", mode, "--base-url", self.upstream_url]
        return run_json([*argv, *options], BRIDGE_CORE, timeout=900)

    def sdk(self, mode: str, *options: str) -> dict[str, Any] | None:
        """The official SDK baseline on the bridge's core; None when `.venv-sdk` is missing."""
        if not SDK_PYTHON.exists():
            return None
        argv = ["-m", "bench.sdk_client", mode, "--base-url", self.upstream_url, *options]
        return run_json(argv, BRIDGE_CORE, timeout=900, python=str(SDK_PYTHON))

    def throughput(self, bridge: Child) -> None:
        """M1, M2: alternating closed-loop rounds of the bridge, the direct client and the SDK."""
        plan = self.plan
        rounds: list[dict[str, Any]] = []
        with self.phase("CreateTask max throughput (M1, M2)"):
            for _ in range(plan.rounds):
                entry: dict[str, Any] = {
                    "bridge": self.bridge_closed(bridge, plan.bridge_requests, plan.concurrency),
                    "direct": self.direct(
                        "closed",
                        "--requests",
                        str(plan.direct_requests),
                        "--concurrency",
                        str(plan.concurrency),
                    ),
                    "sdk": self.sdk(
                        "closed",
                        "--requests",
                        str(plan.sdk_requests),
                        "--concurrency",
                        str(plan.sdk_concurrency),
                    ),
                }
                rounds.append(entry)
        self.results["runs"]["throughput"] = rounds
        with self.phase("raw grpc.aio CreateTask ceiling (M1 bound)"), self.raw_grpc("uvloop") as raw:
            # The same h2load load against a server answering from memory: what grpc.aio alone costs a call.
            self.grpc_h2load(raw.port, CREATE_PATH, self.create_frame, requests=plan.bridge_requests // 3)
            clients, streams = self.split(plan.concurrency)
            result = self.grpc_h2load(
                raw.port,
                CREATE_PATH,
                self.create_frame,
                requests=plan.bridge_requests,
                clients=clients,
                streams=streams,
            )
        self.results["runs"]["raw_unary"] = self._create_figures(result)
        self.bridge_max = _median([r["bridge"]["ok_per_s"] for r in rounds])
        self.direct_max = _median([r["direct"]["req_per_s"] for r in rounds])
        sdk_rates = [r["sdk"]["req_per_s"] for r in rounds if r["sdk"]]
        self.sdk_max = _median(sdk_rates) if sdk_rates else None

    def latency_curve(self, bridge: Child) -> None:
        """M3, M4: open-loop latency of the bridge and the direct client at the same offered rates."""
        plan = self.plan
        rates: list[tuple[float | None, float]] = [(None, plan.low_rate)]
        rates += [(f, max(1, round(f * self.bridge_max))) for f in plan.rate_fractions]
        points: list[dict[str, Any]] = []
        with self.phase("CreateTask latency vs offered rate (M3, M4)"):
            for fraction, rate in rates:
                points.append(
                    {
                        "fraction": fraction,
                        "offered_rate": rate,
                        "bridge": self.bridge_open(bridge, rate, plan.open_seconds),
                        "direct": self.direct(
                            "open", "--rate", str(rate), "--seconds", str(plan.open_seconds)
                        ),
                    }
                )
        self.results["runs"]["latency_curve"] = points
        half = next((p["offered_rate"] for p in points if p["fraction"] == 0.5), None)
        with self.phase("raw grpc.aio CreateTask latency (M3, M4 bounds)"), self.raw_grpc("uvloop") as raw:
            # What the gRPC hop alone adds at the same offered rates, answered from memory.
            raw_points = {"low": self.bridge_open(raw, plan.low_rate, plan.open_seconds)}
            if half is not None:
                raw_points["half"] = self.bridge_open(raw, half, plan.open_seconds)
        self.results["runs"]["raw_latency"] = raw_points

    def event_latency(self, bridge: Child) -> None:
        """M5: upstream write -> gRPC client latency of chunk events, with the direct SSE client beside it."""
        plan = self.plan
        options = [
            "--streams",
            str(plan.m5_streams),
            "--hz",
            str(plan.m5_hz),
            "--events",
            str(plan.m5_events),
        ]
        with self.phase("event latency (M5)"):
            through_bridge = self.client(
                ["bench.streams", "latency", "--target", f"127.0.0.1:{bridge.port}", *options]
            )
            direct = self.direct("event-latency", *options)
        self.results["runs"]["event_latency"] = {"bridge": through_bridge, "direct": direct}

    def bridge_burst(self, port: int) -> dict[str, Any]:
        """`burst_streams` concurrent StreamEvents of `burst_events` chunks each: events per second."""
        plan = self.plan
        result = self.grpc_h2load(
            port,
            STREAM_PATH,
            self.burst_frame,
            requests=plan.burst_streams,
            clients=1,
            streams=plan.burst_streams,
        )
        ok = result.data_bytes // self.stream_bytes if self.stream_bytes else 0
        events = ok * self.stream_events
        figures = result.as_dict()
        figures.update(
            grpc_ok_streams=ok,
            grpc_errors=result.done - ok,
            events=events,
            events_per_s=round(events / result.seconds, 1) if result.seconds else 0.0,
        )
        return figures

    def raw_grpc(self, loop: str) -> Child:
        """The grpc.aio ceiling server on the bridge's core, sending the bridge's own messages."""
        argv = [PYTHON, "-m", "bench.rawgrpc", "--replay", str(self.replay), "--messages", str(self.messages)]
        return Child(f"rawgrpc-{loop}", [*argv, "--loop", loop], BRIDGE_CORE).start()

    def events_throughput(self, bridge: Child) -> None:
        """M6: events/s through the bridge vs the raw grpc.aio server-streaming ceiling, measured alike."""
        plan = self.plan
        rounds: list[dict[str, Any]] = []
        with self.phase("events per second (M6)"):
            for _ in range(max(1, plan.rounds - 1)):
                with self.raw_grpc("asyncio") as raw:
                    ceiling = self.bridge_burst(raw.port)
                rounds.append({"bridge": self.bridge_burst(bridge.port), "raw_asyncio": ceiling})
            with self.raw_grpc("uvloop") as raw:
                raw_uvloop = self.bridge_burst(raw.port)
            options = ["--streams", str(plan.burst_streams), "--events", str(plan.burst_events)]
            direct = self.direct("events", *options)
            sdk = None
            if plan.sdk_events:
                streams = str(min(plan.burst_streams, 20))
                sdk = self.sdk("events", "--streams", streams, "--events", str(plan.burst_events))
        self.results["runs"]["events"] = {
            "rounds": rounds,
            "raw_uvloop": raw_uvloop,
            "direct_sse": direct,
            "sdk": sdk,
        }

    def streams_under_load(self, bridge: Child) -> None:
        """M8: CreateTask p50 at the low rate with `m8_streams` idle streams open vs with none."""
        plan = self.plan
        with self.phase("CreateTask with open streams (M8)"):
            without = self.bridge_open(bridge, plan.low_rate, plan.open_seconds)
            # Opened gently: M8 asks what open streams cost calls, not how fast they open (that is M7).
            holder = self._open_streams(bridge, plan.m8_streams, plan.m8_rate, hold=None)
            try:
                ready = holder.announcement
                with_streams = self.bridge_open(bridge, plan.low_rate, plan.open_seconds)
            finally:
                final = self._release(holder)
        self.results["runs"]["streams_under_load"] = {
            "without": without,
            "with": with_streams,
            "streams": {"opened": ready, "released": final},
        }

    def _open_streams(self, bridge: Child, streams: int, rate: float, hold: float | None) -> Child:
        argv = [PYTHON, "-m", "bench.streams", "open", "--target", f"127.0.0.1:{bridge.port}"]
        argv += ["--streams", str(streams), "--rate", str(rate), "--pid", str(bridge.pid)]
        if hold is not None:
            argv += ["--hold", str(hold)]
        holder = Child("streams-open", argv, LOAD_CORE)
        holder.start(stdin=True, timeout=streams / rate + 120)
        return holder

    def _release(self, holder: Child) -> dict[str, Any]:
        final: dict[str, Any] = holder.finish(timeout=120)
        return final

    def profiles(self, bridge: Child) -> None:
        """py-spy profiles of the bridge under CreateTask load and under event streaming."""
        if not profile.available():
            self.results["profiles"] = {"skipped": "py-spy is not installed"}
            return
        plan = self.plan
        found: dict[str, Any] = {}
        with self.phase("profiles"):
            output = self.work / "profile-create.txt"
            sampler = profile.record(bridge.pid, 6, output)
            time.sleep(0.5)
            self.bridge_closed(bridge, int(self.bridge_max * 6), plan.concurrency)
            sampler.wait(30)
            found["create_task"] = profile.summarise(output)
            output = self.work / "profile-events.txt"
            sampler = profile.record(bridge.pid, 6, output)
            time.sleep(0.5)
            deadline = time.monotonic() + 5.5
            while time.monotonic() < deadline:
                self.bridge_burst(bridge.port)
            sampler.wait(30)
            found["stream_events"] = profile.summarise(output)
        self.results["profiles"] = found

    def idle_streams(self) -> None:
        """M7: idle StreamEvents opened at `m7_rate`/s in a fresh bridge; errors and the bridge's RSS."""
        self.results["runs"]["idle_streams"] = self._idle_streams("idle streams (M7)", ())

    def _idle_streams(self, phase: str, flags: tuple[str, ...]) -> dict[str, Any]:
        plan = self.plan
        with self.phase(phase), self.bridge("bridge-m7", flags) as bridge:
            rss_start = machine.rss_bytes(bridge.pid)
            holder = self._open_streams(bridge, plan.m7_streams, plan.m7_rate, hold=2.0)
            opened = holder.announcement
            final = self._release(holder)
            stats = self.upstream_stats()
        return {
            "flags": list(flags),
            "bridge_rss_start_mb": round(rss_start / 2**20, 1),
            "opened": opened,
            "released": final,
            "upstream_after": stats,
        }

    def cycles(self) -> None:
        """M9: RSS growth of a fresh bridge over open/cancel cycles, after warm-up."""
        plan = self.plan
        with self.phase("open/cancel cycles (M9)"), self.bridge("bridge-m9") as bridge:
            result = self.client(
                [
                    "bench.streams",
                    "cycles",
                    "--target",
                    f"127.0.0.1:{bridge.port}",
                    "--cycles",
                    str(plan.m9_cycles),
                    "--warm-up",
                    str(plan.m9_warm_up),
                    "--pid",
                    str(bridge.pid),
                ],
                timeout=1800,
            )
        self.results["runs"]["cycles"] = result

    def workers(self) -> None:
        """M10: `--workers 2` vs one worker, the bridge given both cores, h2load and upstream unpinned."""
        plan = self.plan
        found: dict[str, Any] = {}
        with self.phase("workers (M10)"):
            for workers in (1, 2, 1, 2):
                with self.bridge(f"bridge-w{workers}", ("--workers", str(workers)), cores=None) as bridge:
                    time.sleep(1.0 if workers > 1 else 0.2)
                    result = self.grpc_h2load(
                        bridge.port,
                        CREATE_PATH,
                        self.create_frame,
                        cores=None,
                        requests=plan.bridge_requests * 2,
                        clients=8,
                        streams=max(1, plan.concurrency // 8),
                    )
                found.setdefault(str(workers), []).append(self._create_figures(result))
        self.results["runs"]["workers"] = found

    PROPOSALS: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("defaults", ()),
        ("--no-uvloop", ("--no-uvloop",)),
        ("--log-level WARNING", ("--log-level", "WARNING")),
    )

    def proposals(self) -> None:
        """The bridge's own options that change its speed, each measured against the defaults."""
        plan = self.plan
        found: dict[str, Any] = {}
        with self.phase("proposals"):
            for name, flags in self.PROPOSALS:
                with self.bridge("bridge-variant", flags) as bridge:
                    maps = Path(f"/proc/{bridge.pid}/maps").read_text()
                    found[name] = {
                        "flags": list(flags),
                        "event_loop": "uvloop" if "uvloop" in maps else "asyncio",
                        "closed": self.bridge_closed(bridge, plan.bridge_requests, plan.concurrency),
                        "low_rate": self.bridge_open(bridge, plan.low_rate, plan.open_seconds),
                        "burst": self.bridge_burst(bridge.port),
                    }
        self.results["proposals"] = found

    def levers(self) -> None:
        """The issue's known levers, each verified by a micro-benchmark (bench.levers)."""
        import bench.levers as levers

        with self.phase("levers"):
            self.results["levers"] = levers.run_all(self)

    # --- the whole run ------------------------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        """Every step in order; returns the results document (figures included)."""
        plan = self.plan
        start_load = (
            machine.wait_for_quiet(QUIET_LOAD, 1200) if self.wait else (machine.load_average()[0], False)
        )
        self.results["meta"]["load_average_at_start"] = round(start_load[0], 2)
        # The tree may have moved while the run waited for a quiet machine: name what is measured.
        self.results["meta"]["commit"] = _git_commit()
        self.results["meta"]["measuring_from"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.prepare()
        try:
            self.upstream_ceilings()
            with self.bridge("bridge") as bridge:
                self.results["runs"]["sample"] = self.sample(bridge)
                self.throughput(bridge)
                self.latency_curve(bridge)
                self.event_latency(bridge)
                self.events_throughput(bridge)
                # Profiled before M8: cancelling its 2,000 streams keeps the bridge busy for a while after.
                if plan.profiles:
                    self.profiles(bridge)
                self.streams_under_load(bridge)
            self.idle_streams()
            self.cycles()
            if plan.m10:
                self.workers()
            if plan.proposals:
                self.proposals()
            if plan.levers:
                self.levers()
        finally:
            if self.responder is not None:
                self.responder.stop()
        self.results["meta"]["load_average_at_end"] = round(machine.load_average()[0], 2)
        self.results["meta"]["commit_at_end"] = _git_commit()
        self.results["meta"]["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        from bench.report import figures

        self.results["figures"] = figures(self.results)
        return self.results


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "generated"), env.get("PYTHONPATH", "")])
    return env


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.run`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", choices=sorted(PLANS), default="default")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--replay", type=Path, help="replay this capture instead of capturing afresh")
    args = parser.parse_args(argv)
    if not h2load.available():
        print(
            "bench: h2load is missing (Debian package nghttp2-client; `make bench` installs it)",
            file=sys.stderr,
        )
        return 2
    # A stopped run still stops its children: SystemExit unwinds every `with Child(...)` block.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    run = Run(PLANS[args.plan], args.out, wait=not args.no_wait, reuse_replay=args.replay)
    results = run.execute()
    from bench.report import write_report

    write_report(results, args.out, plots=not args.no_plots)
    _log(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
