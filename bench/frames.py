"""Prebuilt gRPC request bodies for h2load: one length-prefixed protobuf message per request.

h2load posts the same data file for every request, so a gRPC call is one frame: a zero compression flag, the
message length (4 bytes, big endian) and the serialised request.
"""

from __future__ import annotations

import struct
from pathlib import Path

from google.protobuf.message import Message

from xpander.bridge.v1 import task_service_pb2

__all__ = [
    "CREATE_PATH",
    "GRPC_HEADERS",
    "STREAM_PATH",
    "create_task_request",
    "frame",
    "stream_events_request",
    "unframe",
    "write_frame",
]

CREATE_PATH = "/xpander.bridge.v1.TaskService/CreateTask"
STREAM_PATH = "/xpander.bridge.v1.TaskService/StreamEvents"
GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")
"""The request headers a gRPC server insists on; h2load sends them with `-H`."""


def frame(message: Message) -> bytes:
    """`message` as one uncompressed gRPC length-prefixed frame."""
    payload = message.SerializeToString()
    return struct.pack(">BI", 0, len(payload)) + payload


def unframe(data: bytes) -> list[bytes]:
    """The messages of a run of gRPC frames (the inverse of `frame`, for responses)."""
    messages = []
    offset = 0
    while offset + 5 <= len(data):
        _, length = struct.unpack_from(">BI", data, offset)
        messages.append(data[offset + 5 : offset + 5 + length])
        offset += 5 + length
    return messages


def create_task_request(
    agent_id: str = "demo-agent", prompt: str = "Say hello #chunks=3"
) -> task_service_pb2.CreateTaskRequest:
    """The CreateTask request every benchmark sends: a short prompt, events streaming on (as SDK users do)."""
    return task_service_pb2.CreateTaskRequest(agent_id=agent_id, prompt=prompt, events_streaming=True)


def stream_events_request(task_id: str) -> task_service_pb2.StreamEventsRequest:
    """A StreamEvents request for `task_id` (the responder picks the event pattern from the id)."""
    return task_service_pb2.StreamEventsRequest(task_id=task_id)


def write_frame(path: Path, message: Message) -> Path:
    """Write `message` as one frame to `path` (an h2load `-d` data file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(frame(message))
    return path
