"""Serving one port from several processes.

The parent reserves the port with an SO_REUSEPORT socket (port 0 becomes a real port here), then forks the
workers before any gRPC object exists: gRPC's threads and polling state do not survive a fork. Each worker
builds its own server, event loop and upstream connection pool, and binds the same port with SO_REUSEPORT;
the kernel spreads new connections across them.

Supervision: the parent forwards SIGTERM and SIGINT to every worker as SIGTERM and waits for them. When a
worker ends on its own, the parent stops the others and exits with that worker's status: a half-dead
process group is not left serving, and the orchestrator (Kubernetes, systemd) restarts the whole. Workers
still alive `stop_timeout` seconds after being told to stop are killed.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

__all__ = ["Worker", "reserve_port", "run_workers"]

_LOG = logging.getLogger("bridge.workers")
_FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True, slots=True)
class Worker:
    """What a worker process is told: its index (0-based), how many there are, and the address to bind."""

    index: int
    count: int
    host: str
    port: int

    @property
    def address(self) -> str:
        """`host:port` to bind (with SO_REUSEPORT)."""
        return f"{self.host}:{self.port}"


@contextlib.contextmanager
def reserve_port(host: str, port: int) -> Iterator[int]:
    """Hold `host:port` with an SO_REUSEPORT socket (not listening) while workers bind it; yields the port."""
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((bare, port))
        yield sock.getsockname()[1]
    finally:
        sock.close()


def _worker_main(serve: Callable[[Worker], int], worker: Worker, wakeup_fd: int) -> None:
    # The parent's handlers and wake-up pipe came along with the fork; the worker's server installs its own.
    signal.set_wakeup_fd(-1)
    os.close(wakeup_fd)
    for signum in _FORWARDED_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    sys.exit(serve(worker))


def run_workers(
    serve: Callable[[Worker], int],
    *,
    workers: int,
    host: str,
    port: int,
    stop_timeout: float = 30.0,
    on_listening: Callable[[int], None] | None = None,
) -> int:
    """Run `serve(worker)` in `workers` forked processes sharing `host:port`; returns the exit status.

    `serve` must create every gRPC object itself (after the fork) and return when asked to stop by SIGTERM.
    With one worker it runs in this process, without forking. `on_listening(port)` is called in the parent
    once the port is known (port 0 asks for a free one).
    """
    if workers <= 1:
        if on_listening is not None and port != 0:
            on_listening(port)
        return serve(Worker(index=0, count=1, host=host, port=port))
    context = multiprocessing.get_context("fork")
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    stop_requested: list[int] = []

    def request_stop(signum: int, frame: object) -> None:
        stop_requested.append(signum)

    previous = {signum: signal.signal(signum, request_stop) for signum in _FORWARDED_SIGNALS}
    previous_wakeup = signal.set_wakeup_fd(wakeup_write)
    processes: list[BaseProcess] = []
    try:
        with reserve_port(host, port) as bound_port:
            if on_listening is not None:
                on_listening(bound_port)
            for index in range(workers):
                worker = Worker(index=index, count=workers, host=host, port=bound_port)
                process: BaseProcess = context.Process(
                    target=_worker_main, args=(serve, worker, wakeup_read), name=f"bridge-worker-{index}"
                )
                process.start()
                processes.append(process)
            _LOG.info("serving on %s:%d with %d workers", host, bound_port, workers)
            return _supervise(processes, wakeup_read, stop_requested, stop_timeout)
    finally:
        signal.set_wakeup_fd(previous_wakeup)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        os.close(wakeup_read)
        os.close(wakeup_write)
        for process in processes:
            if process.is_alive():
                process.kill()
            process.join()


def _supervise(
    processes: list[BaseProcess], wakeup_read: int, stop_requested: list[int], stop_timeout: float
) -> int:
    sentinels = {process.sentinel: process for process in processes}
    while not stop_requested:
        ready = multiprocessing.connection.wait([*sentinels, wakeup_read])
        if wakeup_read in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wakeup_read, 64)
        ended = [sentinels[fd] for fd in ready if isinstance(fd, int) and fd in sentinels]
        if ended:
            first = ended[0]
            first.join()
            status = _status(first.exitcode)
            _LOG.error(
                "worker %s (pid %s) ended with status %s; stopping the others", first.name, first.pid, status
            )
            _stop(processes, stop_timeout)
            return status or 1
    _LOG.info("signal %d: stopping %d workers", stop_requested[0], len(processes))
    _stop(processes, stop_timeout)
    statuses = [_status(process.exitcode) for process in processes]
    return max(statuses, default=0)


def _status(exitcode: int | None) -> int:
    # multiprocessing reports death by signal N as -N; a shell would say 128 + N.
    if exitcode is None:
        return 1
    return 128 - exitcode if exitcode < 0 else exitcode


def _stop(processes: list[BaseProcess], timeout: float) -> None:
    for process in processes:
        if process.is_alive() and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            _LOG.warning(
                "worker %s (pid %s) did not stop in %.0fs; killing it", process.name, process.pid, timeout
            )
            process.kill()
            process.join()
