"""Relayed clients: subnet selection (giaddr, relay, RFC 3011 option 118, RFC 3527 82.5),
option 82 echo (RFC 3046), server identifier override (RFC 5107), reservations by
hw-address / client-id / circuit-id, and shared networks."""

from __future__ import annotations

import pytest
from dhcpsim import (
    ACK,
    DISCOVER,
    NAK,
    OFFER,
    REQUEST,
    SERVER_IP,
    Client,
    Network,
    build_request,
    ip,
    mac,
    make_config,
    opt,
    relay_agent_info,
)
from scapy.layers.dhcp import BOOTP, DHCP

from fastdhcp.consts import Outcome
from fastdhcp.engine import Link

RELAY_2 = ip("198.18.10.1")  # listed in subnet 2's relay; not inside any subnet
RELAY_4 = ip("198.18.4.1")  # inside subnet 4
LISTEN = Link("", SERVER_IP)  # relayed traffic arrives on the listen-address socket

MORE = """
[[subnet4]]
id = 2
subnet = "198.18.1.0/24"
shared-network = "cable"
relay = ["198.18.10.1"]
pools = ["198.18.1.10 - 198.18.1.11"]
option-data = { routers = ["198.18.1.1"] }

[[subnet4]]
id = 3
subnet = "198.18.2.0/24"
shared-network = "cable"
pools = ["198.18.2.10 - 198.18.2.11"]
option-data = { routers = ["198.18.2.1"] }

[[subnet4]]
id = 4
subnet = "198.18.4.0/24"
pools = ["198.18.4.10 - 198.18.4.20"]

[[subnet4.reservations]]
circuit-id = "'ge-0/0/1'"
ip-address = "198.18.4.5"

[[subnet4.reservations]]
client-id = "01:02:00:00:00:00:42"
ip-address = "198.18.4.6"
option-data = { domain-name = "vip.example.net" }

[[subnet4.reservations]]
hw-address = "02:00:00:00:00:43"
ip-address = "198.18.4.15"
"""


@pytest.fixture
def net() -> Network:
    return Network(make_config(more=MORE), LISTEN)


def relayed(net: Network, n: int, giaddr: int = RELAY_4, **kw) -> Client:
    kw.setdefault("relay_info", relay_agent_info(circuit_id=b"port-%d" % n, remote_id=b"modem"))
    return Client(net, mac(n), giaddr=giaddr, **kw)


def in_subnet(addr: int, prefix: str) -> bool:
    import ipaddress

    return ipaddress.IPv4Address(addr) in ipaddress.IPv4Network(prefix)


def test_rfc2131_4_3_1_giaddr_selects_subnet_and_reply_goes_to_relay(net):
    c = relayed(net, 1)
    r = c.discover()
    assert in_subnet(r.yiaddr, "198.18.4.0/24")
    d = c.last_decision
    assert (d.dest_ip, d.dest_port, d.broadcast, d.l2_unicast) == (RELAY_4, 67, False, None)
    assert r.giaddr == RELAY_4 and r.hops == 0
    assert c.select(r).mtype == ACK
    assert c.last_decision.dest_ip == RELAY_4


def test_rfc3046_option_82_echoed_verbatim_and_last(net):
    rai = relay_agent_info(circuit_id=b"ge-0/0/9", remote_id=b"\x00\x01\x02")
    c = relayed(net, 1, relay_info=rai)
    r = c.discover()
    assert r.options[82] == rai
    assert r.order[-1] == 82
    c.select(r)
    assert net.store.get(c.address).relay_info == rai


def _long_relay_info() -> bytes:
    """616 bytes of option 82 (three instances on the wire, RFC 3396): more than a 576-byte
    reply can echo, as the engine fuzzer found."""
    return relay_agent_info(circuit_id=b"c" * 250, remote_id=b"r" * 250) + bytes((9, 110)) + (
        b"v" * 110)


