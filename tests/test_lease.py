"""The compiled lease record (fastdhcp._lease): its value semantics, and its LMDB record codec
against the layout main's encoder wrote (msgpack, built here independently of the codec)."""

from __future__ import annotations

import copy
import pickle

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastdhcp._lease import decode_record, encode_record, record_key, record_state
from fastdhcp.leases import ACTIVE_STATES, Lease, LeaseState, tombstone

IP = 0xC0A80101
ARGS = (IP, b"\x01abcdef", b"abcdef", 7, LeaseState.DEFAULT, 100, 200, "h", b"\x01\x01x")


def _main_record(lease: Lease) -> bytes:
    """The value the store wrote before the codec existed: schema 1's msgpack array, packed by
    msgpack itself with the store's settings."""
    return msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape").pack(
        (lease.state, lease.expires, lease.issued, lease.subnet_id, lease.client_key,
         lease.hw_address, lease.hostname, lease.relay_info))


def test_fields_defaults_keywords_and_repr() -> None:
    a = Lease(*ARGS[:7])
    assert (a.hostname, a.relay_info) == ("", b"")
    b = Lease(ip=IP, client_key=b"\x01abcdef", hw_address=b"abcdef", subnet_id=7, state=0,
              issued=100, expires=200, hostname="h", relay_info=b"\x01\x01x")
    assert b.astuple() == (IP, b"\x01abcdef", b"abcdef", 7, 0, 100, 200, "h", b"\x01\x01x",
                           False, False)
    assert repr(b) == ("Lease(ip=3232235777, client_key=b'\\x01abcdef', hw_address=b'abcdef', "
                       "subnet_id=7, state=0, issued=100, expires=200, hostname='h', "
                       "relay_info=b'\\x01\\x01x', fqdn_fwd=False, fqdn_rev=False)")
    assert Lease.__match_args__ == ("ip", "client_key", "hw_address", "subnet_id", "state",
                                    "issued", "expires", "hostname", "relay_info", "fqdn_fwd",
                                    "fqdn_rev")
    with pytest.raises(TypeError):
        Lease(IP, b"k", b"", 1, 0, 1)  # type: ignore[call-arg]


def test_equality_by_fields_unhashable_read_only_and_pickled_by_value() -> None:
    a, b = Lease(*ARGS), Lease(*ARGS)
    assert a == b and not a != b and a is not b
    for i in range(9):
        other = list(ARGS)
        other[i] = 99 if isinstance(ARGS[i], int) else type(ARGS[i])()
        assert a != Lease(*other), i
    assert a != ARGS and (a == ARGS) is False  # another type: not equal (NotImplemented)
    with pytest.raises(TypeError):
        hash(a)
    for name in Lease.__match_args__:
        with pytest.raises(AttributeError):
            setattr(b, name, getattr(a, name))
        with pytest.raises(AttributeError):
            delattr(b, name)
    assert Lease(*ARGS[:7], "other") != a
    for c in (pickle.loads(pickle.dumps(a)), copy.copy(a), copy.deepcopy(a)):
        assert type(c) is Lease and c == a and c is not a


def test_active_is_the_active_states() -> None:
    for state in LeaseState:
        assert Lease(*ARGS[:4], state, 1, 2).active == (state in ACTIVE_STATES), state
    dead = tombstone(Lease(*ARGS))
    assert (dead.state, dead.ip, dead.client_key, dead.active) == (
        LeaseState.DELETED, IP, ARGS[1], False)


