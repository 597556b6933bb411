"""Per-call credentials: the platform API key and organization a gRPC call acts with.

The key comes from call metadata `x-api-key` or `authorization: Bearer <key>`, the organization from
`x-organization-id`; each falls back to the bridge's configured default. A call with no key anywhere is
refused before the platform is called. The key is kept out of `repr()` so it cannot leak into a log line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bridge.errors import FieldViolation, InvalidArgument, Unauthenticated

__all__ = ["Credentials", "resolve_credentials"]

_API_KEY = "x-api-key"
_AUTHORIZATION = "authorization"
_ORGANIZATION = "x-organization-id"
_BEARER = "bearer "
# The organization id becomes a URL path segment: only unreserved characters, so it cannot change the path.
_SAFE_ORGANIZATION = re.compile(r"[A-Za-z0-9._~-]{1,128}")


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
    metadata: Iterable[tuple[str, str | bytes]] | None,
    *,
    default_api_key: str | None,
    default_organization_id: str | None,
) -> Credentials:
    """The call's credentials from its metadata, else the defaults; UNAUTHENTICATED when there is no key."""
    api_key: str | None = None
    organization_id: str | None = None
    for key, value in metadata or ():
        if isinstance(value, bytes):
            continue
        name = key.lower()
        if name == _API_KEY and value.strip():
            api_key = value.strip()
        elif name == _AUTHORIZATION and api_key is None:
            scheme_and_token = value.strip()
            if scheme_and_token.lower().startswith(_BEARER) and scheme_and_token[len(_BEARER) :].strip():
                api_key = scheme_and_token[len(_BEARER) :].strip()
        elif name == _ORGANIZATION and value.strip():
            organization_id = _safe_organization(value.strip())
    api_key = api_key or default_api_key
    if not api_key:
        raise Unauthenticated(
            "no platform API key: send x-api-key (or authorization: Bearer <key>) metadata "
            "or configure XPANDER_API_KEY",
            reason="MISSING_API_KEY",
        )
    return Credentials(api_key=api_key, organization_id=organization_id or default_organization_id)


def _safe_organization(value: str) -> str:
    if not _SAFE_ORGANIZATION.fullmatch(value) or value in (".", ".."):
        problem = "must be 1 to 128 letters, digits or ._~- (it becomes a URL path segment)"
        raise InvalidArgument(
            f"{_ORGANIZATION} metadata {problem}",
            reason="INVALID_METADATA",
            field_violations=[FieldViolation(field=_ORGANIZATION, description=problem)],
        )
    return value
