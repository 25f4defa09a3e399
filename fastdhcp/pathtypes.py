"""What the compiled packet path (:mod:`fastdhcp._packetpath`) needs from the layer above, as
typed protocols (httptools types its parser's callbacks the same way): the service's
:class:`~fastdhcp.service.endpoints.Endpoint` is one ``PathEndpoint``, its edge guard one
``PathGuard``. The path reads these and calls nothing else of the service."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fastdhcp._codec import Message
    from fastdhcp._engine import Decision, Link
    from fastdhcp._sockio import DatagramIO, Outgoing

__all__ = ["L2Dest", "LeaseQueryHandler", "PathEndpoint", "PathGuard"]


class PathEndpoint(Protocol):
    """One receiving socket as the path sees it."""

    @property
    def key(self) -> tuple[str, str, int]:
        """("if", ifname, port) or ("addr", address, port); ``key[1]`` names it in reports."""

    @property
    def io(self) -> DatagramIO:
        """recvmmsg / sendmmsg over the socket."""

    @property
    def link(self) -> Link:
        """The link the socket serves (the engine's subnet selection input)."""

    @property
    def out(self) -> list[Outgoing]:
        """Replies waiting for the end of the burst (or commit) to leave in one sendmmsg."""

    @property
    def closed(self) -> bool:
        """True once the socket is closed (a held ACK for it is then counted, not sent)."""


class PathGuard(Protocol):
    """The edge checks before the engine (:class:`fastdhcp.limits.EdgeGuard`)."""

    def check(self, msg: Message, src_ip: int, now: float) -> str | None:
        """None to serve ``msg``, else the drop reason; ``now`` is monotonic seconds."""


#: The layer-2 unicast destination of a reply: (endpoint, decision) -> IPv4 to send to.
L2Dest = Callable[["PathEndpoint", "Decision"], int]


#: The DHCPLEASEQUERY (RFC 4388) handler: (endpoint, query, source address, wall clock,
#: monotonic receive time) -> the reply to queue now, or None
#: (:class:`fastdhcp.leasequery.udp.UdpLeaseQuery`).
LeaseQueryHandler = Callable[["PathEndpoint", "Message", int, float, float], "Outgoing | None"]
