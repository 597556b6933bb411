"""`make bench`: measure the bridge against the direct client, the official SDK and grpc.aio alone.

Writes OUT/results.json, OUT/results.md and the plots, with a progress line per phase on stderr. `--tree`
measures the bridge of another checkout; the harness, the upstream and the baselines stay this one's.
"""

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.phases import PHASES
from bench.plan import PLANS, Plan
from bench.procs import ROOT, field
from bench.report import figures, write_report
from bench.session import Session


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _commit(tree: Path) -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=tree)
    dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], capture_output=True, text=True, cwd=tree)
    return (head.stdout.strip() or "unknown") + ("+changes" if dirty.stdout.strip() else "")


def _machine() -> str:
    memory = int(field("/proc/meminfo", "MemTotal").split()[0]) / 2**20
    cpu = f"{field('/proc/cpuinfo', 'model name')}, {os.cpu_count()} cores, {memory:.1f} GiB"
    return f"{cpu}, Linux {platform.release()}, Python {platform.python_version()}"


def _wait_for_quiet() -> float:
    # Figures taken while other work shares these two cores say little: wait (20 minutes at most) for calm.
    deadline = time.monotonic() + 1200
    while (load := os.getloadavg()[0]) >= 0.7 and time.monotonic() < deadline:
        print(f"bench: load average {load:.2f} >= 0.7; waiting", file=sys.stderr, flush=True)
        time.sleep(15)
    return load


def _minutes(seconds: float) -> str:
    return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"


class Progress:
    """A line per phase on stderr: its name, the time elapsed and the time left, estimated from the same
    plan's last run (its phase times, scaled by this run's pace) or else from this run's phases so far."""

    def __init__(self, titles: list[str], out: Path, plan: Plan) -> None:
        self.titles, self.started, self.done = titles, time.monotonic(), 0
        try:
            last = json.loads((out / "results.json").read_text())
        except (OSError, ValueError):
            last = {}
        same = last.get("meta", {}).get("plan") == plan.name
        self.last = {t: p["seconds"] for t, p in last.get("phases", {}).items()} if same else {}

    def begin(self, title: str, load: float) -> None:
        """Announce the phase `title`, starting now."""
        elapsed = time.monotonic() - self.started
        done, left = self.titles[: self.done], self.titles[self.done :]
        self.done += 1
        if all(t in self.last for t in self.titles):
            pace = elapsed / spent if (spent := sum(self.last[t] for t in done)) else 1.0
            estimate = _minutes(pace * sum(self.last[t] for t in left))
        else:
            estimate = _minutes(elapsed / len(done) * len(left)) if done else "unknown"
        line = f"{_minutes(elapsed)} elapsed, {estimate} left (load {load:.2f})"
        print(f"bench [{self.done}/{len(self.titles)}] {title}: {line}", file=sys.stderr, flush=True)


def execute(plan: Plan, out: Path, tree: Path, wait: bool) -> dict[str, Any]:
    """Every phase of `plan` in order; the results document, figures included."""
    load = _wait_for_quiet() if wait else os.getloadavg()[0]
    phases = [phase for phase in PHASES if phase.key in plan.phases]
    progress = Progress([phase.title for phase in phases], out, plan)
    # Read after the wait for a quiet machine: the tree may have moved meanwhile.
    meta: dict[str, Any] = {"plan": plan.name, "commit": _commit(tree), "tree": str(tree), "started": _now()}
    meta |= {"machine": _machine(), "load_at_start": round(load, 2)}
    results: dict[str, Any] = {"meta": meta, "phases": {}, "runs": {}}
    with ExitStack() as stack:
        session = Session(plan, out / "work.tmp", tree)
        stack.enter_context(session.responder)
        shared = stack.enter_context(session.bridge("bridge"))
        results["runs"]["sample"] = session.sample(shared)
        for phase in phases:
            if not phase.shared:
                shared.stop()
            load, begun = os.getloadavg()[0], time.monotonic()
            progress.begin(phase.title, load)
            results["runs"][phase.key] = phase.measure(session, shared, results["runs"])
            results["phases"][phase.title] = {
                "load": round(load, 2),
                "seconds": round(time.monotonic() - begun),
            }
    meta |= {"finished": _now(), "load_at_end": round(os.getloadavg()[0], 2), "commit_at_end": _commit(tree)}
    results["figures"] = figures(results)
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.run`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", choices=sorted(PLANS), default="default")
    parser.add_argument("--out", type=Path, help="default: bench/results, or build/bench-PLAN (quick, smoke)")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose bridge is measured")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    args = parser.parse_args(argv)
    if shutil.which("h2load") is None:
        print("bench: h2load is missing (Debian nghttp2-client; `make bench` installs it)", file=sys.stderr)
        return 2
    kept = args.plan in ("default", "full")
    out: Path = args.out or (ROOT / "bench" / "results" if kept else ROOT / "build" / f"bench-{args.plan}")
    # A stopped run still stops its children: SystemExit unwinds every `with Child(...)` block.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    results = execute(PLANS[args.plan], out, args.tree.resolve(), wait=not args.no_wait)
    write_report(results, out)
    print(f"bench: wrote {out / 'results.json'} and {out / 'results.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
