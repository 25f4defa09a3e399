"""RFC 2131 4.1 reply destinations (the one function), subnet selection precedence, and the
compiled engine being the one loaded."""

from __future__ import annotations

import importlib.machinery

import pytest
from dhcpsim import ip, make_config

import fastdhcp._engine
import fastdhcp.engine
from fastdhcp.engine import SubnetSelector, reply_destination

OFFER, ACK, NAK = 2, 5, 6
MAC = b"\x02\x00\x00\x00\x00\x01"
BCAST = 0xFFFFFFFF
G, C, Y = ip("198.18.10.1"), ip("198.18.0.50"), ip("198.18.0.60")

# (case, msg_type, giaddr, ciaddr, broadcast bit, yiaddr, htype, chaddr) ->
# (dest_ip, dest_port, broadcast, l2_unicast, set_broadcast_flag)
CASES = [
    ("relayed offer to giaddr:67", OFFER, G, 0, False, Y, 1, MAC, (G, 67, False, None, False)),
    ("relayed ack, ciaddr set, still to relay", ACK, G, C, False, C, 1, MAC,
     (G, 67, False, None, False)),
    ("relayed nak sets broadcast bit", NAK, G, 0, False, 0, 1, MAC, (G, 67, False, None, True)),
    ("nak not relayed is broadcast", NAK, 0, C, False, 0, 1, MAC,
     (BCAST, 68, True, None, False)),
    ("ciaddr set: unicast to ciaddr", ACK, 0, C, True, C, 1, MAC, (C, 68, False, None, False)),
    ("broadcast bit: broadcast", OFFER, 0, 0, True, Y, 1, MAC, (BCAST, 68, True, None, False)),
    ("no bit: layer-2 unicast to yiaddr", OFFER, 0, 0, False, Y, 1, MAC,
     (BCAST, 68, True, (Y, MAC), False)),
    ("not ethernet: broadcast", OFFER, 0, 0, False, Y, 6, MAC + b"\0\0",
     (BCAST, 68, True, None, False)),
    ("inform reply without ciaddr: broadcast", ACK, 0, 0, False, 0, 1, MAC,
     (BCAST, 68, True, None, False)),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_4_1_reply_destination(case):
    _, mtype, giaddr, ciaddr, bflag, yiaddr, htype, chaddr, expect = case
    assert reply_destination(mtype, giaddr, ciaddr, bflag, yiaddr, htype, chaddr) == expect


def test_4_1_reply_destination_uses_configured_ports():
    assert reply_destination(OFFER, G, 0, False, Y, 1, MAC, 1067, 1068)[:2] == (G, 1067)
    assert reply_destination(OFFER, 0, 0, True, Y, 1, MAC, 1067, 1068)[:2] == (BCAST, 1068)


MORE = """
[[subnet4]]
id = 2
subnet = "198.18.1.0/24"
relay = ["198.18.0.7"]
shared-network = "s"
pools = ["198.18.1.10 - 198.18.1.20"]

[[subnet4]]
id = 3
subnet = "198.18.2.0/24"
shared-network = "s"
pools = ["198.18.2.10 - 198.18.2.20"]
"""


@pytest.fixture(scope="module")
def selector() -> SubnetSelector:
    return SubnetSelector(make_config(more=MORE).subnets)


def sid(s) -> int | None:
    return None if s is None else s.id


def test_selection_option_118_first(selector):
    assert sid(selector.select(ip("198.18.1.1"), ip("198.18.2.1"), G, C, "eth0", 0)) == 2


def test_selection_link_selection_before_giaddr(selector):
    assert sid(selector.select(0, ip("198.18.2.1"), ip("198.18.1.1"), 0, "eth0", 0)) == 3


def test_selection_relay_list_before_containment(selector):
    # 198.18.0.7 lies in subnet 1 but subnet 2 lists it as a relay.
    assert sid(selector.select(0, 0, ip("198.18.0.7"), 0, "", 0)) == 2
    assert sid(selector.select(0, 0, ip("198.18.0.8"), 0, "", 0)) == 1


def test_selection_by_containment(selector):
    assert sid(selector.containing(ip("198.18.2.130"))) == 3
    assert sid(selector.containing(ip("198.18.0.255"))) == 1
    assert selector.containing(ip("198.18.3.0")) is None


def test_selection_ciaddr_then_receiving_link(selector):
    assert sid(selector.select(0, 0, 0, ip("198.18.1.5"), "eth0", ip("198.18.0.1"))) == 2
    assert sid(selector.select(0, 0, 0, ip("203.0.113.5"), "eth0", ip("198.18.0.1"))) == 1
    assert sid(selector.select(0, 0, 0, 0, "eth0", ip("203.0.113.1"))) == 1
    assert sid(selector.select(0, 0, 0, 0, "", ip("198.18.1.1"))) == 2
    assert selector.select(0, 0, 0, 0, "eth7", ip("203.0.113.1")) is None


def test_selection_selector_naming_unserved_address_selects_nothing(selector):
    assert selector.select(ip("203.0.113.1"), 0, ip("198.18.0.9"), 0, "eth0", 0) is None


def test_shared_network_group(selector):
    s2 = selector.containing(ip("198.18.1.1"))
    s3 = selector.containing(ip("198.18.2.1"))
    assert [s.id for s in selector.group(s2)] == [2, 3]
    assert [s.id for s in selector.group(s3)] == [3, 2]


def test_compiled_engine_is_loaded():
    assert fastdhcp.engine.Engine is fastdhcp._engine.Engine
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    assert fastdhcp._engine.__file__.endswith(suffixes)
