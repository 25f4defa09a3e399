"""Lease store micro-benchmarks: what the writer thread commits per second, and loop reads.

As pytest-benchmark (one round = one ``write`` of one batch, i.e. one LMDB write txn, fsynced
when sync=True)::

    python3 -m pytest bench/bench_store.py --benchmark-only -q

As a script printing leases committed per second (median over rounds) for sync and nosync at
batch sizes 1, 16, 64 and 256::

    python3 bench/bench_store.py [--rounds 200] [--table 200000]

Addresses are clustered as the allocator hands them out (next-fit: consecutive addresses), on
top of a table that already holds ``--table`` leases; each batch mixes new addresses and renewals
of recent ones (3:1), with distinct random client keys (the index keys are random).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
import pytest

from fastdhcp.leases import Lease
from fastdhcp.store import LmdbLeaseStore

BASE = 0x0A000000  # 10.0.0.0/8: room for millions of clustered addresses
BATCH_SIZES = (1, 16, 64, 256)


class Workload:
    """Leases as a busy server stages them: mostly new neighbours, some renewals."""

    def __init__(self, start: int = 0, seed: int = 1) -> None:
        self.next = start
        self.rng = random.Random(seed)
        self.now = 1_700_000_000

    def lease(self, i: int) -> Lease:
        mac = self.rng.getrandbits(48).to_bytes(6, "big")
        return Lease(BASE + i, b"\x01" + mac, mac, 1, 0, self.now, self.now + 3600, "", b"")

    def batch(self, n: int) -> list[Lease]:
        out = []
        for _ in range(n):
            if self.next > 1000 and self.rng.random() < 0.25:
                out.append(self.lease(self.next - self.rng.randrange(1, 1000)))  # a renewal
            else:
                out.append(self.lease(self.next))
                self.next += 1
        self.now += 1
        return out


def prefill(store: LmdbLeaseStore, n: int, work: Workload) -> None:
    while work.next < n:
        batch = work.batch(min(4096, n - work.next))
        for lease in batch:
            store.stage(lease)
        taken = store.take_pending()
        store.write(taken)
        store.committed(taken)


def measure(
    sync: bool, batch_size: int, rounds: int, table: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (of the writing thread) per ``write`` of one batch, ``rounds``
    times, on a fresh store."""
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=os.environ.get("BENCH_DIR")) as d:
        store = LmdbLeaseStore(d, sync=sync)
        work = Workload()
        prefill(store, table, work)
        times, cpu = [], []
        for _ in range(rounds):
            for lease in work.batch(batch_size):
                store.stage(lease)
            batch = store.take_pending()
            c0 = time.thread_time()
            t0 = time.perf_counter()
            store.write(batch)
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
            store.committed(batch)
        store.close()
    return times, cpu


# ----------------------------------------------------------------------------- pytest-benchmark


@pytest.fixture(scope="module")
def stores() -> Iterator[dict[bool, tuple[LmdbLeaseStore, Workload]]]:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        out = {}
        for sync, d in ((True, a), (False, b)):
            store = LmdbLeaseStore(d, sync=sync)
            work = Workload()
            prefill(store, 100_000, work)
            out[sync] = (store, work)
        yield out
        for store, _ in out.values():
            store.close()


@pytest.mark.parametrize("batch_size", BATCH_SIZES)
@pytest.mark.parametrize("sync", [True, False], ids=["sync", "nosync"])
def test_write_batch(benchmark, stores, sync, batch_size):
    store, work = stores[sync]

    def setup():
        for lease in work.batch(batch_size):
            store.stage(lease)
        return (store.take_pending(),), {}

    def write(batch):
        store.write(batch)
        store.committed(batch)

    benchmark.extra_info["leases_per_round"] = batch_size
    benchmark.pedantic(write, setup=setup, rounds=100 if batch_size < 256 else 50)


def test_get_committed(benchmark, stores):
    store, work = stores[True]
    ips = [BASE + random.randrange(work.next) for _ in range(1000)]

    def run():
        for ip in ips:
            store.get(ip)

    benchmark(run)


def test_get_by_client(benchmark, stores):
    store, work = stores[True]
    keys = [store.get(BASE + random.randrange(work.next)).client_key for _ in range(1000)]

    def run():
        for key in keys:
            store.get_by_client(key)

    benchmark(run)


# ----------------------------------------------------------------------------- script


def measure_reads(table: int, rounds: int = 20) -> dict[str, float]:
    """Loop-side lookups on a committed table: thread-CPU microseconds per call, median of
    ``rounds`` rounds of 1000 random lookups."""
    with tempfile.TemporaryDirectory(prefix="bench-store-", dir=os.environ.get("BENCH_DIR")) as d:
        store = LmdbLeaseStore(d, sync=False)
        work = Workload()
        prefill(store, table, work)
        rng = random.Random(3)
        ips = [BASE + rng.randrange(work.next) for _ in range(1000)]
        keys = [store.get(ip).client_key for ip in ips]  # type: ignore[union-attr]
        rng.shuffle(keys)
        out = {}
        for name, fn, args in (
            ("get", store.get, ips),
            ("get_by_client", store.get_by_client, keys),
        ):
            per = []
            for _ in range(rounds):
                c0 = time.thread_time()
                for a in args:
                    fn(a)
                per.append((time.thread_time() - c0) / len(args) * 1e6)
            out[name] = statistics.median(per)
        store.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--table", type=int, default=200_000, help="leases already in the table")
    parser.add_argument("--reads-only", action="store_true", help="only the loop-read figures")
    args = parser.parse_args()
    if args.reads_only:
        reads = measure_reads(args.table)
        print(", ".join(f"{k} {v:.2f} us" for k, v in reads.items()))
        return 0
    print(f"table {args.table} leases, {args.rounds} rounds; leases/s = batch / median write;")
    print("cpu: the writer thread's CPU time per write (user+sys), and batch / that")
    print(
        f"{'sync':>6} {'batch':>6} {'median ms':>10} {'p90 ms':>8} {'leases/s':>10} "
        f"{'cpu ms':>8} {'leases/cpu-s':>12}"
    )
    for sync in (True, False):
        for bs in BATCH_SIZES:
            rounds = args.rounds if bs > 1 else max(args.rounds, 300)
            t, c = measure(sync, bs, rounds, args.table)
            med = statistics.median(t)
            p90 = statistics.quantiles(t, n=10)[-1]
            cmed = statistics.median(c)
            print(
                f"{str(sync):>6} {bs:>6} {med * 1e3:>10.3f} {p90 * 1e3:>8.3f} {bs / med:>10,.0f} "
                f"{cmed * 1e3:>8.3f} {bs / max(cmed, 1e-9):>12,.0f}",
                flush=True,
            )
    reads = measure_reads(args.table)
    print(
        f"loop reads on {args.table} committed leases (thread CPU, median of 20x1000): "
        + ", ".join(f"{k} {v:.2f} us" for k, v in reads.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
