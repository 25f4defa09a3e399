"""fastdhcp._codec against scapy, an independent DHCP implementation, both ways.

1. scapy builds ``BOOTP()/DHCP(options=[...])`` from random headers and options; ``parse()``
   must see the same header fields, typed values and options (repeats concatenated per
   RFC 3396, which scapy knows nothing of: the expected concatenation is this file's model).
2. ``ReplyBuilder`` builds random replies; scapy decodes them and must see the RFC 2131
   table 3 header and every option. scapy decodes options it knows into typed values (IPs,
   ints); those are compared with values computed here with ``struct``/``socket``, everything
   else as raw bytes.

What scapy cannot check, and how it is covered instead:
- scapy's builder packs each option as ``!BB`` + value, so it cannot make values over 255
  bytes: long options reach parse() only as the explicit instances listed here.
- scapy does not interpret option overload (52): it shows sname/file as raw strings. For
  overloaded replies the file/sname fields are walked by this file's own TLV reader.
- scapy decodes option instances separately; RFC 3396 joining is done here.
- option codes scapy types oddly (55 and 145 as byte lists, 121 classless routes) are used
  only as raw-valued options in direction 1 and not at all in direction 2.
"""

from __future__ import annotations

import random
import socket
import struct

import pytest
from scapy.fields import ByteField, IntField, IPField, ShortField, StrField
from scapy.layers.dhcp import BOOTP, DHCP, DHCPOptions

from fastdhcp._codec import ReplyBuilder, parse

N_PER_SEED = 400
SEEDS = [1, 2, 3, 4, 5]          # 2,000 messages each way

# Option codes the parser validates as fixed size, with the size.
FIXED = {53: 1, 50: 4, 54: 4, 118: 4, 51: 4, 57: 2}
# Codes scapy cannot take as a raw (int, bytes) tuple without reinterpreting them, or that the
# codec treats specially: 0 pad, 52 overload, 255 end.
NEVER_RANDOM = {0, 52, 255}


def rand_ip(rng: random.Random) -> int:
    return rng.getrandbits(32)


def ntoa(addr: int) -> str:
    return socket.inet_ntoa(struct.pack("!I", addr))


def rand_suboptions(rng: random.Random) -> bytes:
    out = b""
    for _ in range(rng.randint(1, 4)):
        sub = rng.choice([1, 2, 5, 11, rng.randint(1, 254)])
        n = 4 if sub in (5, 11) and rng.random() < 0.8 else rng.randint(0, 20)
        out += bytes([sub, n]) + rng.randbytes(n)
    return out


# ---- direction 1: scapy builds, parse() reads --------------------------------------------------


def random_request(rng: random.Random) -> tuple[bytes, dict, list[tuple[int, bytes]]]:
    """A scapy-built datagram, its header fields, and the option instances it carries."""
    hlen = rng.randint(0, 16)
    hdr = dict(
        op=rng.choice([1, 2]), htype=rng.randint(0, 255), hlen=hlen, hops=rng.randint(0, 255),
        xid=rng.getrandbits(32), secs=rng.getrandbits(16), flags=rng.getrandbits(16),
        ciaddr=rand_ip(rng), yiaddr=rand_ip(rng), siaddr=rand_ip(rng), giaddr=rand_ip(rng),
        chaddr=rng.randbytes(16),
    )
    scapy_opts: list = []
    instances: list[tuple[int, bytes]] = []   # what the wire carries, in order
    used_fixed: set[int] = set()
    for _ in range(rng.randint(0, 14)):
        if rng.random() < 0.1:
            scapy_opts.append("pad")
            continue
        code = rng.choice([53, 50, 54, 118, 51, 57, 61, 55, 12, 60, 81, 82] + [rng.randint(1, 254)])
        if code in NEVER_RANDOM or code in used_fixed:
            continue
        if code in FIXED:
            used_fixed.add(code)
            if code == 53:
                v = rng.randint(1, 8)
                scapy_opts.append(("message-type", v))
                value = bytes([v])
            elif code == 57:
                v = rng.randint(576, 65535)
                scapy_opts.append(("max_dhcp_size", v))
                value = struct.pack("!H", v)
            elif code == 51:
                v = rng.getrandbits(32)
                scapy_opts.append(("lease_time", v))
                value = struct.pack("!I", v)
            else:
                a = rand_ip(rng)
                name = {50: "requested_addr", 54: "server_id", 118: "subnet-selection"}[code]
                scapy_opts.append((name, ntoa(a)))
                value = struct.pack("!I", a)
        elif code == 82:
            value = rand_suboptions(rng)
            scapy_opts.append((82, value))
        else:
            value = rng.randbytes(rng.choice([0, 1, 4, rng.randint(0, 255)]))
            scapy_opts.append((code, value))
        instances.append((code, value))
    scapy_opts.append("end")
    scapy_opts.extend(["pad"] * rng.randint(0, 20))
    fields = dict(hdr)
    for k in ("ciaddr", "yiaddr", "siaddr", "giaddr"):
        fields[k] = ntoa(hdr[k])
    data = bytes(BOOTP(**fields) / DHCP(options=scapy_opts))
    return data, hdr, instances


