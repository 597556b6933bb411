"""Checks on caller input before anything leaves the bridge; each names the field it rejects."""

from __future__ import annotations

from urllib.parse import urlsplit

from bridge.errors import FieldViolation, InvalidArgument

__all__ = [
    "MAX_ID_CHARS",
    "email_problem",
    "id_problem",
    "invalid_argument",
    "url_problem",
    "validate_resource_id",
]

MAX_ID_CHARS = 256
"""Longest id the bridge forwards."""

# `%` is refused as well as the reserved characters: a percent-escape such as `%2F` would be decoded by
# some proxy or framework on the way and smuggle a `/` or `..` into the platform's route.
_UNSAFE_ID_CHARS = frozenset("/?#%\\")
_MAX_EMAIL_CHARS = 254
_MAX_EMAIL_LOCAL_CHARS = 64


def _has_space_or_control(text: str) -> bool:
    # isprintable() is False for control, format, separator and unassigned characters except the ASCII
    # space, which is tested on its own.
    return not text.isprintable() or " " in text


def id_problem(value: str) -> str | None:
    """Why `value` cannot be used as one URL path segment, or None when it can."""
    if not value:
        return "is required"
    if value in (".", ".."):
        return "must not be '.' or '..'"
    if len(value) > MAX_ID_CHARS:
        return f"must be at most {MAX_ID_CHARS} characters"
    if not _UNSAFE_ID_CHARS.isdisjoint(value):
        return "must not contain '/', '?', '#', '%' or '\\'"
    if _has_space_or_control(value):
        return "must not contain white space or control characters"
    return None


def url_problem(value: str) -> str | None:
    """Why `value` is not an absolute http(s) URL with a host, or None when it is."""
    if not value:
        return "is required"
    if _has_space_or_control(value):
        return "must not contain white space or control characters"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        return "is not a valid URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an absolute http or https URL"
    if not parts.hostname:
        return "must name a host"
    return None


def email_problem(value: str) -> str | None:
    """Why `value` is not a plausible e-mail address (`local@domain`), or None when it is."""
    if not value:
        return "is required"
    if len(value) > _MAX_EMAIL_CHARS or _has_space_or_control(value):
        return "is not a valid e-mail address"
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or "@" in local
        or len(local) > _MAX_EMAIL_LOCAL_CHARS
        or not domain
        or any(not label or label[0] == "-" or label[-1] == "-" for label in domain.split("."))
    ):
        return "is not a valid e-mail address"
    return None


def invalid_argument(violations: list[FieldViolation]) -> InvalidArgument:
    """The error reporting every violation at once."""
    first = violations[0]
    summary = f"{first.field} {first.description}"
    if len(violations) > 1:
        summary += f" (and {len(violations) - 1} more)"
    return InvalidArgument(f"invalid request: {summary}", field_violations=violations)


def validate_resource_id(field: str, value: str) -> str:
    """`value` if it is safe as one URL path segment; otherwise InvalidArgument naming `field`."""
    problem = id_problem(value)
    if problem is not None:
        raise invalid_argument([FieldViolation(field, problem)])
    return value
