"""Starts and stops the control sockets of a configuration (``[[control-sockets]]``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from fastdhcp.config import ControlSocket, SocketType
from fastdhcp.control.http import HttpTransport
from fastdhcp.control.unix import UnixTransport

if TYPE_CHECKING:
    from fastdhcp.control.common import Dispatch

__all__ = ["ControlChannel"]

log = logging.getLogger("fastdhcp.control")


class Transport(Protocol):
    """What the channel needs of a transport."""

    conf: ControlSocket

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def _transport(dispatch: Dispatch, conf: ControlSocket) -> Transport:
    if conf.socket_type is SocketType.UNIX:
        return UnixTransport(dispatch, conf)
    if conf.socket_type in (SocketType.HTTP, SocketType.HTTPS):
        return HttpTransport(dispatch, conf)
    raise OSError(f"control socket type {conf.socket_type.value} is not available")


class ControlChannel:
    """The control sockets of one server (or of the multi-worker front), each answering
    through ``dispatch``. ``start`` opens all of them or none (OSError)."""

    def __init__(self, dispatch: Dispatch) -> None:
        self._dispatch = dispatch
        self._open: list[Transport] = []

    @property
    def sockets(self) -> list[ControlSocket]:
        """The sockets being served."""
        return [t.conf for t in self._open]

    async def start(self, confs: tuple[ControlSocket, ...]) -> None:
        """Open every socket of ``confs``; on any failure close those opened and raise."""
        try:
            for conf in confs:
                t = _transport(self._dispatch, conf)
                await t.start()
                self._open.append(t)
        except BaseException:
            await self.close()
            raise

    async def reconfigure(self, confs: tuple[ControlSocket, ...]) -> None:
        """Serve ``confs``: sockets that did not change stay open (their connections too)."""
        keep = [t for t in self._open if t.conf in confs]
        for t in self._open:
            if t not in keep:
                await t.close()
        self._open = keep
        have = {t.conf for t in keep}
        for conf in confs:
            if conf not in have:
                t = _transport(self._dispatch, conf)
                await t.start()
                self._open.append(t)

    async def close(self) -> None:
        """Close every socket (the Unix socket files are removed)."""
        while self._open:
            t = self._open.pop()
            try:
                await t.close()
            except Exception:
                log.exception("closing control socket")
