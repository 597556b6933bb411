"""Pages over a whole array: the platform's history routes return every task at once, ListTasks pages them.

A page token is opaque to callers: URL-safe base64 of a small JSON document holding the offset of the next
page and a fingerprint of the filters it was issued for, so a token replayed with other filters is rejected
rather than silently paging a different list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import orjson

from bridge.errors import FieldViolation, InvalidArgument

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Page",
    "PageRequest",
    "filters_fingerprint",
    "page_size_of",
]

DEFAULT_PAGE_SIZE = 50
"""Page size when the request leaves `page_size` at 0."""

MAX_PAGE_SIZE = 1000
"""Largest page served; larger requests are clamped to it."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of items, the token of the next page ("" on the last one) and the size of the whole list."""

    items: Sequence[T]
    next_page_token: str
    total_size: int


def filters_fingerprint(filters: Mapping[str, str]) -> str:
    """A short, stable digest of the request's filters (everything but the paging fields)."""
    canonical = orjson.dumps(dict(filters), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


def page_size_of(requested: int) -> int:
    """The page size to serve for the request's `page_size`: 0 means the default; negative is invalid."""
    if requested < 0:
        raise _invalid("page_size", f"must not be negative, got {requested}")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page a request asks for: checked before the platform is called, applied to its answer."""

    offset: int
    size: int
    fingerprint: str

    @classmethod
    def parse(cls, *, page_size: int, page_token: str, fingerprint: str) -> PageRequest:
        """The request's page; INVALID_ARGUMENT naming `page_size` or `page_token` when they are unusable."""
        size = page_size_of(page_size)
        offset = _decode_token(page_token, fingerprint) if page_token else 0
        return cls(offset=offset, size=size, fingerprint=fingerprint)

    def page(self, items: Sequence[T]) -> Page[T]:
        """This page of `items`, with the token of the next one."""
        if self.offset > len(items):
            raise _invalid("page_token", "points past the end of the list; the list changed, start again")
        end = self.offset + self.size
        next_token = _encode_token(end, self.fingerprint) if end < len(items) else ""
        return Page(items=items[self.offset : end], next_page_token=next_token, total_size=len(items))


def _encode_token(offset: int, fingerprint: str) -> str:
    raw = orjson.dumps({"o": offset, "f": fingerprint})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, fingerprint: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = orjson.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise _invalid("page_token", "is not a token this service issued") from error
    if not isinstance(document, dict):
        raise _invalid("page_token", "is not a token this service issued")
    offset, token_fingerprint = document.get("o"), document.get("f")
    if type(offset) is not int or offset < 0 or not isinstance(token_fingerprint, str):
        raise _invalid("page_token", "is not a token this service issued")
    if token_fingerprint != fingerprint:
        raise _invalid("page_token", "was issued for other filters; send the same filters with it")
    return offset


def _invalid(field: str, problem: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid request: {field} {problem}",
        field_violations=[FieldViolation(field=field, description=problem)],
    )
