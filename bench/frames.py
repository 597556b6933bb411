"""Prebuilt gRPC requests: h2load posts one data file per request, so a call is one prefixed message."""

import struct
from pathlib import Path

from google.protobuf.message import Message

from xpander.bridge.v1 import task_service_pb2

CREATE_PATH = "/xpander.bridge.v1.TaskService/CreateTask"
STREAM_PATH = "/xpander.bridge.v1.TaskService/StreamEvents"


def frame(message: Message) -> bytes:
    """`message` as one uncompressed gRPC frame: a zero flag, its length (4 bytes, big endian), the bytes."""
    payload = message.SerializeToString()
    return struct.pack(">BI", 0, len(payload)) + payload


def create_task_request() -> task_service_pb2.CreateTaskRequest:
    """The CreateTask request of every measurement: a short prompt, events streaming on (as SDK users do)."""
    request = task_service_pb2.CreateTaskRequest(agent_id="demo-agent", prompt="Say hello #chunks=3")
    request.events_streaming = True
    return request


def write_frame(path: Path, message: Message) -> Path:
    """Write `message` as one frame to `path` (an h2load `-d` data file)."""
    path.write_bytes(frame(message))
    return path
