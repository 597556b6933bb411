"""Secret scrubbing: every secret the bridge knows is removed from text before a caller or a log sees it.

A `Redactor` removes known values (the process's: default key and bridge tokens, see `remember`; and the
call's being served: its credential metadata and secret request fields, see `call_secrets_var`), values of
secret-looking keys (`api_key=...`, `"authorization": "..."`) and bearer tokens. Log formatters use one.
`scrub` removes the known values from error text the platform sent, which may echo the key it was given.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.message import Message

from bridge.credentials import CallerMetadata

__all__ = [
    "MIN_SECRET_CHARS",
    "REDACTED",
    "Redactor",
    "add_call_secrets",
    "call_secrets_var",
    "remember",
    "scrub",
    "secrets_of_call",
]

REDACTED = "[REDACTED]"
MIN_SECRET_CHARS = 6
"""Shorter values are not scrubbed: they would cut words out of lines (keys that short are refused)."""

call_secrets_var: ContextVar[frozenset[str]] = ContextVar("bridge_call_secrets", default=frozenset())
"""Secrets carried by the call being served, scrubbed from any text produced while it runs."""

# The shortest start of a secret worth scrubbing where text was cut: fewer characters tell nothing.
_MIN_CUT_CHARS = 4
# Request message fields whose values are secrets.
_SECRET_FIELDS = frozenset({"user_oidc_token", "user_tokens", "api_key", "client_secret", "headers"})
# The process's secrets, shared by every Redactor: configured once, read on every line.
_PROCESS_SECRETS: set[str] = set()


def remember(secrets: Iterable[str | None]) -> None:
    """Scrub these process-wide secrets (default key, bridge tokens) from now on; skips short ones."""
    _PROCESS_SECRETS.update(s for s in secrets if s is not None and len(s) >= MIN_SECRET_CHARS)


def add_call_secrets(secrets: Iterable[str]) -> None:
    """Add secrets to those of the call being served."""
    found = frozenset(s for s in secrets if len(s) >= MIN_SECRET_CHARS)
    current = call_secrets_var.get()
    if not found <= current:
        call_secrets_var.set(current | found)


# A key starts where a run of word characters, dots and dashes does (the lookbehind): a match found from
# inside a run is found from its start too, and trying every position inside long runs (ids, method names)
# costs hundreds of microseconds a line.
_SECRET_KEY = re.compile(
    r"""(?ix)
    (?<![\w.-])
    (?P<key>[\w.-]*(?:api[_-]?key|authorization|bridge[_-]tokens?|oidc[_-]token|user[_-]tokens
        |client[_-]secret|access[_-]token|refresh[_-]token|id[_-]token|password|secret))
    (?P<quote>["']?)
    (?P<sep>\s*[:=]\s*|\s*,\s*|\s*(?=\{))
    """
)
_QUOTED_OR_BARE_VALUE = re.compile(
    r"""(?ix)
    "(?:[^"\\]|\\.)*" | '(?:[^'\\]|\\.)*' | (?:bearer|basic)\s+[^\s"',;}\]]+ | [^\s"',;&}\])]+
    """
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]+")


class Redactor:
    """Scrubs secrets out of text: known values, values of secret-looking keys and bearer tokens."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, secret: str) -> None:
        """Scrub `secret` wherever it appears from now on (values shorter than 6 characters are ignored)."""
        if len(secret) >= MIN_SECRET_CHARS:
            self._secrets.add(secret)

    def redact(self, text: str) -> str:
        """`text` with every secret replaced by `[REDACTED]`."""
        # Longest first, so a secret that contains another is scrubbed whole.
        known = self._secrets | _PROCESS_SECRETS | call_secrets_var.get()
        for secret in sorted(known, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        # Both patterns cost tens of microseconds to search for; most lines contain none of the words a match
        # needs, and then cannot match. Only ASCII text is prefiltered: case-insensitive patterns also match
        # non-ASCII look-alikes (e.g. U+017F for s) that lower() keeps.
        lowered = text.lower() if text.isascii() else None
        if lowered is None or any(word in lowered for word in _SECRET_KEY_WORDS):
            text = _redact_key_values(text)
        if lowered is None or "bearer" in lowered:
            text = _BEARER.sub(rf"\1 {REDACTED}", text)
        return text


# Every `_SECRET_KEY` match contains one of these, in any case: its key alternatives are api[_-]?key,
# authorization, ...[_-]token(s), ...secret and password. (Not bare `key` or `token`: an access line's
# `caller=platform-key` or `caller=token:ci` would then pay for a search that cannot match.)
_SECRET_KEY_WORDS = (
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "_token",
    "-token",
    "password",
    "secret",
)


def _redact_key_values(text: str) -> str:
    out: list[str] = []
    position = 0
    while match := _SECRET_KEY.search(text, position):
        out.append(text[position : match.end()])
        position = match.end()
        sep = match.group("sep")
        if position < len(text) and text[position] == "{":
            end = _closing_brace(text, position)
            out.append("{" + REDACTED + "}")
            position = end
        elif sep.strip() == "," and not match.group("quote"):
            continue  # `password, ...` in prose, not a key and its value
        elif sep.strip() and (value := _QUOTED_OR_BARE_VALUE.match(text, position)):
            quote = value.group()[0] if value.group()[0] in "\"'" else ""
            out.append(f"{quote}{REDACTED}{quote}")
            position = value.end()
    out.append(text[position:])
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """The index after the brace closing the one at `start` (or the end of `text`), skipping quoted braces."""
    depth = 0
    quote = ""
    index = start
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return len(text)


def scrub(text: str) -> str:
    """`text` without any secret value the bridge knows: the process's and the current call's.

    For error text sent to callers: key/value patterns are left alone, as a platform's validation message
    (`body.api_key: field required`) names keys without holding secrets. The text was cut to a length on
    its way here, so a secret cut short at its end is scrubbed as well.
    """
    known = _PROCESS_SECRETS | call_secrets_var.get()
    for secret in sorted(known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    body, ellipsis = (text[:-1], text[-1]) if text.endswith("…") else (text, "")
    for secret in known:
        for length in range(len(secret) - 1, _MIN_CUT_CHARS - 1, -1):
            if body.endswith(secret[:length]):
                return body[:-length] + REDACTED + ellipsis
    return text


def secrets_of_call(
    metadata: CallerMetadata | Iterable[tuple[str, str | bytes]] | None, request: Any
) -> frozenset[str]:
    """Every secret value a call carries: credential metadata and secret fields of its request message."""
    caller = metadata if isinstance(metadata, CallerMetadata) else CallerMetadata.parse(metadata)
    found = set(caller.secrets)
    if isinstance(request, Message):
        _collect_secret_fields(request, found, inside_secret=False, depth=0)
    return frozenset(secret for secret in found if len(secret) >= MIN_SECRET_CHARS)


def _collect_secret_fields(message: Message, found: set[str], *, inside_secret: bool, depth: int) -> None:
    if depth > 8:
        return
    for field, value in message.ListFields():
        kind = _kind_of(field)
        secret = inside_secret or kind.secret
        if not secret and not kind.may_hold_secrets:
            continue  # a plain value, or messages without a secret field anywhere inside
        values = value.values() if kind.is_map else value if kind.is_repeated else [value]
        for item in values:
            if isinstance(item, str):
                if secret:
                    found.add(item)
            elif isinstance(item, struct_pb2.Struct | struct_pb2.Value | struct_pb2.ListValue | Message):
                _collect_secret_fields(item, found, inside_secret=secret, depth=depth + 1)


@dataclass(frozen=True, slots=True)
class _FieldKind:
    secret: bool
    """Named like a secret: every string inside is one."""
    may_hold_secrets: bool
    """Of a message type with a secret-named field somewhere inside."""
    is_map: bool
    is_repeated: bool


# Per field descriptor, what the walk needs to know about it: looking it up again costs more than the walk.
_FIELD_KINDS: dict[Any, _FieldKind] = {}
_HOLDS_SECRETS: dict[Any, bool] = {}


def _kind_of(field: Any) -> _FieldKind:
    kind = _FIELD_KINDS.get(field)
    if kind is None:
        message_type = field.message_type
        kind = _FieldKind(
            secret=field.name in _SECRET_FIELDS,
            may_hold_secrets=message_type is not None and _holds_secrets(message_type),
            is_map=bool(message_type is not None and message_type.GetOptions().map_entry),
            is_repeated=bool(field.is_repeated),
        )
        _FIELD_KINDS[field] = kind
    return kind


def _holds_secrets(descriptor: Any) -> bool:
    """Whether a message of type `descriptor` can have a secret-named field at any depth."""
    known = _HOLDS_SECRETS.get(descriptor)
    if known is None:
        seen = {descriptor}
        pending = [descriptor]
        known = False
        while pending and not known:
            for field in pending.pop().fields:
                if field.name in _SECRET_FIELDS:
                    known = True
                    break
                inner = field.message_type
                if inner is not None and inner not in seen:
                    seen.add(inner)
                    pending.append(inner)
        _HOLDS_SECRETS[descriptor] = known
    return known
