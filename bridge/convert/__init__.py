"""Pure conversions between the bridge's protobuf messages and the platform's JSON, both directions.

Requests are validated on the way out (InvalidArgument naming every bad field); platform JSON is read
leniently on the way in (unknown keys ignored, unknown enum strings kept) and strictly only on JSON types
(PayloadError naming the key). No I/O happens here.
"""

from bridge.convert.create import CreateTaskCall, create_task_to_platform
from bridge.convert.event import event_from_platform, heartbeat_event
from bridge.convert.listing import ListTasksCall, list_tasks_to_platform
from bridge.convert.payload import PayloadError
from bridge.convert.task import task_from_list_item, task_from_platform
from bridge.convert.validation import validate_resource_id

__all__ = [
    "CreateTaskCall",
    "ListTasksCall",
    "PayloadError",
    "create_task_to_platform",
    "event_from_platform",
    "heartbeat_event",
    "list_tasks_to_platform",
    "task_from_list_item",
    "task_from_platform",
    "validate_resource_id",
]
