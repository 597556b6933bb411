"""Per-call credentials: the platform API key and organization a gRPC call acts with.

The key comes from call metadata `x-api-key` or `authorization: Bearer <key>`, the organization from
`x-organization-id`; each falls back to the bridge's configured default. A call with no key anywhere is
refused before the platform is called. The key is kept out of `repr()` so it cannot leak into a log line.

Credential metadata is parsed once per call (`caller_metadata`), by whoever asks first: caller auth, the
access log and the servicer share the result. Values become upstream header values, so each must match its
documented character set: a key `API_KEY_CHARS` (visible ASCII, no spaces: platform keys are opaque tokens),
an organization `ORGANIZATION_CHARS` (it is also a URL path segment). Anything else (CR, LF, NUL, other
control characters, non-ASCII, undecodable bytes) is INVALID_ARGUMENT with reason `INVALID_METADATA`,
naming the metadata key and never echoing the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol, cast

from bridge.errors import FieldViolation, Internal, InvalidArgument, Unauthenticated

__all__ = [
    "API_KEY_CHARS",
    "BRIDGE_TOKEN_METADATA",
    "ORGANIZATION_CHARS",
    "CallerMetadata",
    "Credentials",
    "caller_metadata",
    "checked_default_key",
    "resolve_credentials",
]

API_KEY_CHARS = r"[\x21-\x7e]{1,512}"
"""A platform key (caller's or default): 1 to 512 visible ASCII characters, no spaces."""
ORGANIZATION_CHARS = r"[A-Za-z0-9._~-]{1,128}"
"""An organization id: 1 to 128 unreserved URL characters (it becomes a URL path segment), not `.`/`..`."""
BRIDGE_TOKEN_METADATA = "x-bridge-token"

_API_KEY = "x-api-key"
_AUTHORIZATION = "authorization"
_ORGANIZATION = "x-organization-id"
_CREDENTIAL_KEYS = (_API_KEY, _AUTHORIZATION, _ORGANIZATION, BRIDGE_TOKEN_METADATA)
_SECRET_KEYS = frozenset({_API_KEY, _AUTHORIZATION, BRIDGE_TOKEN_METADATA})
_KEY = re.compile(API_KEY_CHARS)
_ORGANIZATION_ID = re.compile(ORGANIZATION_CHARS)
_KEY_PROBLEM = "must be 1 to 512 visible ASCII characters without spaces"
_ORGANIZATION_PROBLEM = "must be 1 to 128 letters, digits or ._~- (it becomes a URL path segment)"
# HTTP's optional white space only: a CR or LF at either end is refused, not trimmed away.
_OWS = " \t"


class _HasMetadata(Protocol):
    def invocation_metadata(self) -> object: ...


@dataclass(frozen=True, slots=True)
class CallerMetadata:
    """The credential metadata of one call, parsed and checked; `problem` is the first invalid value."""

    api_key: str | None = field(default=None, repr=False)
    organization_id: str | None = None
    bridge_token: str | None = field(default=None, repr=False)
    secrets: frozenset[str] = field(default=frozenset(), repr=False)
    """Every credential value as sent (also `Bearer <key>` whole), for scrubbing."""
    problem: InvalidArgument | None = None

    @classmethod
    def parse(cls, metadata: Iterable[tuple[str, str | bytes]] | None) -> CallerMetadata:
        """The first non-blank value of each credential key; never raises (see `problem`)."""
        values: dict[str, str] = {}
        secrets: set[str] = set()
        problem: InvalidArgument | None = None
        for key, raw in metadata or ():
            name = key.lower()
            if name not in _CREDENTIAL_KEYS or name in values:
                continue
            text = raw.strip(_OWS) if isinstance(raw, str) else None
            if text == "":
                continue
            if text is not None and name in _SECRET_KEYS:
                secrets.add(text)
            bad = _problem(name, text)
            if bad is not None:
                problem = problem or _invalid(name, bad)
                continue
            if text is not None:
                values[name] = text
        api_key = values.get(_API_KEY)
        scheme, _, token = values.get(_AUTHORIZATION, "").partition(" ")
        bearer = token.strip(_OWS) if scheme.lower() == "bearer" else ""
        if bearer:
            secrets.add(bearer)
            if not _KEY.fullmatch(bearer):
                problem = problem or _invalid(_AUTHORIZATION, f"Bearer credentials {_KEY_PROBLEM}")
            elif api_key is None:
                api_key = bearer
        return cls(
            api_key=api_key,
            organization_id=values.get(_ORGANIZATION),
            bridge_token=values.get(BRIDGE_TOKEN_METADATA),
            secrets=frozenset(secrets),
            problem=problem,
        )

    def check(self) -> None:
        """Raise `problem` when a credential value is invalid."""
        if self.problem is not None:
            raise self.problem


def _problem(name: str, text: str | None) -> str | None:
    if text is None:
        return "must be ASCII text"
    if name == _ORGANIZATION:
        valid = _ORGANIZATION_ID.fullmatch(text) and text not in (".", "..")
        return None if valid else _ORGANIZATION_PROBLEM
    if name == _AUTHORIZATION:
        # Only its Bearer credentials are forwarded (checked as a key); the rest must still be a header value.
        return None if text.isascii() and text.isprintable() else "must be printable ASCII"
    return None if _KEY.fullmatch(text) else _KEY_PROBLEM


def _invalid(name: str, problem: str) -> InvalidArgument:
    return InvalidArgument(
        f"{name} metadata {problem}",
        reason="INVALID_METADATA",
        field_violations=[FieldViolation(field=name, description=problem)],
    )


_parsed: ContextVar[tuple[object, CallerMetadata] | None] = ContextVar("bridge_caller_metadata", default=None)


def caller_metadata(
    context: _HasMetadata, metadata: Iterable[tuple[str, str | bytes]] | None = None
) -> CallerMetadata:
    """The call's credential metadata, parsed once per call; `metadata` saves reading it from `context` again.

    Each read of a call's metadata decodes it anew, and grpc logs every undecodable value it meets.
    """
    cached = _parsed.get()
    if cached is not None and cached[0] is context:
        return cached[1]
    if metadata is None:
        metadata = cast("Iterable[tuple[str, str | bytes]] | None", context.invocation_metadata())
    parsed = CallerMetadata.parse(metadata)
    _parsed.set((context, parsed))
    return parsed


def checked_default_key(value: str | None) -> str | None:
    """A configured default key without surrounding white space; ValueError when it is not a valid key."""
    if value is None or not value.strip():
        return None
    key = value.strip()
    if not _KEY.fullmatch(key):
        raise ValueError(f"the default platform key (XPANDER_API_KEY) {_KEY_PROBLEM}")
    return key


@dataclass(frozen=True, slots=True)
class Credentials:
    """The API key and (when known) organization of one call."""

    api_key: str = field(repr=False)
    organization_id: str | None

    def require_organization(self, purpose: str) -> str:
        """The organization id, or UNAUTHENTICATED saying `purpose` needs one."""
        if self.organization_id is None:
            raise Unauthenticated(
                f"{purpose} needs an organization id: send x-organization-id metadata "
                "or configure XPANDER_ORGANIZATION_ID",
                reason="MISSING_ORGANIZATION_ID",
            )
        return self.organization_id


def resolve_credentials(
    caller: CallerMetadata | Iterable[tuple[str, str | bytes]] | None,
    *,
    default_api_key: str | None,
    default_organization_id: str | None,
) -> Credentials:
    """The call's credentials from its metadata, else the defaults.

    INVALID_ARGUMENT for invalid metadata, UNAUTHENTICATED when there is no key.
    """
    if not isinstance(caller, CallerMetadata):
        caller = CallerMetadata.parse(caller)
    caller.check()
    api_key = caller.api_key
    if api_key is None and default_api_key is not None:
        try:
            api_key = checked_default_key(default_api_key)
        except ValueError as error:
            # `serve` refuses such a key at start-up; an embedding program may not have.
            raise Internal(str(error), reason="INVALID_DEFAULT_API_KEY") from None
    if not api_key:
        raise Unauthenticated(
            "no platform API key: send x-api-key (or authorization: Bearer <key>) metadata "
            "or configure XPANDER_API_KEY",
            reason="MISSING_API_KEY",
        )
    return Credentials(api_key=api_key, organization_id=caller.organization_id or default_organization_id)
