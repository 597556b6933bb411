"""The report of a run: the figures M1..M10 (each with its target and verdict) from its measurements, then
results.json (figures and raw measurements), results.md and the plots."""

import json
import math
from pathlib import Path
from typing import Any

from bench.loadloop import median

TARGETS: dict[str, tuple[str, str]] = {
    "M1": ("CreateTask max throughput, bridge ÷ direct client", "≥ 0.70"),
    "M2": ("CreateTask max throughput, bridge ÷ official SDK `acreate_task`", "≥ 1.0"),
    "M3": ("added latency at low load: p50 - p50; p99 - p99", "≤ 0.5 ms; ≤ 1.5 ms"),
    "M4": ("p99 at half the bridge's max rate", "≤ 10 ms and ≤ 3x direct p99"),
    "M5": ("event latency upstream write → gRPC client, 100 streams x 10 events/s", "p50 ≤ 1 ms, p99 ≤ 5 ms"),
    "M6": ("events/s forwarded ÷ grpc.aio alone (server streaming)", "≥ 0.6"),
    "M7": ("concurrent idle StreamEvents in one process", "≥ 10,000 at ≥ 1,000/s, no error, RSS ≤ 600 MB"),
    "M8": ("CreateTask p50 with 2,000 streams open ÷ with none", "≤ 1.2"),
    "M9": ("RSS growth over 100,000 open/cancel cycles after warm-up", "≤ 10 %"),
    "M10": ("`--workers 2` CreateTask throughput ÷ one worker", "reported"),
}

_Figure = dict[str, Any]


def _figure(key: str, value: str = "not measured", holds: bool | None = None, **details: Any) -> _Figure:
    name, target = TARGETS[key]
    return {"figure": name, "target": target, "value": value, "holds": holds, "details": details}


def _errors(codes: dict[str, int]) -> dict[str, int]:
    return {code: n for code, n in codes.items() if code != "OK"}


def _m1_m2(m1: dict[str, Any]) -> tuple[_Figure, _Figure]:
    rounds, raw = m1["rounds"], m1["raw"]["ok_per_s"]
    bridge, direct = (
        median([r["bridge"]["ok_per_s"] for r in rounds]),
        median([r["direct"]["req_per_s"] for r in rounds]),
    )
    sdk = median([r["sdk"]["req_per_s"] for r in rounds if r["sdk"]])
    errors = sum(r["bridge"]["grpc_errors"] for r in rounds)
    # On one core a bridge spends at least what grpc.aio alone spends per call plus what the direct client
    # spends per request, so M1 cannot exceed direct ÷ (direct ÷ raw + 1).
    bound = 1 / (direct / raw + 1)
    value = f"{bridge / direct:.2f} ({bridge:,.0f} ÷ {direct:,.0f} calls/s; at most {bound:.2f} is possible)"
    m1 = _figure("M1", value, bridge / direct >= 0.7 and not errors, bridge_grpc_errors=errors, raw_per_s=raw)
    if math.isnan(sdk):
        return m1, _figure("M2")
    return m1, _figure("M2", f"{bridge / sdk:.1f} ({bridge:,.0f} ÷ {sdk:,.0f} calls/s)", bridge >= sdk)


def _m3_m4(points: list[dict[str, Any]]) -> tuple[_Figure, _Figure]:
    b, d, raw = (points[0][who]["latency_ms"] for who in ("bridge", "direct", "raw"))
    d50, d99 = b["p50"] - d["p50"], b["p99"] - d["p99"]
    value = f"{d50:+.2f} ms; {d99:+.2f} ms (grpc.aio alone: p50 {raw['p50']:.2f} ms, p99 {raw['p99']:.2f} ms)"
    m3 = _figure("M3", value, d50 <= 0.5 and d99 <= 1.5 and points[0]["bridge"]["grpc_errors"] == 0)
    half = next((p for p in points if p["fraction"] == 0.5), None)
    if half is None:
        return m3, _figure("M4")
    b99, d99, r99 = (half[who]["latency_ms"]["p99"] for who in ("bridge", "direct", "raw"))
    value = f"{b99:.1f} ms at {half['offered_rate']}/s (direct {d99:.1f} ms; grpc.aio alone {r99:.2f} ms)"
    return m3, _figure("M4", value, b99 <= 10 and b99 <= 3 * d99 and half["bridge"]["grpc_errors"] == 0)


def _m5(m5: dict[str, Any]) -> _Figure:
    b, errors = m5["latency_ms"], _errors(m5["codes"])
    value = f"p50 {b['p50']:.2f} ms, p99 {b['p99']:.2f} ms"
    return _figure("M5", value, b["p50"] <= 1 and b["p99"] <= 5 and not errors, errors=errors)


def _m6(m6: dict[str, Any]) -> _Figure:
    bridge = median([r["bridge"]["events_per_s"] for r in m6["rounds"]])
    ceiling = median([r["raw"]["events_per_s"] for r in m6["rounds"]])
    errors = sum(r["bridge"]["grpc_errors"] for r in m6["rounds"])
    value = f"{bridge / ceiling:.2f} ({bridge:,.0f} ÷ {ceiling:,.0f} events/s)"
    return _figure("M6", value, bridge / ceiling >= 0.6 and not errors, bridge_grpc_errors=errors)


