"""Ping-check, the service's side: probe an address with ICMP echo before its OFFER leaves.

The engine marks an OFFER whose address must be checked first (``Decision.probe``; see
``ext/fastdhcp/_engine_rapid.pxi``); the compiled packet path hands it here as a
:class:`~fastdhcp._packetpath.HeldOffer` through the ``probe`` sink it was given, and goes on
serving. :class:`PingChecker` sends ``min-ping-requests`` echo requests, one after the other,
each waiting ``reply-timeout``, on one non-blocking ICMP socket watched by the event loop (no
thread, no blocking call):

- no reply to any: the address is free. ``Engine.ping_result(..., in_use=False)`` and the
  held OFFER is queued on its endpoint and sent;
- a reply: the address is in use. ``Engine.ping_result(..., in_use=True)`` declines it for the
  probation period (the commit is kicked), and the DISCOVER goes back through the engine
  (``PacketPath.redo``), which picks another address, probed in turn. After
  :data:`MAX_TRIES` addresses in use for one DISCOVER it is dropped (counted): the client
  retries, and a link where that many addresses answer needs an operator, not more probes.

The socket: an unprivileged ICMP datagram socket (``SOCK_DGRAM``/``IPPROTO_ICMP``) where the
host allows it (``net.ipv4.ping_group_range`` includes the server's group; the kernel then sets
the identifier and delivers only our replies), else a raw ICMP socket (CAP_NET_RAW, which
root and the systemd unit have). If neither opens, OFFERs are sent unprobed and each is counted
in ``ping_errors`` (with a warning once); likewise an echo the kernel refuses to send.
"""

from __future__ import annotations

import asyncio
import bisect
import errno
import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastdhcp._packetpath import HeldOffer, PacketPath
from fastdhcp.config import PingCheck, Subnet4
from fastdhcp.engine import Engine
from fastdhcp.metrics import Metrics

__all__ = ["MAX_PENDING", "MAX_TRIES", "IcmpSocket", "PingChecker", "Reply"]

log = logging.getLogger("fastdhcp")

#: Addresses found in use for one DISCOVER before it is dropped (ISC dhcpd drops it at the
#: first; 3 lets a client past a couple of squatters in one exchange, at most 3 x the probe
#: time, well inside a client's first retransmission at ~4 s, RFC 2131 4.1).
MAX_TRIES = 3
#: Probes in flight at once. A DISCOVER beyond it is dropped (counted ``ping-check-busy``),
#: its address stays held for its offer: a flood of new clients must not grow this table
#: without bound, and 1,024 probes of 100 ms allow ~10,000 new clients a second.
MAX_PENDING = 1024

_ECHO_REPLY = 0
_ECHO_REQUEST = 8
_PAYLOAD = b"fastdhcp ping-check"  # a request's data, echoed back by the host


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True, slots=True)
class Reply:
    """An echo reply received: from ``source`` (host-order IPv4), ``ident`` and ``seq``."""

    source: int
    ident: int
    seq: int


class IcmpSocket:
    """One non-blocking ICMP socket for echo requests and replies (see the module docstring
    for which kind). ``kind`` is ``"dgram"`` or ``"raw"``."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
            self.kind = "dgram"
        except OSError as first:
            try:
                self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            except OSError as exc:
                raise OSError(exc.errno, f"no ICMP socket: unprivileged ({first.strerror}), "
                              f"raw ({exc.strerror})") from exc
            self.kind = "raw"
        self.sock.setblocking(False)
        # The raw socket sees every ICMP message of the host: ours carry this identifier.
        # (The datagram kind's identifier is the kernel's, which filters for us.)
        self.ident = (os.getpid() ^ id(self)) & 0xFFFF

    def fileno(self) -> int:
        """The socket's descriptor (for ``loop.add_reader``)."""
        return self.sock.fileno()

    def send(self, ip: int, seq: int) -> None:
        """Send one echo request to ``ip`` (host order); raises OSError if refused."""
        head = struct.pack("!BBHHH", _ECHO_REQUEST, 0, 0, self.ident, seq & 0xFFFF)
        csum = _checksum(head + _PAYLOAD)
        packet = head[:2] + struct.pack("!H", csum) + head[4:] + _PAYLOAD
        self.sock.sendto(packet, (socket.inet_ntoa(struct.pack("!I", ip)), 0))

    def receive(self, limit: int = 64) -> list[Reply]:
        """The echo replies waiting (at most ``limit``), without blocking."""
        out: list[Reply] = []
        for _ in range(limit):
            try:
                data, addr = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an ICMP error queued on the socket
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    break
                continue
            if self.kind == "raw":
                if len(data) < 20:
                    continue
                data = data[(data[0] & 0x0F) * 4:]  # past the IP header (IHL words)
            if len(data) < 8 or data[0] != _ECHO_REPLY:
                continue
            ident, seq = struct.unpack_from("!HH", data, 4)
            if self.kind == "raw" and ident != self.ident:
                continue  # another program's ping
            src = struct.unpack("!I", socket.inet_aton(addr[0]))[0]
            out.append(Reply(src, ident, seq))
        return out

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


@dataclass(slots=True)
class _Probe:
    """One address being probed for the OFFER ``offer`` (the newest DISCOVER for it)."""

    offer: HeldOffer
    settings: PingCheck
    sent: int = 0
    timer: asyncio.TimerHandle | None = None


