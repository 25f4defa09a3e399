"""fastdhcp._codec: annotated byte vectors, malformed input, and ReplyBuilder edge cases.

Expected values are written out by hand from the annotations in tests/vectors/*.hex (or built
with ``struct`` below), never computed by the codec under test.
"""

from __future__ import annotations

import importlib.machinery
import ipaddress
import struct

import pytest

import fastdhcp._codec as codec
from fastdhcp._codec import Message, ReplyBuilder, parse
from fastdhcp.errors import MalformedPacket
from tests.vectors import load_hex, names, vector

MAC = bytes.fromhex("02005e102030")
CID = b"\x01" + MAC
COOKIE = b"\x63\x82\x53\x63"


def ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def packet(
    options: bytes,
    *,
    op: int = 1,
    hlen: int = 6,
    chaddr: bytes = MAC,
    xid: int = 0x01020304,
    flags: int = 0,
    ciaddr: int = 0,
    giaddr: int = 0,
    hops: int = 0,
    sname: bytes = b"",
    file: bytes = b"",
) -> bytes:
    """A DHCP datagram from its parts (an independent little model of RFC 2131 figure 1)."""
    header = struct.pack(
        "!BBBBIHHIIII16s64s128s", op, 1, hlen, hops, xid, 0, flags, ciaddr, 0, 0, giaddr,
        chaddr, sname, file,
    )
    return header + COOKIE + options


def tlv(code: int, value: bytes) -> bytes:
    return bytes([code, len(value)]) + value


def walk_tlvs(area: bytes) -> list[tuple[int, bytes]]:
    """Raw TLVs of one options area up to the end option (test-side decoder)."""
    out, i = [], 0
    while i < len(area):
        code = area[i]
        if code == 0:
            i += 1
            continue
        if code == 255:
            break
        n = area[i + 1]
        out.append((code, area[i + 2 : i + 2 + n]))
        i += 2 + n
    return out


# ---- the compiled module is the one loaded ------------------------------------------------------


def test_codec_is_a_compiled_extension() -> None:
    path = codec.__file__
    assert path is not None
    assert any(path.endswith(s) for s in importlib.machinery.EXTENSION_SUFFIXES), path
    assert path.endswith(".so")
    assert not hasattr(codec, "__cached__") or not str(codec.__cached__).endswith(".pyc")


def test_message_cannot_be_made_directly() -> None:
    with pytest.raises(TypeError):
        Message()
    # __new__ bypasses __init__: such a shell must not crash, only read as empty.
    shell = Message.__new__(Message)
    assert shell.giaddr is None and shell.chaddr is None and shell.codes == []
    assert shell.get(53) is None and shell.options == {} and repr(shell) == "<Message (empty)>"
    with pytest.raises(ValueError):
        ReplyBuilder().build(shell, 5, 0, 0, 0, [])


# ---- vectors ------------------------------------------------------------------------------------


def test_loader_handles_comments_and_runs() -> None:
    assert load_hex("01 02 # three\n00*3 ff  # end\n") == b"\x01\x02\x00\x00\x00\xff"
    assert len(names()) >= 11


def test_discover() -> None:
    m = parse(vector("discover"))
    assert (m.op, m.htype, m.hlen, m.hops) == (1, 1, 6, 0)
    assert m.xid == 0x3903F326 and m.secs == 3 and m.flags == 0x8000 and m.broadcast
    assert (m.ciaddr, m.yiaddr, m.siaddr, m.giaddr) == (0, 0, 0, 0)
    assert m.chaddr == MAC
    assert m.message_type == 1
    assert m.client_id == CID
    assert m.max_message_size == 1472
    assert m.prl == bytes([1, 3, 6, 15, 28, 51, 58, 59, 119])
    assert m.hostname == b"laptop"
    assert m.vendor_class == b"MSFT 5.0"
    assert m.requested_ip == 0 and m.server_id == 0 and m.lease_time == -1
    assert m.relay_agent_info is None and m.circuit_id is None and m.link_selection == 0
    assert m.codes == [53, 61, 57, 55, 12, 60]
    assert m.sname == bytes(64) and m.file == bytes(128)
    assert m.data == vector("discover")


