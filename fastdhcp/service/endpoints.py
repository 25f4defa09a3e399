"""The receiving sockets (:class:`Endpoint`), their read pacing (:func:`pace_for`) and the
layer-2 unicast of replies to clients without an address (:func:`l2_destination`). The pacing
itself is explained in :mod:`fastdhcp.service`."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastdhcp import netio
from fastdhcp._sockio import DatagramIO, Outgoing, PaceTimer
from fastdhcp.engine import Decision, Link
from fastdhcp.service.ratelog import RateLimitedLog

if TYPE_CHECKING:
    from fastdhcp.config import Config

__all__ = ["MIN_PACE", "PACE_MEMORY", "PACE_RATE_WEIGHT", "PACE_TARGET", "READ_BATCH",
           "READ_PACE", "Endpoint", "EndpointKey", "endpoint_keys", "l2_destination",
           "open_endpoint", "pace_for"]

log = logging.getLogger("fastdhcp")

#: Datagrams read from one socket per readiness callback: large enough to batch commits, small
#: enough that one busy socket cannot starve the others or the timers.
READ_BATCH = 128
#: Read pacing (see the module docstring): the longest time between two reads of a socket that
#: had datagrams at its last read; 0 = read on every epoll wake-up.
READ_PACE = 0.002  # the default of `server.read-pace-ms`
#: Datagrams a paced read aims to find: the pace is this over the socket's recent arrival rate,
#: from :data:`MIN_PACE` up to the longest pace. As adaptive interrupt coalescing in a NIC: few,
#: well-filled wake-ups at low rates, where a millisecond more is invisible to a client; short
#: waits once a fraction of a millisecond brings enough datagrams to amortise a wake-up.
PACE_TARGET = 16
#: The shortest pace (seconds). The pace timer is a timerfd (fastdhcp._sockio.PaceTimer):
#: uvloop's own timers count whole milliseconds.
MIN_PACE = 0.0002
#: Weight of the newest read in the arrival-rate estimate (exponential moving average).
PACE_RATE_WEIGHT = 0.25
#: Seconds a socket's arrival-rate estimate outlives its last paced read: back from epoll
#: within this, pacing resumes at that rate instead of at the longest pace.
PACE_MEMORY = 1.0

#: ("if", ifname, port) or ("addr", address, port)
EndpointKey = tuple[str, str, int]


@dataclass(eq=False)
class Endpoint:
    """One receiving socket and the link it serves."""

    key: EndpointKey
    sock: socket.socket
    link: Link
    ifname: str  #: "" for a listen-address socket
    arp_ok: bool = True  #: False once ARP injection failed for lack of privilege
    arp_cache: dict[int, bytes] = field(default_factory=dict)
    closed: bool = False
    #: read pacing (see the module docstring): out of epoll, read again when ``timer`` fires
    #: (or by ``pace``, a call_soon, when a read stopped at READ_BATCH)
    paced: bool = False
    pace: asyncio.Handle | None = None
    timer: PaceTimer = field(init=False)
    #: while paced: when the socket was last read (perf_counter) and its arrival rate
    #: (datagrams per second, moving average)
    last_read: float = 0.0
    rate: float = 0.0
    #: replies waiting for the end of this read burst (or commit) to leave in one sendmmsg
    out: list[Outgoing] = field(default_factory=list)
    fd: int = -1
    io: DatagramIO = field(init=False)

    def __post_init__(self) -> None:
        self.fd = self.sock.fileno()
        self.io = DatagramIO(self.sock)
        self.timer = PaceTimer()

    def unpace(self) -> None:
        """Cancel a pending paced read (the socket is closing or leaving the loop)."""
        if self.pace is not None:
            self.pace.cancel()
            self.pace = None
        self.timer.disarm()
        self.paced = False

    def close(self) -> None:
        """Close the socket and the pace timer (after the loop stopped watching both)."""
        self.closed = True
        self.sock.close()
        self.timer.close()


def pace_for(rate: float, longest: float) -> float:
    """The next read pace (seconds) of a socket receiving ``rate`` datagrams per second: time
    for :data:`PACE_TARGET` datagrams, at least :data:`MIN_PACE` and at most ``longest``
    (``longest`` itself when the rate is not known yet)."""
    if rate <= 0.0 or longest <= MIN_PACE:
        return longest
    return min(max(PACE_TARGET / rate, MIN_PACE), longest)


def endpoint_keys(config: Config) -> list[EndpointKey]:
    """The sockets ``config`` asks for: one per interface, one per listen address."""
    srv = config.server
    keys = [("if", name, srv.port) for name in srv.interfaces]
    keys += [("addr", str(a), srv.port) for a in srv.listen_addresses]
    return keys


def open_endpoint(key: EndpointKey, sock: socket.socket | None = None) -> Endpoint:
    """Open the socket ``key`` names (``OSError`` if it cannot be bound); with ``sock``, serve
    that already bound socket instead (a worker's, made by the supervisor)."""
    kind, name, port = key
    if kind == "if":
        address = netio.interface_ipv4(name)
        if sock is None:
            sock = netio.open_interface_socket(name, port)
        return Endpoint(key, sock, Link(name, address), name)
    if sock is None:
        sock = netio.open_address_socket(name, port)
    return Endpoint(key, sock, Link("", netio.str_to_ip(name)), "")


def l2_destination(ep: Endpoint, d: Decision, ratelog: RateLimitedLog) -> int:
    """The IPv4 to send ``d.reply`` to: ``d.dest_ip``, or for a layer-2 unicast (RFC 2131 4.1)
    yiaddr once an ARP entry for it is in place (else ``d.dest_ip``, the broadcast).

    ``d`` is the engine's ``Decision``; the packet path calls this only when
    ``d.l2_unicast`` is set (a client without an address that cannot take a broadcast)."""
    l2 = d.l2_unicast
    if l2 is not None and ep.ifname and ep.arp_ok:
        yiaddr, chaddr = l2
        if ep.arp_cache.get(yiaddr) == chaddr:
            return int(yiaddr)
        try:
            netio.inject_arp(ep.sock, ep.ifname, yiaddr, chaddr)
        except OSError as exc:
            if exc.errno in (1, 13):  # EPERM/EACCES: no CAP_NET_ADMIN, stop trying
                ep.arp_ok = False
                log.warning("cannot add ARP entries on %s (%s): replies to clients without "
                            "an address are broadcast", ep.ifname, exc.strerror)
            else:
                ratelog(logging.WARNING, "arp", "ARP entry %s on %s failed: %s",
                        netio.ip_to_str(yiaddr), ep.ifname, exc)
        else:
            if len(ep.arp_cache) > 65536:
                ep.arp_cache.clear()
            ep.arp_cache[yiaddr] = chaddr
            return int(yiaddr)
    return int(d.dest_ip)
