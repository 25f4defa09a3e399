"""Kea 2.2 and fastdhcp side by side on the reference's 16 ISP classification patterns
(../shared/reference/kea-client-classes.md section 7, with the P5b and P8b variants: 18
configurations, ``tests/vectors/kea_class_patterns.json``).

For each pattern both servers take the pattern's configuration (Kea its JSON, fastdhcp what
``fastdhcp import-kea`` makes of it, by ``config-set``), then each of the pattern's clients sends
the same relayed DISCOVER to both (giaddr a relay address, option 82 where the pattern reads
it) and, when offered, the REQUEST for the offered address; the answers are compared on what
a client sees: OFFER/ACK or silence, the pool the address came from, siaddr / sname / file,
every option and its value (lease time 51 included; not 54, the server's own address, nor
58/59, see ``classify_lab.NOT_COMPARED``). Kea's answer is also checked against the pool the
reference saw Kea choose, so that a broken harness cannot make both agree on nothing.

One test per pattern: a pattern fastdhcp does not answer as Kea does fails on its own, with the
differences, what the import could not carry, and fastdhcp's log.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fastdhcp.config import from_document
from fastdhcp.kea.config_export import export
from fastdhcp.kea.config_import import convert

from .classify_lab import FAST_IP, KEA_IP, Reply, SideBySide, opt, request_bytes

PATTERNS: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "vectors" / "kea_class_patterns.json").read_text())
PLAIN_SUBNET = [{"id": 10, "subnet": "198.19.80.0/24",
                 "pools": [{"pool": "198.19.80.10 - 198.19.80.250"}]}]
#: Every client asks for these (the reference packet's list plus 2, 4, 7 and 12 of P2 / P8).
PRL = opt(55, bytes((1, 2, 3, 4, 6, 7, 12, 15, 42, 43, 66, 67, 125)))
A, B = "198.19.80.1", "198.19.81.1"  # the relay addresses (giaddr)


def rai(circuit: bytes | None = None, remote: bytes | None = None) -> bytes:
    """Option 82 with circuit-id (1) and/or remote-id (2)."""
    subs = b"".join(opt(c, v) for c, v in ((1, circuit), (2, remote)) if v is not None)
    return opt(82, subs)


def vivso(enterprise: int, subs: dict[int, bytes]) -> bytes:
    """Option 125 (RFC 3925): enterprise, data length, sub-options."""
    data = b"".join(opt(c, v) for c, v in subs.items())
    return opt(125, enterprise.to_bytes(4, "big") + bytes((len(data),)) + data)


@dataclass(frozen=True)
class Client:
    """One of a pattern's clients and where the reference saw Kea put it."""

    what: str
    options: bytes = b""
    expect: tuple[int, int] | None = (10, 0)  #: (subnet id, pool index), None = no answer
    giaddr: str = A
    mac: str | None = None  #: "02:..", else one of the test's own