def test_a_record_as_main_wrote_it_decodes_and_reencodes_byte_for_byte() -> None:
    # Spelled out byte by byte: fixarray 8, state, expires (uint32), issued (uint8), subnet
    # (fixint), client key and hw address (bin 8), hostname (fixstr), relay info (bin 8).
    lease = Lease(IP, b"\x01\xaa\xbb", b"\xaa\xbb", 7, LeaseState.DECLINED, 200,
                  1_700_000_000, "host1", b"\x01\x02")
    raw = (b"\x98\x01\xce" + (1_700_000_000).to_bytes(4, "big") + b"\xcc\xc8\x07"
           + b"\xc4\x03\x01\xaa\xbb" + b"\xc4\x02\xaa\xbb" + b"\xa5host1" + b"\xc4\x02\x01\x02")
    assert _main_record(lease) == raw
    assert encode_record(lease) == raw
    back = decode_record(record_key(IP), raw)
    assert type(back) is Lease and back == lease
    assert record_key(IP) == IP.to_bytes(4, "big") and record_state(raw) == 1


_INT = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63,
                     -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1]),
)
_BYTES = st.one_of(st.binary(max_size=300), st.sampled_from([b"x" * 65535, b"y" * 65536]))
_TEXT = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["a" * 31, "a" * 32, "b" * 255, "c" * 256, "d" * 65536, "\udcff\udcfe"]),
)


@settings(max_examples=400, deadline=None)
@given(ip=st.integers(1, 2**32 - 1), ck=_BYTES, hw=_BYTES, subnet=_INT,
       state=st.one_of(st.sampled_from(list(LeaseState)), _INT), issued=_INT, expires=_INT,
       host=_TEXT, relay=_BYTES)
def test_the_codec_writes_mains_bytes_and_reads_them_back(
        ip: int, ck: bytes, hw: bytes, subnet: int, state: int, issued: int, expires: int,
        host: str, relay: bytes) -> None:
    lease = Lease(ip, ck, hw, subnet, state, issued, expires, host, relay)
    raw = _main_record(lease)
    assert encode_record(lease) == raw
    back = decode_record(ip.to_bytes(4, "big"), raw)
    assert back == lease
    assert type(back.state) is int and type(back.ip) is int


@pytest.mark.parametrize("fields", [
    (True, 1, 2, 3, b"k", b"", "", b""),  # a bool packs as one, not as an int
    (0, 1.5, 2, 3, b"k", b"", "", b""),
    (0, 1, 2, 3, bytearray(b"k"), b"", "", b""),
    (0, 1, 2, None, b"k", b"", None, b""),
    (0, 2**64 - 1, -(2**63), 3, b"k", b"", "", b""),
])
def test_other_field_types_are_written_as_msgpack_writes_them(fields: tuple) -> None:
    state, expires, issued, subnet, ck, hw, host, relay = fields
    lease = Lease(IP, ck, hw, subnet, state, issued, expires, host, relay)
    raw = _main_record(lease)
    assert encode_record(lease) == raw
    assert decode_record(record_key(IP), raw).astuple() == (
        IP, bytes(ck) if isinstance(ck, bytearray) else ck, hw, subnet, state, issued,
        expires, host, relay, False, False)


def test_records_in_other_forms_decode_as_msgpack_reads_them() -> None:
    key = record_key(IP)
    as_list = msgpack.packb([0, 1, 2, 3, "str-key", b"", "h", b""], use_bin_type=True)
    assert record_state(as_list) == 0
    assert decode_record(key, as_list).client_key == "str-key"
    no_utf8 = _main_record(Lease(IP, b"k", b"", 1, 0, 1, 2, "\udcff"))
    assert decode_record(key, no_utf8).hostname == "\udcff"
    assert decode_record(b"\x00\x00\x00\x00\x07", _main_record(Lease(*ARGS))).ip == 7
    assert record_state(b"\x93\x00\x01\x02") is None
    for damaged in (b"", msgpack.packb([0, 1, 2]), _main_record(Lease(*ARGS))[:-1],
                    _main_record(Lease(*ARGS)) + b"\x00"):
        with pytest.raises((ValueError, TypeError, msgpack.ExtraData)):
            decode_record(key, damaged)
    with pytest.raises(OverflowError):
        record_key(2**32)
