"""A limit on the connections an asyncio server serves at once, for protocol-based servers
(the HTTP transport) as the Unix transport's semaphore is for stream servers.

A connection over the limit is accepted but not served: its reading is paused and its
protocol does not see it until a served connection ends, then it is served in arrival order
(so a client waits, as in a listen backlog, instead of being refused). A waiting connection
that its peer closes leaves the queue.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import cast

__all__ = ["ConnectionGate"]


class ConnectionGate:
    """At most ``limit`` connections reach their protocol at once; see the module docstring."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._waiting: collections.deque[_Gated] = collections.deque()

    def factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` wrapping ``inner``'s protocols."""
        return lambda: _Gated(self, inner())

    def abort_waiting(self) -> None:
        """Drop every waiting connection (the server is closing)."""
        while self._waiting:
            gated = self._waiting.popleft()
            if gated.transport is not None:
                gated.transport.abort()

    def _arrive(self, gated: _Gated) -> None:
        if self.active < self.limit:
            self.active += 1
            gated.admit()
        else:
            assert gated.transport is not None
            gated.transport.pause_reading()
            self._waiting.append(gated)

    def _leave(self, gated: _Gated) -> None:
        if not gated.admitted:
            try:
                self._waiting.remove(gated)
            except ValueError:
                pass
            return
        self.active -= 1
        while self._waiting and self.active < self.limit:
            nxt = self._waiting.popleft()
            if nxt.transport is None or nxt.transport.is_closing():
                continue
            self.active += 1
            nxt.transport.resume_reading()  # (data arrives from the loop, after admit)
            nxt.admit()


class _Gated(asyncio.Protocol):
    """Stands between the transport and the real protocol until the gate admits it."""

    def __init__(self, gate: ConnectionGate, inner: asyncio.Protocol) -> None:
        self._gate = gate
        self._inner = inner
        self.transport: asyncio.Transport | None = None
        self.admitted = False
        self._early = b""

    def admit(self) -> None:
        self.admitted = True
        assert self.transport is not None
        self._inner.connection_made(self.transport)
        if self._early:
            data, self._early = self._early, b""
            self._inner.data_received(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses; they have its methods)
        self.transport = cast(asyncio.Transport, transport)
        self._gate._arrive(self)

    def data_received(self, data: bytes) -> None:
        # reading is paused while waiting; a TLS layer may still hand over what it had
        # decrypted, which the real protocol would otherwise never see
        if self.admitted:
            self._inner.data_received(data)
        else:
            self._early += data

    def eof_received(self) -> bool | None:
        if self.admitted:
            return self._inner.eof_received()
        return None  # the peer gave up before its turn: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self.admitted:
            self._inner.connection_lost(exc)
        self._gate._leave(self)
        self.transport = None

    def pause_writing(self) -> None:
        if self.admitted:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self._inner.resume_writing()
