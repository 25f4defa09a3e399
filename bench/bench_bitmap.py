"""Benchmarks of fastdhcp._bitmap.PoolBitmap on a full-size (2^24) pool.

Run: python3 -m pytest bench/bench_bitmap.py --benchmark-only

The per-call bodies loop OPS times, so the table's microseconds per round read directly as
nanoseconds per operation. Pools are filled with reserve_many of random addresses (low fills) or
by reserving everything and freeing a random sample (high fills): either way the free bits are
scattered uniformly, the hard case for a bitmap search.
"""

from __future__ import annotations

import random
import sys
import tracemalloc
from array import array

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
import pytest

from fastdhcp._bitmap import PoolBitmap

FIRST = 0x0A000000  # 10.0.0.0/8
SIZE = 1 << 24
LAST = FIRST + SIZE - 1
OPS = 1000  # operations per timed round: 1 us per round == 1 ns per operation
FILLS = [0.0, 0.5, 0.99, 0.9999]


def random_addresses(rng: random.Random, n: int) -> array:
    """n uniformly random addresses of 10.0.0.0/8 as array('I'), without a Python loop."""
    raw = bytearray(rng.randbytes(4 * n))
    # the top byte of each uint32 (last in little-endian, first in big-endian) becomes 10
    raw[3 if sys.byteorder == "little" else 0 :: 4] = b"\x0a" * n
    return array("I", raw)


def filled_pool(fill: float, seed: int = 1) -> PoolBitmap:
    """A 2^24 pool with exactly round(fill * SIZE) addresses used, scattered at random."""
    rng = random.Random(seed)
    pool = PoolBitmap(FIRST, LAST)
    target = round(fill * SIZE)
    if fill <= 0.5:
        while pool.used < target:  # draws with replacement; each round closes most of the gap
            pool.reserve_many(random_addresses(rng, target - pool.used))
    else:
        pool.reserve_many(array("I", range(FIRST, LAST + 1)))
        for off in rng.sample(range(SIZE), SIZE - target):
            pool.free(FIRST + off)
    assert pool.used == target
    return pool


@pytest.fixture(scope="module", params=FILLS, ids=lambda f: f"fill={f:.2%}")
def pool(request: pytest.FixtureRequest) -> PoolBitmap:
    return filled_pool(request.param)


def test_allocate_free_pair(benchmark, pool: PoolBitmap) -> None:
    """allocate() then free() of the same address, OPS times: the fill stays put."""
    allocate, free = pool.allocate, pool.free
    used = pool.used

    def pairs() -> None:
        for _ in range(OPS):
            free(allocate())

    benchmark.group = "bitmap allocate+free pair (ns per pair)"
    benchmark.pedantic(pairs, rounds=300, warmup_rounds=5)
    assert pool.used == used


def test_allocate(benchmark, pool: PoolBitmap) -> None:
    """allocate() alone, OPS times a round; the addresses go back (untimed) between rounds.

    At 99.99% (1678 free) a round takes 1000 of them, so it ends at 99.996%: the harder end.
    """
    allocate, free = pool.allocate, pool.free
    used = pool.used
    got: list[int] = []

    def give_back() -> None:
        for a in got:
            free(a)
        got.clear()

    def allocs() -> None:
        for _ in range(OPS):
            got.append(allocate())

    benchmark.group = "bitmap allocate (ns per call, incl. list.append)"
    benchmark.pedantic(allocs, setup=give_back, rounds=300, warmup_rounds=5)
    give_back()
    assert pool.used == used


def test_reserve_many_1m(benchmark) -> None:
    """reserve_many of 1,000,000 random addresses into a fresh 2^24 pool (start-up rebuild)."""
    addrs = random_addresses(random.Random(2), 1_000_000)
    pools: list[PoolBitmap] = []

    def fresh() -> None:
        pools[:] = [PoolBitmap(FIRST, LAST)]

    def run() -> int:
        return pools[0].reserve_many(addrs)

    benchmark.group = "bitmap bulk"
    n = benchmark.pedantic(run, setup=fresh, rounds=30, warmup_rounds=2)
    assert 900_000 < n <= 1_000_000


def test_reserve_many_95pct(benchmark) -> None:
    """Start-up of a pool at 95% use: reserve_many of 15.9M distinct addresses in address order,
    the order the lease table (keyed by big-endian address) is read back in."""
    rng = random.Random(3)
    drop = set(rng.sample(range(SIZE), SIZE - round(0.95 * SIZE)))
    keep = array("I", (FIRST + o for o in range(SIZE) if o not in drop))
    pools: list[PoolBitmap] = []

    def fresh() -> None:
        pools[:] = [PoolBitmap(FIRST, LAST)]

    def run() -> int:
        return pools[0].reserve_many(keep)

    benchmark.group = "bitmap bulk"
    n = benchmark.pedantic(run, setup=fresh, rounds=10, warmup_rounds=1)
    assert n == len(keep)


def test_construct_full_size_pool(benchmark) -> None:
    """PoolBitmap(2^24 addresses): start-up cost; also records its memory (tracemalloc)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        p = PoolBitmap(FIRST, LAST)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    benchmark.extra_info["traced_bytes"] = grown
    benchmark.extra_info["getsizeof"] = sys.getsizeof(p)
    print(f"\n2^24 pool memory: tracemalloc {grown} B, sys.getsizeof {sys.getsizeof(p)} B")
    assert grown <= 2_200_000
    benchmark.group = "bitmap bulk"
    benchmark(PoolBitmap, FIRST, LAST)
