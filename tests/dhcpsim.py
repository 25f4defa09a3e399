"""A DHCPv4 client simulator that plays RFC 2131 exchanges against the engine in memory.

In the spirit of h11's ``ConnectionPair``: the client side is written independently of the code
under test. Requests are built here with :mod:`struct` (not with ``fastdhcp._codec``), and
replies are read back with the small decoder below (header per RFC 2131 figure 1, options with
RFC 3396 concatenation and option overload, 52), never with the codec's parser. The engine side
uses the real codec, as the service does.

``Network`` owns the engine, a :class:`~fastdhcp.leases.MemoryLeaseStore` and a fake clock, and
commits the store after every exchange as the service's group committer would. ``Client`` keeps
the client's view (address, lease expiry, server id) and moves through INIT, SELECTING,
REQUESTING, BOUND, RENEWING, REBINDING and INIT-REBOOT as RFC 2131 4.4 describes.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

from config_builder import engine_config_text
from fakeclock import FakeClock

from fastdhcp._codec import parse
from fastdhcp.config import loads
from fastdhcp.engine import Decision, Engine, Link
from fastdhcp.leases import MemoryLeaseStore

MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = 1, 2, 3, 4, 5, 6, 7, 8
BROADCAST_FLAG = 0x8000
_HDR = struct.Struct("!BBBBIHHIIII16s64s128s")


def ip(text: str) -> int:
    """Dotted quad -> host-order int."""
    return int(ipaddress.IPv4Address(text))


def ipstr(value: int) -> str:
    """Host-order int -> dotted quad."""
    return str(ipaddress.IPv4Address(value))


def opt(code: int, value: bytes) -> bytes:
    """One option TLV (split in 255-byte pieces per RFC 3396)."""
    out = b""
    for i in range(0, max(len(value), 1), 255):
        piece = value[i : i + 255]
        out += bytes((code, len(piece))) + piece
    return out


def relay_agent_info(
    circuit_id: bytes | None = None,
    remote_id: bytes | None = None,
    link_selection: int = 0,
    server_id_override: int = 0,
) -> bytes:
    """Option 82's value from sub-options (RFC 3046, 3527, 5107)."""
    v = b""
    if circuit_id is not None:
        v += bytes((1, len(circuit_id))) + circuit_id
    if remote_id is not None:
        v += bytes((2, len(remote_id))) + remote_id
    if link_selection:
        v += b"\x05\x04" + struct.pack("!I", link_selection)
    if server_id_override:
        v += b"\x0b\x04" + struct.pack("!I", server_id_override)
    return v


def build_request(
    mtype: int,
    *,
    xid: int,
    chaddr: bytes,
    htype: int = 1,
    flags: int = 0,
    ciaddr: int = 0,
    giaddr: int = 0,
    hops: int = 0,
    requested_ip: int = 0,
    server_id: int = 0,
    client_id: bytes | None = None,
    prl: bytes | None = None,
    lease_time: int | None = None,
    hostname: bytes | None = None,
    subnet_selection: int = 0,
    relay_info: bytes | None = None,
    extra: bytes = b"",
) -> bytes:
    """A client (or relayed) BOOTREQUEST with DHCP options, built byte by byte."""
    hdr = _HDR.pack(
        1, htype, len(chaddr), hops, xid, 0, flags, ciaddr, 0, 0, giaddr,
        chaddr.ljust(16, b"\0"), b"", b"",
    )
    o = opt(53, bytes((mtype,)))
    if client_id is not None:
        o += opt(61, client_id)
    if requested_ip:
        o += opt(50, struct.pack("!I", requested_ip))
    if server_id:
        o += opt(54, struct.pack("!I", server_id))
    if lease_time is not None:
        o += opt(51, struct.pack("!I", lease_time))
    if hostname is not None:
        o += opt(12, hostname)
    if prl is not None:
        o += opt(55, prl)
    if subnet_selection:
        o += opt(118, struct.pack("!I", subnet_selection))
    o += extra
    if relay_info is not None:
        o += opt(82, relay_info)  # a relay appends 82 last (RFC 3046 2.1)
    data = hdr + MAGIC + o + b"\xff"
    return data.ljust(300, b"\0")


def _scan(area: bytes, out: dict[int, bytes], order: list[int]) -> int:
    """Read TLVs from ``area`` into ``out`` (repeats concatenated); return option 52's value."""
    i = 0
    overload = 0
    while i < len(area):
        code = area[i]
        if code == 0:
            i += 1
            continue
        if code == 255:
            break
        n = area[i + 1]
        val = area[i + 2 : i + 2 + n]
        if len(val) != n:
            raise ValueError("option runs past its area")
        if code == 52:
            overload = val[0]
        if code in out:
            out[code] += val
        else:
            out[code] = val
            order.append(code)
        i += 2 + n
    return overload


