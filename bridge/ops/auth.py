"""Caller authentication: who may make the bridge act with its default platform key.

With a default key configured, any caller reaching the bridge could act with it. The bridge then requires
its own caller credentials, unless the caller brings its own platform key:

- `x-bridge-token: <token>` metadata: one of the static bridge tokens (from a file or `BRIDGE_TOKENS`);
- a client certificate, when the listener requires one (mTLS): the TLS handshake has authenticated the caller;
- `x-api-key: <key>` or `authorization: Bearer <key>`: the caller's own platform key, which the bridge uses
  instead of the default and the platform checks. `authorization: Bearer` always carries a platform key,
  never a bridge token, so the two cannot be confused.

Health and reflection stay open (probes). Malformed credential metadata (see `bridge.credentials`) is
INVALID_ARGUMENT before anything else. A wrong `x-bridge-token` is refused even alongside a platform key,
so a misconfigured caller finds out at once. `check_exposure` refuses to start on a non-loopback address
with a default key and no caller authentication unless `allow_unauthenticated` says so. What it lets start
without any caller authentication configured (a loopback listener, or `allow_unauthenticated`) serves every
caller: there would be no credential to ask for.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from bridge.credentials import BRIDGE_TOKEN_METADATA, CallerMetadata
from bridge.errors import Unauthenticated
from bridge.ops.calls import Call, CallStage, MethodStage, OpsInterceptor, is_open_method

__all__ = [
    "BRIDGE_TOKEN_METADATA",
    "MIN_TOKEN_CHARS",
    "AuthInterceptor",
    "BridgeTokens",
    "CallerAuth",
    "UnsafeExposureError",
    "caller_var",
    "check_exposure",
    "is_loopback",
]

MIN_TOKEN_CHARS = 16
"""Shortest bridge token accepted: shorter ones are guessable."""

caller_var: ContextVar[str | None] = ContextVar("bridge_caller", default=None)
"""How the call being served authenticated: `token:<name>`, `platform-key`, `mtls` or `open`."""

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class _Token:
    name: str
    digest: bytes


class BridgeTokens:
    """The static caller tokens; compared in constant time, kept only as digests."""

    def __init__(self, entries: Iterable[tuple[str, str]] = ()) -> None:
        self._entries = tuple(entries)
        self._tokens = tuple(_Token(name, _digest(token)) for name, token in self._entries)

    @classmethod
    def parse(cls, text: str, *, separator: str = "\n", source: str = "bridge tokens") -> BridgeTokens:
        """Tokens from `token` or `name:token` entries split by `separator`; skips blanks and `#` comments."""
        entries: list[tuple[str, str]] = []
        for number, raw in enumerate(text.split(separator), start=1):
            entry = raw.strip()
            if not entry or entry.startswith("#"):
                continue
            name, colon, token = entry.partition(":")
            if not colon or not _NAME.fullmatch(name):
                name, token = f"token{number}", entry
            token = token.strip()
            if len(token) < MIN_TOKEN_CHARS:
                raise ValueError(
                    f"{source}, entry {number}: a token needs at least {MIN_TOKEN_CHARS} characters"
                )
            entries.append((name, token))
        return cls(entries)

    @classmethod
    def load(cls, file: Path | None = None, inline: str | None = None) -> BridgeTokens:
        """Tokens from `file` (one entry a line) and `inline` (comma-separated entries), together."""
        tokens = cls()
        if file is not None:
            tokens = tokens.merged(cls.parse(file.read_text(encoding="utf-8"), source=str(file)))
        if inline:
            tokens = tokens.merged(cls.parse(inline, separator=",", source="BRIDGE_TOKENS"))
        return tokens

    def merged(self, other: BridgeTokens) -> BridgeTokens:
        """These tokens and `other`'s."""
        return BridgeTokens(self._entries + other._entries)

    def match(self, presented: str) -> str | None:
        """The name of the token equal to `presented`, else None; every token is compared."""
        digest = _digest(presented)
        found: str | None = None
        for token in self._tokens:
            if hmac.compare_digest(digest, token.digest):
                found = token.name
        return found

    def secret_values(self) -> tuple[str, ...]:
        """The raw tokens, for the log redactor."""
        return tuple(token for _, token in self._entries)

    def __len__(self) -> int:
        return len(self._tokens)

    def __repr__(self) -> str:
        return f"BridgeTokens(<{len(self._tokens)} tokens>)"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class UnsafeExposureError(Exception):
    """The bridge would serve its default platform key to anyone who can reach it."""


