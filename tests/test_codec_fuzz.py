"""fastdhcp._codec under hostile input (hypothesis).

Every datagram either parses or raises ``MalformedPacket``; nothing else escapes, no getter of
an accepted message raises, and accept/reject plus the decoded options agree with a small
pure-Python model of the contract in docs/internals.md (``model_parse`` below). Replies built
from random option lists always parse back to what was asked.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fastdhcp._codec import Message, ReplyBuilder, parse
from fastdhcp.errors import MalformedPacket
from tests.vectors import names, vector

COOKIE = b"\x63\x82\x53\x63"
VECTORS = [vector(n) for n in names()]
FIXED = {53: 1, 50: 4, 54: 4, 118: 4, 51: 4, 57: 2}
GETTERS = [
    "op", "htype", "hlen", "hops", "xid", "secs", "flags", "broadcast", "ciaddr", "yiaddr",
    "siaddr", "giaddr", "chaddr", "sname", "file", "data", "codes", "options", "message_type",
    "requested_ip", "server_id", "lease_time", "subnet_selection", "max_message_size",
    "client_id", "prl", "hostname", "vendor_class", "client_fqdn", "relay_agent_info",
    "circuit_id", "remote_id", "link_selection", "server_id_override", "overload",
]

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Reject(Exception):
    pass


def _area(data: bytes, start: int, end: int, main: bool, out: list) -> int:
    """Model of one options field; returns the overload value found (main field only)."""
    overload = 0
    i = start
    while i < end:
        code = data[i]
        if code == 0:
            i += 1
            continue
        if code == 255:
            return overload
        if i + 1 >= end or i + 2 + data[i + 1] > end:
            raise Reject("overrun")
        value = data[i + 2 : i + 2 + data[i + 1]]
        if code == 52:
            if not main or overload or len(value) != 1 or value[0] not in (1, 2, 3):
                raise Reject("overload")
            overload = value[0]
        out.append((code, value))
        i += 2 + len(value)
    if main:
        raise Reject("no end")
    return overload


def model_parse(data: bytes) -> dict[int, bytes]:
    """The contract, written plainly: the joined options of an acceptable datagram."""
    if not 240 <= len(data) <= 65507 or data[236:240] != COOKIE or data[2] > 16:
        raise Reject("header")
    instances: list[tuple[int, bytes]] = []
    overload = _area(data, 240, len(data), True, instances)
    if overload & 1:
        _area(data, 108, 236, False, instances)
    if overload & 2:
        _area(data, 44, 108, False, instances)
    opts: dict[int, bytes] = {}
    for code, value in instances:
        opts[code] = opts.get(code, b"") + value
    for code, size in FIXED.items():
        if code in opts and len(opts[code]) != size:
            raise Reject("fixed")
    if 57 in opts and struct.unpack("!H", opts[57])[0] < 576:
        raise Reject("57")
    ra = opts.get(82, b"")
    i = 0
    while i < len(ra):
        if i + 2 > len(ra) or i + 2 + ra[i + 1] > len(ra):
            raise Reject("82")
        i += 2 + ra[i + 1]
    return opts


def check(data: bytes) -> None:
    try:
        want = model_parse(data)
    except Reject:
        want = None
    try:
        m = parse(data)
    except MalformedPacket as e:
        assert isinstance(e.reason, str) and e.reason
        assert want is None, f"rejected a packet the model accepts: {e.reason}"
        return
    assert want is not None, "accepted a packet the model rejects"
    assert isinstance(m, Message)
    for name in GETTERS:
        getattr(m, name)
    repr(m)
    assert m.options == want
    for code in (-1, 0, 255, 256, 1, 12, 43, 50, 51, 53, 54, 55, 57, 61, 82, 118, *want):
        assert m.get(code) == want.get(code)


def header(hlen: int = 6) -> bytes:
    return bytes([1, 1, hlen, 0]) + bytes(232) + COOKIE


@FUZZ
@given(st.binary(max_size=700))
@example(b"")
@example(header())
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.integers(0, 20), st.binary(max_size=600))
def test_arbitrary_options_after_a_valid_header(hlen: int, tail: bytes) -> None:
    check(header(hlen) + tail)


def _tlv(code: int, value: bytes, claimed: int) -> bytes:
    """One option; pad/end are one byte; a third of the time the length byte lies."""
    if code in (0, 255):
        return bytes([code])
    length = min(claimed, 255) if claimed > 12 else len(value)
    return bytes([code, length]) + value


tlv = st.builds(
    _tlv,
    st.sampled_from([0, 1, 12, 43, 50, 51, 52, 53, 54, 55, 57, 61, 82, 118, 255]),
    st.binary(max_size=12),
    st.integers(0, 300),
)


@FUZZ
@given(
    st.lists(tlv, max_size=12).map(b"".join),
    st.lists(tlv, max_size=6).map(b"".join),
    st.lists(tlv, max_size=4).map(b"".join),
    st.sampled_from([b"", b"\x34\x01\x01", b"\x34\x01\x02", b"\x34\x01\x03", b"\x34\x01\x04"]),
    st.booleans(),
)
def test_structured_tlvs_in_every_field(
    main: bytes, file: bytes, sname: bytes, overload: bytes, end: bool
) -> None:
    data = bytearray(header())
    data[108 : 108 + min(len(file), 128)] = file[:128]
    data[44 : 44 + min(len(sname), 64)] = sname[:64]
    check(bytes(data) + overload + main + (b"\xff" if end else b""))


@FUZZ
@given(
    st.sampled_from(VECTORS),
    st.lists(st.tuples(st.integers(0, 700), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 700),
    st.sampled_from(["flip", "truncate", "insert", "delete"]),
)
def test_mutated_vectors(base: bytes, edits: list[tuple[int, int]], cut: int, how: str) -> None:
    data = bytearray(base)
    for pos, byte in edits:
        if how == "insert":
            data.insert(pos % (len(data) + 1), byte)
        elif how == "delete" and data:
            del data[pos % len(data)]
        else:
            data[pos % len(data)] = byte
    if how == "truncate":
        data = data[: cut % (len(data) + 1)]
    check(bytes(data))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([None, 576, 700, 1500]),
    st.lists(
        st.tuples(
            st.integers(1, 254).filter(lambda c: c not in (52, 53)),
            st.binary(max_size=700),
        ),
        max_size=10,
        unique_by=lambda t: t[0],
    ),
)
def test_builder_output_always_parses_back(mms: int | None, options: list) -> None:
    # Keep the fixed-size options well-formed: parse() checks them by contract.
    options = [(c, v) for c, v in options if c not in FIXED and c != 82]
    req = parse(header() + (b"" if mms is None else b"\x39\x02" + struct.pack("!H", mms))
                + b"\x35\x01\x03\xff")
    out = ReplyBuilder().build(req, 5, 0, 0, 0, options)
    assert 300 <= len(out) <= max(576, mms or 576) - 28
    m = parse(out)
    assert m.message_type == 5 and m.codes[0] == 53
    got = {c: m.get(c) for c, _ in options if m.get(c) is not None}
    assert got == {c: v for c, v in options if c in got}
    kept = [c for c, _ in options if c in got]
    assert [c for c in m.codes if c not in (52, 53)] == kept
    if not m.overload:
        assert m.sname == bytes(64) and m.file == bytes(128)