PXE_BIOS = opt(60, b"PXEClient:Arch:00000:UNDI:002001") + opt(93, b"\0\0")
PXE_UEFI = opt(60, b"PXEClient:Arch:00007:UNDI:003016") + opt(93, b"\0\x07")
IPXE = opt(77, b"iPXE") + opt(93, b"\0\x07")
CLIENTS: dict[str, list[Client]] = {
    "P1": [Client("STB", opt(60, b"STB-Amino-A140"), (10, 0)),
           Client("CPE", opt(60, b"CPE-HGW-1"), (10, 1)),
           Client("PC", opt(60, b"MSFT 5.0"), (10, 2))],
    "P2": [Client("cable modem", opt(60, b"docsis3.0"), (30, 0)),
           Client("PC behind the modem", b"", (31, 0))],
    "P3": [Client("TR-069 CPE", opt(60, b"dslforum.org")),
           Client("other", opt(60, b"udhcp 1.30"))],
    "P4": [Client("CPE sending 125/3561", vivso(3561, {1: b"00D09E", 2: b"SERIAL-42"})),
           Client("CPE without 125")],
    "P5": [Client("BIOS PXE", PXE_BIOS), Client("UEFI x64", PXE_UEFI), Client("iPXE", IPXE),
           Client("no PXE")],
    "P5b": [Client("BIOS PXE", PXE_BIOS), Client("UEFI x64", PXE_UEFI), Client("iPXE", IPXE),
            Client("no PXE")],
    "P6": [Client("PXEClient", opt(60, b"PXEClient:Arch:00000:UNDI:002001"), (10, 0)),
           Client("not PXE", opt(60, b"MSFT 5.0"), (10, 1))],
    # order matters: Kea's iterative allocator goes on after the last address it gave (§3)
    "P7": [Client("remote-id OLT1-0001", rai(b"eth0/1/1:7", b"OLT1-0001"), (10, 1)),
           Client("circuit eth0/1/2:100", rai(b"eth0/1/2:100", b"OLT1-0002"), (10, 1)),
           Client("remote-id OLT2-0001", rai(b"eth0/9/9:9", b"OLT2-0001"), (10, 2)),
           Client("no option 82", b"", (10, 2))],
    "P8": [Client("registered", b"", (10, 0), mac="02:01:00:00:07:01"),
           Client("unregistered", b"", (10, 1)),
           Client("registered, fqdn", opt(81, b"\x05\x00\x00\x05host1"), (10, 0),
                  mac="02:01:00:00:07:01"),
           Client("registered, host-name", opt(12, b"laptop"), (10, 0),
                  mac="02:01:00:00:07:01")],
    "P8b": [Client("registered", b"", (10, 0), mac="02:01:00:00:07:01"),
            Client("unregistered", b"", (10, 1))],
    "P9": [Client("via relay A", b"", (10, 0), giaddr=A),
           Client("via relay B", b"", (11, 0), giaddr=B)],
    "P10": [Client("OUI 00:04:0d", mac="00:04:0d:12:34:56"), Client("other OUI")],
    "P11": [Client("host-name cam-0001", opt(12, b"cam-0001")),
            Client("host-name laptop", opt(12, b"laptop")),
            Client("fqdn S", opt(81, b"\x05\x00\x00\x05host1")),
            Client("fqdn N ascii", opt(81, b"\x08\x00\x00host2")),
            Client("fqdn S=0 full", opt(81, b"\x04\x00\x00\x05host3\x07example\x03net\x00")),
            Client("fqdn upper", opt(81, b"\x05\x00\x00\x05HOST4")),
            Client("fqdn and 12", opt(81, b"\x05\x00\x00\x05host5") + opt(12, b"other")),
            Client("host-name Laptop_X.", opt(12, b"Laptop_X.")),
            Client("host-name a..b", opt(12, b"a..b"))],
    "P12": [Client("opt60 via the voice subnet", opt(60, b"X"), (10, 0), giaddr=A),
            Client("opt60 via the other relay", opt(60, b"X"), (11, 0), giaddr=B)],
    "P13": [Client("with option 82", rai(b"port-1", b"RID-1")),
            Client("without option 82", b"", None)],
    "P14": [Client("ONT serial client-id", opt(61, b"\0HWTC12345678"), (10, 0)),
            Client("MAC client-id", b"", (10, 1))],  # 61 = 01 + MAC, added below
    "P15": [Client("opt60 iot-sensor", opt(60, b"iot-sensor")),
            Client("other", opt(60, b"MSFT 5.0"))],
    "P16": [Client("remote-id BLOCKED-77", rai(b"port-9", b"BLOCKED-77"), None),
            Client("MAC 02:00:5e:00:06:ff", b"", None, mac="02:00:5e:00:06:ff"),
            Client("normal client")],
}


def pattern_dhcp4(name: str) -> dict[str, Any]:
    """The pattern's ``Dhcp4`` body (a plain subnet where the pattern gives none)."""
    d4: dict[str, Any] = {"valid-lifetime": 3600, **PATTERNS[name]}
    if "subnet4" not in d4 and "shared-networks" not in d4:
        d4["subnet4"] = PLAIN_SUBNET
    return d4


