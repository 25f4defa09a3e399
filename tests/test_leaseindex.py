"""fastdhcp._leaseindex.LeaseIndex against a plain-Python model of the same contract.

The model is a dict address -> (client key, expiry, active) plus the current address of each
client; every query has a one-line model answer, and a hypothesis state machine checks them all
after every step, with full hashes and with 2-bit hashes. With 2-bit hashes most client keys
share a fingerprint: the model then files clients under the index's own fingerprint, which is
exactly what the index promises (what a collision costs the store is tested in test_store.py).
"""

from __future__ import annotations

import importlib.machinery
import random
from array import array

import msgpack
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from fastdhcp import _leaseindex
from fastdhcp._leaseindex import LeaseIndex
from fastdhcp.leases import Lease, LeaseState

EXP_MAX = 0xFFFFFFFF


def clamp(expires: int) -> int:
    return min(max(expires, 0), EXP_MAX - 1)


class Model:
    def __init__(self, idx: LeaseIndex) -> None:
        self.fp = idx.fingerprint
        self.recs: dict[int, tuple[bytes, int, bool]] = {}
        self.cur: dict[tuple[int, int], int] = {}

    def put(self, ip: int, key: bytes, expires: int, active: bool) -> None:
        old = self.recs.get(ip)
        if old is not None and self.fp(old[0]) != self.fp(key):
            if self.cur.get(self.fp(old[0])) == ip:
                del self.cur[self.fp(old[0])]
        self.recs[ip] = (key, expires, active)
        self.cur[self.fp(key)] = ip

    def remove(self, ip: int) -> None:
        key = self.recs.pop(ip)[0]
        if self.cur.get(self.fp(key)) == ip:
            del self.cur[self.fp(key)]

    def client(self, key: bytes) -> int | None:
        return self.cur.get(self.fp(key))

    def due(self, now: int, limit: int, skip: set[int]) -> list[int]:
        live = sorted(
            (clamp(e), ip) for ip, (_, e, a) in self.recs.items() if a and clamp(e) <= clamp(now)
        )
        return [ip for _, ip in live if ip not in skip][:limit]

    def active(self) -> list[int]:
        return sorted(ip for ip, (_, _, a) in self.recs.items() if a)


def test_module_is_compiled() -> None:
    assert _leaseindex.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


KEYS = st.binary(min_size=1, max_size=12)
IPS = st.integers(1, 3000) | st.integers(EXP_MAX - 5, EXP_MAX)
TIMES = st.integers(-5, 60) | st.sampled_from([0, 1, EXP_MAX, EXP_MAX + 1, 1 << 70, -(1 << 70)])


