"""Connection slots that cannot leak: each `acquire` hands out a `Lease`, which gives its slot back once.

The pool bounds the connections open at once, busy and idle together, and keeps idle ones per origin for
reuse until they expire. Whatever happens to a request (a malformed head, a reset, a timeout, a cancelled
caller), the transport releases its lease in a `finally`; releasing twice is harmless, so no path can give
a slot back twice or not at all.
"""

from __future__ import annotations

import asyncio
from collections import deque

from bridge.platform.connection import Connection

__all__ = ["ConnectionPool", "Lease", "Origin"]

Origin = tuple[str, str, int]  # scheme, host, port


class Lease:
    """The right to one connection slot: `connection` is an idle one handed over, or None (open a new one)."""

    __slots__ = ("_pool", "_released", "connection", "origin", "reused")

    def __init__(self, pool: ConnectionPool, origin: Origin, connection: Connection | None) -> None:
        self._pool = pool
        self._released = False
        self.origin = origin
        self.connection = connection
        self.reused = connection is not None

    def release(self, *, reusable: bool) -> None:
        """Give the slot back: the connection goes idle when `reusable` and fit, else it is closed."""
        if self._released:
            return
        self._released = True
        self._pool.give_back(self.origin, self.connection, reusable=reusable)


class ConnectionPool:
    """At most `limit` connections (0: no limit); idle ones expire after `expiry` seconds."""

    def __init__(self, limit: int, expiry: float) -> None:
        self._limit = limit
        self._expiry = expiry
        self._slots = 0  # leases out plus idle connections
        self._idle: dict[Origin, list[Connection]] = {}  # oldest first
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    @property
    def leased(self) -> int:
        """Slots held by leases not yet released (idle connections not counted)."""
        return self._slots - sum(len(idle) for idle in self._idle.values())

    async def acquire(self, origin: Origin, *, fresh: bool = False) -> Lease:
        """A lease on an idle connection to `origin` (unless `fresh`), or on a slot to open one."""
        while True:
            if self._closed:
                raise RuntimeError("the connection pool is closed")
            connection = None if fresh else self._idle_connection(origin)
            if connection is not None:
                return Lease(self, origin, connection)
            if not self._limit or self._slots < self._limit or self._close_oldest_idle():
                self._slots += 1
                return Lease(self, origin, None)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # the wake-up this waiter took goes to the next one
                raise

    def give_back(self, origin: Origin, connection: Connection | None, *, reusable: bool) -> None:
        """A lease's slot: kept with its idle connection, or freed (see `Lease.release`)."""
        if reusable and connection is not None and connection.reusable() and not self._closed:
            connection.finish()
            connection.expiry = asyncio.get_running_loop().call_later(
                self._expiry, self._expire, origin, connection
            )
            self._idle.setdefault(origin, []).append(connection)
        else:
            if connection is not None:
                connection.close()
            self._slots -= 1
        self._wake()

    def close(self) -> None:
        """Close the idle connections and refuse new leases; leases out are still released as usual."""
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                self._drop(connection)
        self._idle.clear()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _idle_connection(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            _stop_expiry(connection)
            if connection.idle_and_sound():
                return connection
            self._drop(connection)  # the server closed it, or spoke unasked, while it was idle
        return None

    def _expire(self, origin: Origin, connection: Connection) -> None:
        idle = self._idle.get(origin)
        if idle is not None and connection in idle:
            idle.remove(connection)
            connection.expiry = None
            self._drop(connection)
            self._wake()

    def _close_oldest_idle(self) -> bool:
        for idle in self._idle.values():
            if idle:
                connection = idle.pop(0)
                _stop_expiry(connection)
                self._drop(connection)
                return True
        return False

    def _drop(self, connection: Connection) -> None:
        _stop_expiry(connection)
        connection.close()
        self._slots -= 1

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _stop_expiry(connection: Connection) -> None:
    if connection.expiry is not None:
        connection.expiry.cancel()
        connection.expiry = None
