"""The processes and measuring steps of a run: the bridge (or the baseline standing in for it) on core 0, the
upstream and the load generators on core 1. The bridge under test may come from another checkout (`tree`);
all else, the baselines included, comes from this one, so that two runs compare the bridges alone."""

import json
import urllib.request
from pathlib import Path
from typing import Any

from bench import h2load
from bench.frames import CREATE_PATH, STREAM_PATH, create_task_request, write_frame
from bench.plan import Plan
from bench.procs import PYTHON, ROOT, Child, free_port, log_dir, module, run_json
from xpander.bridge.v1 import task_service_pb2

BRIDGE_CORE = "0"
LOAD_CORE = "1"
_SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"


class Session:
    """The upstream (a responder replaying the local platform's answers) and the ways of measuring."""

    def __init__(self, plan: Plan, work: Path, tree: Path) -> None:
        self.plan, self.tree, replay = plan, tree, log_dir(work) / "replay.json"
        self.responder = self.server("bench.responder", LOAD_CORE, replay=replay)
        self.upstream_url = f"http://127.0.0.1:{self.responder.port}"
        self.org: str = json.loads(replay.read_text())["organization_id"]
        self.create_frame = write_frame(work / "create.bin", create_task_request())
        burst = task_service_pb2.StreamEventsRequest(task_id=f"burst-{plan.burst_events}-h2load")
        self.burst_frame = write_frame(work / "burst.bin", burst)
        self.messages = work / "messages.json"
        self.create_bytes = self.stream_bytes = self.stream_events = 0

    def server(self, name: str, cores: str | None = BRIDGE_CORE, **options: Any) -> Child:
        """Harness module `name` serving on a free port, started."""
        port = free_port()
        return Child(name, module(name, {**options, "port": port}), cores, port).start()

    def bridge(self, name: str, *extra: str, cores: str | None = BRIDGE_CORE) -> Child:
        """`xpander-bridge serve` from the checkout under test against the responder, with `extra` flags."""
        port, upstream = free_port(), ["--base-url", self.upstream_url, "--organization-id", self.org]
        argv = [PYTHON, "-m", "bridge", "serve", "--listen", f"127.0.0.1:{port}", "--shutdown-grace", "1"]
        # The default --max-open-streams (1,024) would shed the streams of M7 and M8.
        argv += [*upstream, "--max-open-streams", "0", *extra]
        return Child(name, argv, cores, port, self.tree).start()

    def raw_grpc(self, loop: str) -> Child:
        """grpc.aio alone on the bridge's core, sending the bridge's own messages."""
        return self.server("bench.rawgrpc", messages=self.messages, loop=loop)

    def client(self, command: str, bridge: Child, **options: Any) -> dict[str, Any]:
        """A `bench.streams` command against `bridge`, from the load core."""
        target = {"command": command, "target": f"127.0.0.1:{bridge.port}", "pid": bridge.pid}
        return run_json(module("bench.streams", {**target, **options}), LOAD_CORE)

    def sample(self, bridge: Child) -> dict[str, Any]:
        """Sizes of the bridge's answers (to count gRPC successes from bytes); keeps them for `raw_grpc`."""
        result = self.client("sample", bridge, events=self.plan.burst_events)
        self.messages.write_text(json.dumps(result.pop("messages")))
        self.create_bytes, self.stream_bytes = result["create_frame_bytes"], result["stream_frame_bytes"]
        self.stream_events = len(json.loads(self.messages.read_text())["events"])
        # uvloop's extension module is mapped into the process only when the bridge runs on it.
        uvloop = "uvloop" in Path(f"/proc/{bridge.pid}/maps").read_text()
        return {**result, "event_loop": "uvloop" if uvloop else "asyncio"}

    def upstream_creates(self) -> int:
        """How many tasks the responder has created so far."""
        with urllib.request.urlopen(f"{self.upstream_url}/_stats", timeout=5) as answer:
            return int(json.loads(answer.read())["requests"].get("create_task", 0))

    def _creates(self, port: int, cores: str | None, skip: int = 0, **options: int) -> dict[str, Any]:
        run = h2load.run_h2load(
            f"http://127.0.0.1:{port}{CREATE_PATH}", self.create_frame, cores, skip, **options
        )
        ok = run["data_bytes"] // self.create_bytes
        return {**run, "grpc_errors": run["done"] - ok, "ok_per_s": round(ok / run["seconds"], 1)}

    def closed(self, port: int, cores: str | None = LOAD_CORE, clients: int = 4) -> dict[str, Any]:
        """Closed-loop CreateTask at the plan's concurrency, with the upstream's count of creates."""
        before, streams = self.upstream_creates(), self.plan.concurrency // clients
        found = self._creates(port, cores, requests=self.plan.requests, clients=clients, streams=streams)
        return {**found, "upstream_creates": self.upstream_creates() - before}

    def open(self, port: int, rate: int) -> dict[str, Any]:
        """Open-loop CreateTask at `rate` calls/s through one connection; the first second is warm-up."""
        requests, streams = round(rate * (self.plan.open_seconds + 1)), max(64, self.plan.concurrency)
        return {
            **self._creates(port, LOAD_CORE, rate, requests=requests, streams=streams, rps=rate),
            "offered_rate": rate,
        }

    def burst(self, port: int) -> dict[str, Any]:
        """`burst_streams` concurrent StreamEvents of `burst_events` chunks each: events per second."""
        url, streams = f"http://127.0.0.1:{port}{STREAM_PATH}", self.plan.burst_streams
        run = h2load.run_h2load(url, self.burst_frame, LOAD_CORE, requests=streams, streams=streams)
        ok = run["data_bytes"] // self.stream_bytes
        rate = round(ok * self.stream_events / run["seconds"], 1)
        return {**run, "grpc_errors": run["done"] - ok, "events_per_s": rate}

    def direct(self, mode: str, **options: Any) -> dict[str, Any]:
        """The direct-client baseline on the bridge's core."""
        upstream = {"mode": mode, "base_url": self.upstream_url, "organization": self.org}
        return run_json(module("bench.direct", {**upstream, **options}), BRIDGE_CORE)

    def sdk(self) -> dict[str, Any] | None:
        """The official SDK's closed-loop create rate on the bridge's core; None without `.venv-sdk`."""
        if not _SDK_PYTHON.exists():
            return None
        sizes = {"requests": self.plan.requests // 20, "concurrency": self.plan.concurrency}
        options = {"base_url": self.upstream_url, "organization": self.org, **sizes}
        return run_json(module("bench.sdk_client", options, str(_SDK_PYTHON)), BRIDGE_CORE)

    def hold_streams(self, bridge: Child, streams: int, rate: int, hold: float | None = None) -> Child:
        """A client on the load core opening `streams` idle streams at `rate`/s and holding them (until
        `finish()`, or for `hold` seconds)."""
        options = {"command": "open", "target": f"127.0.0.1:{bridge.port}", "pid": bridge.pid, "hold": hold}
        argv = module("bench.streams", {**options, "streams": streams, "rate": rate})
        return Child("streams-open", argv, LOAD_CORE).start(holding=True, timeout=streams / rate + 120)
