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


def client(*, o60: bytes | None = None, extra: bytes = b"", mac: str = "02005e102030",
           giaddr: int = SRC) -> bytes:
    """A relayed DISCOVER of one pattern's client."""
    o = opt(53, b"\x01") + (opt(60, o60) if o60 is not None else b"") + extra
    return packet(o, chaddr=bytes.fromhex(mac), giaddr=giaddr)


def _rai(**subs: bytes) -> bytes:
    codes = {"circuit": 1, "remote": 2}
    return opt(82, tlvs({codes[k]: v for k, v in subs.items()}))


PATTERNS: list[tuple[str, str, str, list[tuple[bytes, tuple[str, ...], bool]]]] = [
    # (pattern, class, test, [(packet, classes already assigned, Kea's verdict)])
    ("P1", "STB", "substring(option[60].text,0,4) == 'STB-'",
     [(client(o60=b"STB-Amino-A140"), (), True), (client(o60=b"CPE-HGW-1"), (), False),
      (client(o60=b"MSFT 5.0"), (), False)]),
    ("P1", "CPE", "substring(option[60].text,0,4) == 'CPE-'",
     [(client(o60=b"CPE-HGW-1"), (), True), (client(o60=b"MSFT 5.0"), (), False)]),
    ("P2", "NOT_CM", "not member('VENDOR_CLASS_docsis3.0')",
     [(client(o60=b"docsis3.0"), (), False), (client(o60=b"MSFT 5.0"), (), True),
      (client(), (), True)]),
    ("P3", "TR069", "option[60].text == 'dslforum.org'",
     [(client(o60=b"dslforum.org"), (), True), (client(o60=b"udhcp 1.30"), (), False)]),
    ("P4", "TR069_VIVSO", "vendor[3561].exists",
     [(client(extra=opt(125, vivso(3561, {1: b"x"}))), (), True), (client(), (), False)]),
    ("P5", "iPXE", "option[77].text == 'iPXE'",   # does not work in Kea 2.2 (binary option)
     [(client(extra=opt(77, b"iPXE")), (), False)]),
    ("P5b", "iPXE", "option[77].hex == 'iPXE'",
     [(client(extra=opt(77, b"iPXE")), (), True), (client(), (), False)]),
    ("P5", "PXE_BIOS", "option[93].hex == 0x0000 and not member('iPXE')",
     [(client(extra=opt(93, b"\0\0")), (), True), (client(extra=opt(93, b"\0\0")), ("iPXE",),
                                                   False),
      (client(extra=opt(93, b"\0\x07")), (), False)]),
    ("P5", "PXE_UEFI64",
     "(option[93].hex == 0x0007 or option[93].hex == 0x0009) and not member('iPXE')",
     [(client(extra=opt(93, b"\0\x07")), (), True), (client(extra=opt(93, b"\0\x09")), (), True),
      (client(extra=opt(93, b"\0\x07")), ("iPXE",), False)]),
    ("P6", "PXE", "substring(option[60].text,0,9) == 'PXEClient'",
     [(client(o60=b"PXEClient:Arch:00000:UNDI:002001"), (), True),
      (client(o60=b"MSFT 5.0"), (), False)]),
    ("P7", "OLT1", "substring(relay4[2].hex,0,5) == 'OLT1-'",
     [(client(extra=_rai(circuit=b"x", remote=b"OLT1-0001")), (), True),
      (client(extra=_rai(circuit=b"x", remote=b"OLT2-0001")), (), False), (client(), (), False)]),
    ("P7", "BUSINESS_PORT", "relay4[1].hex == 'eth0/1/2:100'",
     [(client(extra=_rai(circuit=b"eth0/1/2:100", remote=b"OLT1-0002")), (), True),
      (client(extra=_rai(circuit=b"eth0/1/2:101")), (), False)]),
    ("P8", "WALLED", "member('UNKNOWN')",
     [(client(), ("UNKNOWN",), True), (client(), ("KNOWN",), False)]),
    ("P9", "POP_B", "pkt4.giaddr == 198.19.81.1",
     [(client(giaddr=0xC6135101), (), True), (client(), (), False)]),
    ("P10", "OUI_VOIP", "substring(pkt4.mac,0,3) == 0x00040d",
     [(client(mac="00040d123456"), (), True), (client(), (), False)]),
    ("P11", "CAM", "substring(option[host-name].text,0,4) == 'cam-'",
     [(client(extra=opt(12, b"cam-0001")), (), True), (client(extra=opt(12, b"laptop")), (),
                                                       False)]),
    ("P12", "VOICE_OPTS", "option[60].exists",
     [(client(o60=b"X"), (), True), (client(), (), False)]),
    ("P13", "HAS_RAI", "relay4[1].exists or relay4[2].exists",
     [(client(extra=_rai(circuit=b"c")), (), True), (client(extra=_rai(remote=b"r")), (), True),
      (client(), (), False)]),
    ("P14", "ONT", "substring(option[61].hex,0,5) == 0x0048575443",
     [(client(extra=opt(61, b"\x00HWTC12345678")), (), True),
      (client(extra=opt(61, bytes.fromhex("0102005e102030"))), (), False)]),
    ("P15", "IOT", "substring(option[60].text,0,3) == 'iot'",
     [(client(o60=b"iot-sensor"), (), True), (client(o60=b"MSFT 5.0"), (), False)]),
    ("P16", "DROP", "substring(relay4[2].hex,0,7) == 'BLOCKED' or pkt4.mac == 0x02005e0006ff",
     [(client(extra=_rai(circuit=b"c", remote=b"BLOCKED-77")), (), True),
      (client(mac="02005e0006ff"), (), True), (client(), (), False)]),
]
"""The class tests of the reference's 16 ISP patterns (section 7) and the clients Kea 2.2
sorted with them."""