def test_offer() -> None:
    m = parse(vector("offer"))
    assert m.op == 2 and m.message_type == 2 and m.broadcast
    assert m.yiaddr == ip("198.18.0.100") and m.siaddr == ip("198.18.0.1")
    assert m.server_id == ip("198.18.0.1")
    assert m.lease_time == 3600
    assert m.get(58) == struct.pack("!I", 1800) and m.get(59) == struct.pack("!I", 3150)
    assert m.get(1) == bytes([255, 255, 255, 0])
    assert m.get(3) == bytes([198, 18, 0, 1])
    assert m.get(6) == bytes([198, 18, 0, 53, 198, 18, 0, 54])
    assert m.get(15) == b"example.net"
    assert m.codes == [53, 54, 51, 58, 59, 1, 3, 6, 15]


def test_request_selecting() -> None:
    m = parse(vector("request"))
    assert m.message_type == 3 and m.secs == 4
    assert m.requested_ip == ip("198.18.0.100")
    assert m.server_id == ip("198.18.0.1")
    assert m.client_id == CID and m.max_message_size == 1472
    assert m.prl == bytes([1, 3, 6, 15, 28, 51, 58, 59])
    assert m.client_fqdn == b"\x00\x00\x00laptop"


def test_decline() -> None:
    m = parse(vector("decline"))
    assert m.message_type == 4 and m.xid == 0x1A2B3C4D and not m.broadcast
    assert m.requested_ip == ip("198.18.0.100") and m.server_id == ip("198.18.0.1")
    assert m.get(56) == b"address in use"


def test_ack() -> None:
    m = parse(vector("ack"))
    assert m.message_type == 5 and m.yiaddr == ip("198.18.0.100")
    assert m.lease_time == 3600 and m.client_id == CID
    assert m.get(6) == bytes([198, 18, 0, 53])


def test_nak() -> None:
    m = parse(vector("nak"))
    assert m.message_type == 6 and m.yiaddr == 0 and m.broadcast
    assert m.get(56) == b"wrong network" and m.server_id == ip("198.18.0.1")


def test_release() -> None:
    m = parse(vector("release"))
    assert m.message_type == 7 and m.ciaddr == ip("198.18.0.100")
    assert m.requested_ip == 0 and m.server_id == ip("198.18.0.1") and m.client_id == CID


def test_inform() -> None:
    m = parse(vector("inform"))
    assert m.message_type == 8 and m.ciaddr == ip("198.18.0.7")
    assert m.prl == bytes([1, 3, 6, 15, 119, 252])
    assert m.vendor_class == b"android-dhcp-13"


def test_relayed_request() -> None:
    m = parse(vector("relayed_request"))
    assert m.message_type == 3 and m.hops == 1 and m.giaddr == ip("198.19.0.254")
    assert m.requested_ip == ip("198.19.10.23") and m.server_id == ip("198.19.0.1")
    assert m.max_message_size == 576 and m.hostname == b"cpe-23"
    assert m.subnet_selection == ip("198.19.10.0")
    assert m.circuit_id == b"eth0:100"
    assert m.remote_id == bytes.fromhex("0a1b2c3d4e5f")
    assert m.link_selection == ip("198.19.10.0")
    assert m.server_id_override == ip("198.19.0.1")
    assert m.relay_agent_info == (
        b"\x01\x08eth0:100\x02\x06" + bytes.fromhex("0a1b2c3d4e5f")
        + b"\x05\x04" + bytes([198, 19, 10, 0]) + b"\x0b\x04" + bytes([198, 19, 0, 1])
    )
    assert m.codes == [53, 61, 50, 54, 57, 55, 12, 118, 82]


def test_overloaded() -> None:
    m = parse(vector("overloaded"))
    assert m.overload == 3
    # RFC 2131 4.1 order: options field, then file, then sname; 15 joined across fields.
    assert m.codes == [53, 52, 54, 51, 15, 6, 3, 1]
    assert m.get(15) == b"example.net"
    assert m.get(6) == bytes([198, 18, 0, 53, 198, 18, 0, 54])
    assert m.get(3) == bytes([198, 18, 0, 1]) and m.get(1) == bytes([255, 255, 255, 0])
    assert m.lease_time == 600
    assert m.options == {
        53: b"\x02", 52: b"\x03", 54: bytes([198, 18, 0, 1]), 51: struct.pack("!I", 600),
        15: b"example.net", 6: bytes([198, 18, 0, 53, 198, 18, 0, 54]),
        3: bytes([198, 18, 0, 1]), 1: bytes([255, 255, 255, 0]),
    }