@dataclass
class Reply:
    """A decoded server reply (independent of the codec under test)."""

    op: int
    htype: int
    hlen: int
    hops: int
    xid: int
    secs: int
    flags: int
    ciaddr: int
    yiaddr: int
    siaddr: int
    giaddr: int
    chaddr: bytes
    options: dict[int, bytes]
    order: list[int]  #: option codes in wire order
    size: int

    @property
    def mtype(self) -> int:
        return self.options[53][0]

    def u32(self, code: int) -> int | None:
        v = self.options.get(code)
        return None if v is None else struct.unpack("!I", v)[0]

    @property
    def server_id(self) -> int:
        return self.u32(54) or 0


def decode_reply(data: bytes) -> Reply:
    """Decode a BOOTREPLY: fixed header, cookie, options (RFC 3396, overload into file/sname)."""
    if len(data) < 240 or data[236:240] != MAGIC:
        raise ValueError("not a DHCP message")
    f = _HDR.unpack_from(data)
    options: dict[int, bytes] = {}
    order: list[int] = []
    overload = _scan(data[240:], options, order)
    if overload & 1:
        _scan(f[13], options, order)  # file
    if overload & 2:
        _scan(f[12], options, order)  # sname
    return Reply(
        op=f[0], htype=f[1], hlen=f[2], hops=f[3], xid=f[4], secs=f[5], flags=f[6],
        ciaddr=f[7], yiaddr=f[8], siaddr=f[9], giaddr=f[10], chaddr=data[28 : 28 + f[2]],
        options=options, order=order, size=len(data),
    )


class Network:
    """The engine, its store and a fake clock: the server side of every exchange."""

    def __init__(self, config, link: Link, *, store: MemoryLeaseStore | None = None) -> None:
        self.clock = FakeClock()
        self.store = store if store is not None else MemoryLeaseStore()
        self.engine = Engine(config, self.store)
        self.link = link
        self.decisions: list[Decision] = []

    def exchange(self, data: bytes, link: Link | None = None) -> tuple[Decision, Reply | None]:
        """Hand ``data`` to the engine, commit what it staged, decode the reply."""
        d = self.engine.handle(parse(data), link or self.link, self.clock.now)
        self.decisions.append(d)
        self.commit()
        return d, (decode_reply(d.reply) if d.reply is not None else None)

    def commit(self) -> None:
        """What the service's group committer does after a loop turn."""
        batch = self.store.take_pending()
        if batch:
            self.store.write(batch)
            self.store.committed(batch)

    def advance(self, seconds: float) -> None:
        """Move the clock and run reclamation as the service's timer would."""
        self.clock.advance(seconds)
        while True:
            nxt = self.engine.reclaim(self.clock.now, 1000)
            self.commit()
            if nxt > self.clock.now:
                break


