"""The issue's known levers, each checked by a micro-benchmark on this machine (nothing assumed).

- sniffio: httpx (as the platform client uses it) with and without `sniffio` importable;
- HTTP client at concurrency 1 and 100: httpx's pool, httpx on aiohttp transports, aiohttp itself;
- long-lived SSE streams in the unary pool vs in a pool of their own;
- uvloop under grpc.aio: the raw ceiling server, unary and streaming, on both loops;
- protobuf construction: the bridge's constructors vs `json_format.ParseDict`, and a Struct per event;
- `CancelledError` swallowed vs re-raised in a streaming handler: memory over open/cancel cycles.

Each child process runs pinned to the bridge's core; the responder stays on the load core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.procs import run_json

if TYPE_CHECKING:
    from bench.run import Run

__all__ = ["run_all"]

_CORE = "0"


def _http(
    run: Run, kind: str, concurrency: int, requests: int, *extra: str, hide: str | None = None
) -> dict[str, Any]:
    argv = ["-m", "bench.http_clients", "--kind", kind, "--url", run.upstream_url]
    argv += [
        "--body",
        str(run.create_body),
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        *extra,
    ]
    if hide is not None:
        argv = ["-m", "bench.without_module", hide, *argv[1:]]
    return run_json(argv, _CORE, timeout=600)


def sniffio(run: Run) -> dict[str, Any]:
    """httpx create-task throughput with and without sniffio importable."""
    found: dict[str, Any] = {}
    for concurrency in (1, 10):
        found[f"c{concurrency} with sniffio"] = _http(run, "httpx", concurrency, 4000)
        found[f"c{concurrency} without sniffio"] = _http(run, "httpx", concurrency, 4000, hide="sniffio")
    gains = [
        found[f"c{c} with sniffio"]["req_per_s"] / found[f"c{c} without sniffio"]["req_per_s"]
        for c in (1, 10)
    ]
    found["summary"] = (
        "httpx with sniffio installed: "
        + ", ".join(
            f"c={c}: {found[f'c{c} with sniffio']['req_per_s']:.0f} vs "
            f"{found[f'c{c} without sniffio']['req_per_s']:.0f} req/s without ({g:.2f}x)"
            for c, g in zip((1, 10), gains, strict=True)
        )
        + ". The project depends on sniffio explicitly (pyproject.toml)."
    )
    return found


def http_clients(run: Run) -> dict[str, Any]:
    """Create-task throughput and tail latency of each HTTP client at concurrency 1 and 100."""
    found: dict[str, Any] = {}
    for kind in ("httpx", "bridge-aiohttp", "httpx-aiohttp", "aiohttp"):
        for concurrency, requests in ((1, 3000), (100, 6000)):
            found[f"{kind} c{concurrency}"] = _http(run, kind, concurrency, requests)
    parts = []
    for kind in ("httpx", "bridge-aiohttp", "httpx-aiohttp", "aiohttp"):
        one, hundred = found[f"{kind} c1"], found[f"{kind} c100"]
        parts.append(
            f"{kind}: {one['req_per_s']:.0f} req/s at c=1, {hundred['req_per_s']:.0f} req/s at c=100 "
            f"(p99 {hundred['latency_ms']['p99']:.0f} ms)"
        )
    found["summary"] = "; ".join(parts) + "."
    return found


def sse_pool(run: Run) -> dict[str, Any]:
    """Unary throughput with 500 idle SSE streams in the same httpx pool vs in a separate client."""
    found: dict[str, Any] = {
        "none": _http(run, "httpx", 10, 4000),
        "shared pool": _http(run, "httpx", 10, 4000, "--idle-streams", "500", "--streams-pool", "shared"),
        "separate client": _http(
            run, "httpx", 10, 4000, "--idle-streams", "500", "--streams-pool", "separate"
        ),
    }
    found["summary"] = (
        "httpx at c=10 with 500 idle SSE streams in its own pool: "
        f"{found['shared pool']['req_per_s']:.0f} req/s "
        f"(p99 {found['shared pool']['latency_ms']['p99']:.1f} ms); "
        f"streams in a separate client: {found['separate client']['req_per_s']:.0f} req/s "
        f"(p99 {found['separate client']['latency_ms']['p99']:.1f} ms); no streams: "
        f"{found['none']['req_per_s']:.0f} req/s. The platform client already keeps them apart."
    )
    return found


def uvloop(run: Run) -> dict[str, Any]:
    """The raw grpc.aio server on asyncio vs uvloop: CreateTask closed loop and event bursts."""
    plan = run.plan
    found: dict[str, Any] = {}
    clients, streams = run.split(plan.concurrency)
    for loop in ("asyncio", "uvloop", "asyncio", "uvloop"):
        with run.raw_grpc(loop) as raw:
            from bench.frames import CREATE_PATH

            unary = run.grpc_h2load(
                raw.port, CREATE_PATH, run.create_frame, requests=10_000, clients=clients, streams=streams
            )
            burst = run.bridge_burst(raw.port)
        found.setdefault(loop, []).append(
            {"unary_req_per_s": unary.req_per_s, "events_per_s": burst["events_per_s"]}
        )
    best = {
        loop: {k: max(r[k] for r in found[loop]) for k in found[loop][0]} for loop in ("asyncio", "uvloop")
    }
    found["best"] = best
    found["summary"] = (
        f"raw grpc.aio CreateTask {best['asyncio']['unary_req_per_s']:.0f} req/s on asyncio vs "
        f"{best['uvloop']['unary_req_per_s']:.0f} on uvloop "
        f"({best['uvloop']['unary_req_per_s'] / best['asyncio']['unary_req_per_s'] - 1:+.0%}); events "
        f"{best['asyncio']['events_per_s']:.0f}/s vs {best['uvloop']['events_per_s']:.0f}/s "
        f"({best['uvloop']['events_per_s'] / best['asyncio']['events_per_s'] - 1:+.0%})."
    )
    return found


def constructors(run: Run) -> dict[str, Any]:
    """Microseconds per conversion step (bench.convert_micro)."""
    found = run_json(["-m", "bench.convert_micro", "--replay", str(run.replay)], _CORE, timeout=300)
    found["summary"] = (
        f"Task from platform JSON: {found['task_from_platform (constructors)']} us with constructors vs "
        f"{found['task via json_format.ParseDict']} us with ParseDict; a task_created event "
        f"{found['task_created event_from_platform']} us typed vs its data as a Struct "
        f"{found['task data as Struct (Struct.update)']} us (Struct.update) / "
        f"{found['task data as Struct (ParseDict)']} us (ParseDict). The bridge uses constructors."
    )
    return found


def cancelled_error(run: Run) -> dict[str, Any]:
    """RSS of the raw server over open/cancel cycles, re-raising vs swallowing CancelledError."""
    cycles = max(2000, run.plan.m9_cycles)
    found: dict[str, Any] = {}
    for swallow in (False, True):
        from bench.procs import PYTHON, Child

        argv = [PYTHON, "-m", "bench.rawgrpc", "--replay", str(run.replay), "--messages", str(run.messages)]
        if swallow:
            argv.append("--swallow-cancel")
        with Child("rawgrpc-cancel", argv, _CORE).start() as raw:
            found["swallowed" if swallow else "re-raised"] = run.client(
                [
                    "bench.streams",
                    "cycles",
                    "--target",
                    f"127.0.0.1:{raw.port}",
                    "--cycles",
                    str(cycles),
                    "--warm-up",
                    str(cycles // 10),
                    "--pid",
                    str(raw.pid),
                ],
                timeout=1200,
            )
    kept, lost = found["re-raised"], found["swallowed"]
    found["summary"] = (
        f"over {cycles:,} open/cancel cycles of a grpc.aio streaming handler, RSS grew "
        f"{100 * kept['rss_growth']:+.1f} % when CancelledError propagates and "
        f"{100 * lost['rss_growth']:+.1f} % when the handler swallows it and returns."
    )
    return found


def run_all(run: Run) -> dict[str, Any]:
    """Every lever's micro-benchmark."""
    return {
        "sniffio": sniffio(run),
        "HTTP client at concurrency 100": http_clients(run),
        "SSE streams in the unary pool": sse_pool(run),
        "uvloop under grpc.aio": uvloop(run),
        "constructors vs ParseDict": constructors(run),
        "re-raise CancelledError": cancelled_error(run),
    }
