"""Call a running bridge from Python with the generated stubs: create, stream to the end, get, list, stop.

    make run                                  # in one terminal: the bridge on 127.0.0.1:50051
    .venv/bin/python examples/python_client.py [--address 127.0.0.1:50051]

Against the real platform, pass the key as call metadata (`--api-key`, or XPANDER_API_KEY); the bridge started
with `--local-platform` needs none. Exits non-zero if any call fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import grpc

# The generated modules live in generated/ (installed with the package; added here for a plain checkout).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "generated"))

from xpander.bridge.v1 import events_pb2, task_pb2, task_service_pb2, task_service_pb2_grpc


async def run(address: str, api_key: str | None, agent_id: str, prompt: str) -> None:
    metadata = [("x-api-key", api_key)] if api_key else []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = task_service_pb2_grpc.TaskServiceStub(channel)

        created = await stub.CreateTask(
            task_service_pb2.CreateTaskRequest(agent_id=agent_id, prompt=prompt, events_streaming=True),
            metadata=metadata,
            timeout=10,
        )
        task_id = created.task.id
        print(f"created task {task_id} ({task_pb2.TaskStatus.Name(created.task.status)})")

        # Follow the task to its end; the stream finishes with OK right after TASK_FINISHED.
        stream = stub.StreamEvents(
            task_service_pb2.StreamEventsRequest(task_id=task_id), metadata=metadata, timeout=60
        )
        async for message in stream:
            event = message.event
            detail = event.chunk if event.HasField("chunk") else ""
            print(f"  #{event.sequence} {events_pb2.TaskEventType.Name(event.type)} {detail}".rstrip())

        got = await stub.GetTask(
            task_service_pb2.GetTaskRequest(task_id=task_id), metadata=metadata, timeout=10
        )
        print(f"task {task_id} is {task_pb2.TaskStatus.Name(got.task.status)}: {got.task.result}")

        listed = await stub.ListTasks(
            task_service_pb2.ListTasksRequest(agent_id=agent_id, page_size=5), metadata=metadata, timeout=10
        )
        print(f"{agent_id} has {listed.total_size} task(s); newest: {[t.id for t in listed.tasks]}")

        # Stopping a finished task returns it unchanged; on a running one it stops it.
        stopped = await stub.StopTask(
            task_service_pb2.StopTaskRequest(task_id=task_id), metadata=metadata, timeout=10
        )
        print(f"after StopTask: {task_pb2.TaskStatus.Name(stopped.task.status)}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--address", default="127.0.0.1:50051", help="the bridge's host:port")
    parser.add_argument("--api-key", default=os.environ.get("XPANDER_API_KEY"), help="platform API key")
    parser.add_argument("--agent-id", default="demo-agent")
    parser.add_argument("--prompt", default="How many words are in this sentence?")
    args = parser.parse_args()
    try:
        asyncio.run(run(args.address, args.api_key, args.agent_id, args.prompt))
    except grpc.aio.AioRpcError as error:
        print(f"call failed: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
