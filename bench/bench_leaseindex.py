"""The in-memory lease index (fastdhcp._leaseindex.LeaseIndex): what the writer pays per lease,
what a loop lookup costs, and the start-up scan rate.

    python3 -m pytest bench/bench_leaseindex.py --benchmark-only -q

All on an index that already holds 1,000,000 records (random 7-byte client keys, consecutive
addresses, as the allocator hands them out).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
import msgpack
import pytest

from fastdhcp._leaseindex import LeaseIndex
from fastdhcp.leases import Lease

BASE = 0x0A000000
N = 1_000_000


def _key(rng: random.Random) -> bytes:
    return b"\x01" + rng.getrandbits(48).to_bytes(6, "big")


@pytest.fixture(scope="module")
def filled() -> tuple[LeaseIndex, list[bytes]]:
    rng = random.Random(1)
    idx = LeaseIndex()
    keys = [_key(rng) for _ in range(N)]
    for i, key in enumerate(keys):
        idx.put(BASE + i, key, 1_700_000_000 + i % 3600, True)
    return idx, keys


def test_apply_batch_256(benchmark, filled) -> None:
    """One committed batch as the writer applies it: 3/4 new clients, 1/4 renewals."""
    idx, keys = filled
    rng = random.Random(2)
    state = {"next": N}

    def batch() -> tuple[tuple[list[Lease]], dict]:
        out = []
        for _ in range(256):
            if rng.random() < 0.25:
                i = rng.randrange(state["next"])
                key = keys[i] if i < N else _key(rng)
                out.append(Lease(BASE + i, key, b"", 1, 0, 0, 1_700_010_000))
            else:
                out.append(Lease(BASE + state["next"], _key(rng), b"", 1, 0, 0, 1_700_010_000))
                state["next"] += 1
        return (out,), {}

    benchmark.extra_info["leases_per_round"] = 256
    benchmark.pedantic(idx.apply, setup=batch, rounds=200)


def test_client_lookup_1000(benchmark, filled) -> None:
    """1000 lookups of known clients (the DISCOVER / REQUEST path's index probe)."""
    idx, keys = filled
    probe = random.Random(3).sample(keys, 1000)
    client = idx.client

    def run() -> None:
        for key in probe:
            client(key)

    benchmark(run)


def test_due_1000(benchmark, filled) -> None:
    """The reclaim query: the 1000 oldest expired of 1M (they stay indexed: re-pushed)."""
    idx, _ = filled
    benchmark(idx.due, 1_700_000_000 + 3600, 1000)


def _records(n: int) -> Iterator[tuple[bytes, bytes]]:
    rng = random.Random(4)
    for i in range(n):
        rec = (0, 1_700_000_000 + i % 3600, 1_700_000_000, 1, _key(rng), b"\0" * 6, "", b"")
        yield (BASE + i).to_bytes(4, "big"), msgpack.packb(rec, use_bin_type=True)


def test_load_100k(benchmark) -> None:
    """The start-up scan's compiled part over 100,000 records (without LMDB's cursor)."""
    items = list(_records(100_000))
    benchmark.extra_info["records_per_round"] = len(items)

    def run() -> None:
        idx = LeaseIndex()
        n, _, odd = idx.load(iter(items), len(items))
        assert n == len(items) and not odd

    benchmark.pedantic(run, rounds=10)
