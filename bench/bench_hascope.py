"""The HA scope filter's cost (fastdhcp._hascope): what the packet path adds per query when
the server is one of an HA pair.

Run: ``python3 -m pytest bench/bench_hascope.py --benchmark-only -s``

- ``test_check``: ``ScopeFilter.check`` alone over parsed DISCOVERs (load-balancing, one scope
  served: the hash runs on every query), per query, Python call included (the packet path calls
  it in C, so this is an upper bound);
- ``test_dora_relayed`` and ``test_dora_relayed_ha_scope``: bench_engine's relayed DORA
  (parse + ``Engine.handle``), without and with the check before each ``handle``, the clients
  all in the served scope so both do the same engine work; per DORA (two checks).

CPU time (``time.process_time``) as bench_engine, for the same reason; compare the two DORA
figures of one run, and rerun them interleaved on a loaded machine.
"""

from __future__ import annotations

import time

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
import pytest
from bench_engine import CONFIG_MORE, LINK, NOW, PER_ROUND, ROUNDS, _packets
from dhcpsim import make_config

from fastdhcp._codec import parse
from fastdhcp._hascope import ScopeFilter, lb_hash
from fastdhcp.engine import Engine
from fastdhcp.leases import MemoryLeaseStore


def _ours(n: int) -> list[bytes]:
    """n distinct MACs of the primary's scope (the hash decides; about every second one)."""
    out: list[bytes] = []
    k = 0
    while len(out) < n:
        m = bytes([0x02, 0, (k >> 16) & 255, (k >> 8) & 255, k & 255, 7])
        if lb_hash(m) % 2 == 0:
            out.append(m)
        k += 1
    return out


def _filter() -> ScopeFilter:
    f = ScopeFilter()
    f.set(True, 2, 0b01, False)  # load-balancing primary: its own scope only
    return f


@pytest.mark.benchmark(group="hascope", timer=time.process_time)
def test_check(benchmark):
    config = make_config(more=CONFIG_MORE)
    discovers, _ = _packets(config, 1000, True)
    msgs = [parse(d) for d in discovers]
    f = _filter()
    check = f.check

    def body() -> None:
        for msg in msgs:
            check(msg)

    body()
    assert 300 < f.take_not_for_us() < 700  # both outcomes run: the hash decides each
    benchmark.pedantic(body, rounds=200, iterations=1)
    per = benchmark.stats.stats.median / len(msgs) * 1e9
    benchmark.extra_info["per_check_ns"] = round(per, 1)
    print(f"\n{benchmark.name}: median {per:.0f} ns per check")


def _dora(benchmark, with_filter: bool) -> None:
    config = make_config(more=CONFIG_MORE)
    n = PER_ROUND * (ROUNDS + 1)
    ours = _ours(n)
    discovers, requests = _packets(config, n, True, chaddr=ours.__getitem__)
    store = MemoryLeaseStore()
    handle = Engine(config, store).handle
    f = _filter()
    check = f.check
    state = {"round": 0}

    def setup():
        store.take_pending()
        r = state["round"]
        state["round"] = r + 1
        lo = r * PER_ROUND
        return (discovers[lo:lo + PER_ROUND], requests[lo:lo + PER_ROUND]), {}

    def plain(ds: list[bytes], qs: list[bytes]) -> None:
        for i in range(PER_ROUND):
            handle(parse(ds[i]), LINK, NOW)
            handle(parse(qs[i]), LINK, NOW)

    def filtered(ds: list[bytes], qs: list[bytes]) -> None:
        for i in range(PER_ROUND):
            m = parse(ds[i])
            if check(m) == 0:
                handle(m, LINK, NOW)
            m = parse(qs[i])
            if check(m) == 0:
                handle(m, LINK, NOW)

    benchmark.pedantic(filtered if with_filter else plain, setup=setup, rounds=ROUNDS,
                       iterations=1)
    assert len(store) == PER_ROUND * ROUNDS and f.not_for_us == 0
    per = benchmark.stats.stats.median / PER_ROUND * 1e6
    benchmark.extra_info["per_dora_us"] = round(per, 2)
    print(f"\n{benchmark.name}: median {per:.2f} us per DORA")


@pytest.mark.benchmark(group="hascope", timer=time.process_time)
def test_dora_relayed(benchmark):
    _dora(benchmark, False)


@pytest.mark.benchmark(group="hascope", timer=time.process_time)
def test_dora_relayed_ha_scope(benchmark):
    _dora(benchmark, True)