def test_rfc3046_option_82_too_long_to_echo_is_dropped_before_any_state(net):
    rai = _long_relay_info()
    assert len(rai) == 616
    data = build_request(DISCOVER, xid=7, chaddr=mac(70), giaddr=RELAY_4, hops=1,
                         relay_info=rai)
    d, reply = net.exchange(data)
    assert (d.kind, d.reason, reply) == (Outcome.DROP, "relay-info-too-long", None)
    assert net.engine.offered(b"\x01" + mac(70)) == 0  # nothing held for an unsendable offer
    assert len(net.store) == 0


def test_rfc3046_long_option_82_echoed_when_the_client_allows_large_replies(net):
    rai = _long_relay_info()
    data = build_request(DISCOVER, xid=8, chaddr=mac(71), giaddr=RELAY_4, hops=1,
                         relay_info=rai, extra=opt(57, (1500).to_bytes(2, "big")))
    d, reply = net.exchange(data)
    assert d.kind is Outcome.OFFER
    assert reply.options[82] == rai  # joined again from its instances
    assert len(d.reply) <= 1500 - 28


def test_relay_list_selects_subnet(net):
    r = relayed(net, 1, giaddr=RELAY_2).discover()
    assert in_subnet(r.yiaddr, "198.18.1.0/24")
    assert r.options[3] == bytes((198, 18, 1, 1))


def test_rfc3011_option_118_beats_giaddr(net):
    c = relayed(net, 1, giaddr=RELAY_2)
    r = c._send(DISCOVER, subnet_selection=ip("198.18.4.0"), prl=c.prl)
    assert in_subnet(r.yiaddr, "198.18.4.0/24")
    # RFC 3011 3: the option comes back as sent, though 118 is not in the client's PRL
    assert 118 not in c.prl and r.options[118] == bytes((198, 18, 4, 0))
    r = c._send(REQUEST, subnet_selection=ip("198.18.4.0"), requested_ip=r.yiaddr,
                server_id=int.from_bytes(r.options[54], "big"), prl=c.prl)
    assert r is not None and r.options[53] == bytes((ACK,)) and r.options[118] == bytes(
        (198, 18, 4, 0))


def test_option_118_not_sent_not_echoed(net):
    r = relayed(net, 1, giaddr=RELAY_2).discover()
    assert 118 not in r.options


def test_rfc3527_link_selection_beats_giaddr(net):
    rai = relay_agent_info(circuit_id=b"x", link_selection=ip("198.18.4.77"))
    r = relayed(net, 1, giaddr=RELAY_2, relay_info=rai).discover()
    assert in_subnet(r.yiaddr, "198.18.4.0/24")


def test_unknown_link_is_dropped(net):
    c = relayed(net, 1, giaddr=ip("203.0.113.1"))
    assert c.discover() is None and c.last_decision.reason == "no-subnet"
    rai = relay_agent_info(link_selection=ip("203.0.113.5"))
    c = relayed(net, 2, giaddr=RELAY_4, relay_info=rai)
    assert c.discover() is None  # a selector naming an unserved link does not fall through


def test_rfc5107_server_id_override(net):
    override = ip("198.18.4.1")
    rai = relay_agent_info(circuit_id=b"p1", server_id_override=override)
    c = relayed(net, 1, relay_info=rai)
    offer = c.discover()
    assert offer.server_id == override
    ack = c.select(offer)
    assert ack.mtype == ACK and ack.server_id == override


def test_circuit_id_reservation(net):
    rai = relay_agent_info(circuit_id=b"ge-0/0/1")
    c = relayed(net, 1, relay_info=rai)
    assert c.dora().yiaddr == ip("198.18.4.5")  # outside the pool: reservations may be


def test_client_id_reservation_with_its_options(net):
    c = relayed(net, 5, client_id=bytes.fromhex("01020000000042"))
    r = c.dora()
    assert r.yiaddr == ip("198.18.4.6")
    assert r.options[15] == b"vip.example.net"
    # Everybody else keeps the subnet's options.
    assert relayed(net, 6).dora().options[15] == b"example.net"


def test_hw_address_reservation_in_pool_never_given_to_others(net):
    got = set()
    for n in range(20):
        r = relayed(net, 100 + n).dora()
        if r is not None:
            got.add(r.yiaddr)
    assert ip("198.18.4.15") not in got
    assert len(got) == 10  # 11 pool addresses minus the reserved one
    assert relayed(net, 0x43).dora().yiaddr == ip("198.18.4.15")


