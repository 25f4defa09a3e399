"""What leasequery costs: the table scan behind a query by hardware address, relay-id,
remote-id or all (fastdhcp.leasequery.lookup.scan over an LMDB table), per record, and a query
by IP address.

Run: python3 bench/bench_leasequery.py [N]   (default 100,000 leases; prints us per record and
the extrapolation to 1M leases). Not a pytest-benchmark kernel: one scan is one timed run, and
its loop time is the number that matters (the scan yields between pages, the time is still
taken from the loop).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time

import _common  # noqa: F401  (the repo root and tests/ on sys.path)

from fastdhcp.leasequery.lookup import matcher, scan
from fastdhcp.leasequery.wire import Query, QueryKind
from fastdhcp.leases import Lease
from fastdhcp.store import LmdbLeaseStore

BASE = 0x0A000000
BATCH = 10_000


def _rai(i: int) -> bytes:
    rid = b"R%d" % (i % 16)
    remote = b"cpe-%d" % i
    return bytes((1, 4)) + b"port" + bytes((2, len(remote))) + remote + bytes((12, len(rid))) + rid


def fill(store: LmdbLeaseStore, n: int) -> None:
    now = int(time.time())
    for start in range(0, n, BATCH):
        batch = []
        for i in range(start, min(n, start + BATCH)):
            hw = b"\x02" + i.to_bytes(5, "big")
            batch.append(Lease(BASE + i, b"\x01" + hw, hw, 1, 0, now, now + 3600, "", _rai(i)))
        store.write(batch)


async def timed_scan(store: LmdbLeaseStore, q: Query, page: int) -> tuple[float, int]:
    t = time.perf_counter()
    n = 0
    async for hits in scan(store, matcher(q), page):
        n += len(hits)
    return time.perf_counter() - t, n


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with tempfile.TemporaryDirectory() as d:
        store = LmdbLeaseStore(d, sync=False, create=True)
        try:
            fill(store, n)
            for kind, key, page in ((QueryKind.BY_MAC, b"\x02" + (n // 2).to_bytes(5, "big"), 1000),
                                    (QueryKind.BY_RELAY_ID, b"R3", 100),
                                    (QueryKind.ALL, b"", 100)):
                secs, hits = asyncio.run(timed_scan(store, Query(kind, 1, key=key, htype=1), page))
                print(f"{kind.value:12s} page {page:5d}: {n} records in {secs * 1000:.0f} ms "
                      f"({secs / n * 1e6:.2f} us/record, {hits} hits); at 1M leases "
                      f"~{secs / n * 1e6:.1f} s")
            t = time.perf_counter()
            for i in range(10_000):
                store.get(BASE + (i * 7919) % n)
            print(f"by IP address: {(time.perf_counter() - t) / 10_000 * 1e6:.2f} us per lookup")
        finally:
            store.close()


if __name__ == "__main__":
    main()
