"""Benchmarks of the edge defences (fastdhcp.limits): what one request costs the service before
the engine when limits are on.

Run: python3 -m pytest bench/bench_limits.py --benchmark-only

Loops of 10,000 calls inside the timed body (one call is too short to time): divide by 10,000
for the per-request cost. ``known`` = a client already in the table; ``storm`` = a new key each
call with the table full (an eviction each time, the random-MAC storm case); ``guard`` = the
whole per-request check (client key, client bucket, relay bucket) on a parsed relayed request.
"""

from __future__ import annotations

import random

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
from scapy.layers.dhcp import BOOTP, DHCP

from fastdhcp._codec import parse
from fastdhcp.config import loads
from fastdhcp.limits import EdgeGuard, RateLimiter

N = 10_000


def test_allow_known_key(benchmark):
    lim = RateLimiter(1e9, 10, 65536, seed=1)
    key = b"\x01\x02\x00\x00\x00\x00\x01"

    def run():
        allow = lim.allow
        for i in range(N):
            allow(key, i * 1e-3)

    benchmark(run)


def test_allow_storm_of_new_keys(benchmark):
    lim = RateLimiter(10, 20, 4096, seed=1)
    rng = random.Random(1)
    keys = [b"\x01" + rng.randbytes(6) for _ in range(N)]
    for k in keys[:4096]:
        lim.allow(k, 0.0)
    t = [1.0]

    def run():
        allow = lim.allow
        now = t[0]
        for k in keys:
            allow(k, now)
        t[0] = now + 1.0

    benchmark(run)
    assert len(lim) == 4096


def test_guard_check_relayed(benchmark):
    guard = EdgeGuard.from_config(loads(
        '[server]\ntrusted-relays = ["198.18.0.1"]\n'
        "[server.limits]\nclient-rate = 1e6\nrelay-rate = 1e6\n").server)
    assert guard is not None
    msg = parse(bytes(BOOTP(op=1, htype=1, hlen=6, xid=1, giaddr="198.18.0.1",
                            chaddr=b"\x02" * 6 + b"\0" * 10)
                      / DHCP(options=[("message-type", "discover"), "end"])))
    src = 0xC6120001

    def run():
        check = guard.check
        for i in range(N):
            check(msg, src, i * 1e-3)

    benchmark(run)


def test_ignore_unrelayed_agent_info(benchmark):
    # RFC 3046 2.1: option 82 of a request with giaddr 0 hidden by the codec, no re-parse
    data = bytes(BOOTP(op=1, htype=1, hlen=6, xid=1, chaddr=b"\x02" * 6 + b"\0" * 10)
                 / DHCP(options=[("message-type", "request"), ("hostname", b"host"),
                                 ("relay_agent_information", b"\x01\x06port-1"), "end"]))

    def run() -> object:
        msg = parse(data)
        msg.ignore_unrelayed_agent_info()
        return msg

    msg = benchmark(run)
    assert msg.relay_agent_info is None and msg.hostname == b"host"
