"""What the packet-path tests drive the compiled path with: a stand-in for the service's
Endpoint (``Ep``) and a bound UDP socket pair on loopback (``udp_pair``, the ``socks``
fixture of tests/conftest.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dhcpsim import SERVER_IP

from fastdhcp._sockio import DatagramIO
from fastdhcp.engine import Link


@dataclass
class Ep:
    """What the path reads of the service's Endpoint."""

    sock: socket.socket
    link: Any = field(default_factory=lambda: Link("eth0", SERVER_IP))
    key: tuple[str, str, int] = ("addr", "127.0.0.1", 0)
    out: list[Any] = field(default_factory=list)
    closed: bool = False
    io: DatagramIO = field(init=False)

    def __post_init__(self) -> None:
        self.io = DatagramIO(self.sock)


@contextmanager
def udp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(server, peer) on 127.0.0.1: the server non-blocking as the service's sockets are, the
    peer waiting at most 2 s for an answer, so a missing reply fails instead of hanging."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        server.bind(("127.0.0.1", 0))
        server.setblocking(False)
        peer.bind(("127.0.0.1", 0))
        peer.settimeout(2.0)
        yield server, peer
    finally:
        server.close()
        peer.close()
