"""`--workers N`: one port served by several processes, supervised by the parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.ops.support import stub
from xpander.bridge.v1 import task_service_pb2

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has ended all the same.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def two_workers() -> Iterator[tuple[subprocess.Popen[str], int, set[int]]]:
    """The worker app with two workers, once both serve: (parent, port, worker pids)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "generated")])}
    parent = subprocess.Popen(
        [sys.executable, "-m", "tests.ops.worker_app", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    port = 0
    workers: set[int] = set()
    try:
        while len(workers) < 2:
            line = parent.stdout.readline()
            assert line, "the worker app exited early"
            kind, _, number = line.strip().partition(" ")
            if kind == "listening":
                port = int(number)
            elif kind == "ready":
                workers.add(int(number))
        yield parent, port, workers
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


async def serving_pid(port: int) -> int:
    # A local subchannel pool makes every channel open its own connection, which the kernel may give to
    # either worker.
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)]
    ) as channel:
        response = await stub(channel).GetTask(task_service_pb2.GetTaskRequest(task_id="pid"), timeout=5)
    return int(response.task.id)


async def test_two_workers_serve_one_port_and_stop_cleanly(
    two_workers: tuple[subprocess.Popen[str], int, set[int]],
) -> None:
    parent, port, workers = two_workers
    seen: set[int] = set()
    for _ in range(64):
        seen.add(await serving_pid(port))
        if seen == workers:
            break
    assert seen == workers
    assert parent.pid not in seen

    parent.send_signal(signal.SIGTERM)
    assert parent.wait(15) == 0
    assert not any(alive(pid) for pid in workers)


async def test_a_dying_worker_stops_the_whole_group(
    two_workers: tuple[subprocess.Popen[str], int, set[int]],
) -> None:
    parent, _, workers = two_workers
    victim, survivor = sorted(workers)
    os.kill(victim, signal.SIGKILL)
    assert parent.wait(15) == 128 + signal.SIGKILL
    assert not alive(survivor)
