"""The plots of a run, each with its target drawn in: latency against offered rate, events per second and
memory against open streams."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bench.loadloop import median


def _save(figure: Figure, ax: Axes, path: Path, title: str) -> str:
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path.name


def _latency(points: list[dict[str, Any]], path: Path) -> str:
    figure, ax = plt.subplots(figsize=(9, 4), dpi=90)
    points = sorted(points, key=lambda p: p["offered_rate"])
    rates = [p["offered_rate"] for p in points]
    lines = {"bridge": "C0", "direct client": "C2", "grpc.aio alone": "C7"}
    for (label, color), who in zip(lines.items(), ("bridge", "direct", "raw"), strict=True):
        for pct, style in (("p50", "-o"), ("p99", "--s")):
            values = [p[who]["latency_ms"][pct] for p in points]
            ax.plot(rates, values, style, color=color, label=f"{label} {pct}", ms=4)
    ax.axhline(10, color="C3", linestyle=":", label="M4 target: bridge p99 ≤ 10 ms at half its max rate")
    half = next((p for p in points if p["fraction"] == 0.5), None)
    if half is not None:
        ax.axvline(half["offered_rate"], color="C3", alpha=0.3)
    low = points[0]
    allowed = low["direct"]["latency_ms"]["p50"] + 0.5
    ax.plot(
        [low["offered_rate"]], [allowed], "v", color="C3", label="M3 target: bridge p50 ≤ direct + 0.5 ms"
    )
    ax.set(yscale="log", xlabel="offered CreateTask rate (calls/s)", ylabel="latency (ms, log scale)")
    return _save(figure, ax, path, "CreateTask latency against offered rate (one core)")


def _events(m6: dict[str, Any], path: Path) -> str:
    raw = median([r["raw"]["events_per_s"] for r in m6["rounds"]])
    bars = {
        "bridge": median([r["bridge"]["events_per_s"] for r in m6["rounds"]]),
        "grpc.aio alone": raw,
        "direct SSE client\n(no gRPC)": m6["direct_sse"]["events_per_s"],
    }
    figure, ax = plt.subplots(figsize=(9, 3), dpi=90)
    ax.barh(list(bars), list(bars.values()), color=["C0", "C7", "C2"])
    for y, value in enumerate(bars.values()):
        ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    # A log scale: the direct SSE client is ten times faster than anything gRPC and would squash the rest.
    ax.axvline(0.6 * raw, color="C3", linestyle=":", label="M6 target: bridge ≥ 0.6 x grpc.aio alone")
    ax.set(xscale="log", xlabel="events per second (log scale)", xlim=(1000, max(bars.values()) * 4))
    ax.invert_yaxis()
    return _save(figure, ax, path, "Events per second (one core)")


def _memory(m7: dict[str, Any], path: Path) -> str:
    figure, ax = plt.subplots(figsize=(9, 3.6), dpi=90)
    curve = m7["rss_curve"]
    ax.plot([c[0] for c in curve], [c[1] for c in curve], marker=".", label="bridge RSS")
    ax.axhline(600, color="C3", linestyle=":", label="M7 target: RSS ≤ 600 MB at 10,000 streams")
    ax.axvline(10_000, color="C3", alpha=0.3)
    ax.set(xlabel="open idle StreamEvents", ylabel="bridge RSS (MB)", ylim=(0, 700))
    return _save(figure, ax, path, "Memory against open streams")


def plots(runs: dict[str, Any], out: Path) -> list[str]:
    """Write the plots whose measurements the run has; their file names."""
    written = []
    if "M3" in runs:
        written.append(_latency(runs["M3"], out / "latency.png"))
    if "M6" in runs:
        written.append(_events(runs["M6"], out / "events.png"))
    if "M7" in runs:
        written.append(_memory(runs["M7"], out / "memory.png"))
    return written
