"""Kea's HA classes in the engine: a query in peer X's scope is in ``HA_X`` before pool
selection, so pools split by ``client-class = "HA_server1"`` / ``"HA_server2"`` give each
client an address of its scope's pool (the same hash as the scope filter, checked on the
real Kea pair in tests/interop/test_ha_failover.py). The engine alone answers both scopes (the
filter is the packet path's), which is what a survivor in partner-down does."""

from __future__ import annotations

import struct

import pytest
from dhcpsim import DISCOVER, OFFER, build_request, ip, mac

from fastdhcp._hascope import lb_hash
from tests.test_classify_engine import HEAD, RELAY_A, SERVER, Link, Network, loads

POOLS = ((ip("198.19.80.10"), ip("198.19.80.99")), (ip("198.19.80.100"), ip("198.19.80.199")))


def config(mode: str, guards: tuple[str, str] = ("HA_server1", "HA_server2")) -> str:
    second = "secondary" if mode == "load-balancing" else "standby"
    return HEAD + f"""
[[subnet4]]
id = 10
subnet = "198.19.80.0/24"
relay = ["198.19.80.1"]
pools = [
  {{ pool = "198.19.80.10 - 198.19.80.99", client-class = "{guards[0]}" }},
  {{ pool = "198.19.80.100 - 198.19.80.199", client-class = "{guards[1]}" }},
]

[high-availability]
this-server-name = "server1"
mode = "{mode}"

[[high-availability.peers]]
name = "server1"
url = "http://198.19.77.1:8000/"
role = "primary"

[[high-availability.peers]]
name = "server2"
url = "http://198.19.77.2:8000/"
role = "{second}"
"""


def offered(net: Network, n: int, cid: bytes = b"") -> int | None:
    extra = bytes((61, len(cid))) + cid if cid else b""
    d, r = net.exchange(build_request(DISCOVER, xid=0x4A000000 + n, chaddr=mac(n),
                                      giaddr=RELAY_A, hops=1, extra=extra))
    if r is None or r.mtype != OFFER:
        return None
    return int(r.yiaddr)


def pool_index(a: int) -> int:
    return next(i for i, (lo, hi) in enumerate(POOLS) if lo <= a <= hi)


def test_load_balancing_scope_picks_the_pool() -> None:
    net = Network(loads(config("load-balancing")), Link("", SERVER))
    seen = set()
    for n in range(40):
        a = offered(net, n)
        assert a is not None
        want = lb_hash(mac(n)[:6]) % 2
        assert pool_index(a) == want, (n, a)
        seen.add(want)
    assert seen == {0, 1}
    # a client-id is the key when present (its whole value, type byte included)
    for n in range(40, 60):
        cid = b"\x01" + struct.pack("!I", 0xC0DE0000 + n)
        a = offered(net, n, cid)
        assert a is not None and pool_index(a) == lb_hash(cid) % 2, (n, a)


def test_hot_standby_every_client_is_the_primarys() -> None:
    net = Network(loads(config("hot-standby")), Link("", SERVER))
    for n in range(20):
        a = offered(net, n)
        assert a is not None and pool_index(a) == 0, (n, a)


@pytest.mark.parametrize("name", ["HA_server3", "HA_Server1"])
def test_a_name_no_peer_has_is_no_ones(name: str) -> None:
    # the first pool guarded by a class of no peer: nobody gets it (Kea accepts the guard)
    net = Network(loads(config("load-balancing", (name, "HA_server2"))), Link("", SERVER))
    for n in range(20):
        a = offered(net, n)
        if lb_hash(mac(n)[:6]) % 2 == 0:
            assert a is None, (n, a)
        else:
            assert a is not None and pool_index(a) == 1
