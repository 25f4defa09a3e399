"""Restart time and anonymous memory of the lease store with millions of leases.

    python3 bench/bench_store_restart.py --leases 1000000 [--runs 3] [--dir /var/tmp]
    python3 bench/bench_store_restart.py --leases 10000000 --runs 3

Builds a lease database of N leases (consecutive addresses from 10.0.0.0, random client keys,
90% bound, 5% released, 5% expired-reclaimed) by writing `leases` directly, then restarts, each
time in a fresh process, what the server does before it serves: open the store (which builds the
in-memory indexes in one compiled scan of `leases`), ``active_addresses()``, and a
``PoolBitmap.reserve_many`` of them. Every start-up is the same, after a clean stop, a kill -9
or a power loss: nothing derived is kept on disk.

Per run: seconds to import, open (scan + index), list the active addresses, fill the bitmap, the
total from process start to ready (interpreter start-up included), RssAnon from
/proc/self/status when ready (per lease too) and the index's own allocation. The page cache is
warm (the database was just written); cold-cache figures are slower by the disk's read rate.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)

BASE = 0x0A000000

CHILD = r"""
import json, sys, time
t_start = float(sys.argv[2])
t0 = time.perf_counter()
from fastdhcp.store import LmdbLeaseStore
from fastdhcp._bitmap import PoolBitmap
t1 = time.perf_counter()
store = LmdbLeaseStore(sys.argv[1])
t2 = time.perf_counter()
addrs = store.active_addresses()
t3 = time.perf_counter()
pool = PoolBitmap(0x0A000000, 0x0A000000 + (1 << 24) - 1)
pool.reserve_many(addrs)
t4 = time.perf_counter()
ready = time.time()
rss = {}
with open("/proc/self/status") as f:
    for line in f:
        if line.startswith(("RssAnon", "RssFile", "VmHWM")):
            k, v = line.split(":")
            rss[k] = int(v.split()[0]) * 1024
out = dict(imports=t1 - t0, open=t2 - t1, scan=t3 - t2, bitmap=t4 - t3,
           ready_from_exec=ready - t_start, active=len(addrs), used=pool.used,
           index_bytes=store._index.nbytes, **rss)
store.close()
print(json.dumps(out), flush=True)
"""


def build(path: str, n: int, seed: int = 7) -> None:
    """Write N lease records straight into `leases` (sorted, append mode)."""
    from fastdhcp.leases import Lease
    from fastdhcp.store import LmdbLeaseStore, _encode

    store = LmdbLeaseStore(path, sync=False, create=True)
    rng = random.Random(seed)
    now = 1_700_000_000
    chunk = 200_000
    env = store._env
    assert env is not None
    for start in range(0, n, chunk):
        items = []
        for i in range(start, min(n, start + chunk)):
            mac = rng.getrandbits(48).to_bytes(6, "big")
            r = rng.random()
            state = 0 if r < 0.9 else (3 if r < 0.95 else 2)
            lease = Lease(
                BASE + i,
                b"\x01" + mac,
                mac,
                1,
                state,
                now - rng.randrange(3600),
                now + rng.randrange(3600),
                "",
                b"",
            )
            items.append(((BASE + i).to_bytes(4, "big"), _encode(lease)))
        while True:
            try:
                with env.begin(write=True) as txn:
                    txn.cursor(db=store._leases).putmulti(items, append=True)
                break
            except Exception as exc:  # MapFullError: grow like the writer does
                if not store._grow(env, exc):
                    raise
    env.sync(True)
    store.close()


def restart(path: str) -> dict:
    t = time.time()
    p = subprocess.run(
        [sys.executable, "-c", CHILD, path, repr(t)],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    return json.loads(p.stdout)


def fmt(label: str, runs: list[dict], n: int) -> str:
    def med(k: str) -> float:
        return statistics.median(r[k] for r in runs)

    return (
        f"{label:<8} runs={len(runs)} open={med('open'):.3f}s scan={med('scan'):.3f}s "
        f"bitmap={med('bitmap'):.3f}s ready_from_exec={med('ready_from_exec'):.3f}s "
        f"RssAnon={med('RssAnon') / 2**20:.1f}MiB ({med('RssAnon') / n:.1f} B/lease) "
        f"VmHWM={med('VmHWM') / 2**20:.1f}MiB index={med('index_bytes') / n:.1f} B/lease "
        f"active={runs[0]['active']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leases", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="restarts")
    parser.add_argument("--dir", default=None, help="where to build the database")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    top = tempfile.mkdtemp(prefix="bench-restart-", dir=args.dir)
    path = os.path.join(top, "db")
    try:
        t = time.perf_counter()
        build(path, args.leases)
        size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
        print(
            f"built {args.leases} leases in {time.perf_counter() - t:.1f}s "
            f"({size / 2**20:.0f} MiB on disk)",
            flush=True,
        )
        runs = []
        for _ in range(args.runs):
            r = restart(path)
            runs.append(r)
            print("restart", json.dumps(r), flush=True)
        print(fmt("restart", runs, args.leases))
    finally:
        if not args.keep:
            shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
