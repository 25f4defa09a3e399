"""Engine micro-benchmarks: a full DORA through ``Engine.handle`` (codec parse and reply build
included), a fresh client every time, against a MemoryLeaseStore.

Run: ``python3 -m pytest bench/bench_engine.py --benchmark-only``

One timed round plays ``PER_ROUND`` DORAs (two ``handle`` calls each: DISCOVER -> OFFER,
REQUEST -> ACK) for clients never seen before; the figure to read is the per-DORA median,
printed at the end of each benchmark and stored in ``extra_info["per_dora_us"]``
(pytest-benchmark's own columns are per round). The request bytes are prepared outside the
timed body (the REQUEST of client k carries the address the engine will offer it, learnt from
a twin engine fed the same DISCOVERs: allocation is deterministic next-fit).

The timer is CPU time of the process (``time.process_time``): the 2 cores of the bench machine
are shared, and wall-clock medians there measure the neighbours as much as the engine. Even CPU
time moves with a neighbour's load (a whole run by up to 2x): to compare two builds, interleave
their runs (before, after, before, ...) several times and compare the lowest medians.
"""

from __future__ import annotations

import json
import time

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
import pytest
from dhcpsim import (
    DISCOVER,
    REQUEST,
    SERVER_IP,
    build_request,
    ip,
    mac,
    make_config,
    relay_agent_info,
)

from fastdhcp._codec import parse
from fastdhcp.engine import Engine, Link
from fastdhcp.leases import MemoryLeaseStore

PER_ROUND = 100
ROUNDS = 300
RELAY = ip("198.18.20.1")
LINK = Link("", SERVER_IP)
PRL = bytes((1, 3, 6, 15, 28, 42))
NOW = 1_700_000_000.0

# A relayed /12 pool (1M addresses) so that no round ever runs it dry.
CONFIG_MORE = """
[[subnet4]]
id = 9
subnet = "10.0.0.0/12"
pools = ["10.0.0.10 - 10.15.255.254"]
relay = ["198.18.20.1"]
option-data = { routers = ["10.0.0.1"], broadcast-address = "10.15.255.255" }
"""


def _packets(config, n: int, relay_info: bool, hosts=None, chaddr=mac, extra: bytes = b""
             ) -> tuple[list[bytes], list[bytes]]:
    rai = relay_agent_info(circuit_id=b"ge-0/0/1.100", remote_id=b"cpe") if relay_info else None
    discovers = [
        build_request(DISCOVER, xid=k, chaddr=chaddr(k), prl=PRL, giaddr=RELAY, hops=1,
                      relay_info=rai, extra=extra)
        for k in range(n)
    ]
    twin = Engine(config, MemoryLeaseStore())
    if hosts is not None:
        twin.attach_hosts(hosts)
    requests = []
    for k, data in enumerate(discovers):
        d = twin.handle(parse(data), LINK, NOW)
        offered = int.from_bytes(d.reply[16:20], "big")
        requests.append(
            build_request(REQUEST, xid=k, chaddr=chaddr(k), prl=PRL, giaddr=RELAY, hops=1,
                          requested_ip=offered, server_id=SERVER_IP, relay_info=rai,
                          extra=extra)
        )
    return discovers, requests


def _dora_bench(benchmark, relay_info: bool, global_extra: str = "", hosts=None,
                chaddr=mac, more: str = CONFIG_MORE, extra: bytes = b"") -> None:
    config = make_config(global_extra=global_extra, more=more)
    n = PER_ROUND * (ROUNDS + 1)
    discovers, requests = _packets(config, n, relay_info, hosts, chaddr, extra)
    store = MemoryLeaseStore()
    engine = Engine(config, store)
    if hosts is not None:
        engine.attach_hosts(hosts)
    handle = engine.handle
    state = {"round": 0}

    def setup():
        store.take_pending()  # what the committer does between loop turns
        r = state["round"]
        state["round"] = r + 1
        lo = r * PER_ROUND
        return (discovers[lo : lo + PER_ROUND], requests[lo : lo + PER_ROUND]), {}

    def dora(ds: list[bytes], qs: list[bytes]) -> None:
        for i in range(PER_ROUND):
            handle(parse(ds[i]), LINK, NOW)
            handle(parse(qs[i]), LINK, NOW)

    benchmark.pedantic(dora, setup=setup, rounds=ROUNDS, iterations=1)
    # Every exchange must have ended in an ACK, or the figure measures something else.
    assert len(store) == PER_ROUND * ROUNDS
    per = benchmark.stats.stats.median / PER_ROUND * 1e6
    benchmark.extra_info["per_dora_us"] = round(per, 2)
    print(f"\n{benchmark.name}: median {per:.2f} us per DORA")