def _m7(m7: dict[str, Any]) -> _Figure:
    errors, rate, rss = _errors(m7["codes"]), m7["open_rate_per_s"], m7["rss_open_mb"]
    holds = m7["opened"] >= 10_000 and rate >= 1000 and not errors and rss <= 600
    value = f"{m7['opened']:,} open at {rate:,.0f}/s, errors {sum(errors.values())}, RSS {rss:.0f} MB"
    return _figure(
        "M7", value, holds if m7["streams"] >= 10_000 else None, streams=m7["opened"], errors=errors
    )


def _m8(m8: dict[str, Any]) -> _Figure:
    without, loaded = m8["without"]["latency_ms"]["p50"], m8["with"]["latency_ms"]["p50"]
    streams = m8["streams"]["opened"]
    value = f"{loaded / without:.2f} ({loaded:.2f} ÷ {without:.2f} ms, {streams:,} streams)"
    return _figure("M8", value, loaded / without <= 1.2 if streams >= 2000 else None)


def _m9(m9: dict[str, Any]) -> _Figure:
    growth, errors, warm, end = m9["rss_growth"], _errors(m9["codes"]), m9["rss_warm_mb"], m9["rss_end_mb"]
    value = f"{100 * growth:+.1f} % ({warm:.0f} → {end:.0f} MB over {m9['cycles']:,} cycles)"
    return _figure("M9", value, growth <= 0.10 and not errors, errors=errors)


def _m10(m10: dict[str, Any]) -> _Figure:
    one, two = (median([r["ok_per_s"] for r in m10[n]]) for n in ("1", "2"))
    return _figure("M10", f"{two / one:.2f} ({two:,.0f} ÷ {one:,.0f} calls/s)")


def figures(results: dict[str, Any]) -> dict[str, _Figure]:
    """Every figure M1..M10: its name, target, value (text), whether it holds, and the numbers behind it."""
    runs = results["runs"]
    found = {key: _figure(key) for key in TARGETS}
    if "M1" in runs:
        found["M1"], found["M2"] = _m1_m2(runs["M1"])
    if "M3" in runs:
        found["M3"], found["M4"] = _m3_m4(runs["M3"])
    single = {"M5": _m5, "M6": _m6, "M7": _m7, "M8": _m8, "M9": _m9, "M10": _m10}
    found.update({key: measure(runs[key]) for key, measure in single.items() if key in runs})
    return found


_WHO = ("bridge", "direct", "raw")


def _table(head: str, rows: list[str]) -> list[str]:
    return ["", f"| {head} |", "|" + "---|" * (head.count("|") + 1), *(f"| {row} |" for row in rows)]


def _curve(points: list[dict[str, Any]]) -> list[str]:
    cells = [
        [f"{p[w]['latency_ms']['p50']:.2f} / {p[w]['latency_ms']['p99']:.2f}" for w in _WHO] for p in points
    ]
    rows = [f"{p['offered_rate']} | " + " | ".join(row) for p, row in zip(points, cells, strict=True)]
    return _table("offered/s | bridge p50 / p99 ms | direct p50 / p99 ms | grpc.aio alone p50 / p99 ms", rows)


def markdown(results: dict[str, Any]) -> str:
    """The report as markdown: the figures table, then the measurements behind it."""
    meta, loop = results["meta"], results["runs"]["sample"]["event_loop"]
    lines = [
        "# Benchmark results\n",
        f"`python -m bench.run --plan {meta['plan']}` at `{meta['commit']}` (`{meta['commit_at_end']}` "
        f"at the end), {meta['started']} to {meta['finished']}. Machine: {meta['machine']}. The bridge (on "
        f"{loop}) or the baseline on core 0, the upstream and the load generator on core 1. Load average "
        f"(1 min): {meta['load_at_start']} at start, {meta['load_at_end']} at end.",
    ]
    verdicts = {True: "yes", False: "**no**", None: "-"}
    rows = [
        f"{k} | {f['figure']} | {f['target']} | {f['value']} | {verdicts[f['holds']]}"
        for k, f in results["figures"].items()
    ]
    lines += _table("# | figure | target | measured | holds", rows)
    lines += _curve(results["runs"]["M3"]) if "M3" in results["runs"] else []
    rows = [f"{name} | {p['load']} | {p['seconds']}" for name, p in results["phases"].items()]
    lines += _table("phase | load (1 min) at its start | seconds", rows)
    return "\n".join(lines) + "\n"


def write_report(results: dict[str, Any], out: Path) -> None:
    """Write results.json, results.md and, when matplotlib is installed, the plots."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        from bench.plots import plots
    except ImportError:
        results["meta"]["plots"] = []
    else:
        results["meta"]["plots"] = plots(results["runs"], out)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(markdown(results))