def is_loopback(host: str) -> bool:
    """Whether `host` (a listen host: name or address, IPv6 possibly bracketed) is loopback only."""
    bare = host.strip().strip("[]")
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def check_exposure(
    listen_host: str,
    *,
    default_key_configured: bool,
    tokens: BridgeTokens,
    client_cert_required: bool,
    allow_unauthenticated: bool,
) -> None:
    """Raise `UnsafeExposureError` when a non-loopback listener would lend the default key to anyone."""
    if not default_key_configured or is_loopback(listen_host) or allow_unauthenticated:
        return
    if len(tokens) or client_cert_required:
        return
    raise UnsafeExposureError(
        f"refusing to serve on {listen_host} with a default platform key (XPANDER_API_KEY) and no caller "
        "authentication: any caller would act with that key. Configure bridge tokens (BRIDGE_TOKENS or "
        "--bridge-tokens-file), require client certificates (--tls-client-ca-file with "
        "--tls-require-client-cert), listen on a loopback address, or pass --allow-unauthenticated."
    )


class CallerAuth(CallStage, MethodStage):
    """Refuses with UNAUTHENTICATED the calls that would use the default key without caller credentials.

    Sets `caller_var` to how an admitted caller authenticated. Health and reflection are left alone.
    """

    __slots__ = ("_open_as", "_required", "_tokens")

    def __init__(
        self,
        tokens: BridgeTokens,
        *,
        default_key_configured: bool,
        client_cert_required: bool = False,
        allow_unauthenticated: bool = False,
    ) -> None:
        self._tokens = tokens
        # Without tokens there is nothing a caller could present: the start-up check has then already
        # decided that this listener may lend the default key (loopback, or explicitly allowed).
        self._required = (
            default_key_configured
            and len(tokens) > 0
            and not client_cert_required
            and not allow_unauthenticated
        )
        self._open_as = "mtls" if client_cert_required else "open"

    def _decide(self, caller: CallerMetadata) -> tuple[str | None, str]:
        """(how the caller authenticated or None, why not)."""
        presented = caller.bridge_token
        if presented is not None and len(self._tokens):
            name = self._tokens.match(presented)
            if name is None:
                return None, f"{BRIDGE_TOKEN_METADATA} is not a valid bridge token"
            return f"token:{name}", ""
        if caller.api_key is not None:
            return "platform-key", ""
        if not self._required:
            return self._open_as, ""
        return None, (
            f"this bridge requires caller credentials: send {BRIDGE_TOKEN_METADATA} metadata with a bridge "
            "token, or your own platform key as x-api-key"
        )

    def bind(self, method: str, *, streaming: bool) -> MethodStage | None:
        # Nothing depends on the method: the stage serves every one it guards.
        return None if is_open_method(method) else self

    def enter(self, call: Call) -> None:
        metadata = call.caller
        # Malformed credential metadata is the caller's mistake whatever else it sent: INVALID_ARGUMENT.
        metadata.check()
        caller, problem = self._decide(metadata)
        if caller is None:
            raise Unauthenticated(problem, reason="BRIDGE_CREDENTIALS_REQUIRED")
        caller_var.set(caller)


class AuthInterceptor(OpsInterceptor):
    """An interceptor running `CallerAuth` alone (`Operations` runs it with the other stages)."""

    def __init__(
        self,
        tokens: BridgeTokens,
        *,
        default_key_configured: bool,
        client_cert_required: bool = False,
        allow_unauthenticated: bool = False,
    ) -> None:
        super().__init__(
            [
                CallerAuth(
                    tokens,
                    default_key_configured=default_key_configured,
                    client_cert_required=client_cert_required,
                    allow_unauthenticated=allow_unauthenticated,
                )
            ]
        )
