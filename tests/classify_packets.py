"""The reference packet of ../shared/reference/kea-client-classes.md section 8, built with
struct (independent of the codec), and the link it arrived on; for the classify tests and
bench/bench_classify.py."""

from __future__ import annotations

import struct

COOKIE = b"\x63\x82\x53\x63"
_HDR = struct.Struct("!BBBBIHHIIII16s64s128s")

IFACE = b"ctl-s0"
SRC = 0xC6135001          # the relay, 198.19.80.1
DST = 0xC6134D01          # the server, 198.19.77.1
LENGTH = 408              # the DHCP message as Kea received it


def opt(code: int, value: bytes) -> bytes:
    """One option TLV."""
    return bytes((code, len(value))) + value


def tlvs(items: dict[int, bytes]) -> bytes:
    """Sub-options in order."""
    return b"".join(opt(c, v) for c, v in items.items())


def vivco(enterprise: int, tuples: list[bytes]) -> bytes:
    """RFC 3925 option 124 value: enterprise, data-len, length-prefixed tuples."""
    data = b"".join(bytes((len(t),)) + t for t in tuples)
    return struct.pack("!IB", enterprise, len(data)) + data


def vivso(enterprise: int, subs: dict[int, bytes]) -> bytes:
    """RFC 3925 option 125 value: enterprise, data-len, sub-option TLVs."""
    data = tlvs(subs)
    return struct.pack("!IB", enterprise, len(data)) + data


def packet(options: bytes, *, chaddr: bytes = bytes.fromhex("02005e102030"),
           giaddr: int = SRC, hops: int = 1, xid: int = 0x5E000001, htype: int = 1) -> bytes:
    """A BOOTREQUEST with these options (end option added), padded to 300 bytes."""
    hdr = _HDR.pack(1, htype, len(chaddr), hops, xid, 0, 0, 0, 0, 0, giaddr,
                    chaddr.ljust(16, b"\0"), b"", b"")
    return (hdr + COOKIE + options + b"\xff").ljust(300, b"\0")


REFERENCE_OPTIONS = (
    opt(53, b"\x01")
    + opt(60, b"docsis3.0:STB-X1")
    + opt(61, bytes.fromhex("0102005e102030"))
    + opt(12, b"stb-0042")
    + opt(77, b"iPXE")
    + opt(93, b"\x00\x07")
    + opt(43, bytes.fromhex("0105414243444502024142"))
    + opt(124, vivco(3561, [b"dslforum.org", b"second"]))
    + opt(125, vivso(3561, {1: b"00D09E", 2: b"SERIAL-42", 3: b"ProductClassX"}))
    + opt(55, bytes((1, 3, 6, 15, 42, 43, 66, 67, 125)))
    + opt(82, tlvs({1: b"eth0/1/2:100", 2: b"RID-ABC-0042"}))
)

REFERENCE = packet(REFERENCE_OPTIONS)
"""The reference DISCOVER (chaddr 02:00:5e:10:20:30, giaddr 198.19.80.1, xid 0x5e000001)."""

BARE = packet(opt(53, b"\x01"), giaddr=0, hops=0)
"""A DISCOVER with no other option, unrelayed."""