@pytest.mark.benchmark(group="engine", timer=time.process_time)
def test_dora_relayed(benchmark):
    """DISCOVER + REQUEST via a relay (giaddr), PRL of 6 options, no option 82."""
    _dora_bench(benchmark, relay_info=False)


@pytest.mark.benchmark(group="engine", timer=time.process_time)
def test_dora_relayed_option82(benchmark):
    """The same with option 82 (circuit-id, remote-id) echoed and recorded."""
    _dora_bench(benchmark, relay_info=True)


@pytest.mark.benchmark(group="engine", timer=time.process_time)
def test_dora_relayed_option82_subscriber_limit(benchmark):
    """The same with subscriber-lease-limit on (never reached): the cost of counting leases
    per circuit-id (a store read and a dict update per bind)."""
    _dora_bench(benchmark, relay_info=True, global_extra="subscriber-lease-limit = 16777216")


@pytest.mark.benchmark(group="engine", timer=time.process_time)
def test_dora_relayed_fixed_fields(benchmark):
    """test_dora_relayed with next-server and boot-file-name in [global]: siaddr and file in
    every OFFER and ACK (the subnet's fields, encoded at load, no merge per packet)."""
    _dora_bench(benchmark, relay_info=False,
                global_extra='next-server = "198.18.30.69"\nboot-file-name = "pxelinux.0"')


@pytest.mark.benchmark(group="engine", timer=time.process_time)
def test_renew(benchmark):
    """RENEWING REQUESTs (ciaddr, unicast) of bound clients: extend and stage."""
    config = make_config(more=CONFIG_MORE)
    n = PER_ROUND
    discovers, requests = _packets(config, n, False)
    store = MemoryLeaseStore()
    engine = Engine(config, store)
    for d, q in zip(discovers, requests, strict=True):
        engine.handle(parse(d), LINK, NOW)
        engine.handle(parse(q), LINK, NOW)
    bound = [store.get_by_client(b"\x01" + mac(k)).ip for k in range(n)]
    renews = [
        build_request(REQUEST, xid=k, chaddr=mac(k), prl=PRL, ciaddr=bound[k]) for k in range(n)
    ]
    handle = engine.handle

    def renew_all() -> None:
        for data in renews:
            handle(parse(data), LINK, NOW)
        store.take_pending()

    benchmark.pedantic(renew_all, rounds=ROUNDS, iterations=1)
    per = benchmark.stats.stats.median / n * 1e6
    benchmark.extra_info["per_renew_us"] = round(per, 2)
    print(f"\n{benchmark.name}: median {per:.2f} us per renewal")


# -- client classes: the reference's 16 ISP patterns loaded, this traffic matching some ------

#: What the classes give in the patterns run (the tests come from tests/classify_packets.py).
_CLASS_EXTRA = {
    "STB": 'option-data = { domain-name-servers = ["198.18.10.53"] }',
    "POP_B": 'option-data = { ntp-servers = ["198.18.50.123"] }',
    "WALLED": "valid-lifetime = 300",
    "IOT": "valid-lifetime = 600",
    "VOICE_OPTS": "only-if-required = true\n"
                  'option-data = { tftp-server-name = "voice.isp.example" }',
}


def _pattern_classes() -> str:
    from classify_packets import PATTERNS

    out, seen = [], set()
    for pat, name, test, _ in PATTERNS:
        if name in seen or pat == "P5":  # P5b's iPXE (P5's does not work in Kea 2.2)
            continue
        seen.add(name)
        # A JSON string is a TOML basic string.
        out.append(f"[[client-classes]]\nname = {json.dumps(name)}\ntest = {json.dumps(test)}\n"
                   f"{_CLASS_EXTRA.get(name, '')}\n")
    return "".join(out)


def _classified_subnet(guards: bool) -> str:
    """Subnet 9 as CONFIG_MORE, its pool split in two halves: with ``guards`` the first is
    the STB pool, the subnet is guarded by HAS_RAI (P13) and requires VOICE_OPTS (P12)."""
    g = ', client-class = "STB"' if guards else ""
    return f"""
[[subnet4]]
id = 9
subnet = "10.0.0.0/12"
pools = [{{ pool = "10.0.0.10 - 10.7.255.254"{g} }}, "10.8.0.0 - 10.15.255.254"]
relay = ["198.18.20.1"]
option-data = {{ routers = ["10.0.0.1"], broadcast-address = "10.15.255.255" }}
""" + ('client-class = "HAS_RAI"\nrequire-client-classes = ["VOICE_OPTS"]\n' if guards else "")


#: Every request of both runs: an STB (option 60) behind a relay adding option 82.
_STB = bytes((60, 9)) + b"STB-Amino"


