"""The lease record's DNS update flags (fqdn_fwd, fqdn_rev): written as a ninth element only
when set, read back by the C path and the msgpack fallback alike, and every record without
them (the old eight-element form) still reads with both flags False."""

from __future__ import annotations

import msgpack
import pytest

from fastdhcp._lease import Lease, decode_record, encode_record, record_key, record_state
from fastdhcp.leases import LeaseState

IP = 0xC0A80101
KEY = record_key(IP)


def _lease(fwd: bool, rev: bool, host: str = "host1.example.net.") -> Lease:
    return Lease(IP, b"\x01\xaa\xbb\xcc\xdd\xee\xff", b"\xaa\xbb\xcc\xdd\xee\xff", 1,
                 int(LeaseState.DEFAULT), 100, 3700, host, b"", fqdn_fwd=fwd, fqdn_rev=rev)


@pytest.mark.parametrize(("fwd", "rev", "flags"),
                         [(True, True, 3), (True, False, 1), (False, True, 2)])
def test_flags_round_trip_as_a_ninth_element(fwd: bool, rev: bool, flags: int) -> None:
    lease = _lease(fwd, rev)
    raw = encode_record(lease)
    # exactly what msgpack writes for the nine fields: the fallback and C agree byte for byte
    assert raw == msgpack.packb((0, 3700, 100, 1, lease.client_key, lease.hw_address,
                                 lease.hostname, b"", flags), use_bin_type=True)
    back = decode_record(KEY, raw)
    assert back == lease
    assert (back.fqdn_fwd, back.fqdn_rev) == (fwd, rev)
    assert record_state(raw) == int(LeaseState.DEFAULT)


def test_no_flags_keeps_the_eight_element_record() -> None:
    lease = _lease(False, False)
    raw = encode_record(lease)
    assert raw[0] == 0x98
    assert raw == msgpack.packb((0, 3700, 100, 1, lease.client_key, lease.hw_address,
                                 lease.hostname, b""), use_bin_type=True)


def test_an_old_record_reads_with_both_flags_false() -> None:
    old = msgpack.packb([2, 50, 40, 3, b"\x01k", b"k", "pc.example.", b"\x01\x02ab"],
                        use_bin_type=True)
    lease = decode_record(KEY, old)
    assert (lease.state, lease.hostname, lease.relay_info) == (2, "pc.example.", b"\x01\x02ab")
    assert (lease.fqdn_fwd, lease.fqdn_rev) == (False, False)


def test_the_fallback_writes_and_reads_the_flags() -> None:
    # a float expiry sends the record through msgpack (the codec's fallback)
    lease = Lease(IP, b"k", b"", 1, 0, 1, 2.5, "h.", b"", fqdn_fwd=True, fqdn_rev=False)
    raw = encode_record(lease)
    assert msgpack.unpackb(raw)[-1] == 1
    back = decode_record(KEY, raw)
    assert (back.expires, back.fqdn_fwd, back.fqdn_rev) == (2.5, True, False)


@pytest.mark.parametrize("bad", [4, -1, "x"])
def test_bad_flags_are_refused(bad: object) -> None:
    raw = msgpack.packb([0, 1, 2, 3, b"k", b"", "", b"", bad], use_bin_type=True)
    with pytest.raises(ValueError):
        decode_record(KEY, raw)


def test_the_flags_take_part_in_equality_and_pickling() -> None:
    import pickle
    a, b = _lease(True, True), _lease(True, False)
    assert a != b
    assert pickle.loads(pickle.dumps(a)) == a
    assert pickle.loads(pickle.dumps(a)).fqdn_rev is True