def test_shared_network_overflows_into_next_subnet(net):
    cs = [relayed(net, n, giaddr=RELAY_2) for n in range(5)]
    got = [c.dora() for c in cs]
    assert [in_subnet(r.yiaddr, "198.18.1.0/24") for r in got[:2]] == [True, True]
    assert [in_subnet(r.yiaddr, "198.18.2.0/24") for r in got[2:4]] == [True, True]
    assert got[4] is None and cs[4].last_decision.reason == "pool-exhausted"
    # Options come from the address's own subnet.
    assert got[2].options[3] == bytes((198, 18, 2, 1))
    assert net.store.get(got[2].yiaddr).subnet_id == 3


def test_shared_network_client_bound_in_other_subnet_is_fine_on_the_link(net):
    cs = [relayed(net, n, giaddr=RELAY_2) for n in range(3)]
    for c in cs:
        c.dora()
    c = cs[2]
    assert in_subnet(c.address, "198.18.2.0/24")
    assert c.rebind().mtype == ACK  # relayed via giaddr of subnet 2's relay
    assert c.reboot().mtype == ACK
    assert c.discover().yiaddr == c.address


def test_init_reboot_on_wrong_link_naks_via_relay_with_broadcast_bit(net):
    c = relayed(net, 1)
    c.dora()
    moved = relayed(net, 1, giaddr=RELAY_2)
    r = moved.reboot(c.address)
    assert r.mtype == NAK
    d = moved.last_decision
    # RFC 2131 4.1: NAK to the relay, with the broadcast bit so the relay broadcasts it.
    assert (d.dest_ip, d.dest_port) == (RELAY_2, 67)
    assert r.flags & 0x8000


def test_relayed_offer_parses_with_scapy(net):
    c = relayed(net, 1, client_id=b"\x01" + mac(1))
    c.discover()
    pkt = BOOTP(c.last_decision.reply)
    assert pkt.op == 2 and pkt.giaddr == "198.18.4.1"
    opts = {o[0]: o[1:] for o in pkt[DHCP].options if isinstance(o, tuple)}
    assert opts["message-type"] == (OFFER,)
    assert opts["server_id"] == ("198.18.0.1",)
    assert opts["lease_time"] == (3600,)
    assert opts["subnet_mask"] == ("255.255.255.0",)
    assert pkt[DHCP].options[-2][0] == "relay_agent_information"


def test_relayed_renew_unicast_from_client_is_selected_by_ciaddr(net):
    c = relayed(net, 1)
    c.dora()
    # RENEWING: the client unicasts to the server itself, no relay, giaddr 0.
    d, r = net.exchange(build_request(REQUEST, xid=77, chaddr=c.mac, ciaddr=c.address))
    assert r.mtype == ACK and d.dest_ip == c.address and d.dest_port == 68


def test_startup_rebuilds_every_pool_from_store_and_reservations(net):
    from fastdhcp.engine import Engine
    from fastdhcp.leases import Lease, LeaseState, MemoryLeaseStore

    store = MemoryLeaseStore()
    rows = [
        (ip("198.18.1.10"), LeaseState.DEFAULT),
        (ip("198.18.2.11"), LeaseState.DECLINED),
        (ip("198.18.2.10"), LeaseState.RELEASED),  # inactive: stays free
        (ip("198.18.4.12"), LeaseState.DEFAULT),
        (ip("198.18.0.100"), LeaseState.EXPIRED_RECLAIMED),
    ]
    for n, (addr, state) in enumerate(rows):
        store.stage(Lease(addr, b"\x01" + mac(n), mac(n), 0, state, 0, 2**31))
    store.take_pending()
    engine = Engine(net.engine.config, store)
    used = {(s.subnet_id, s.pool): s.used for s in engine.pool_stats()}
    assert used == {
        (1, "198.18.0.100 - 198.18.0.103"): 0,
        (2, "198.18.1.10 - 198.18.1.11"): 1,
        (3, "198.18.2.10 - 198.18.2.11"): 1,
        (4, "198.18.4.10 - 198.18.4.20"): 2,  # a lease and the hw-address reservation
    }