def test_split_option() -> None:
    m = parse(vector("split_option"))
    assert m.get(43) == bytes(range(256)) + bytes(range(44))
    assert m.lease_time == 86400 and m.codes == [53, 54, 51, 43]


@pytest.mark.parametrize("name", names())
def test_every_vector_round_trips_through_get(name: str) -> None:
    m = parse(vector(name))
    assert m.data == vector(name)
    assert m.options == {c: m.get(c) for c in m.codes}
    assert m.get(0) is None and m.get(255) is None and m.get(999) is None and m.get(-1) is None


def test_parse_accepts_bytes_likes() -> None:
    raw = vector("discover")
    for data in (bytearray(raw), memoryview(raw)):
        m = parse(data)
        assert m.data == raw and isinstance(m.data, bytes) and m.hostname == b"laptop"


# ---- malformed input ----------------------------------------------------------------------------

GOOD = tlv(53, b"\x01")


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "too short"),
        (packet(b"")[:239], "too short"),
        (packet(b"\xff" + bytes(65507 - 241)) + b"\x00", "too long"),
        (packet(GOOD + b"\xff")[:236] + b"\x63\x82\x53\x64" + GOOD + b"\xff", "cookie"),
        (packet(GOOD + b"\xff", hlen=17, chaddr=bytes(16)), "hlen"),
        (packet(b""), "no end option"),
        (packet(GOOD), "no end option"),
        (packet(GOOD + b"\x00\x00"), "no end option"),
        (packet(GOOD + b"\x0c"), "length byte"),
        (packet(GOOD + b"\x0c\x05abc"), "runs past"),
        (packet(GOOD + tlv(53, b"\x01\x02") + b"\xff"), "option 53"),
        (packet(GOOD + tlv(53, b"\x01") + b"\xff"), "option 53"),  # repeated: joined length 2
        (packet(GOOD + tlv(50, b"\x01\x02\x03") + b"\xff"), "option 50"),
        (packet(GOOD + tlv(54, b"\x01\x02\x03\x04\x05") + b"\xff"), "option 54"),
        (packet(GOOD + tlv(51, b"") + b"\xff"), "option 51"),
        (packet(GOOD + tlv(118, b"\x01") + b"\xff"), "option 118"),
        (packet(GOOD + tlv(57, b"\x05") + b"\xff"), "option 57"),
        (packet(GOOD + tlv(57, struct.pack("!H", 575)) + b"\xff"), "below 576"),
        (packet(GOOD + tlv(82, b"\x01\x05ab") + b"\xff"), "option 82"),
        (packet(GOOD + tlv(82, b"\x01\x02ab\x02") + b"\xff"), "option 82"),
        (packet(GOOD + tlv(52, b"\x00") + b"\xff"), "overload"),
        (packet(GOOD + tlv(52, b"\x04") + b"\xff"), "overload"),
        (packet(GOOD + tlv(52, b"\x01\x01") + b"\xff"), "overload"),
        (packet(GOOD + tlv(52, b"\x01") + tlv(52, b"\x01") + b"\xff"), "repeated"),
        (packet(GOOD + tlv(52, b"\x01") + b"\xff", file=tlv(52, b"\x02") + b"\xff"), "inside"),
        (packet(GOOD + tlv(52, b"\x03") + b"\xff", sname=tlv(52, b"\x01") + b"\xff"), "inside"),
        (packet(GOOD + tlv(52, b"\x01") + b"\xff", file=b"\x0c\x7f" + b"a" * 126), "runs past"),
        (packet(GOOD + tlv(52, b"\x02") + b"\xff", sname=b"\x00" * 63 + b"\x0c"), "length byte"),
        ("not bytes", "bytes-like"),
        (12345, "bytes-like"),
        (None, "bytes-like"),
    ],
)
def test_malformed(data: object, reason: str) -> None:
    with pytest.raises(MalformedPacket) as info:
        parse(data)
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


def test_fields_may_end_without_end_option_only_in_sname_and_file() -> None:
    # file and sname exactly full of options, no end option: accepted (contract).
    file = tlv(12, b"h" * 126)
    sname = tlv(15, b"d" * 62)
    m = parse(packet(GOOD + tlv(52, b"\x03") + b"\xff", file=file, sname=sname))
    assert m.hostname == b"h" * 126 and m.get(15) == b"d" * 62
    assert m.codes == [53, 52, 12, 15]