class IndexMachine(RuleBasedStateMachine):
    @initialize(bits=st.sampled_from([64, 2]))
    def setup(self, bits: int) -> None:
        self.idx = LeaseIndex(hash_bits=bits)
        self.model = Model(self.idx)
        self.keys: list[bytes] = [b"\x01a"]

    @rule(ip=IPS, key=KEYS, expires=TIMES, active=st.booleans(), reuse=st.booleans())
    def put(self, ip: int, key: bytes, expires: int, active: bool, reuse: bool) -> None:
        if reuse:
            key = self.keys[ip % len(self.keys)]
        else:
            self.keys.append(key)
        self.idx.put(ip, key, expires, active)
        self.model.put(ip, key, expires, active)

    @rule(n=st.integers(1, 200), base=st.integers(1, 100_000), expires=TIMES)
    def bulk(self, n: int, base: int, expires: int) -> None:
        # Enough records to make both tables grow, some of them renewals of earlier ones.
        leases = [
            Lease(base + i, b"k%d" % (i % 50), b"", 1, i % 4, 0, expires + i % 7)
            for i in range(n)
        ]
        self.idx.apply(leases)
        for x in leases:
            self.model.put(x.ip, x.client_key, x.expires, x.state in (0, 1))

    @precondition(lambda self: self.model.recs)
    @rule(pick=st.randoms(use_true_random=False))
    def remove(self, pick: random.Random) -> None:
        ip = pick.choice(sorted(self.model.recs))
        assert self.idx.remove(ip)
        self.model.remove(ip)
        assert not self.idx.remove(ip)

    @rule(now=TIMES, limit=st.integers(0, 30), skip_mod=st.integers(0, 3))
    def due(self, now: int, limit: int, skip_mod: int) -> None:
        skip = {ip for ip in self.model.recs if skip_mod and ip % 4 == skip_mod}
        assert self.idx.due(now, limit, skip) == self.model.due(now, limit, skip)

    @invariant()
    def agrees(self) -> None:
        if not hasattr(self, "idx"):
            return
        m = self.model
        assert len(self.idx) == len(m.recs)
        assert self.idx.active_count == len(m.active())
        assert list(self.idx.active()) == m.active()
        for key in self.keys[-5:] + [b"\x01a", b"absent"]:
            assert self.idx.client(key) == m.client(key)
        for ip in list(m.recs)[:20]:
            assert ip in self.idx
            _, e, a = m.recs[ip]
            assert self.idx.expiry(ip) == (clamp(e) if a else None)
        live = [clamp(e) for _, e, a in m.recs.values() if a]
        assert self.idx.next_expiry() == (min(live) if live else None)
        assert self.idx.heap_size <= 2 * self.idx.active_count + 4096 + 1


TestIndexMachine = IndexMachine.TestCase
TestIndexMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


def test_many_records_grow_shrink_and_stay_consistent() -> None:
    # Past several table doublings, then most records removed (backward-shift deletion runs
    # through long probe sequences), with renewals churning the heap into compactions.
    idx = LeaseIndex()
    rng = random.Random(5)
    model: dict[int, tuple[bytes, int]] = {}
    for i in range(1, 60_001):
        key = rng.getrandbits(48).to_bytes(6, "big")
        idx.put(i * 7, key, 1000 + i, True)
        model[i * 7] = (key, 1000 + i)
    for _ in range(5):  # renewals: every record gets a new expiry, stale heap entries pile up
        for ip, (key, e) in model.items():
            idx.put(ip, key, e + 50_000, True)
            model[ip] = (key, e + 50_000)
    assert idx.heap_size <= 2 * len(model) + 4096 + 1
    for ip in rng.sample(sorted(model), 50_000):
        assert idx.remove(ip)
        del model[ip]
    assert len(idx) == len(model) and list(idx.active()) == sorted(model)
    for ip, (key, e) in model.items():
        assert idx.client(key) == ip
        assert idx.expiry(ip) == e
    first = sorted((e, ip) for ip, (_, e) in model.items())[:100]
    assert idx.due(1 << 40, 100) == [ip for _, ip in first]


def _record(state: int, expires: int, client: bytes, issued: int = 5, subnet: int = 1) -> bytes:
    return msgpack.packb(
        (state, expires, issued, subnet, client, b"\x00" * 6, "host", b""), use_bin_type=True
    )


