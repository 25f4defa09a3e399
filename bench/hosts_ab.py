"""A/B of the engine's per-DORA CPU cost with and without a million API hosts (fastdhcp.hosts),
the two engines alternated in one process so that a neighbour's load hits both alike.

Run: ``python3 bench/hosts_ab.py [--hosts 1000000] [--dora 20000] [--rounds 3]``

Clients have no host (the common case: the filter answers); packets as bench_engine.py's
``test_dora_relayed_option82`` with MACs spread over the key space. Also prints how long a
HostTable takes to open over the million hosts (the start-up cost: filling the filter).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
import bench_engine as B

from fastdhcp._codec import parse
from fastdhcp.engine import Engine
from fastdhcp.hosts import Host, HostTable, IdentifierType
from fastdhcp.leases import MemoryLeaseStore
from fastdhcp.store import LmdbLeaseStore


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=1_000_000)
    ap.add_argument("--dora", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    path = tempfile.mkdtemp(prefix="fastdhcp-hosts-ab-")
    store = LmdbLeaseStore(path, sync=False, create=True, map_size=1 << 30)
    table = HostTable(store)
    dns = {6: bytes((10, 0, 0, 53))}
    for lo in range(0, a.hosts, 100_000):
        batch = [Host(9, IdentifierType.HW_ADDRESS, B._spread(0, k), 0, "", dns)
                 for k in range(lo, min(lo + 100_000, a.hosts))]
        table.written(store.host_write(table.add_many_fn(batch)))
    t0 = time.perf_counter()
    table = HostTable(store)
    print(f"HostTable over {len(table)} hosts opened in {time.perf_counter() - t0:.2f} s "
          f"(filter {table.filter.size_bytes >> 20} MiB)")
    config = B.make_config(more=B.CONFIG_MORE)

    def run(hosts: HostTable | None) -> float:
        ds, qs = B._packets(config, a.dora, True, hosts, B._client_mac)
        leases = MemoryLeaseStore()
        engine = Engine(config, leases)
        if hosts is not None:
            engine.attach_hosts(hosts)
        handle = engine.handle
        t = time.process_time()
        for i in range(a.dora):
            handle(parse(ds[i]), B.LINK, B.NOW)
            handle(parse(qs[i]), B.LINK, B.NOW)
        t = (time.process_time() - t) / a.dora * 1e6
        assert len(leases.take_pending()) == a.dora  # every exchange ended in an ACK
        return t

    for _ in range(a.rounds):
        none, some = run(None), run(table)
        print(f"no hosts {none:.2f} us/DORA   {len(table)} hosts {some:.2f} us/DORA   "
              f"delta {some - none:+.2f} us")
    store.close()


if __name__ == "__main__":
    main()