def test_overload_value_selects_the_fields() -> None:
    file = tlv(12, b"in-file") + b"\xff"
    sname = tlv(15, b"in-sname") + b"\xff"
    only_file = parse(packet(GOOD + tlv(52, b"\x01") + b"\xff", file=file, sname=sname))
    assert only_file.hostname == b"in-file" and only_file.get(15) is None
    only_sname = parse(packet(GOOD + tlv(52, b"\x02") + b"\xff", file=file, sname=sname))
    assert only_sname.hostname is None and only_sname.get(15) == b"in-sname"
    none = parse(packet(GOOD + b"\xff", file=file, sname=sname))
    assert none.hostname is None and none.get(15) is None


def test_repeats_join_in_rfc2131_order() -> None:
    data = packet(
        GOOD + tlv(52, b"\x03") + tlv(43, b"A") + b"\x00" + tlv(43, b"B") + b"\xff",
        file=tlv(43, b"C") + b"\xff",
        sname=tlv(43, b"D") + b"\xff",
    )
    assert parse(data).get(43) == b"ABCD"


def test_split_fixed_options_join_before_length_check() -> None:
    # 54 split as 2 + 2 bytes is legal RFC 3396 and reads as one address.
    m = parse(packet(GOOD + tlv(54, b"\xc6\x12") + tlv(54, b"\x00\x01") + b"\xff"))
    assert m.server_id == ip("198.18.0.1")
    # 82 split across two instances: sub-options are read from the joined value.
    ra = tlv(1, b"port-7") + tlv(2, b"rid") + tlv(5, bytes([198, 19, 1, 0]))
    m = parse(packet(GOOD + tlv(82, ra[:5]) + tlv(82, ra[5:]) + b"\xff"))
    assert m.relay_agent_info == ra and m.circuit_id == b"port-7" and m.remote_id == b"rid"
    assert m.link_selection == ip("198.19.1.0")


def test_odd_sized_suboptions_read_as_absent() -> None:
    m = parse(packet(GOOD + tlv(82, tlv(5, b"\x01\x02\x03") + tlv(11, b"")) + b"\xff"))
    assert m.link_selection == 0 and m.server_id_override == 0
    assert m.circuit_id is None and m.remote_id is None
    m = parse(packet(GOOD + tlv(82, b"") + b"\xff"))
    assert m.relay_agent_info == b"" and m.circuit_id is None


def test_data_after_end_is_ignored() -> None:
    m = parse(packet(GOOD + b"\xff" + b"\x0c\x50garbage"))
    assert m.codes == [53] and m.hostname is None


def test_hlen_zero_and_sixteen() -> None:
    assert parse(packet(GOOD + b"\xff", hlen=0)).chaddr == b""
    long_hw = bytes(range(1, 17))
    assert parse(packet(GOOD + b"\xff", hlen=16, chaddr=long_hw)).chaddr == long_hw


def test_bootp_without_message_type() -> None:
    m = parse(packet(b"\xff"))
    assert m.message_type == 0 and m.codes == [] and m.options == {}


# ---- ReplyBuilder -------------------------------------------------------------------------------

SERVER = ip("198.18.0.1")
YIADDR = ip("198.18.0.100")


def request(extra: bytes = b"", *, flags: int = 0x8000, giaddr: int = 0, hops: int = 0) -> Message:
    return parse(
        packet(
            tlv(53, b"\x03") + tlv(61, CID) + extra + b"\xff",
            flags=flags, giaddr=giaddr, hops=hops, xid=0xA1B2C3D4,
        )
    )


def reply_tlvs(reply: bytes) -> list[tuple[int, bytes]]:
    return walk_tlvs(reply[240:])


def test_reply_header_per_rfc2131_table3() -> None:
    req = request(giaddr=ip("198.19.0.254"), hops=1)
    out = ReplyBuilder().build(req, 5, 0, YIADDR, SERVER, [(54, struct.pack("!I", SERVER))])
    head = struct.unpack("!BBBBIHHIIII", out[:28])
    op, htype, hlen, hops, xid, secs, flags, ci, yi, si, gi = head
    assert (op, htype, hlen, hops, xid, secs, flags) == (2, 1, 6, 0, 0xA1B2C3D4, 0, 0x8000)
    assert (ci, yi, si, gi) == (0, YIADDR, SERVER, ip("198.19.0.254"))
    assert out[28:44] == MAC + bytes(10)
    assert out[44:236] == bytes(192)          # sname and file zero
    assert out[236:240] == COOKIE
    assert reply_tlvs(out) == [(53, b"\x05"), (54, struct.pack("!I", SERVER))]
    end = 240 + 3 + 6                          # 53 and 54 written, then the end option
    assert len(out) == 300 and out[end] == 255 and out[end + 1 :] == bytes(300 - end - 1)


