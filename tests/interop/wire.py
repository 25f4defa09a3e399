"""DHCP messages read back from a capture, decoded independently of the server under test.

scapy parses Ethernet/IP/UDP; the BOOTP header and the option area are read here with
``struct`` from the RFC 2131 layout (a second, tiny decoder: the checks do not depend on scapy's
DHCP option names, and relay traffic 67 -> 67 decodes like any other).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

MSG_TYPES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK",
             7: "RELEASE", 8: "INFORM"}
MAGIC = b"\x63\x82\x53\x63"


def dhcp_options(payload: bytes) -> dict[int, bytes]:
    """Options of the main option area, repeats concatenated (RFC 3396)."""
    if payload[236:240] != MAGIC:
        raise ValueError("no magic cookie")
    out: dict[int, bytes] = {}
    i = 240
    while i < len(payload):
        code = payload[i]
        if code == 0:
            i += 1
            continue
        if code == 255:
            break
        n = payload[i + 1]
        out[code] = out.get(code, b"") + payload[i + 2:i + 2 + n]
        i += 2 + n
    return out


def sub_options(opt82: bytes) -> dict[int, bytes]:
    """Option 82's sub-options (RFC 3046 2.0)."""
    out, i = {}, 0
    while i + 2 <= len(opt82):
        out[opt82[i]] = opt82[i + 2:i + 2 + opt82[i + 1]]
        i += 2 + opt82[i + 1]
    return out


def _ip(b: bytes) -> str:
    return str(ipaddress.IPv4Address(b))


@dataclass
class Dhcp:
    """One captured DHCP message with its IP/UDP envelope."""

    time: float
    src: str
    dst: str
    sport: int
    dport: int
    op: int
    hops: int
    xid: int
    flags: int
    ciaddr: str
    yiaddr: str
    giaddr: str
    chaddr: str  #: "aa:bb:..", hlen bytes
    options: dict[int, bytes]

    @property
    def kind(self) -> str:
        """DISCOVER, OFFER, ... ("BOOTP" without option 53)."""
        t = self.options.get(53)
        return MSG_TYPES.get(t[0], f"type {t[0]}") if t else "BOOTP"

    def opt_ip(self, code: int) -> str | None:
        """An option holding one IPv4 address (50, 54), or None."""
        v = self.options.get(code)
        return _ip(v) if v is not None and len(v) == 4 else None

    def opt_u32(self, code: int) -> int | None:
        """An option holding a 32-bit number (51, 58, 59), or None."""
        v = self.options.get(code)
        return struct.unpack("!I", v)[0] if v is not None and len(v) == 4 else None

    def __str__(self) -> str:
        return (f"{self.kind} xid={self.xid:#x} {self.src}:{self.sport}->{self.dst}:{self.dport} "
                f"ciaddr={self.ciaddr} yiaddr={self.yiaddr} giaddr={self.giaddr} "
                f"opts={sorted(self.options)}")


def decode(packets: list) -> list[Dhcp]:
    """The DHCP messages among scapy packets (anything else is skipped)."""
    from scapy.layers.inet import IP, UDP

    out = []
    for p in packets:
        if IP not in p or UDP not in p:
            continue
        payload = bytes(p[UDP].payload)
        if len(payload) < 240 or payload[236:240] != MAGIC:
            continue
        op, _htype, hlen, hops, xid, _secs, flags = struct.unpack_from("!BBBBIHH", payload)
        ciaddr, yiaddr, _siaddr, giaddr = (payload[12 + 4 * i:16 + 4 * i] for i in range(4))
        chaddr = ":".join(f"{b:02x}" for b in payload[28:28 + min(hlen, 16)])
        out.append(Dhcp(float(p.time), p[IP].src, p[IP].dst, p[UDP].sport, p[UDP].dport, op,
                        hops, xid, flags, _ip(ciaddr), _ip(yiaddr), _ip(giaddr), chaddr,
                        dhcp_options(payload)))
    return out


def replies_to(msgs: list[Dhcp], request: Dhcp, kind: str) -> list[Dhcp]:
    """Server messages of ``kind`` answering ``request`` (same xid and chaddr, later)."""
    return [m for m in msgs if m.op == 2 and m.kind == kind and m.xid == request.xid
            and m.chaddr == request.chaddr and m.time >= request.time]
