"""One error vocabulary: every failure the bridge reports, each class knowing its gRPC code.

Errors are raised anywhere below the servicer and translated once, at the gRPC edge, into a status with
`google.rpc.Status` details (ErrorInfo always; BadRequest and RetryInfo where they apply). Upstream HTTP
statuses map by meaning, after the comments of `google/rpc/code.proto`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

__all__ = [
    "DOMAIN",
    "Aborted",
    "BridgeError",
    "Cancelled",
    "DeadlineExceeded",
    "FailedPrecondition",
    "FieldViolation",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "from_http_status",
]

DOMAIN = "bridge.xpander.ai"
"""ErrorInfo.domain of every error the bridge reports."""

_MAX_DETAIL_CHARS = 1000


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid request field: its path (e.g. `user_details.email`) and what is wrong with it."""

    field: str
    description: str


class BridgeError(Exception):
    """Base of every error the bridge reports to a gRPC caller."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retry_after: float | None = None,
        field_violations: Sequence[FieldViolation] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.code.name
        self.metadata = dict(metadata or {})
        self.retry_after = retry_after
        self.field_violations = tuple(field_violations)

    def redacted(self, redact: Callable[[str], str]) -> BridgeError:
        """This error with `redact` applied to its message and metadata values (self if nothing changes)."""
        message = redact(self.message)
        metadata = {key: redact(value) for key, value in self.metadata.items()}
        if message == self.message and metadata == self.metadata:
            return self
        return type(self)(
            message,
            reason=self.reason,
            metadata=metadata,
            retry_after=self.retry_after,
            field_violations=self.field_violations,
        )

    def to_rpc_status(self) -> status_pb2.Status:
        """The `google.rpc.Status` sent to the caller: code, message and typed details."""
        details = [
            error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata),
        ]
        if self.field_violations:
            details.append(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in self.field_violations
                    ]
                )
            )
        if self.retry_after is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(self.retry_after * 1e9))
            details.append(error_details_pb2.RetryInfo(retry_delay=delay))
        packed = []
        for detail in details:
            wrapper = any_pb2.Any()
            wrapper.Pack(detail)
            packed.append(wrapper)
        return status_pb2.Status(code=_RPC_CODE[self.code], message=self.message, details=packed)


class InvalidArgument(BridgeError):
    """The request is malformed; `field_violations` names the fields."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class FailedPrecondition(BridgeError):
    """The request is well formed but the task is not in a state that allows it."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(BridgeError):
    """No usable credentials."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(BridgeError):
    """The credentials do not allow the call."""

    code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(BridgeError):
    """The agent or task does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class Aborted(BridgeError):
    """A conflict on the platform (HTTP 409)."""

    code = grpc.StatusCode.ABORTED


class ResourceExhausted(BridgeError):
    """Rate or capacity limit; `retry_after` says when to try again."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Cancelled(BridgeError):
    """The call was cancelled."""

    code = grpc.StatusCode.CANCELLED


class Unimplemented(BridgeError):
    """The platform does not implement the operation."""

    code = grpc.StatusCode.UNIMPLEMENTED


class Unavailable(BridgeError):
    """The platform cannot be reached or is overloaded; safe to retry."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(BridgeError):
    """The platform did not answer within the call's deadline."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Internal(BridgeError):
    """The platform failed, or answered something the bridge cannot read."""

    code = grpc.StatusCode.INTERNAL


_RPC_CODE: dict[grpc.StatusCode, int] = {
    status: getattr(code_pb2, status.name) for status in grpc.StatusCode if hasattr(code_pb2, status.name)
}

_BY_HTTP_STATUS: dict[int, type[BridgeError]] = {
    400: InvalidArgument,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    408: DeadlineExceeded,
    409: Aborted,
    422: InvalidArgument,
    429: ResourceExhausted,
    499: Cancelled,
    501: Unimplemented,
    502: Unavailable,
    503: Unavailable,
    504: DeadlineExceeded,
}


def from_http_status(
    status: int, detail: str, *, route: str, retry_after: float | None = None
) -> BridgeError:
    """The bridge error for a non-2xx platform answer on `route`, carrying the platform's `detail`."""
    if status in _BY_HTTP_STATUS:
        error_class = _BY_HTTP_STATUS[status]
    elif 400 <= status < 500:
        error_class = FailedPrecondition
    else:
        error_class = Internal
    if len(detail) > _MAX_DETAIL_CHARS:
        detail = detail[:_MAX_DETAIL_CHARS] + "…"
    message = (
        f"platform answered HTTP {status} on {route}: {detail}"
        if detail
        else (f"platform answered HTTP {status} on {route}")
    )
    return error_class(
        message,
        reason=f"UPSTREAM_{error_class.code.name}",
        metadata={"http_status": str(status), "route": route},
        retry_after=retry_after if error_class in (ResourceExhausted, Unavailable) else None,
    )
