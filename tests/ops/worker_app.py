"""A process serving FixedTaskService through `run_workers`, for the multi-process tests.

`python -m tests.ops.worker_app WORKERS` prints `listening PORT` from the parent and `ready PID` from each
worker once it serves; SIGTERM stops it gracefully.
"""

from __future__ import annotations

import asyncio
import signal
import sys

from bridge.ops.eventloop import run
from bridge.ops.workers import Worker, run_workers


def serve(worker: Worker) -> int:
    """One worker: the gRPC server is built here, after the fork."""

    async def main() -> int:
        import os

        import grpc
        from grpc_health.v1 import health_pb2_grpc
        from grpc_health.v1.health import aio as health_aio

        from tests.ops.support import FixedTaskService
        from xpander.bridge.v1 import task_service_pb2_grpc

        server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
        task_service_pb2_grpc.add_TaskServiceServicer_to_server(FixedTaskService(), server)
        health_pb2_grpc.add_HealthServicer_to_server(health_aio.HealthServicer(), server)
        server.add_insecure_port(worker.address)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        # One write per line: print() writes the text and the newline apart, and two workers share the pipe.
        sys.stdout.write(f"ready {os.getpid()}\n")
        sys.stdout.flush()
        await stop.wait()
        await server.stop(1.0)
        return 0

    return run(main(), use_uvloop=False)


if __name__ == "__main__":
    count = int(sys.argv[1])
    sys.exit(
        run_workers(
            serve,
            workers=count,
            host="127.0.0.1",
            port=0,
            stop_timeout=10,
            on_listening=lambda port: print(f"listening {port}", flush=True),
        )
    )