def pool_finder(d4: dict[str, Any]) -> Any:
    """ip -> (subnet id, pool index) in a Kea config, or the ip itself when outside all."""
    import ipaddress

    ranges = []
    subnets = list(d4.get("subnet4", []))
    for net in d4.get("shared-networks", []):
        subnets += net["subnet4"]
    for s in subnets:
        for j, p in enumerate(s.get("pools", [])):
            text = p["pool"]
            if "-" in text:
                lo, hi = (int(ipaddress.IPv4Address(x.strip())) for x in text.split("-"))
            else:
                n = ipaddress.IPv4Network(text)
                lo, hi = int(n.network_address), int(n.broadcast_address)
            ranges.append((lo, hi, (s["id"], j)))

    def find(ip: str) -> Any:
        v = int(ipaddress.IPv4Address(ip))
        return next((key for lo, hi, key in ranges if lo <= v <= hi), ip)
    return find


def _requirements() -> list[str]:
    out = [] if os.geteuid() == 0 else ["not root (namespaces, port 67)"]
    out += [f"{b} not found" for b in ("kea-dhcp4", "ip", "ethtool") if shutil.which(b) is None]
    return out


@pytest.fixture(scope="module")
def side() -> Iterator[SideBySide]:
    """Kea and fastdhcp, each in its namespace, and the relay between them."""
    problems = _requirements()
    if problems:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("; ".join(problems), pytrace=False)
        pytest.skip("; ".join(problems))
    work = Path(tempfile.mkdtemp(prefix="fastdhcp-classify-"))
    lab = SideBySide(work)
    lab.start()
    try:
        yield lab
    finally:
        errors = lab.close()
        shutil.rmtree(work, ignore_errors=True)
        assert not errors, errors


def _mac(pattern: int, i: int, client: Client) -> bytes:
    text = client.mac or f"02:fc:{pattern:02x}:00:00:{i:02x}"
    return bytes.fromhex(text.replace(":", ""))


View = dict[str, Any] | None  #: Reply.view(), or None for silence
Answers = list[tuple[View, View]]  #: per client: (OFFER, ACK)


def play(side: SideBySide, name: str, servers: tuple[str, ...]) -> dict[str, Answers]:
    """Pattern ``name``'s clients against ``servers`` (their addresses), each configured
    already: what each server answered. Every bound lease is released at the end, so that
    the next pattern starts with free pools."""
    d4 = pattern_dhcp4(name)
    pool_of = pool_finder(d4)
    index = sorted(PATTERNS).index(name) + 1
    out: dict[str, Answers] = {srv: [] for srv in servers}
    bound: list[tuple[str, str, bytes, Reply]] = []  # (giaddr, server, mac, ack)
    for i, c in enumerate(CLIENTS[name]):
        mac = _mac(index, i, c)
        extra = c.options + (opt(61, b"\x01" + mac) if name == "P14" and i == 1 else b"") + PRL
        xid = 0x5E000000 | index << 8 | i << 1
        disc = request_bytes(1, mac=mac, xid=xid, giaddr=c.giaddr, options=extra)
        got = side.exchange([(c.giaddr, srv, disc) for srv in servers])
        offers = {srv: Reply.parse(r) if r else None for srv, r in zip(servers, got, strict=True)}
        acks: dict[str, Reply | None] = dict.fromkeys(servers)
        sends = []
        for srv, offer in offers.items():
            if offer is not None and offer.kind == 2:
                sends.append((srv, request_bytes(3, mac=mac, xid=xid + 1, giaddr=c.giaddr,
                                                 options=opt(50, _packed(offer.yiaddr))
                                                 + opt(54, _packed(offer.server_id)) + extra)))
        if sends:
            got = side.exchange([(c.giaddr, srv, req) for srv, req in sends])
            for (srv, _), r in zip(sends, got, strict=True):
                ack = acks[srv] = Reply.parse(r) if r else None
                if ack is not None:
                    bound.append((c.giaddr, srv, mac, ack))
        for srv in servers:
            o, a = offers[srv], acks[srv]
            out[srv].append((o.view(pool_of) if o else None, a.view(pool_of) if a else None))
    release = [(giaddr, srv, request_bytes(7, mac=mac, xid=0x7E000000 | n, giaddr=giaddr,
                                           ciaddr=ack.yiaddr,
                                           options=opt(54, _packed(ack.server_id))))
               for n, (giaddr, srv, mac, ack) in enumerate(bound)]
    if release:
        side.exchange(release, wait=0)
    return out


