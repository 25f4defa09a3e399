"""What the statistics count in the lease table: active addresses per subnet range (the
compiled pass over the index, and the sorted-array path past a few ranges) and declined
records, staged overlay included, against a plain Python count of the same records."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fastdhcp._leaseindex import LeaseIndex
from fastdhcp.leases import Lease, LeaseState
from fastdhcp.store import _COUNT_RANGES, LmdbLeaseStore

BASE = 0xC6120000  # 198.18.0.0


def naive(active: list[int], ranges: list[tuple[int, int]]) -> list[int]:
    return [sum(1 for ip in active if a <= ip <= b) for a, b in ranges]


def test_count_active_against_a_plain_count() -> None:
    rng = random.Random(15)
    ix = LeaseIndex()
    for i in range(5000):
        ip = BASE + rng.randrange(1 << 16)
        on = rng.random() < 0.7
        ix.put(ip, b"\x01" + i.to_bytes(6, "big"), 2_000_000_000, on)
    active = list(ix.active())
    for n in (1, 2, 3, 7, 64, 200):
        cuts = sorted(rng.sample(range(1 << 16), 2 * n))
        ranges = [(BASE + cuts[2 * k], BASE + cuts[2 * k + 1]) for k in range(n)]
        assert ix.count_active(ranges) == naive(active, ranges)
    assert ix.count_active([]) == []
    with pytest.raises(ValueError):
        ix.count_active([(BASE + 10, BASE + 20), (BASE + 15, BASE + 30)])


def lease(ip: int, state: LeaseState, n: int) -> Lease:
    return Lease(ip, b"\x01" + n.to_bytes(6, "big"), n.to_bytes(6, "big"), 1, int(state),
                 1_700_000_000, 2_000_000_000)


@pytest.mark.parametrize("nranges", [2, _COUNT_RANGES + 1])
def test_store_counts_with_the_overlay(tmp_path: Path, nranges: int) -> None:
    rng = random.Random(nranges)
    store = LmdbLeaseStore(str(tmp_path / "db"), sync=False, create=True)
    try:
        truth: dict[int, Lease] = {}
        for n in range(600):
            x = lease(BASE + rng.randrange(4096), rng.choice(list(LeaseState)), n)
            truth[x.ip] = x
            store.stage(x)
            if n == 400:  # the rest stays staged: the overlay must count too
                batch = store.take_pending()
                store.write(batch)
                store.committed(batch)
        step = 4096 // nranges
        ranges = [(BASE + k * step, BASE + k * step + step - 2) for k in range(nranges)]
        active = [ip for ip, x in truth.items() if x.active]
        assert store.active_counts(ranges) == naive(active, ranges)
        declined = sorted(ip for ip, x in truth.items() if x.state == LeaseState.DECLINED)
        assert list(store.declined_addresses()) == declined
    finally:
        store.close()
