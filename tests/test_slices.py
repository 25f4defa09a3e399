"""The address slices and the chaddr steering of the multi-worker server (fastdhcp.slices)."""

from __future__ import annotations

import collections
import os

from hypothesis import given
from hypothesis import strategies as st

from fastdhcp.config import Pool
from fastdhcp.slices import owner, pool_slices, steer, steering_program, worker_slices


def _pool(first: int, size: int) -> Pool:
    return Pool(first, first + size - 1, f"{first}+{size}")


@given(st.integers(0, 2**32 - 2**24 - 1), st.integers(1, 5000), st.integers(1, 64))
def test_slices_partition_the_pool_and_agree_with_owner(first: int, size: int, n: int) -> None:
    pool = _pool(first, size)
    slices = pool_slices(pool, n)
    assert [s.worker for s in slices] == list(range(n))
    covered = [ip for s in slices for ip in range(s.first, s.last + 1)]
    assert covered == list(range(pool.first, pool.last + 1))
    for s in slices:
        for ip in {s.first, s.last, (s.first + s.last) // 2} if s.last >= s.first else ():
            assert owner(ip, [pool], n) == s.worker


def test_outside_every_pool_is_owned_by_ip_mod_n() -> None:
    pools = [_pool(1000, 100)]
    assert owner(5003, pools, 4) == 5003 % 4
    assert owner(1099, pools, 4) == 3 and owner(1000, pools, 4) == 0


def test_worker_slices_leave_out_empty_slices() -> None:
    # a pool smaller than the worker count belongs whole to the last worker
    pools = [_pool(10, 3), _pool(100, 40)]
    assert [(s.first, s.last) for s in worker_slices(pools, 4, 3)] == [(10, 12), (130, 139)]
    assert [(s.first, s.last) for s in worker_slices(pools, 4, 0)] == [(100, 109)]


def test_steering_spreads_sequential_macs_evenly() -> None:
    # One vendor's block of sequential MACs is the common case in an access network.
    counts = collections.Counter(steer(bytes.fromhex("02005e") + i.to_bytes(3, "big"), 4)
                                 for i in range(40_000))
    assert set(counts) == {0, 1, 2, 3}
    assert max(counts.values()) - min(counts.values()) < 40_000 * 0.05
    random_macs = collections.Counter(steer(os.urandom(6), 2) for _ in range(20_000))
    assert abs(random_macs[0] - random_macs[1]) < 20_000 * 0.05


def test_steering_program_is_five_sock_filter_instructions() -> None:
    prog = steering_program(3)
    assert len(prog) == 5 * 8
    # the mod operand is the worker count (the kernel program's only per-N constant)
    assert int.from_bytes(prog[3 * 8 + 4:4 * 8], "little") == 3
