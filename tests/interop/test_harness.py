"""The harness itself: teardown leaves nothing behind, perfdhcp's report is read right.

These need no DHCP server. They make their own small labs with their own tags (distinct from
the session lab's) so that they can check the machine for leftovers.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from . import netns
from .clients import parse_perfdhcp

# The report perfdhcp 2.2.0 printed here for a run with no drops (trimmed of delay lines).
PERFDHCP_OK = """\
Running: perfdhcp -4 -g single -l 198.18.8.2 -r 100 -R 500 -p 5 -W 1000000 -d 1 -s 1 198.18.8.1
Scenario: basic.
***Rate statistics***
Rate: 83.0608 4-way exchanges/second, expected rate: 100

***Malformed Packets***
Malformed packets: 0
***Statistics for: DISCOVER-OFFER***
sent packets: 499
received packets: 499
drops: 0
drops ratio: 0 %
orphans: 0
rejected leases: 0
non unique addresses: 0

min delay: 0.197 ms
***Statistics for: REQUEST-ACK***
sent packets: 499
received packets: 497
drops: 2
drops ratio: 0.401 %
orphans: 1
rejected leases: 0
non unique addresses: 0
"""


def test_parse_perfdhcp_counters_per_exchange():
    r = parse_perfdhcp(0, PERFDHCP_OK)
    assert r.stats["DISCOVER-OFFER"] == {
        "sent packets": 499, "received packets": 499, "drops": 0, "orphans": 0,
        "rejected leases": 0, "non unique addresses": 0}
    assert r.count("REQUEST-ACK", "received packets") == 497
    assert r.count("REQUEST-ACK", "drops") == 2
    assert r.count("REQUEST-ACK", "orphans") == 1
    # "Malformed packets" sits outside any exchange section and must not leak into one.
    assert "malformed packets" not in r.stats["REQUEST-ACK"]
    with pytest.raises(KeyError):
        r.count("REQUEST-ACK", "no such counter")


def test_build_lab_failure_half_way_removes_everything(interop_ready, monkeypatch):
    tag = f"h{os.getpid()}"
    real = netns.create_veth
    calls = []

    def failing(*args, **kw):
        calls.append(args[1])
        if len(calls) == 3:
            raise netns.CommandFailed("injected failure")
        return real(*args, **kw)

    monkeypatch.setattr(netns, "create_veth", failing)
    with pytest.raises(netns.CommandFailed, match="injected"):
        netns.build_lab(tag)
    assert len(calls) == 3
    assert netns.leftovers(tag) == []


def test_lab_close_ends_its_processes_and_links(interop_ready):
    tag = f"k{os.getpid()}"
    lab = netns.build_lab(tag)
    try:
        assert len([x for x in netns.leftovers(tag) if x.startswith("fd")]) == 5
        proc = lab.relay.popen(["sleep", "60"], stdout=subprocess.DEVNULL)
    finally:
        errors = lab.close()
    assert errors == []
    assert proc.wait(timeout=10) is not None
    assert netns.leftovers(tag) == []