def _packed(ip: str) -> bytes:
    return bytes(map(int, ip.split(".")))


def differences(name: str, kea: Answers, other: Answers) -> list[str]:
    """Where ``other`` answered a client of pattern ``name`` otherwise than Kea."""
    out = []
    for c, k, o in zip(CLIENTS[name], kea, other, strict=True):
        for step, kv, ov in (("OFFER", k[0], o[0]), ("ACK", k[1], o[1])):
            if kv != ov:
                out.append(f"{c.what}: {step}: {_difference(kv, ov)}")
    return out


def off_reference(name: str, kea: Answers) -> list[str]:
    """Where Kea's OFFER came from another pool than the reference saw (a harness fault)."""
    return [f"{c.what}: Kea offered from {k[0]['pool'] if k[0] else None}, the reference "
            f"{c.expect}" for c, k in zip(CLIENTS[name], kea, strict=True)
            if (k[0]["pool"] if k[0] else None) != c.expect]


def _difference(kea: dict[str, Any] | None, fast: dict[str, Any] | None) -> str:
    """What differs, field by field and option by option (Kea's value first)."""
    if kea is None or fast is None:
        return f"Kea {'silence' if kea is None else kea} / fastdhcp " \
               f"{'silence' if fast is None else fast}"
    out = [f"{k}: {kea[k]!r} / {fast[k]!r}" for k in kea if k != "options" and kea[k] != fast[k]]
    ko, fo = kea["options"], fast["options"]
    out += [f"option {c}: {ko.get(c, '-')} / {fo.get(c, '-')}" for c in sorted({*ko, *fo})
            if ko.get(c) != fo.get(c)]
    return "; ".join(out)


def test_every_pattern_has_clients() -> None:
    assert sorted(CLIENTS) == sorted(PATTERNS) and len(PATTERNS) == 18


ORDER = sorted(PATTERNS, key=lambda n: (int(n[1:].rstrip("b")), n))


@pytest.mark.parametrize("name", ORDER)
def test_pattern_as_kea(side: SideBySide, name: str) -> None:
    d4 = pattern_dhcp4(name)
    side.configure_kea(d4)
    refused, unsupported = side.configure_fastdhcp(d4)
    assert refused is None, (refused, unsupported)
    got = play(side, name, (KEA_IP, FAST_IP))
    alive = side.alive()
    assert alive == {"kea": None, "fastdhcp": None}, (alive, side.log("fastdhcp"))
    wrong = off_reference(name, got[KEA_IP])
    assert not wrong, f"Kea itself answered {name} otherwise than the reference: {wrong}"
    diffs = differences(name, got[KEA_IP], got[FAST_IP])
    assert not diffs, (f"{name}: fastdhcp differs from Kea:\n  " + "\n  ".join(diffs)
                       + "".join(f"\n  (import-kea: {u})" for u in unsupported)
                       + "\n--- fastdhcp log ---\n" + side.log("fastdhcp", 30))


@pytest.mark.parametrize("name", ORDER)
def test_pattern_exported_back_keeps_kea_answers(side: SideBySide, name: str) -> None:
    """The way back (issue 18): Kea on ``export-kea`` of the imported pattern answers every
    client as Kea on the pattern itself."""
    d4 = pattern_dhcp4(name)
    side.configure_kea(d4)
    before = play(side, name, (KEA_IP,))[KEA_IP]
    back, _ = export(from_document(convert({"Dhcp4": d4}).document))
    plumbing = ("interfaces-config", "lease-database", "hooks-libraries", "control-socket")
    side.configure_kea({k: v for k, v in back["Dhcp4"].items() if k not in plumbing})
    after = play(side, name, (KEA_IP,))[KEA_IP]
    diffs = differences(name, before, after)
    assert not diffs, f"{name}: Kea on the exported config differs:\n  " + "\n  ".join(diffs)