class PingChecker:
    """Probes held OFFERs' addresses (see the module docstring). ``submit`` is the packet
    path's ``probe`` sink; :meth:`attach` gives it the path (and the subnets' settings) each
    time the service makes one; ``kick`` starts the group commit of what the engine staged."""

    def __init__(self, loop: asyncio.AbstractEventLoop, metrics: Metrics, engine: Engine,
                 kick: Callable[[], None], *, open_socket: Callable[[], IcmpSocket] = IcmpSocket
                 ) -> None:
        self._loop = loop
        self._metrics = metrics
        self._engine = engine
        self._kick = kick
        self._path: PacketPath | None = None
        self._firsts: list[int] = []
        self._ranges: list[tuple[int, int, PingCheck]] = []
        self._probes: dict[int, _Probe] = {}
        self._seq = 0
        self._sock: IcmpSocket | None = None
        try:
            self._sock = open_socket()
        except OSError as exc:
            log.warning("ping-check: %s; OFFERs are sent unprobed (counted in ping_errors)",
                        exc.strerror or exc)
        else:
            loop.add_reader(self._sock.fileno(), self._readable)
            log.info("ping-check: probing with a %s ICMP socket", self._sock.kind)

    @property
    def socket_kind(self) -> str | None:
        """``"dgram"``, ``"raw"``, or None when no ICMP socket could be opened."""
        return self._sock.kind if self._sock is not None else None

    @property
    def pending(self) -> int:
        """Addresses being probed now."""
        return len(self._probes)

    def attach(self, path: PacketPath, subnets: Sequence[Subnet4]) -> None:
        """Use ``path`` (the service's current packet path) and the ping-check settings of
        ``subnets`` from now on (start and every reload)."""
        self._path = path
        ranges = sorted((s.first_ip, s.last_ip, s.ping_check) for s in subnets)
        self._ranges = ranges
        self._firsts = [r[0] for r in ranges]

    def _settings(self, ip: int) -> PingCheck:
        i = bisect.bisect_right(self._firsts, ip) - 1
        if i >= 0 and ip <= self._ranges[i][1]:
            return self._ranges[i][2]
        return PingCheck(enabled=True)  # a subnet a reload removed: the defaults

    # ------------------------------------------------------------------ the sink

    def submit(self, offers: list[HeldOffer]) -> None:
        """The packet path's sink: probe each offer's address (a repeat DISCOVER joins the
        probe already running for its address)."""
        m = self._metrics
        for offer in offers:
            probe = self._probes.get(offer.ip)
            if probe is not None:
                if probe.offer.key == offer.key:
                    # The client retransmitted: answer the newest DISCOVER, once.
                    probe.offer = offer
                    m.drop("ping-check-repeat")
                else:  # cannot be while the engine holds the address for one client
                    m.drop("ping-check-busy")
                continue
            if self._sock is None:
                m.ping_errors += 1
                self._free(offer)
                continue
            if len(self._probes) >= MAX_PENDING:
                m.drop("ping-check-busy")
                continue
            probe = self._probes[offer.ip] = _Probe(offer, self._settings(offer.ip))
            m.ping_checks += 1
            self._send(probe)

    def _send(self, probe: _Probe) -> None:
        assert self._sock is not None
        ip = probe.offer.ip
        self._seq = (self._seq + 1) & 0xFFFF
        try:
            self._sock.send(ip, self._seq)
        except OSError:
            # Refused by the kernel (no route, a full buffer): no answer can come; the OFFER
            # goes as without ping-check, counted.
            self._metrics.ping_errors += 1
            self._done(probe)
            self._free(probe.offer)
            return
        probe.sent += 1
        probe.timer = self._loop.call_later(probe.settings.reply_timeout_ms / 1000.0,
                                            self._timed_out, probe)

    def _timed_out(self, probe: _Probe) -> None:
        if self._probes.get(probe.offer.ip) is not probe:
            return
        if probe.sent < probe.settings.min_ping_requests:
            self._send(probe)
            return
        self._done(probe)
        self._metrics.ping_free += 1
        self._free(probe.offer)

    def _done(self, probe: _Probe) -> None:
        if probe.timer is not None:
            probe.timer.cancel()
            probe.timer = None
        if self._probes.get(probe.offer.ip) is probe:
            del self._probes[probe.offer.ip]

    def _free(self, offer: HeldOffer) -> None:
        """The address is taken as free: the offer stands and its OFFER leaves (unless the
        offer went meanwhile, e.g. a reload took its pool away: the client retransmits)."""
        if not self._engine.ping_result(offer.key, offer.ip, False, time.time()):
            self._metrics.drop("ping-check-offer-gone")
            return
        path = self._path
        if path is None:
            return
        ep = offer.endpoint
        ep.out.append(offer.out)
        path.flush(ep)

    # ------------------------------------------------------------------ replies

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for reply in sock.receive():
            probe = self._probes.get(reply.source)
            if probe is not None:
                self._in_use(probe)

    def _in_use(self, probe: _Probe) -> None:
        """The address answered: declined, and the DISCOVER handed back for another one."""
        self._done(probe)
        m = self._metrics
        m.ping_conflicts += 1
        offer = probe.offer
        now = time.time()
        self._engine.ping_result(offer.key, offer.ip, True, now)
        self._kick()
        if offer.tries + 1 >= MAX_TRIES:
            m.ping_gave_up += 1
            m.drop("ping-check-in-use")
            return
        if self._path is not None:
            self._path.redo(offer, now)

    def close(self) -> None:
        """Stop probing: timers cancelled, socket closed; the held OFFERs are not sent (their
        clients retransmit, and the offers expire as usual)."""
        for probe in list(self._probes.values()):
            self._done(probe)
            self._metrics.drop("ping-check-stopped")
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