@pytest.mark.benchmark(group="engine", timer=time.process_time)
def test_dora_relayed_option82_stb_no_classes(benchmark):
    """The reference for the patterns run: the same traffic (option 60, option 82), the same
    two pools, no class configured."""
    _dora_bench(benchmark, relay_info=True, more=_classified_subnet(False), extra=_STB)


@pytest.mark.benchmark(group="engine", timer=time.process_time)
def test_dora_relayed_option82_stb_16_patterns(benchmark):
    """The 20 class tests of the 16 patterns evaluated per request (pass 1, pass 2), the
    subnet guarded (HAS_RAI), the STB pool guarded, STB's DNS option, WALLED's lifetime and
    the required VOICE_OPTS's option 66 in every reply."""
    _dora_bench(benchmark, relay_info=True, more=_classified_subnet(True) + _pattern_classes(),
                extra=_STB)


@pytest.mark.benchmark(group="engine", timer=time.process_time)
def test_dora_relayed_option82_stb_class_fixed_fields(benchmark):
    """The STB traffic with one class, STB, whose next-server and boot-file-name beat the
    global boot-file-name: the per-packet merge of class and subnet fields (against
    test_dora_relayed_option82_stb_no_classes)."""
    stb = ('[[client-classes]]\nname = "STB"\ntest = "substring(option[60].hex,0,4) == '
           '\'STB-\'"\nnext-server = "198.18.30.69"\nboot-file-name = "stb.cfg"\n')
    _dora_bench(benchmark, relay_info=True, more=_classified_subnet(False) + stb, extra=_STB,
                global_extra='boot-file-name = "pxelinux.0"')


# -- reservations added through the API (fastdhcp.hosts): a million of them in LMDB ---------

API_HOSTS = 1_000_000


def _spread(tag: int, k: int) -> bytes:
    # MACs spread over the whole key space, as real ones are (numbered ones would all land in
    # the same few B-tree pages and measure a hot cache): an odd multiplier mod 2^40 is a
    # bijection, so the three sets (tag 0, 1, 2) never collide.
    return b"\x02" + ((((tag << 36) + k) * 0x9E3779B97F) % (1 << 40)).to_bytes(5, "big")


def _client_mac(k: int) -> bytes:
    return _spread(1, k)


def _reserved_mac(k: int) -> bytes:
    return _spread(2, k)


@pytest.fixture(scope="module")
def api_hosts(tmp_path_factory):
    """A lease database whose hosts table holds API_HOSTS hw-address hosts in subnet 9, the
    clients' own subnet (so every lookup searches the same B-tree a real one would), plus one
    for each client of the reserved-clients run. They reserve no address (subnet 9's pool is
    the whole subnet): each carries its own DNS option instead."""
    from fastdhcp.hosts import Host, HostTable, IdentifierType
    from fastdhcp.store import LmdbLeaseStore

    store = LmdbLeaseStore(tmp_path_factory.mktemp("hosts"), sync=False, create=True,
                           map_size=1 << 30)
    table = HostTable(store)
    hw = IdentifierType.HW_ADDRESS
    dns = {6: bytes((10, 0, 0, 53))}
    step = 100_000
    for lo in range(0, API_HOSTS, step):
        batch = [Host(9, hw, _spread(0, k), 0, "", dns)
                 for k in range(lo, min(lo + step, API_HOSTS))]
        table.written(store.host_write(table.add_many_fn(batch)))
    n = PER_ROUND * (ROUNDS + 1)
    table.written(store.host_write(table.add_many_fn(
        [Host(9, hw, _reserved_mac(k), 0, "", dns) for k in range(n)])))
    yield table
    store.close()


@pytest.mark.benchmark(group="engine", timer=time.process_time)
def test_dora_relayed_option82_1m_api_hosts(benchmark, api_hosts):
    """test_dora_relayed_option82 with a million API hosts in the hosts table, none for these
    clients: each DISCOVER and REQUEST looks the client's hw-address up in LMDB (a miss)."""
    _dora_bench(benchmark, relay_info=True, hosts=api_hosts, chaddr=_client_mac)


@pytest.mark.benchmark(group="engine", timer=time.process_time)
def test_dora_relayed_option82_spread_macs(benchmark):
    """The reference for the two runs with API hosts: test_dora_relayed_option82 with the
    same spread MACs, no hosts table."""
    _dora_bench(benchmark, relay_info=True, chaddr=_client_mac)


@pytest.mark.benchmark(group="engine", timer=time.process_time)
def test_dora_relayed_option82_1m_api_hosts_reserved(benchmark, api_hosts):
    """The same, every client having an API host (its own DNS option): the lookups hit, and
    each record is decoded once (then the engine's bounded cache serves it)."""
    _dora_bench(benchmark, relay_info=True, hosts=api_hosts, chaddr=_reserved_mac)