@dataclass
class Client:
    """One DHCP client's view of its configuration (RFC 2131 4.4)."""

    net: Network
    mac: bytes
    client_id: bytes | None = None
    giaddr: int = 0  #: set: the client sits behind a relay at this address
    relay_info: bytes | None = None  #: option 82 the relay adds
    broadcast: bool = False
    prl: bytes = bytes((1, 3, 6, 15, 51, 54))
    link: Link | None = None
    state: str = "INIT"
    address: int = 0
    server_id: int = 0
    expires: float = 0.0
    t1: float = 0.0
    t2: float = 0.0
    offered: int = 0
    xid: int = 0x1000
    last: Reply | None = None
    last_decision: Decision | None = None
    history: list[tuple[str, int]] = field(default_factory=list)

    # -------------------------------------------------------------- plumbing
    def _send(self, mtype: int, **kw) -> Reply | None:
        self.xid = (self.xid + 1) & 0xFFFFFFFF
        kw.setdefault("flags", BROADCAST_FLAG if self.broadcast else 0)
        giaddr = self.giaddr
        data = build_request(
            mtype,
            xid=self.xid,
            chaddr=self.mac,
            client_id=self.client_id,
            giaddr=giaddr,
            hops=1 if giaddr else 0,
            relay_info=self.relay_info if giaddr else None,
            **kw,
        )
        d, r = self.net.exchange(data, self.link)
        self.last_decision = d
        self.last = r
        if r is not None:
            assert r.op == 2 and r.xid == self.xid and r.chaddr == self.mac
        return r

    @property
    def bound(self) -> bool:
        """The client believes it holds ``address`` now."""
        active = self.state in ("BOUND", "RENEWING", "REBINDING")
        return active and self.net.clock.now < self.expires

    def _accept_ack(self, r: Reply) -> None:
        now = self.net.clock.now
        lt = r.u32(51)
        assert lt is not None, "ACK without lease time"
        self.address = r.yiaddr
        self.server_id = r.server_id
        self.expires = now + lt
        self.t1 = now + (r.u32(58) or lt // 2)
        self.t2 = now + (r.u32(59) or lt * 7 // 8)
        self.state = "BOUND"
        self.history.append(("ack", r.yiaddr))

    def _nak(self) -> None:
        self.state = "INIT"
        self.address = 0
        self.history.append(("nak", 0))

    # -------------------------------------------------------------- exchanges
    def discover(self, requested_ip: int = 0, **kw) -> Reply | None:
        """INIT -> SELECTING: broadcast DISCOVER, return the OFFER (or None)."""
        self.state = "SELECTING"
        r = self._send(DISCOVER, requested_ip=requested_ip, prl=self.prl, **kw)
        if r is not None:
            assert r.mtype == OFFER
            self.offered = r.yiaddr
            self.server_id = r.server_id
        return r

    def select(self, offer: Reply | None = None, *, server_id: int = 0, **kw) -> Reply | None:
        """SELECTING -> REQUESTING: REQUEST with 54 and 50 from the offer."""
        offer = offer or self.last
        assert offer is not None
        self.state = "REQUESTING"
        r = self._send(
            REQUEST,
            requested_ip=offer.yiaddr,
            server_id=server_id or offer.server_id,
            prl=self.prl,
            **kw,
        )
        if r is not None:
            if r.mtype == ACK:
                self._accept_ack(r)
            else:
                assert r.mtype == NAK
                self._nak()
        return r

    def dora(self, **kw) -> Reply | None:
        """DISCOVER, OFFER, REQUEST, ACK; returns the ACK (or the NAK/None that ended it)."""
        o = self.discover(**kw)
        if o is None:
            return None
        return self.select(o)

    def renew(self) -> Reply | None:
        """BOUND -> RENEWING: unicast REQUEST with ciaddr (no 50, no 54)."""
        self.state = "RENEWING"
        r = self._send(REQUEST, ciaddr=self.address, prl=self.prl, flags=0)
        return self._after_extend(r)

    def rebind(self) -> Reply | None:
        """RENEWING -> REBINDING: broadcast REQUEST with ciaddr."""
        self.state = "REBINDING"
        r = self._send(REQUEST, ciaddr=self.address, prl=self.prl, flags=BROADCAST_FLAG)
        return self._after_extend(r)

    def reboot(self, address: int | None = None) -> Reply | None:
        """INIT-REBOOT: REQUEST with 50 = the remembered address, ciaddr 0, no 54."""
        self.state = "REBOOTING"
        r = self._send(REQUEST, requested_ip=address or self.address, prl=self.prl)
        return self._after_extend(r)

    def _after_extend(self, r: Reply | None) -> Reply | None:
        if r is not None:
            if r.mtype == ACK:
                self._accept_ack(r)
            else:
                assert r.mtype == NAK
                self._nak()
        return r

    def release(self) -> Reply | None:
        """BOUND -> INIT: RELEASE (unicast, ciaddr, 54). No reply is expected."""
        r = self._send(RELEASE, ciaddr=self.address, server_id=self.server_id, flags=0)
        self.history.append(("release", self.address))
        self.state = "INIT"
        self.address = 0
        return r

    def decline(self, address: int | None = None) -> Reply | None:
        """The address is in use on the link (ARP): DECLINE with 50 and 54, back to INIT."""
        a = address or self.address
        r = self._send(DECLINE, requested_ip=a, server_id=self.server_id)
        self.history.append(("decline", a))
        self.state = "INIT"
        self.address = 0
        return r

    def inform(self, ciaddr: int) -> Reply | None:
        """INFORM from a client configured by other means."""
        return self._send(INFORM, ciaddr=ciaddr, prl=self.prl, flags=0)

    # -------------------------------------------------------------- random histories
    def play(self, op: str, jump: float = 0.0) -> bool:
        """Play one named step of a random history (the property tests' shared vocabulary):
        ``dora``, ``discover``, ``select`` (the last offer, if any), ``renew``, ``rebind``,
        ``reboot``, ``release``, ``decline`` (each only while bound) and ``advance`` (the
        network's clock by ``jump``). False for any other name, which the caller handles."""
        if op == "dora":
            self.dora()
        elif op == "discover":
            self.discover()
        elif op == "select":
            if self.last is not None and self.last.options.get(53) == b"\x02":
                self.select(self.last)
        elif op in ("renew", "rebind", "reboot", "release", "decline"):
            if self.address:
                getattr(self, op)()
        elif op == "advance":
            self.net.advance(jump)
        else:
            return False
        return True


# ---------------------------------------------------------------------------- fixtures

SERVER_IP = ip("198.18.0.1")
RELAY_IP = ip("198.18.10.1")

def make_config(server_extra: str = "", global_extra: str = "", subnet_extra: str = "",
                more: str = ""):
    """A validated ``fastdhcp.config.Config``: the one test builder's engine preset
    (tests/config_builder.py: eth0's subnet 198.18.0.0/24) plus extra TOML."""
    return loads(engine_config_text(server_extra, global_extra, subnet_extra, more))


def make_network(*args, link: Link | None = None, **kw) -> Network:
    """A :class:`Network` on ``make_config(...)``, receiving on eth0 at SERVER_IP."""
    return Network(make_config(*args, **kw), link or Link("eth0", SERVER_IP))


def mac(n: int) -> bytes:
    """A locally administered unicast MAC numbered ``n``."""
    return b"\x02" + n.to_bytes(5, "big")