def joined(instances: list[tuple[int, bytes]]) -> dict[int, bytes]:
    """RFC 3396: one value per code, instances concatenated, first-seen order."""
    out: dict[int, bytes] = {}
    for code, value in instances:
        out[code] = out.get(code, b"") + value
    return out


def u32(value: bytes | None, absent: int) -> int:
    return absent if value is None else struct.unpack("!I", value)[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_parse_matches_scapy_built_packets(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(N_PER_SEED):
        data, hdr, instances = random_request(rng)
        m = parse(data)
        for k in ("op", "htype", "hlen", "hops", "xid", "secs", "flags",
                  "ciaddr", "yiaddr", "siaddr", "giaddr"):
            assert getattr(m, k) == hdr[k], (k, data.hex())
        assert m.chaddr == hdr["chaddr"][: hdr["hlen"]]
        assert m.broadcast == bool(hdr["flags"] & 0x8000)
        opts = joined(instances)
        assert m.options == opts, data.hex()
        assert m.codes == list(opts)
        assert m.message_type == (opts[53][0] if 53 in opts else 0)
        assert m.requested_ip == u32(opts.get(50), 0)
        assert m.server_id == u32(opts.get(54), 0)
        assert m.subnet_selection == u32(opts.get(118), 0)
        assert m.lease_time == u32(opts.get(51), -1)
        assert m.max_message_size == (struct.unpack("!H", opts[57])[0] if 57 in opts else 0)
        assert m.client_id == opts.get(61) and m.prl == opts.get(55)
        assert m.hostname == opts.get(12) and m.vendor_class == opts.get(60)
        assert m.client_fqdn == opts.get(81) and m.relay_agent_info == opts.get(82)
        subs = suboptions(opts.get(82, b""))
        assert m.circuit_id == subs.get(1) and m.remote_id == subs.get(2)
        assert m.link_selection == (u32(subs.get(5), 0) if len(subs.get(5, b"")) == 4 else 0)
        assert m.server_id_override == (
            u32(subs.get(11), 0) if len(subs.get(11, b"")) == 4 else 0)


def suboptions(value: bytes) -> dict[int, bytes]:
    """First instance of each option 82 sub-option (RFC 3046), test-side reader."""
    out: dict[int, bytes] = {}
    i = 0
    while i + 2 <= len(value):
        out.setdefault(value[i], value[i + 2 : i + 2 + value[i + 1]])
        i += 2 + value[i + 1]
    return out


# ---- direction 2: ReplyBuilder builds, scapy reads ----------------------------------------------

# For each scapy-typed code: the struct format of one element.
_TYPED = {ByteField: "!B", ShortField: "!H", IntField: "!I", IPField: "ip"}


def scapy_kind(code: int) -> str | None:
    """'raw' for codes scapy shows as bytes, a struct format for typed ones, None to avoid."""
    f = DHCPOptions.get(code)
    if f is None or isinstance(f, str) or type(f) is StrField:
        return "raw"
    for cls, fmt in _TYPED.items():
        if type(f) is cls:
            return fmt
    return None          # enum/list/classless fields: not used here


REPLY_CODES = [c for c in range(1, 255) if c not in (52, 53, 82) and scapy_kind(c)]


def random_value(rng: random.Random, code: int) -> bytes:
    if code == 57:
        return struct.pack("!H", rng.randint(576, 65535))
    if code in FIXED:
        return rng.randbytes(FIXED[code])
    kind = scapy_kind(code)
    if kind == "raw":
        return rng.randbytes(rng.choice([0, 3, rng.randint(0, 255), rng.randint(256, 700)]))
    size = 4 if kind in ("ip", "!I") else struct.calcsize(kind)
    return rng.randbytes(size * rng.randint(1, 255 // size))


def expected_scapy(code: int, value: bytes) -> tuple:
    """What scapy should show for one instance: typed values computed here, not by scapy."""
    f = DHCPOptions.get(code)
    kind = scapy_kind(code)
    if f is None:
        return (code, value)
    if kind == "raw":
        return (f if isinstance(f, str) else f.name, value)
    if kind == "ip":
        vals = [socket.inet_ntoa(value[i : i + 4]) for i in range(0, len(value), 4)]
    else:
        size = struct.calcsize(kind)
        vals = [struct.unpack(kind, value[i : i + size])[0] for i in range(0, len(value), size)]
    return (f.name, *vals)


def area_tlvs(area: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while i < len(area) and area[i] != 255:
        if area[i] == 0:
            i += 1
            continue
        out.append((area[i], area[i + 2 : i + 2 + area[i + 1]]))
        i += 2 + area[i + 1]
    return out


def end_of_options(data: bytes) -> int:
    """Offset of the end option of the options field (walking TLVs, not searching 0xff)."""
    i = 240
    while data[i] != 255:
        i += 1 if data[i] == 0 else 2 + data[i + 1]
    return i


def random_builder_case(rng: random.Random):
    mms = rng.choice([None, 576, rng.randint(576, 1500)])
    ra = rand_suboptions(rng) if rng.random() < 0.5 else None
    opts = [("message-type", rng.choice([1, 3, 4, 7, 8]))]
    if mms is not None:
        opts.append(("max_dhcp_size", mms))
    if ra is not None:
        opts.append((82, ra))
    opts.append("end")
    hlen = rng.randint(0, 16)
    req_bytes = bytes(
        BOOTP(htype=rng.randint(0, 255), hlen=hlen, xid=rng.getrandbits(32),
              flags=rng.choice([0, 0x8000]), giaddr=ntoa(rand_ip(rng)), hops=rng.randint(0, 5),
              secs=rng.getrandbits(16), chaddr=rng.randbytes(16)) / DHCP(options=opts)
    )
    req = parse(req_bytes)
    options: list[tuple[int, bytes]] = []
    if rng.random() < 0.9:
        options.append((54, rng.randbytes(4)))
    if rng.random() < 0.7:
        options.append((51, rng.randbytes(4)))
    if ra is not None:
        options.insert(rng.randint(0, len(options)), (82, ra))     # builder must move it last
    for _ in range(rng.randint(0, 8)):
        code = rng.choice(REPLY_CODES)
        if code in (54, 51) or any(c == code for c, _ in options):
            continue          # one instance per code keeps scapy's view unambiguous
        options.append((code, random_value(rng, code)))
    return req, req_bytes, mms, options


@pytest.mark.parametrize("seed", SEEDS)
def test_replies_decode_in_scapy(seed: int) -> None:
    rng = random.Random(1000 + seed)
    builder = ReplyBuilder()
    for _ in range(N_PER_SEED):
        req, req_bytes, mms, options = random_builder_case(rng)
        msg_type = rng.choice([2, 5, 6])
        ciaddr, yiaddr, siaddr = rand_ip(rng), rand_ip(rng), rand_ip(rng)
        out = builder.build(req, msg_type, ciaddr, yiaddr, siaddr, options)
        limit = max(576, mms or 576) - 28
        assert 300 <= len(out) <= limit

        p = BOOTP(out)
        assert (p.op, p.htype, p.hlen, p.hops, p.secs) == (2, req.htype, req.hlen, 0, 0)
        assert p.xid == req.xid and int(p.flags) == req.flags
        assert (p.ciaddr, p.yiaddr, p.siaddr) == (ntoa(ciaddr), ntoa(yiaddr), ntoa(siaddr))
        assert p.giaddr == ntoa(req.giaddr)
        assert p.chaddr[: req.hlen] == req_bytes[28 : 28 + req.hlen]
        assert p.chaddr[req.hlen :] == bytes(16 - req.hlen)
        assert p.options == b"\x63\x82\x53\x63"

        shown = [o for o in p[DHCP].options if o not in ("pad", "end")]
        assert all(isinstance(o, tuple) for o in shown), shown     # scapy found no broken TLV
        assert shown[0] == ("message-type", msg_type)
        overload = 0
        main = shown[1:]
        if main and main[0][0] == "dhcp-option-overload":
            overload = main[0][1]
            main = main[1:]
        # instances in wire order: main area as scapy saw it, then file, then sname (our reader)
        wire: list[tuple] = list(main)
        extra: list[tuple[int, bytes]] = []
        if overload & 1:
            extra += area_tlvs(bytes(p.file))
        else:
            assert bytes(p.file) == bytes(128)
        if overload & 2:
            extra += area_tlvs(bytes(p.sname))
        else:
            assert bytes(p.sname) == bytes(64)

        # Expected: 82 last, everything else in the given order; some trailing optional
        # options may be dropped when the reply is too big, never 54/51/82.
        order = [o for o in options if o[0] != 82] + [o for o in options if o[0] == 82]
        got = parse(out)
        kept = [o for o in order if got.get(o[0]) is not None]
        for required in (54, 51, 82):
            assert [o for o in order if o[0] == required] == [
                o for o in kept if o[0] == required]
        if len(kept) < len(order) and not overload:
            # Without overload, a dropped option either did not fit in the options field or is
            # part of a dropped tail (dropped to make room for 54/51/82).
            main_free = limit - (end_of_options(out) + 1)
            optional = [o for o in order if o[0] not in (54, 51, 82)]
            for i, (code, value) in enumerate(optional):
                if got.get(code) is None:
                    too_big = len(value) + 2 * max(1, -(-len(value) // 255)) > main_free
                    tail_dropped = all(got.get(c) is None for c, _ in optional[i:])
                    assert too_big or tail_dropped, (code, len(value), main_free)
        assert [c for c in got.codes if c not in (52, 53)] == [c for c, _ in kept]

        if not extra:
            # Everything in the main area: scapy's typed view of each instance must match.
            want = []
            for code, value in kept:
                for off in range(0, max(len(value), 1), 255):
                    want.append(expected_scapy(code, value[off : off + 255]))
            assert wire == want, (wire, want)
        else:
            # Main-area instances come from scapy, the rest from our reader; join per code.
            joined_main: dict[int, bytes] = {}
            for name, *vals in wire:
                code = name if isinstance(name, int) else _code_of(name)
                joined_main[code] = joined_main.get(code, b"") + _raw(code, vals)
            for code, value in extra:
                joined_main[code] = joined_main.get(code, b"") + value
            assert joined_main == {c: v for c, v in kept}
        overload_opt = {52: bytes([overload])} if overload else {}
        assert got.options == {53: bytes([msg_type]), **overload_opt, **dict(kept)}


def _code_of(name: str) -> int:
    for code, f in DHCPOptions.items():
        if f == name or getattr(f, "name", None) == name:
            return code
    raise KeyError(name)


def _raw(code: int, vals: list) -> bytes:
    """Re-encode scapy's typed view with struct/socket (raw kinds are already bytes)."""
    kind = scapy_kind(code)
    if kind == "raw":
        return vals[0]
    if kind == "ip":
        return b"".join(socket.inet_aton(v) for v in vals)
    return b"".join(struct.pack(kind, v) for v in vals)