def test_reply_53_first_82_last_and_53_in_options_ignored() -> None:
    ra = tlv(1, b"eth0") + tlv(2, b"remote")
    opts = [(1, b"\xff\xff\xff\x00"), (82, ra), (53, b"\x07"), (3, b"\xc6\x12\x00\x01"),
            (54, b"\xc6\x12\x00\x01")]
    out = ReplyBuilder().build(request(), 2, 0, YIADDR, 0, opts)
    assert reply_tlvs(out) == [
        (53, b"\x02"), (1, b"\xff\xff\xff\x00"), (3, b"\xc6\x12\x00\x01"),
        (54, b"\xc6\x12\x00\x01"), (82, ra),
    ]
    assert parse(out).circuit_id == b"eth0"


def test_reply_long_value_split_and_rejoined() -> None:
    value = bytes(i % 251 for i in range(600))
    req = request(tlv(57, struct.pack("!H", 1500)))
    out = ReplyBuilder().build(req, 5, 0, YIADDR, 0, [(43, value), (54, b"\x01\x02\x03\x04")])
    tl = reply_tlvs(out)
    assert [(c, len(v)) for c, v in tl] == [(53, 1), (43, 255), (43, 255), (43, 90), (54, 4)]
    assert parse(out).get(43) == value
    assert parse(out).overload == 0
    # exactly 255 bytes stays one instance; 256 makes two; empty stays an empty option
    out = ReplyBuilder().build(req, 5, 0, 0, 0, [(43, b"x" * 255), (44, b"y" * 256), (80, b"")])
    assert [(c, len(v)) for c, v in reply_tlvs(out)] == [
        (53, 1), (43, 255), (44, 255), (44, 1), (80, 0)]


def options_room(limit: int) -> int:
    """Bytes left for caller options in the options field: limit - header/cookie - 53 - end."""
    return limit - 240 - 3 - 1


