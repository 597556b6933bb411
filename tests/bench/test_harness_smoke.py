"""The benchmark harness runs end to end on a tiny load and reports every figure (`make bench`: full size)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.frames import create_task_request, frame
from bench.loadloop import percentiles
from bench.report import TARGETS

ROOT = Path(__file__).resolve().parents[2]


def test_percentiles_use_the_nearest_rank() -> None:
    summary = percentiles([float(v) for v in range(1, 101)])
    assert (summary["p50"], summary["p99"], summary["max"], summary["count"]) == (50.0, 99.0, 100.0, 100)


def test_a_request_frame_is_one_length_prefixed_message() -> None:
    request = create_task_request()
    assert frame(request) == b"\x00" + len(request.SerializeToString()).to_bytes(4, "big") + (
        request.SerializeToString()
    )


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (Debian nghttp2-client) is not installed")
def test_the_harness_measures_every_figure_on_a_tiny_load(tmp_path: Path) -> None:
    argv = ["-m", "bench.run", "--plan", "smoke", "--out", str(tmp_path), "--no-wait"]
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    # One progress line per phase, each with the time elapsed and an estimate of the time left.
    progress = [line for line in done.stderr.splitlines() if line.startswith("bench [")]
    assert len(progress) == len(json.loads((tmp_path / "results.json").read_text())["phases"])
    assert all(" elapsed, " in line and " left " in line for line in progress)
    results = json.loads((tmp_path / "results.json").read_text())
    figures = results["figures"]
    assert list(figures) == list(TARGETS)
    measured = ["M1", "M3", "M5", "M6", "M7", "M8", "M9"]
    if (ROOT / ".venv-sdk" / "bin" / "python").exists():
        measured.append("M2")
    for key in measured:
        assert figures[key]["value"] != "not measured", key
    # h2load cannot see gRPC statuses; the harness counts them from the bytes received and finds none failed.
    assert figures["M1"]["details"]["bridge_grpc_errors"] == 0
    assert figures["M6"]["details"]["bridge_grpc_errors"] == 0
    assert figures["M7"]["details"]["errors"] == {}
    assert figures["M7"]["details"]["streams"] == 50
    round_one = results["runs"]["M1"]["rounds"][0]
    assert round_one["bridge"]["upstream_creates"] == round_one["bridge"]["done"] == 200
    assert (tmp_path / "results.md").read_text().startswith("# Benchmark results")
    assert set(results["meta"]["plots"]) <= {"latency.png", "events.png", "memory.png"}
