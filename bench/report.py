"""The figures M1..M10 from a run's measurements, and the report: results.json, results.md and PNG plots."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

__all__ = ["TARGETS", "figures", "markdown", "write_report"]

TARGETS: dict[str, tuple[str, str]] = {
    "M1": ("CreateTask max throughput, bridge ÷ direct client", "≥ 0.70"),
    "M2": ("CreateTask max throughput, bridge ÷ official SDK `acreate_task`", "≥ 1.0"),
    "M3": ("added latency at low load: p50 - p50; p99 - p99", "≤ 0.5 ms; ≤ 1.5 ms"),
    "M4": ("p99 at half the bridge's max rate", "≤ 10 ms and ≤ 3x direct p99"),
    "M5": ("event latency upstream write → gRPC client, 100 streams x 10 events/s", "p50 ≤ 1 ms, p99 ≤ 5 ms"),
    "M6": ("events/s forwarded ÷ raw grpc.aio server-streaming ceiling", "≥ 0.6"),
    "M7": ("concurrent idle StreamEvents in one process", "≥ 10,000 at ≥ 1,000/s, no error, RSS ≤ 600 MB"),
    "M8": ("CreateTask p50 with 2,000 streams open ÷ with none", "≤ 1.2"),
    "M9": ("RSS growth over 100,000 open/cancel cycles after warm-up", "≤ 10 %"),
    "M10": ("`--workers 2` CreateTask throughput ÷ one worker", "reported"),
}


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def _figure(key: str, value: str, holds: bool | None, **details: Any) -> dict[str, Any]:
    name, target = TARGETS[key]
    return {"figure": name, "target": target, "value": value, "holds": holds, "details": details}


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def _m1_m2(runs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    rounds = runs.get("throughput", [])
    bridge = _median([r["bridge"]["ok_per_s"] for r in rounds])
    direct = _median([r["direct"]["req_per_s"] for r in rounds])
    sdk_values = [r["sdk"]["req_per_s"] for r in rounds if r.get("sdk")]
    sdk = _median(sdk_values) if sdk_values else None
    errors = sum(r["bridge"]["grpc_errors"] for r in rounds)
    m1 = _ratio(bridge, direct)
    m2 = _ratio(bridge, sdk)
    raw = (runs.get("raw_unary") or {}).get("ok_per_s")
    # A bridge on one core spends at least what grpc.aio alone spends per call plus what the direct client
    # spends per request: 1/raw + 1/direct seconds. Its best possible M1 is therefore direct / that sum.
    bound = _ratio(1.0, direct * (1.0 / raw + 1.0 / direct)) if raw and direct else None
    return (
        _figure(
            "M1",
            f"{m1:.2f} ({bridge:.0f} ÷ {direct:.0f} calls/s)" if m1 is not None else "not measured",
            None if m1 is None else m1 >= 0.70 and errors == 0,
            ratio=m1,
            bridge_per_s=bridge,
            direct_per_s=direct,
            direct_transport=rounds[0]["direct"].get("transport") if rounds else None,
            bridge_grpc_errors=errors,
            raw_grpc_unary_per_s=raw,
            m1_bound=bound,
        ),
        _figure(
            "M2",
            f"{m2:.1f} ({bridge:.0f} ÷ {sdk:.0f} calls/s)" if m2 is not None and sdk else "not measured",
            None if m2 is None else m2 >= 1.0,
            ratio=m2,
            bridge_per_s=bridge,
            sdk_per_s=sdk,
        ),
    )


def _m3_m4(runs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    points = runs.get("latency_curve", [])
    if not points:
        return _figure("M3", "not measured", None), _figure("M4", "not measured", None)
    low = points[0]
    b, d = low["bridge"]["latency_ms"], low["direct"]["latency_ms"]
    d50, d99 = b["p50"] - d["p50"], b["p99"] - d["p99"]
    raw = runs.get("raw_latency") or {}
    raw_low = raw["low"]["latency_ms"] if "low" in raw else None
    raw_half = raw["half"]["latency_ms"] if "half" in raw else None
    m3 = _figure(
        "M3",
        f"{d50:+.2f} ms; {d99:+.2f} ms (at {low['offered_rate']}/s)",
        d50 <= 0.5 and d99 <= 1.5 and low["bridge"]["grpc_errors"] == 0,
        rate=low["offered_rate"],
        bridge_ms=b,
        direct_ms=d,
        raw_grpc_ms=raw_low,
    )
    half = next((p for p in points[1:] if abs(p.get("fraction", 0.5) - 0.5) < 1e-9), None)
    if half is None:
        return m3, _figure("M4", "not measured", None)
    bp99, dp99 = half["bridge"]["latency_ms"]["p99"], half["direct"]["latency_ms"]["p99"]
    m4 = _figure(
        "M4",
        f"{bp99:.1f} ms at {half['offered_rate']}/s (direct {dp99:.1f} ms: {bp99 / dp99:.2f}x)",
        bp99 <= 10 and bp99 <= 3 * dp99 and half["bridge"]["grpc_errors"] == 0,
        rate=half["offered_rate"],
        bridge_p99_ms=bp99,
        direct_p99_ms=dp99,
        raw_grpc_ms=raw_half,
    )
    return m3, m4


def _m5(runs: dict[str, Any]) -> dict[str, Any]:
    latency = runs.get("event_latency")
    if not latency:
        return _figure("M5", "not measured", None)
    b = latency["bridge"]["latency_ms"]
    direct = latency["direct"]["latency_ms"]
    errors = {k: v for k, v in latency["bridge"]["codes"].items() if k != "OK"}
    return _figure(
        "M5",
        f"p50 {b['p50']:.2f} ms, p99 {b['p99']:.2f} ms "
        f"(direct SSE {direct['p50']:.2f} / {direct['p99']:.2f})",
        b["p50"] <= 1 and b["p99"] <= 5 and not errors,
        bridge_ms=b,
        direct_sse_ms=direct,
        errors=errors,
        streams=latency["bridge"]["streams"],
        hz=latency["bridge"]["hz"],
    )


def _m6(runs: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    events = runs.get("events")
    if not events:
        return _figure("M6", "not measured", None)
    rounds = events["rounds"]
    bridge = _median([r["bridge"]["events_per_s"] for r in rounds])
    loop = meta.get("bridge_event_loop", "asyncio")
    if loop == "uvloop":
        ceiling = events["raw_uvloop"]["events_per_s"]
    else:
        ceiling = _median([r["raw_asyncio"]["events_per_s"] for r in rounds])
    ratio = _ratio(bridge, ceiling)
    errors = sum(r["bridge"]["grpc_errors"] for r in rounds)
    return _figure(
        "M6",
        f"{ratio:.2f} ({bridge:.0f} ÷ {ceiling:.0f} events/s, {loop})"
        if ratio is not None
        else "not measured",
        None if ratio is None else ratio >= 0.6 and errors == 0,
        ratio=ratio,
        bridge_events_per_s=bridge,
        ceiling_events_per_s=ceiling,
        ceiling_loop=loop,
        raw_uvloop_events_per_s=events["raw_uvloop"]["events_per_s"],
        direct_sse_events_per_s=events["direct_sse"]["events_per_s"],
        sdk_events_per_s=(events.get("sdk") or {}).get("events_per_s"),
        bridge_grpc_errors=errors,
    )


def _m7(runs: dict[str, Any], wanted: int) -> dict[str, Any]:
    idle = runs.get("idle_streams")
    if not idle:
        return _figure("M7", "not measured", None)
    opened = idle["opened"]
    errors = {k: v for k, v in opened["codes"].items() if k != "OK"}
    rss = opened["server_rss_open_mb"]
    rate = opened["open_rate_per_s"]
    holds = opened["opened"] >= max(wanted, 10_000) and rate >= 1000 and not errors and rss <= 600
    return _figure(
        "M7",
        f"{opened['opened']:,} open at {rate:.0f}/s, errors {sum(errors.values())}, RSS {rss:.0f} MB",
        holds if wanted >= 10_000 else None,
        streams=opened["opened"],
        wanted=wanted,
        open_rate_per_s=rate,
        errors=errors,
        rss_mb=rss,
        rss_start_mb=idle["bridge_rss_start_mb"],
        first_event_ms=opened["first_event_ms"],
    )


def _m8(runs: dict[str, Any]) -> dict[str, Any]:
    loaded = runs.get("streams_under_load")
    if not loaded:
        return _figure("M8", "not measured", None)
    without = loaded["without"]["latency_ms"]["p50"]
    with_streams = loaded["with"]["latency_ms"]["p50"]
    ratio = with_streams / without
    streams = loaded["streams"]["opened"].get("opened", 0)
    return _figure(
        "M8",
        f"{ratio:.2f} ({with_streams:.2f} ÷ {without:.2f} ms, {streams:,} streams)",
        ratio <= 1.2 and streams >= 2000 if streams >= 2000 else None,
        ratio=ratio,
        p50_with_ms=with_streams,
        p50_without_ms=without,
        streams=streams,
    )


def _m9(runs: dict[str, Any]) -> dict[str, Any]:
    cycles = runs.get("cycles")
    if not cycles:
        return _figure("M9", "not measured", None)
    growth = cycles["rss_growth"]
    errors = {k: v for k, v in cycles["codes"].items() if k != "OK"}
    scaled = "" if cycles["cycles"] >= 100_000 else f" (scaled: {cycles['cycles']:,} cycles)"
    return _figure(
        "M9",
        f"{100 * growth:+.1f} % ({cycles['server_rss_warm_mb']:.0f} → {cycles['server_rss_end_mb']:.0f} MB)"
        + scaled,
        growth <= 0.10 and not errors,
        growth=growth,
        cycles=cycles["cycles"],
        warm_up=cycles["warm_up"],
        errors=errors,
        cycles_per_s=cycles["cycles_per_s"],
    )


def _m10(runs: dict[str, Any]) -> dict[str, Any]:
    workers = runs.get("workers")
    if not workers or "skipped" in workers:
        reason = (workers or {}).get("skipped", "not measured")
        return _figure("M10", reason, None)
    one = _median([r["ok_per_s"] for r in workers["1"]])
    two = _median([r["ok_per_s"] for r in workers["2"]])
    ratio = two / one
    return _figure("M10", f"{ratio:.2f} ({two:.0f} ÷ {one:.0f} calls/s)", None, ratio=ratio, one=one, two=two)


def figures(results: dict[str, Any]) -> dict[str, Any]:
    """Every figure M1..M10: its name, target, value (text), whether it holds, and the numbers behind it."""
    runs = results["runs"]
    plan_m7 = runs.get("idle_streams", {}).get("opened", {}).get("streams", 0)
    m1, m2 = _m1_m2(runs)
    m3, m4 = _m3_m4(runs)
    return {
        "M1": m1,
        "M2": m2,
        "M3": m3,
        "M4": m4,
        "M5": _m5(runs),
        "M6": _m6(runs, results["meta"]),
        "M7": _m7(runs, plan_m7),
        "M8": _m8(runs),
        "M9": _m9(runs),
        "M10": _m10(runs),
    }


def _holds(value: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "-"}[value]


def markdown(results: dict[str, Any]) -> str:
    """The report as markdown: the figures table, then the measurements behind it."""
    meta = results["meta"]
    described = meta["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"`{meta['command']}` at commit `{meta['commit']}` (`{meta.get('commit_at_end', meta['commit'])}` "
        f"at the end), measuring {meta.get('measuring_from', meta['started'])} - "
        f"{meta.get('finished', '?')}.",
        f"Machine: {described['cpu_model']}, {described['cores']} cores, {described['memory_gib']} GiB, "
        f"Linux {described['kernel']}, Python {described['python']}. {meta['layout']}.",
        f"Load average (1 min): {meta.get('load_average_at_start')} at start, "
        f"{meta.get('load_average_at_end')} at end; per phase below.",
        "",
        "| # | figure | target | measured | holds |",
        "|---|---|---|---|---|",
    ]
    for key, figure in results["figures"].items():
        holds = _holds(figure["holds"])
        lines.append(f"| {key} | {figure['figure']} | {figure['target']} | {figure['value']} | {holds} |")
    runs = results["runs"]
    upstream = runs.get("upstream", {})
    if upstream:
        lines += ["", "## Upstream ceilings (load generator on the bridge's core)", ""]
        lines += ["| upstream | calls/s | p50 ms | p99 ms |", "|---|---|---|---|"]
        for name, run in upstream.items():
            latency = run["latency_ms"]
            lines.append(f"| {name} | {run['req_per_s']:.0f} | {latency['p50']} | {latency['p99']} |")
    rounds = runs.get("throughput", [])
    m1 = results["figures"].get("M1", {}).get("details", {})
    if m1.get("m1_bound"):
        lines += [
            "",
            f"M1 bound: grpc.aio alone answers {m1['raw_grpc_unary_per_s']:.0f} CreateTask calls/s on one "
            "core (messages from memory, same h2load load) and the direct client makes "
            f"{m1['direct_per_s']:.0f} requests/s; a bridge doing both on one core can reach at most "
            f"1 ÷ (1/{m1['raw_grpc_unary_per_s']:.0f} + 1/{m1['direct_per_s']:.0f}) calls/s, "
            f"M1 ≤ {m1['m1_bound']:.2f}.",
        ]
    m3 = results["figures"].get("M3", {}).get("details", {})
    if m3.get("raw_grpc_ms"):
        raw_low = m3["raw_grpc_ms"]
        lines += [
            "",
            f"M3 bound: grpc.aio alone, answering from memory, takes p50 {raw_low['p50']:.2f} ms and p99 "
            f"{raw_low['p99']:.2f} ms per CreateTask at {m3['rate']}/s under the same h2load load; the "
            "bridge adds that hop to the direct client's request, so its added latency cannot fall below it.",
        ]
    m4 = results["figures"].get("M4", {}).get("details", {})
    if m4.get("raw_grpc_ms"):
        lines += [
            f"At M4's rate ({m4['rate']}/s) grpc.aio alone has p99 {m4['raw_grpc_ms']['p99']:.2f} ms.",
        ]
    if rounds:
        lines += ["", "## CreateTask closed loop (rounds alternate)", ""]
        lines += ["| round | bridge calls/s (errors) | direct calls/s | SDK calls/s |", "|---|---|---|---|"]
        for i, r in enumerate(rounds, 1):
            sdk = f"{r['sdk']['req_per_s']:.0f}" if r.get("sdk") else "-"
            lines.append(
                f"| {i} | {r['bridge']['ok_per_s']:.0f} ({r['bridge']['grpc_errors']}) | "
                f"{r['direct']['req_per_s']:.0f} | {sdk} |"
            )
    points = runs.get("latency_curve", [])
    if points:
        lines += ["", "## CreateTask latency vs offered rate (open loop)", ""]
        lines += [
            "| offered/s | bridge p50 / p99 / p99.9 ms | direct p50 / p99 / p99.9 ms |",
            "|---|---|---|",
        ]
        for p in points:
            b, d = p["bridge"]["latency_ms"], p["direct"]["latency_ms"]
            lines.append(
                f"| {p['offered_rate']} | {b['p50']} / {b['p99']} / {b['p99.9']} | "
                f"{d['p50']} / {d['p99']} / {d['p99.9']} |"
            )
    events = runs.get("events")
    if events:
        lines += ["", "## Events per second", ""]
        lines += ["| source | events/s |", "|---|---|"]
        for i, r in enumerate(events["rounds"], 1):
            lines.append(f"| bridge, round {i} | {r['bridge']['events_per_s']:.0f} |")
            lines.append(f"| raw grpc.aio (asyncio), round {i} | {r['raw_asyncio']['events_per_s']:.0f} |")
        lines.append(f"| raw grpc.aio (uvloop) | {events['raw_uvloop']['events_per_s']:.0f} |")
        lines.append(f"| direct SSE client | {events['direct_sse']['events_per_s']:.0f} |")
        if events.get("sdk"):
            lines.append(f"| official SDK `aevents` | {events['sdk']['events_per_s']:.0f} |")
    proposals = results.get("proposals")
    if proposals:
        lines += ["", "## The bridge's options, measured against its defaults", ""]
        lines += [
            "| serve flags | CreateTask calls/s | p50 / p99 ms at low rate | events/s |",
            "|---|---|---|---|",
        ]
        for name, p in proposals.items():
            closed = p["closed"].get("ok_per_s", p["closed"].get("req_per_s"))
            low = p["low_rate"]["latency_ms"]
            burst = p.get("burst", {}).get("events_per_s")
            burst_text = f"{burst:.0f}" if burst is not None else "-"
            lines.append(f"| {name} | {closed:.0f} | {low['p50']} / {low['p99']} | {burst_text} |")
    idle = results.get("proposals_idle_streams")
    if idle:
        opened = idle["opened"]
        errors = sum(v for k, v in opened["codes"].items() if k != "OK")
        flags = " ".join(idle["flags"])
        rate, rss = opened["open_rate_per_s"], opened["server_rss_open_mb"]
        lines += [
            "",
            f"M7 again with `{flags}`: {opened['opened']:,} of {opened['streams']:,} streams open "
            f"at {rate:.0f}/s, {errors} errors, RSS {rss:.0f} MB.",
        ]
    levers = results.get("levers")
    if levers:
        lines += ["", "## Levers (micro-benchmarks)", ""]
        for name, lever in levers.items():
            lines.append(f"- **{name}**: {lever.get('summary', '')}")
    profiles = results.get("profiles")
    if profiles and "skipped" not in profiles:
        for name, prof in profiles.items():
            lines += ["", f"## Profile: {name} ({prof['samples']} samples, py-spy)", ""]
            lines += ["| inclusive % | function | | own % | function |", "|---|---|---|---|---|"]
            for inc, own in zip(prof["inclusive"][:15], prof["own"][:15], strict=False):
                lines.append(f"| {inc[1]} | `{inc[0]}` | | {own[1]} | `{own[0]}` |")
    lines += ["", "## Load average per phase", "", "| phase | load (1 min) | seconds |", "|---|---|---|"]
    for name, phase in results["phases"].items():
        lines.append(f"| {name} | {phase['load_average_1m']} | {phase.get('seconds', '?')} |")
    return "\n".join(lines) + "\n"


def _plots(results: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    runs = results["runs"]
    points = runs.get("latency_curve", [])
    if points:
        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=80)
        points = sorted(points, key=lambda p: p["offered_rate"])
        rates = [p["offered_rate"] for p in points]
        for who, style in (("bridge", "-"), ("direct", "--")):
            for pct, marker in (("p50", "o"), ("p99", "s")):
                values = [p[who]["latency_ms"][pct] for p in points]
                ax.plot(rates, values, style, marker=marker, label=f"{who} {pct}")
        ax.set_yscale("log")
        ax.set_xlabel("offered CreateTask rate (calls/s)")
        ax.set_ylabel("latency (ms)")
        ax.set_title("CreateTask latency vs offered rate")
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "latency.png")
        plt.close(fig)
        written.append("latency.png")
    events = runs.get("events")
    if events:
        rounds = events["rounds"]
        bars = {
            "bridge": _median([r["bridge"]["events_per_s"] for r in rounds]),
            "raw grpc.aio\n(asyncio)": _median([r["raw_asyncio"]["events_per_s"] for r in rounds]),
            "raw grpc.aio\n(uvloop)": events["raw_uvloop"]["events_per_s"],
            "direct SSE": events["direct_sse"]["events_per_s"],
        }
        if events.get("sdk"):
            bars["SDK aevents"] = events["sdk"]["events_per_s"]
        fig, ax = plt.subplots(figsize=(6, 3.4), dpi=80)
        ax.bar(list(bars), list(bars.values()), color=["C0", "C7", "C7", "C2", "C3"][: len(bars)])
        ax.set_ylabel("events/s")
        ax.set_title("Events per second (one core)")
        ax.tick_params(axis="x", labelsize=7)
        fig.tight_layout()
        fig.savefig(out / "events.png")
        plt.close(fig)
        written.append("events.png")
    idle = runs.get("idle_streams")
    if idle and idle["opened"].get("server_rss_curve"):
        curve = idle["opened"]["server_rss_curve"]
        fig, ax = plt.subplots(figsize=(6, 3.4), dpi=80)
        ax.plot([c[0] for c in curve], [c[1] for c in curve], marker=".", label="defaults")
        other = results.get("proposals_idle_streams")
        if other and other["opened"].get("server_rss_curve"):
            curve = other["opened"]["server_rss_curve"]
            label = " ".join(other["flags"])
            ax.plot([c[0] for c in curve], [c[1] for c in curve], marker=".", label=label)
        ax.axhline(600, color="C3", linestyle="--", label="target 600 MB")
        ax.set_xlabel("open idle StreamEvents")
        ax.set_ylabel("bridge RSS (MB)")
        ax.set_title("Memory vs open streams")
        ax.legend(fontsize=7)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / "memory.png")
        plt.close(fig)
        written.append("memory.png")
    return written


def write_report(results: dict[str, Any], out: Path, *, plots: bool) -> None:
    """Write results.json, results.md and (when matplotlib is installed and `plots`) the PNG plots."""
    out.mkdir(parents=True, exist_ok=True)
    if plots:
        try:
            results["meta"]["plots"] = _plots(results, out)
        except ImportError:
            results["meta"]["plots"] = []
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out / "results.md").write_text(markdown(results))
