"""What each conversion step of a call costs, in microseconds: constructors vs `ParseDict`, events, Structs.

Times, per operation, the bridge's own conversions (`bridge.convert`) on the captured local-platform
responses beside the alternatives the issue names: `json_format.ParseDict` building the same Task, and a
`google.protobuf.Struct` built per event from its data.

Run: `python -m bench.convert_micro --replay bench/results/replay.json`; prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from google.protobuf import json_format, struct_pb2

from bench.frames import create_task_request
from bridge import convert
from xpander.bridge.v1 import task_pb2, task_service_pb2

__all__ = ["main", "measure"]


def _microseconds(operation: Callable[[], object], budget: float = 0.4) -> float:
    timer = timeit.Timer(operation)
    count, seconds = timer.autorange()
    repeats = max(3, int(budget / max(seconds, 1e-6)))
    best = min(timer.repeat(repeat=min(repeats, 7), number=count))
    return round(best / count * 1e6, 2)


def measure(captured: dict[str, Any]) -> dict[str, float]:
    """Microseconds per operation of each conversion step."""
    request = create_task_request()
    task_json = captured["create_task"]
    task_bytes = orjson.dumps(task_json)
    events = {event["type"]: event for event in captured["events"]}
    chunk, created = events["chunk"], events["task_created"]
    task = convert.task_from_platform(task_json)
    proto_json = json_format.MessageToDict(task)
    response = task_service_pb2.CreateTaskResponse(task=task)
    body = convert.create_task_to_platform(request).body
    return {
        "create_request_to_body": _microseconds(lambda: convert.create_task_to_platform(request)),
        "body_to_json_bytes (orjson)": _microseconds(lambda: orjson.dumps(body)),
        "response_bytes_to_dict (orjson)": _microseconds(lambda: orjson.loads(task_bytes)),
        "task_from_platform (constructors)": _microseconds(lambda: convert.task_from_platform(task_json)),
        "task via json_format.ParseDict": _microseconds(
            lambda: json_format.ParseDict(proto_json, task_pb2.Task())
        ),
        "response SerializeToString": _microseconds(response.SerializeToString),
        "chunk event_from_platform": _microseconds(lambda: convert.event_from_platform(5, chunk)),
        "task_created event_from_platform": _microseconds(lambda: convert.event_from_platform(1, created)),
        "task data as Struct (Struct.update)": _microseconds(
            lambda: struct_pb2.Struct().update(created["data"])
        ),
        "task data as Struct (ParseDict)": _microseconds(
            lambda: json_format.ParseDict(created["data"], struct_pb2.Struct())
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m bench.convert_micro`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(measure(json.loads(args.replay.read_text()))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