@pytest.mark.parametrize(
    "expires", [0, 5, 127, 128, 255, 256, 65535, 65536, 2**31, 2**32 - 1, 2**32, 2**63, -1, -200]
)
@pytest.mark.parametrize("state", list(LeaseState))
@pytest.mark.parametrize("klen", [0, 1, 31, 255, 256, 70_000])
def test_load_reads_every_int_and_bin_width_like_put(expires: int, state: int, klen: int) -> None:
    client = bytes(range(256)) * (klen // 256) + bytes(range(klen % 256))
    a, b = LeaseIndex(), LeaseIndex()
    rec = _record(state, expires, client)
    n, last, odd = a.load(iter([((0x0A000001).to_bytes(4, "big"), rec)]), 10)
    assert (n, last, odd) == (1, (0x0A000001).to_bytes(4, "big"), [])
    b.put(0x0A000001, client, expires, state in (0, 1))
    assert a.client(client) == b.client(client) == 0x0A000001
    assert a.expiry(0x0A000001) == b.expiry(0x0A000001)
    assert list(a.active()) == list(b.active())


def test_load_returns_what_it_cannot_read_and_stops_at_limit() -> None:
    good = [((i).to_bytes(4, "big"), _record(0, 100 + i, b"c%d" % i)) for i in range(1, 6)]
    odd = [
        (b"\x00\x00\x00\x00", _record(0, 1, b"zero")),  # 0.0.0.0 is never leased
        ((7).to_bytes(5, "big"), _record(0, 1, b"long key")),
        ((8).to_bytes(4, "big"), b""),
        ((9).to_bytes(4, "big"), msgpack.packb([0, 1, 2])),  # another array length
        ((10).to_bytes(4, "big"), msgpack.packb((0, 1.5, 2, 3, b"k", b"", "", b""))),
        ((11).to_bytes(4, "big"), msgpack.packb((0, 1, 2, 3, "str-key", b"", "", b""))),
        ((12).to_bytes(4, "big"), _record(0, 1, b"truncated")[:9]),
        ((13).to_bytes(4, "big"), bytearray(_record(0, 1, b"not bytes"))),
    ]
    idx = LeaseIndex()
    n, last, back = idx.load(iter(good + odd), 100)
    assert n == len(good) + len(odd) and back == odd
    assert len(idx) == 5 and list(idx.active()) == [1, 2, 3, 4, 5]
    idx2 = LeaseIndex()
    n, last, back = idx2.load(iter(good), 3)
    assert (n, last, back, len(idx2)) == (3, (3).to_bytes(4, "big"), [], 3)


def test_load_keeps_a_clients_active_then_newest_then_highest_record() -> None:
    # (address, state, issued) of one client's records, in address order; the expected winner.
    cases = [
        ([(1, 2, 50), (2, 0, 10), (3, 3, 90)], 2),  # the active one, however old
        ([(1, 3, 50), (2, 2, 70), (3, 3, 60)], 2),  # none active: newest issued
        ([(1, 3, 70), (2, 2, 70), (3, 3, 60)], 2),  # tie on issued: highest address
        ([(1, 0, 70), (2, 1, 10)], 1),  # both active (declined counts): newest issued
        ([(5, 2, 2**40), (6, 2, 2**33)], 6),  # issued past 32 bits: clamped, tie, highest
    ]
    for recs, want in cases:
        pairs = [(ip.to_bytes(4, "big"), _record(state, 100, b"C", issued=iss))
                 for ip, state, iss in recs]
        idx = LeaseIndex()
        assert idx.load(iter(pairs), 100)[2] == []
        assert idx.client(b"C") == want, recs
        one = LeaseIndex()
        for ip, state, iss in recs:
            one.put_loaded(ip, b"C", 100, iss, state in (0, 1))
        assert one.client(b"C") == want, recs
    idx = LeaseIndex()
    idx.put_loaded(1, b"C", 100, 5, True)
    with pytest.raises(ValueError, match="loaded twice"):
        idx.put_loaded(1, b"D", 100, 5, True)


def test_bad_arguments() -> None:
    idx = LeaseIndex()
    for ip in (0, -1, 1 << 32):
        with pytest.raises(ValueError):
            idx.put(ip, b"k", 1, True)
        assert not idx.remove(ip) and ip not in idx and idx.expiry(ip) is None
    with pytest.raises(TypeError):
        idx.put(1, None, 1, True)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        LeaseIndex(hash_bits=0)
    assert idx.due(10, 0) == [] and idx.due(-1, 5) == [] and idx.next_expiry() is None
    assert idx.active() == array("I")
    idx.put(1, b"k", -7, True)
    assert idx.due(-1, 5) == [1] and idx.expiry(1) == 0 and idx.next_expiry() == 0
