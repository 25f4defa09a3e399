"""What client names cost the engine: a DORA through ``Engine.handle`` (as bench_engine.py's,
relayed, fresh clients, MemoryLeaseStore, CPU time) with and without ``[ddns]``, and with
``[ddns]`` for clients that send option 81 (each then costs one ``fastdhcp.ddns.names.decide``
call per OFFER and per ACK, and a ``ddns_pending`` entry per ACK).

Without ``[ddns]`` a client's option 12 is answered too (as Kea 2.2 does): a plain name is
echoed in C, one that needs lower-casing asks ``names.decide_without_ddns`` per OFFER and ACK.

Run: ``python3 -m pytest bench/bench_ddns.py --benchmark-only -s``; read the per-DORA medians.
"""

from __future__ import annotations

import time

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
import pytest
from bench_engine import CONFIG_MORE, LINK, NOW, PRL, RELAY
from dhcpsim import DISCOVER, REQUEST, SERVER_IP, build_request, mac, make_config, opt

from fastdhcp._codec import parse
from fastdhcp.engine import Engine
from fastdhcp.leases import MemoryLeaseStore

PER_ROUND = 100
ROUNDS = 200
DDNS = '[ddns]\nddns-qualifying-suffix = "example.net."\n'


def _fqdn(k: int) -> bytes:
    label = f"host{k}".encode()
    return opt(81, bytes((0x05, 0, 0, len(label))) + label)  # S=1, E=1, a partial name


def _hostname(k: int, text: str) -> bytes:
    return opt(12, f"{text}{k}".encode())


def _bench(benchmark, ddns: bool, names: bool, hostname: str = "") -> None:
    config = make_config(more=CONFIG_MORE + (DDNS if ddns else ""))
    n = PER_ROUND * (ROUNDS + 1)
    extra = [_fqdn(k) if names else _hostname(k, hostname) if hostname else b""
             for k in range(n)]
    discovers = [build_request(DISCOVER, xid=k, chaddr=mac(k), prl=PRL, giaddr=RELAY, hops=1,
                               extra=extra[k]) for k in range(n)]
    twin = Engine(config, MemoryLeaseStore())
    requests = []
    for k, data in enumerate(discovers):
        offered = int.from_bytes(twin.handle(parse(data), LINK, NOW).reply[16:20], "big")
        requests.append(build_request(REQUEST, xid=k, chaddr=mac(k), prl=PRL, giaddr=RELAY,
                                      hops=1, requested_ip=offered, server_id=SERVER_IP,
                                      extra=extra[k]))
    store = MemoryLeaseStore()
    engine = Engine(config, store)
    handle = engine.handle
    state = {"round": 0}

    def setup():
        store.take_pending()
        engine.ddns_pending.clear()  # what the DDNS feed takes at each commit
        r = state["round"]
        state["round"] = r + 1
        lo = r * PER_ROUND
        return (discovers[lo: lo + PER_ROUND], requests[lo: lo + PER_ROUND]), {}

    def dora(ds: list[bytes], qs: list[bytes]) -> None:
        for i in range(PER_ROUND):
            handle(parse(ds[i]), LINK, NOW)
            handle(parse(qs[i]), LINK, NOW)

    benchmark.pedantic(dora, setup=setup, rounds=ROUNDS, iterations=1)
    assert len(store) == PER_ROUND * ROUNDS  # every exchange ended in an ACK
    if names and ddns:
        lease = next(iter(store.active_addresses()))
        assert store.get(lease).fqdn_fwd  # the names were decided, not skipped
    per = benchmark.stats.stats.median / PER_ROUND * 1e6
    benchmark.extra_info["per_dora_us"] = round(per, 2)
    print(f"\n{benchmark.name}: median {per:.2f} us per DORA")


@pytest.mark.benchmark(group="ddns", timer=time.process_time)
def test_fqdn_off(benchmark):
    """No [ddns]: the baseline (bench_engine.py's test_dora_relayed)."""
    _bench(benchmark, ddns=False, names=False)


@pytest.mark.benchmark(group="ddns", timer=time.process_time)
def test_fqdn_on_clients_without_names(benchmark):
    """[ddns] on, clients without option 81 / 12: one C flag test per OFFER and ACK."""
    _bench(benchmark, ddns=True, names=False)


@pytest.mark.benchmark(group="ddns", timer=time.process_time)
def test_fqdn_on_option_81(benchmark):
    """[ddns] on, every client sends option 81: decide() per OFFER and ACK."""
    _bench(benchmark, ddns=True, names=True)


@pytest.mark.benchmark(group="ddns", timer=time.process_time)
def test_hostname_echo_without_ddns(benchmark):
    """No [ddns], every client sends a plain option 12: echoed in C, no Python call."""
    _bench(benchmark, ddns=False, names=False, hostname="laptop-")


@pytest.mark.benchmark(group="ddns", timer=time.process_time)
def test_hostname_mixed_case_without_ddns(benchmark):
    """No [ddns], every client sends an option 12 in capitals: decide_without_ddns."""
    _bench(benchmark, ddns=False, names=False, hostname="Laptop-")


@pytest.mark.benchmark(group="ddns", timer=time.process_time)
def test_fqdn_option_81_without_ddns(benchmark):
    """No [ddns], every client sends option 81: decide_without_ddns per DORA (N=1 answer)."""
    _bench(benchmark, ddns=False, names=True)
