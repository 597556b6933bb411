"""Response bodies read within a bound, decompressed by zlib a bounded piece at a time.

httpx's own decoders inflate each received chunk whole, so a 300 KB gzip chunk can become 300 MB in one
call. `Decoder` asks zlib for at most `PIECE` bytes per call instead, and `read_body` stops at its limit,
so no answer of the platform can hold more than the limit (plus one piece) of the bridge's memory.
Only the codings the bridge asks for (`ACCEPT_ENCODING`) are accepted.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Final

import httpx

__all__ = ["ACCEPT_ENCODING", "PIECE", "BodyTooLarge", "Decoder", "UnsupportedEncoding", "read_body"]

ACCEPT_ENCODING: Final = "gzip, deflate"
PIECE: Final = 64 * 1024

_WBITS: Final = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class BodyTooLarge(Exception):
    """The body, decompressed, is larger than the limit."""


class UnsupportedEncoding(Exception):
    """The body has a `Content-Encoding` the bridge did not ask for, or its compressed data is corrupt."""


class Decoder:
    """Undoes a response's `Content-Encoding` incrementally, in pieces of at most `PIECE` bytes."""

    def __init__(self, content_encoding: str | None) -> None:
        coding = (content_encoding or "identity").strip().lower()
        if coding in ("", "identity"):
            self._inflater = None
        elif coding in _WBITS:
            self._inflater = zlib.decompressobj(_WBITS[coding])
        else:
            raise UnsupportedEncoding(f"unsupported Content-Encoding {coding[:40]!r}")
        # Servers disagree on whether `deflate` means zlib-wrapped or raw data; the first bytes tell.
        self._raw_deflate_fallback = coding == "deflate"

    def decode(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of `data`."""
        if self._inflater is None:
            if data:
                yield data
            return
        pending = data
        while pending:
            try:
                piece = self._inflater.decompress(pending, PIECE)
            except zlib.error as error:
                if not self._raw_deflate_fallback:
                    raise UnsupportedEncoding(f"corrupt compressed body: {error}") from None
                self._raw_deflate_fallback = False
                self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._raw_deflate_fallback = False
            if piece:
                yield piece
            pending = self._inflater.unconsumed_tail


async def read_body(response: httpx.Response, *, limit: int, truncate: bool = False) -> bytes:
    """The decoded body, at most `limit` bytes: BodyTooLarge past it, or the first `limit` when `truncate`.

    A transport may hand over a body it has read already (httpx's MockTransport does): it is taken as is.
    """
    try:
        whole = response.content
    except httpx.ResponseNotRead:
        pass
    else:
        if len(whole) > limit and not truncate:
            raise BodyTooLarge(f"the body is larger than {limit} bytes")
        return whole[:limit]
    decoder = Decoder(response.headers.get("content-encoding"))
    pieces: list[bytes] = []
    size = 0
    async for data in response.aiter_raw():
        for piece in decoder.decode(data):
            size += len(piece)
            if size > limit:
                if truncate:
                    pieces.append(piece[: len(piece) - (size - limit)])
                    return b"".join(pieces)
                raise BodyTooLarge(f"the body is larger than {limit} bytes")
            pieces.append(piece)
    return b"".join(pieces)