@pytest.mark.parametrize("mms, limit", [(None, 548), (576, 548), (1000, 972), (1500, 1472)])
def test_reply_respects_max_message_size(mms: int | None, limit: int) -> None:
    extra = b"" if mms is None else tlv(57, struct.pack("!H", mms))
    req = request(extra)
    b = ReplyBuilder()
    # A value that exactly fills the options field: no overload.
    room = options_room(limit)
    n = room - 2 * ((room + 256) // 257)        # value length whose instances take `room`
    while n + 2 * ((n + 254) // 255) < room:
        n += 1
    assert n + 2 * ((n + 254) // 255) == room
    out = b.build(req, 5, 0, YIADDR, 0, [(43, b"v" * n)])
    assert len(out) == limit and parse(out).overload == 0 and parse(out).get(43) == b"v" * n
    # One byte more (as a separate 1-byte option) does not fit: overload into file.
    out = b.build(req, 5, 0, YIADDR, 0, [(43, b"v" * n), (44, b"w")])
    assert len(out) <= limit
    m = parse(out)
    assert m.overload & 1 and m.get(44) == b"w" and m.get(43) == b"v" * n


def test_reply_never_exceeds_limit_and_drops_trailing_optional_options() -> None:
    req = request()  # no 57: 576 - 28 = 548 bytes
    opts = [(54, b"\x01\x02\x03\x04"), (51, b"\x00\x00\x0e\x10")]
    opts += [(100 + i, bytes([i]) * 120) for i in range(10)]
    opts.append((82, tlv(1, b"c" * 40)))
    out = ReplyBuilder().build(req, 5, 0, YIADDR, 0, opts)
    assert len(out) <= 548
    m = parse(out)
    assert m.message_type == 5 and m.server_id == 0x01020304 and m.lease_time == 3600
    assert m.circuit_id == b"c" * 40
    kept = [c for c in m.codes if 100 <= c < 110]
    assert kept and kept == list(range(100, 100 + len(kept)))     # a prefix: trailing dropped
    for c in kept:
        assert m.get(c) == bytes([c - 100]) * 120
    assert m.overload in (1, 3)
    assert m.codes[-1] == 82


def test_required_options_survive_even_when_listed_last() -> None:
    req = request()
    opts = [(100 + i, b"z" * 200) for i in range(5)] + [(51, b"\x00\x00\x00\x3c"),
                                                       (54, b"\x0a\x00\x00\x01")]
    m = parse(ReplyBuilder().build(req, 5, 0, YIADDR, 0, opts))
    assert m.lease_time == 60 and m.server_id == 0x0A000001


def test_overload_uses_sname_only_after_file() -> None:
    req = request()
    room = options_room(548) - 3               # with overload the options field holds 52 too
    opts = [(43, b"m" * (room - 4)), (44, b"f" * 125), (45, b"s" * 61)]  # 43: two instances
    out = ReplyBuilder().build(req, 5, 0, YIADDR, 0, opts)
    m = parse(out)
    assert m.overload == 3
    assert walk_tlvs(out[108:236]) == [(44, b"f" * 125)]
    assert walk_tlvs(out[44:108]) == [(45, b"s" * 61)]
    assert m.codes == [53, 52, 43, 44, 45]
    opts = opts[:2]
    m = parse(ReplyBuilder().build(req, 5, 0, YIADDR, 0, opts))
    assert m.overload == 1 and m.sname == bytes(64)


def test_builder_buffer_reuse_leaves_no_residue() -> None:
    b = ReplyBuilder()
    req = request(tlv(57, struct.pack("!H", 1500)))
    big = b.build(req, 5, 0, YIADDR, 0, [(43, b"\xaa" * 900)])
    assert len(big) > 900
    small = b.build(request(), 6, 0, 0, 0, [(56, b"no")])
    assert len(small) == 300
    assert reply_tlvs(small) == [(53, b"\x06"), (56, b"no")]
    assert small[247] == 255 and small[248:] == bytes(300 - 248)
    # a previous overloaded reply must not leak into a later plain one's sname/file
    b.build(request(), 5, 0, 0, 0, [(43, b"q" * 300), (44, b"r" * 100)])
    plain = b.build(request(), 5, 0, 0, 0, [])
    assert plain[44:236] == bytes(192)


def test_builder_rejects_bad_codes_and_types() -> None:
    b = ReplyBuilder()
    for code in (0, 52, 255, 300, -1):
        with pytest.raises((ValueError, OverflowError)):
            b.build(request(), 5, 0, 0, 0, [(code, b"x")])
    with pytest.raises(ValueError):
        b.build(request(), 0, 0, 0, 0, [])
    with pytest.raises(TypeError):
        b.build(None, 5, 0, 0, 0, [])  # type: ignore[arg-type]


def test_builder_accepts_bytes_likes_and_iterables() -> None:
    b = ReplyBuilder()
    out = b.build(request(), 5, 0, 0, 0, iter([(12, bytearray(b"host")), (15, memoryview(b"x.y"))]))
    assert reply_tlvs(out) == [(53, b"\x05"), (12, b"host"), (15, b"x.y")]


def test_required_options_too_large_to_fit() -> None:
    ra = b"".join(tlv(9, b"r" * 200) for _ in range(4))     # 808 bytes of option 82
    with pytest.raises(MalformedPacket):
        ReplyBuilder().build(request(), 5, 0, 0, 0, [(82, ra)])


def test_fast_field_lookup_matches_the_generic_path() -> None:
    # Message.__getattribute__ answers hot fields by interned-name identity; a name built at
    # run time (not interned) takes the generic descriptor path and must read the same value.
    m = parse(vector("relayed_request"))
    fields = [
        "op", "htype", "hlen", "hops", "xid", "secs", "flags", "broadcast", "ciaddr", "yiaddr",
        "siaddr", "giaddr", "chaddr", "sname", "file", "overload", "message_type",
        "requested_ip", "server_id", "lease_time", "subnet_selection", "max_message_size",
        "client_id", "prl", "hostname", "vendor_class", "client_fqdn", "relay_agent_info",
        "circuit_id", "remote_id", "link_selection", "server_id_override",
    ]
    for name in fields:
        fresh = "".join(list(name))
        assert fresh is not name or len(name) == 1
        assert getattr(m, fresh) == getattr(m, name), name
        assert getattr(type(m), name).__get__(m) == getattr(m, name), name
    with pytest.raises(AttributeError):
        m.no_such_field  # noqa: B018
    assert callable(m.get) and m.data == vector("relayed_request")
