"""Tests of fastdhcp._bitmap.PoolBitmap against a Python set model (the oracle).

The model holds the set of free offsets and the next-fit cursor, and predicts exactly which address
each allocate returns: the hint when it is in the pool and free (cursor unchanged), else the
smallest free offset at or after the cursor, else the smallest free offset (wrap), with the cursor
then moving just past it.
"""

from __future__ import annotations

import importlib.machinery
import random
import sys
import tracemalloc
from array import array

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import fastdhcp._bitmap as bitmap_mod
from fastdhcp._bitmap import PoolBitmap
from fastdhcp.errors import (
    AddressNotInPool,
    AllocationError,
    DoubleFree,
    PoolExhausted,
)

MAX_ADDR = 2**32 - 1
BIG = 2**24


def ip(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


class Model:
    """Independent oracle: free offsets as a set, plus the next-fit cursor."""

    def __init__(self, first: int, size: int, free: set[int] | None = None) -> None:
        self.first = first
        self.size = size
        self.free = set(range(size)) if free is None else set(free)
        self.cursor = 0

    def next_fit(self) -> int | None:
        if not self.free:
            return None
        ahead = [o for o in self.free if o >= self.cursor]
        return min(ahead) if ahead else min(self.free)

    def allocate(self, hint: int = 0) -> int | None:
        """Address the allocator must return, or None for PoolExhausted; updates the model."""
        off = hint - self.first
        if hint != 0 and 0 <= off < self.size and off in self.free:
            self.free.remove(off)
            return hint
        off2 = self.next_fit()
        if off2 is None:
            return None
        self.free.remove(off2)
        self.cursor = (off2 + 1) % self.size
        return self.first + off2


def assert_same(pool: PoolBitmap, model: Model, *, every_address: bool) -> None:
    """Pool state equals the model: counts, and every model-free address free in the pool (with
    equal counts that makes the free sets equal); optionally every address checked one by one."""
    assert pool.size == model.size
    assert pool.free_count == len(model.free)
    assert pool.used == model.size - len(model.free)
    for off in model.free:
        assert pool.is_free(model.first + off)
    if every_address:
        for off in range(model.size):
            assert pool.is_free(model.first + off) == (off in model.free)


# ---- the state machine ----------------------------------------------------------------------

# Sizes at the edges of every level of the 64-ary tree (64 = one word, 4096 = one level-1 word,
# 262144 = one level-2 word), and ordinary ones.
SMALL_SIZES = st.one_of(
    st.sampled_from([1, 2, 3, 63, 64, 65, 127, 128, 129, 191, 255, 256, 640]),
    st.integers(1, 700),
)
LARGE_SIZES = st.one_of(
    st.sampled_from([4095, 4096, 4097, 8191, 262143, 262144, 262145]),
    st.integers(4098, 300_000),
)


class PoolMachine(RuleBasedStateMachine):
    """Random sequences of allocate / free / reserve / reserve_many against the Model."""

    pool: PoolBitmap
    model: Model

    @initialize(data=st.data())
    def make_pool(self, data: st.DataObject) -> None:
        large = data.draw(st.booleans(), label="large")
        size = data.draw(LARGE_SIZES if large else SMALL_SIZES, label="size")
        first = data.draw(
            st.one_of(
                st.just(0),
                st.integers(0, 2**26).map(lambda x: x * 64),  # aligned to a word
                st.integers(1, MAX_ADDR - size + 1),
                st.integers(0, 70).map(lambda k: MAX_ADDR - size + 1 - k),  # ends near 2^32-1
            ).filter(lambda f: 0 <= f <= MAX_ADDR - size + 1),
            label="first",
        )
        self.pool = PoolBitmap(first, first + size - 1)
        if not large:
            if data.draw(st.booleans(), label="start all free"):
                self.model = Model(first, size)
            else:
                used = data.draw(st.sets(st.integers(0, size - 1)), label="used")
                n = self.pool.reserve_many(array("I", (first + o for o in used)))
                assert n == len(used)
                self.model = Model(first, size, set(range(size)) - used)
        else:
            # Nearly full: a few free addresses scattered over every level of the tree, the
            # case a bitmap search is slowest at.
            edges = [0, size - 1, 63, 64, 4095, 4096, 262143, 262144, size // 2]
            free = set(
                data.draw(st.lists(st.integers(0, size - 1), max_size=150), label="free")
            ) | {e for e in edges if e < size and data.draw(st.booleans(), label=f"edge {e}")}
            everything = array("I", range(first, first + size))
            assert self.pool.reserve_many(everything) == size
            assert self.pool.free_count == 0
            for o in free:
                self.pool.free(first + o)
            self.model = Model(first, size, free)

    def addrs(self) -> st.SearchStrategy[int]:
        """Addresses to use: free ones, any in the pool, boundaries, near the cursor, just
        outside the pool and the ends of the address space."""
        m = self.model
        last = m.first + m.size - 1
        cursor = m.cursor
        options = [
            st.integers(m.first, last),
            st.sampled_from([m.first, last, m.first + m.size // 2]),
            st.integers(-2, 2).map(lambda d: m.first + (cursor + d) % m.size),
        ]
        if m.free:
            options.append(st.sampled_from(sorted(m.free)).map(lambda o: m.first + o))
        outs = [a for a in (m.first - 1, last + 1, 0, MAX_ADDR) if 0 <= a <= MAX_ADDR]
        outs = [a for a in outs if not m.first <= a <= last]
        if outs:
            options.append(st.sampled_from(outs))
        return st.one_of(options)

    def pick(self, data: st.DataObject) -> int:
        return data.draw(self.addrs(), label="addr")

    @rule()
    def allocate(self) -> None:
        want = self.model.allocate()
        if want is None:
            with pytest.raises(PoolExhausted):
                self.pool.allocate()
        else:
            assert self.pool.allocate() == want

    @rule(data=st.data())
    def allocate_hint(self, data: st.DataObject) -> None:
        hint = self.pick(data)
        want = self.model.allocate(hint)
        if want is None:
            with pytest.raises(PoolExhausted):
                self.pool.allocate(hint)
        else:
            assert self.pool.allocate(hint) == want

    @rule(data=st.data())
    def free(self, data: st.DataObject) -> None:
        addr = self.pick(data)
        off = addr - self.model.first
        if not 0 <= off < self.model.size:
            with pytest.raises(AddressNotInPool):
                self.pool.free(addr)
        elif off in self.model.free:
            with pytest.raises(DoubleFree):
                self.pool.free(addr)
        else:
            self.pool.free(addr)
            self.model.free.add(off)

    @rule(data=st.data())
    def reserve(self, data: st.DataObject) -> None:
        addr = self.pick(data)
        off = addr - self.model.first
        if not 0 <= off < self.model.size:
            with pytest.raises(AddressNotInPool):
                self.pool.reserve(addr)
        else:
            self.pool.reserve(addr)
            self.model.free.discard(off)

    @rule(data=st.data())
    def reserve_many(self, data: st.DataObject) -> None:
        addrs = data.draw(st.lists(self.addrs(), max_size=40), label="addrs")
        newly = {a - self.model.first for a in addrs} & self.model.free
        assert self.pool.reserve_many(array("I", addrs)) == len(newly)
        self.model.free -= newly

    @rule(data=st.data())
    def query(self, data: st.DataObject) -> None:
        addr = self.pick(data)
        off = addr - self.model.first
        inside = 0 <= off < self.model.size
        assert self.pool.contains(addr) == inside
        if inside:
            assert self.pool.is_free(addr) == (off in self.model.free)
        else:
            with pytest.raises(AddressNotInPool):
                self.pool.is_free(addr)

    @invariant()
    def counts_match(self) -> None:
        assert self.pool.free_count == len(self.model.free)
        assert self.pool.used == self.model.size - len(self.model.free)

    def teardown(self) -> None:
        if not hasattr(self, "model"):
            return
        assert_same(self.pool, self.model, every_address=self.model.size <= 1000)
        # Drain: every remaining free address comes out in the model's next-fit order, then
        # the pool is exhausted. This walks every summary path that is still set.
        while (want := self.model.allocate()) is not None:
            assert self.pool.allocate() == want
        with pytest.raises(PoolExhausted):
            self.pool.allocate()
        assert self.pool.free_count == 0


PoolMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestPoolMachine = PoolMachine.TestCase


# ---- fixed scenarios ---------------------------------------------------------------------------


def test_module_is_compiled() -> None:
    assert bitmap_mod.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    assert not hasattr(PoolBitmap(1, 1), "__dict__")


def test_errors_are_the_shared_hierarchy() -> None:
    for exc in (PoolExhausted, DoubleFree, AddressNotInPool):
        assert issubclass(exc, AllocationError)


@pytest.mark.parametrize(
    ("first", "last"),
    [(5, 4), (-1, 10), (0, 2**32), (0, BIG), (10, 10 + BIG), (2**40, 2**40 + 1)],
)
def test_bad_ranges_are_refused(first: int, last: int) -> None:
    with pytest.raises(ValueError):
        PoolBitmap(first, last)


@pytest.mark.parametrize("bad", ["10.0.0.1", 1.5, None])
def test_non_integer_bounds_are_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        PoolBitmap(bad, 10)  # type: ignore[arg-type]


def test_properties_and_repr() -> None:
    p = PoolBitmap(ip("10.0.0.10"), ip("10.0.0.20"))
    assert (p.first, p.last, p.size, p.used, p.free_count) == (
        ip("10.0.0.10"),
        ip("10.0.0.20"),
        11,
        0,
        11,
    )
    p.reserve(ip("10.0.0.12"))
    assert (p.used, p.free_count) == (1, 10)
    assert "10.0.0.10 - 10.0.0.20" in repr(p)


def test_out_of_pool_addresses_raise() -> None:
    p = PoolBitmap(ip("10.0.0.10"), ip("10.0.0.20"))
    for addr in (ip("10.0.0.9"), ip("10.0.0.21"), 0, MAX_ADDR, -1, 2**32, 2**70, -(2**70)):
        assert not p.contains(addr)
        for op in (p.reserve, p.free, p.is_free):
            with pytest.raises(AddressNotInPool):
                op(addr)
    assert p.used == 0
    with pytest.raises(TypeError):
        p.is_free("10.0.0.10")  # type: ignore[arg-type]


def test_reserve_is_idempotent_and_free_detects_double_free() -> None:
    p = PoolBitmap(100, 199)
    p.reserve(150)
    p.reserve(150)
    assert p.used == 1 and not p.is_free(150)
    p.free(150)
    assert p.is_free(150) and p.used == 0
    with pytest.raises(DoubleFree):
        p.free(150)
    with pytest.raises(DoubleFree):
        p.free(199)
    assert p.used == 0


def test_every_address_handed_out_once_until_full() -> None:
    first = ip("10.0.0.7")  # not aligned to a 64-bit word
    size = 100_000
    p = PoolBitmap(first, first + size - 1)
    got = [p.allocate() for _ in range(size)]
    assert got == list(range(first, first + size))  # next-fit on an empty pool: ascending
    with pytest.raises(PoolExhausted):
        p.allocate()
    assert (p.used, p.free_count) == (size, 0)


def test_every_address_once_with_random_hints() -> None:
    rng = random.Random(3)
    first = ip("100.64.0.3")
    size = 100_000
    p = PoolBitmap(first, first + size - 1)
    got = []
    for _ in range(size):
        # a third of the calls carry a hint, in or out of the pool, free or not
        hint = rng.choice([0, 0, rng.randrange(first - 10, first + size + 10)])
        got.append(p.allocate(hint))
    assert sorted(got) == list(range(first, first + size))
    with pytest.raises(PoolExhausted):
        p.allocate(first)


def test_exhaustion_and_recovery() -> None:
    p = PoolBitmap(1000, 1999)
    assert [p.allocate() for _ in range(1000)] == list(range(1000, 2000))
    for _ in range(3):
        with pytest.raises(PoolExhausted):
            p.allocate()
    with pytest.raises(PoolExhausted):
        p.allocate(1500)  # a used hint does not help either
    p.free(1500)
    assert p.allocate() == 1500
    with pytest.raises(PoolExhausted):
        p.allocate()
    for a in (1999, 1000, 1640, 1641, 1063, 1064):
        p.free(a)
    # cursor wrapped to the start after 1999 was handed out, then 1500 moved it to 1501
    assert [p.allocate() for _ in range(6)] == [1640, 1641, 1999, 1000, 1063, 1064]
    with pytest.raises(PoolExhausted):
        p.allocate()


def test_next_fit_does_not_reuse_a_just_freed_address() -> None:
    p = PoolBitmap(0x0A000000, 0x0A0000FF)
    a = [p.allocate() for _ in range(10)]
    p.free(a[3])
    assert p.allocate() == a[9] + 1  # not a[3]: the cursor is past it
    p.free(a[5])
    rest = [p.allocate() for _ in range(256 - 11)]  # up to the end of the pool
    assert rest[-1] == 0x0A0000FF
    assert p.allocate() == a[3]  # wrapped: the first free address from the start
    assert p.allocate() == a[5]
    with pytest.raises(PoolExhausted):
        p.allocate()


def test_hint_taken_when_free_and_leaves_cursor() -> None:
    p = PoolBitmap(500, 599)
    assert p.allocate() == 500
    assert p.allocate(550) == 550  # free hint: taken
    assert p.allocate() == 501  # cursor did not jump to 551
    assert p.allocate(550) == 502  # used hint: next-fit
    assert p.allocate(5000) == 503  # hint outside the pool: next-fit
    assert p.allocate(0) == 504  # 0: no hint
    assert p.allocate(-7) == 505
    assert p.allocate(2**80) == 506
    assert p.allocate(hint=599) == 599


def test_size_one_pool_at_the_top_of_the_address_space() -> None:
    p = PoolBitmap(MAX_ADDR, MAX_ADDR)
    assert (p.size, p.contains(MAX_ADDR), p.contains(MAX_ADDR - 1)) == (1, True, False)
    assert p.allocate() == MAX_ADDR
    with pytest.raises(PoolExhausted):
        p.allocate()
    p.free(MAX_ADDR)
    assert p.allocate(MAX_ADDR) == MAX_ADDR
    with pytest.raises(PoolExhausted):
        p.allocate(MAX_ADDR)
    assert p.reserve_many(array("I", [MAX_ADDR, MAX_ADDR - 1, 0])) == 0


def test_size_one_pool_at_zero() -> None:
    p = PoolBitmap(0, 0)
    assert p.allocate() == 0
    with pytest.raises(PoolExhausted):
        p.allocate()


def test_size_two_pool() -> None:
    p = PoolBitmap(ip("192.0.2.254"), ip("192.0.2.255"))
    assert p.allocate() == ip("192.0.2.254")
    p.free(ip("192.0.2.254"))
    assert p.allocate() == ip("192.0.2.255")  # next-fit: past the one just freed
    assert p.allocate() == ip("192.0.2.254")  # wrapped
    with pytest.raises(PoolExhausted):
        p.allocate()
    p.free(ip("192.0.2.255"))
    assert p.allocate() == ip("192.0.2.255")


@pytest.mark.parametrize("size", [1, 2, 63, 64, 65, 127, 129, 4095, 4097, 262_145])
@pytest.mark.parametrize("misalign", [0, 1, 37, 63])
def test_unaligned_ranges_hand_out_exactly_the_range(size: int, misalign: int) -> None:
    first = ip("172.16.0.0") + misalign
    p = PoolBitmap(first, first + size - 1)
    got = [p.allocate() for _ in range(size)]
    assert got == list(range(first, first + size))
    with pytest.raises(PoolExhausted):
        p.allocate()
    # padding bits past `last` never surface, even after a free in the last word
    p.free(first + size - 1)
    assert p.allocate() == first + size - 1
    with pytest.raises(PoolExhausted):
        p.allocate()


def test_full_size_pool_ending_at_the_top_of_the_address_space() -> None:
    first = 2**32 - BIG  # 255.0.0.0 - 255.255.255.255: 2^24 addresses, last = 2^32-1
    p = PoolBitmap(first, MAX_ADDR)
    assert p.size == BIG
    assert [p.allocate() for _ in range(5)] == list(range(first, first + 5))
    rng = random.Random(24)
    # leave a scattered handful free, in different words of every summary level
    keep = set(rng.sample(range(5, BIG), 300)) | {5, BIG - 1, 4096 * 64, BIG // 2 + 63}
    mostly = array("I", range(first + 5, MAX_ADDR + 1))
    n = p.reserve_many(mostly)
    assert n == BIG - 5
    for off in keep:
        p.free(first + off)
    assert p.free_count == len(keep)
    # the rest comes out in address order from the cursor (which is at offset 5), then exhausted
    assert [p.allocate() for _ in range(len(keep))] == [first + o for o in sorted(keep)]
    with pytest.raises(PoolExhausted):
        p.allocate()
    # one address freed deep in the tree is found again after a wrap
    p.free(first + 9_999_999)
    assert p.allocate() == first + 9_999_999
    assert p.used == BIG


def test_reserve_many_counts_newly_reserved_and_skips_outside() -> None:
    first = ip("10.1.0.0")
    p = PoolBitmap(first, first + 999)
    p.reserve(first + 5)
    addrs = array(
        "I",
        [first + 5, first + 6, first + 6, first - 1, first + 1000, 0, MAX_ADDR, first, first + 999],
    )
    assert p.reserve_many(addrs) == 3  # +6 (once), +0, +999; +5 was used already
    assert p.used == 4
    assert p.reserve_many(addrs) == 0
    assert p.reserve_many(array("I")) == 0
    # the summaries are right afterwards: next-fit skips exactly the reserved ones
    assert [p.allocate() for _ in range(5)] == [first + o for o in (1, 2, 3, 4, 7)]


def test_reserve_many_takes_any_uint32_buffer() -> None:
    p = PoolBitmap(0, 199)
    a = array("I", range(0, 200))
    assert p.reserve_many(memoryview(a)[::2]) == 100  # strided view
    assert p.reserve_many(memoryview(bytes(array("I", [1, 3]))).cast("I")) == 2  # read-only
    assert [p.is_free(x) for x in range(6)] == [False, False, False, False, False, True]
    with pytest.raises(ValueError):
        p.reserve_many(array("H", [5]))  # 16-bit items are not addresses
    with pytest.raises(TypeError):
        p.reserve_many([5, 7])  # type: ignore[arg-type]
    assert p.used == 102


def test_reserve_many_on_a_large_pool_matches_a_set() -> None:
    rng = random.Random(7)
    first = ip("10.0.0.0")
    size = 1 << 20
    p = PoolBitmap(first, first + size - 1)
    sample = array("I", (first + rng.randrange(size + 1000) for _ in range(200_000)))
    expected = {a for a in sample if a < first + size}
    assert p.reserve_many(sample) == len(expected)
    assert p.used == len(expected)
    for a in rng.sample(range(first, first + size), 2000):
        assert p.is_free(a) == (a not in expected)
    # next-fit from offset 0 returns the free addresses in order
    free_sorted = sorted(set(range(first, first + 3000)) - expected)
    assert [p.allocate() for _ in range(len(free_sorted))] == free_sorted


def test_memory_of_a_full_size_pool() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        p = PoolBitmap(0x0A000000, 0x0A000000 + BIG - 1)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 2^24 bits = 2 MiB of address words + 32 KiB + 512 + 8 bytes of summaries
    assert 2_097_152 < grown <= 2_200_000
    assert 2_097_152 < sys.getsizeof(p) <= 2_200_000
