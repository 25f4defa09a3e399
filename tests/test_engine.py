"""RFC 2131 behaviour of the engine, one test per case, named by section.

Every exchange goes through ``tests/dhcpsim.py``: requests are built there with struct, replies
are decoded there (not with the codec under test), on a fake clock, against a MemoryLeaseStore.
"""

from __future__ import annotations

import struct

import pytest
from dhcpsim import (
    ACK,
    BROADCAST_FLAG,
    DECLINE,
    DISCOVER,
    NAK,
    OFFER,
    RELEASE,
    REQUEST,
    SERVER_IP,
    Client,
    Network,
    build_request,
    decode_reply,
    ip,
    mac,
    make_config,
    make_network,
)

from fastdhcp._codec import parse
from fastdhcp.consts import Outcome
from fastdhcp.engine import Decision, Engine, Link, PoolStat
from fastdhcp.leases import Lease, LeaseState, MemoryLeaseStore

POOL = [ip("198.18.0.100") + i for i in range(4)]
LINK = Link("eth0", SERVER_IP)


def client(net: Network, n: int = 1, **kw) -> Client:
    return Client(net, mac(n), **kw)


def fill_pool(net: Network, first: int = 100) -> list[Client]:
    cs = [client(net, first + i) for i in range(len(POOL))]
    for c in cs:
        assert c.dora().mtype == ACK
    return cs


# ----------------------------------------------------------------------------- 4.3.1 DISCOVER


def test_4_3_1_discover_offers_pool_address_with_required_fields(net):
    c = client(net)
    r = c.discover()
    assert r.mtype == OFFER
    assert r.yiaddr in POOL
    assert r.ciaddr == 0 and r.siaddr == 0 and r.giaddr == 0
    assert r.u32(51) == 3600  # table 3: OFFER MUST carry the lease time
    assert r.server_id == SERVER_IP  # and the server identifier
    assert r.options[1] == b"\xff\xff\xff\x00"
    assert r.order[0] == 53


def test_4_3_1_discover_commits_nothing(net):
    c = client(net)
    c.discover()
    assert len(net.store) == 0
    assert net.store.take_pending() == []
    assert net.decisions[-1].binding is None


def test_4_3_1_discover_prefers_existing_binding(net):
    c = client(net)
    first = c.dora().yiaddr
    # The client asks for another free address: its binding wins.
    other = next(a for a in POOL if a != first)
    r = c.discover(requested_ip=other)
    assert r.yiaddr == first


def test_4_3_1_discover_prefers_reservation_over_requested():
    net = make_network(
        subnet_extra='[[subnet4.reservations]]\nhw-address = "02:00:00:00:00:07"\n'
        'ip-address = "198.18.0.20"\n'
    )
    r = client(net, 7).discover(requested_ip=POOL[2])
    assert r.yiaddr == ip("198.18.0.20")


def test_4_3_1_discover_honours_free_requested_address(net):
    assert client(net).discover(requested_ip=POOL[3]).yiaddr == POOL[3]


def test_4_3_1_discover_ignores_requested_address_in_use(net):
    a = client(net, 1)
    a.dora(requested_ip=POOL[3])
    assert a.address == POOL[3]
    assert client(net, 2).discover(requested_ip=POOL[3]).yiaddr != POOL[3]


def test_4_3_1_discover_ignores_requested_address_outside_pools(net):
    r = client(net).discover(requested_ip=ip("198.18.0.50"))
    assert r.yiaddr in POOL


def test_4_3_1_discover_offers_previous_address_after_release(net):
    c = client(net)
    c.dora(requested_ip=POOL[2])
    c.release()
    assert client(net, 9).discover() is not None  # someone else gets another address
    assert c.dora().yiaddr == POOL[2]


def test_4_3_1_repeated_discover_gets_same_offer(net):
    c = client(net)
    a = c.discover().yiaddr
    net.clock.advance(30)
    assert c.discover().yiaddr == a


def test_4_3_1_offer_is_held_from_other_clients(net):
    offered = {client(net, i).discover().yiaddr for i in range(4)}
    assert offered == set(POOL)
    d, r = net.exchange(build_request(DISCOVER, xid=1, chaddr=mac(99)))
    assert r is None and d.kind is Outcome.DROP and d.reason == "pool-exhausted"


def test_4_3_1_offer_expires_after_offer_lifetime(net):
    for i in range(4):
        client(net, i).discover()
    net.advance(61)  # offer-lifetime 60 s
    assert client(net, 99).discover() is not None
    assert net.engine.offered(b"\x01" + mac(0)) == 0


def test_4_3_1_pool_exhausted_is_a_counted_drop(net):
    fill_pool(net)
    c = client(net, 50)
    assert c.discover() is None
    assert c.last_decision.kind is Outcome.DROP and c.last_decision.reason == "pool-exhausted"


def test_4_3_1_client_identifier_is_the_client_key(net):
    # Same chaddr, different client identifiers: two clients (RFC 2131 4.2).
    a = client(net, 1, client_id=b"\x00alpha")
    b = client(net, 1, client_id=b"\x00beta")
    assert a.dora().yiaddr != b.dora().yiaddr
    assert net.store.get(a.address).client_key == b"\x00alpha"


def test_4_3_1_client_identifier_echoed_rfc6842(net):
    r = client(net, client_id=b"\x01" + mac(1)).discover()
    assert r.options[61] == b"\x01" + mac(1)


def test_4_3_1_lease_time_honours_client_request_within_bounds():
    net = make_network(global_extra="min-valid-lifetime = 600\nmax-valid-lifetime = 7200")
    c = client(net)
    assert c._send(DISCOVER, lease_time=1000).u32(51) == 1000
    assert c._send(DISCOVER, lease_time=60).u32(51) == 600
    assert c._send(DISCOVER, lease_time=99999).u32(51) == 7200
    assert c._send(DISCOVER).u32(51) == 3600


def test_4_3_1_t1_t2_default_to_half_and_seven_eighths(net):
    r = client(net).discover()
    assert (r.u32(51), r.u32(58), r.u32(59)) == (3600, 1800, 3150)


def test_4_3_1_t1_t2_from_configured_timers():
    net = make_network(global_extra="renew-timer = 1000\nrebind-timer = 2000")
    r = client(net).discover()
    assert (r.u32(58), r.u32(59)) == (1000, 2000)


def test_4_3_1_options_filtered_by_parameter_request_list(net):
    c = client(net, prl=bytes((42, 3)))
    r = c.discover()
    # 42 (ntp) asked for; 1, 3, 6, 15 always; nothing else configured leaks in.
    assert r.options[42] == bytes((198, 18, 0, 123))
    assert set(r.options) == {53, 54, 51, 58, 59, 1, 3, 6, 15, 42}
    # RFC 2132 3.3: subnet mask before routers; then the client's order.
    assert r.order.index(1) < r.order.index(42) < r.order.index(3)
    c.prl = bytes((3,))
    assert 42 not in c.discover().options


def test_4_3_1_no_parameter_request_list_gets_basic_options(net):
    c = client(net, prl=None)
    d, r = net.exchange(build_request(DISCOVER, xid=5, chaddr=c.mac))
    assert {1, 3, 6, 15} <= set(r.options) and 42 not in r.options


def test_4_3_1_discover_without_subnet_is_dropped(net):
    elsewhere = Link("eth9", ip("203.0.113.1"))
    d, r = net.exchange(build_request(DISCOVER, xid=1, chaddr=mac(1)), elsewhere)
    assert r is None and d.reason == "no-subnet"


# ----------------------------------------------------------------------- 4.3.2 REQUEST


def test_4_3_2_selecting_ack_stages_binding_before_reply(net):
    c = client(net)
    offer = c.discover()
    data = build_request(REQUEST, xid=7, chaddr=c.mac, requested_ip=offer.yiaddr,
                         server_id=SERVER_IP)
    d = net.engine.handle(parse(data), LINK, net.clock.now)
    assert d.kind is Outcome.ACK
    # RFC 2131 3.1 step 4: the binding is staged and must commit before the ACK leaves.
    assert d.binding is not None and d.binding.ip == offer.yiaddr
    assert net.store.take_pending() == [d.binding]
    lease = net.store.get(offer.yiaddr)
    assert lease.state == LeaseState.DEFAULT and lease.client_key == b"\x01" + c.mac
    assert lease.expires == int(net.clock.now) + 3600
    r = decode_reply(d.reply)
    assert r.mtype == ACK and r.yiaddr == offer.yiaddr and r.u32(51) == 3600


def test_4_3_2_selecting_other_server_drops_offer_silently(net):
    fill = [client(net, i) for i in range(3)]
    for c in fill:
        c.dora()
    c = client(net, 10)
    offer = c.discover()
    assert client(net, 11).discover() is None  # pool held
    r = c.select(offer, server_id=ip("198.18.0.2"))
    assert r is None and c.last_decision.reason == "other-server"
    # The address is free again at once.
    assert client(net, 11).discover().yiaddr == offer.yiaddr


def test_4_3_2_selecting_address_gone_gets_nak(net):
    a = client(net, 1)
    a.dora(requested_ip=POOL[0])
    b = client(net, 2)
    b.discover()
    forged = build_request(REQUEST, xid=3, chaddr=b.mac, requested_ip=POOL[0],
                           server_id=SERVER_IP)
    d, r = net.exchange(forged)
    assert r.mtype == NAK and r.yiaddr == 0 and r.ciaddr == 0
    assert 51 not in r.options and r.server_id == SERVER_IP
    assert net.store.get(POOL[0]).client_key == b"\x01" + a.mac


def test_4_3_2_selecting_after_offer_expired_still_acks_if_free(net):
    c = client(net)
    offer = c.discover()
    net.advance(120)
    assert c.select(offer).mtype == ACK


def test_4_3_2_init_reboot_right_address_acks(net):
    c = client(net)
    c.dora()
    addr = c.address
    r = c.reboot(addr)
    assert r.mtype == ACK and r.yiaddr == addr


def test_4_3_2_init_reboot_wrong_network_naks(net):
    c = client(net)
    c.dora()
    r = c.reboot(ip("203.0.113.7"))
    assert r.mtype == NAK and c.last_decision.reason == "wrong-network"
    # RFC 2131 4.1: a NAK not relayed is broadcast.
    assert c.last_decision.dest_ip == 0xFFFFFFFF and c.last_decision.broadcast


def test_4_3_2_init_reboot_other_clients_address_naks(net):
    a = client(net, 1)
    a.dora()
    b = client(net, 2)
    b.dora()
    assert b.reboot(a.address).mtype == NAK


def test_4_3_2_init_reboot_unknown_client_is_silent(net):
    r = client(net, 5).reboot(POOL[1])
    assert r is None
    assert net.decisions[-1].reason == "unknown-client"


def test_4_3_2_init_reboot_unknown_client_authoritative_naks():
    net = make_network(server_extra="authoritative = true")
    assert client(net, 5).reboot(POOL[1]).mtype == NAK


def test_4_3_2_renewing_extends_and_unicasts_to_ciaddr(net):
    c = client(net)
    c.dora()
    before = net.store.get(c.address).expires
    net.clock.advance(1800)
    r = c.renew()
    assert r.mtype == ACK and r.ciaddr == c.address and r.yiaddr == c.address
    d = c.last_decision
    assert (d.dest_ip, d.dest_port, d.broadcast) == (c.address, 68, False)
    assert net.store.get(c.address).expires == before + 1800
    assert d.binding is not None


def test_4_3_2_rebinding_extends(net):
    c = client(net)
    c.dora()
    net.clock.advance(3200)
    assert c.rebind().mtype == ACK
    assert net.store.get(c.address).expires == int(net.clock.now) + 3600


def test_4_3_2_renewing_after_reclaim_rebinds_if_still_free(net):
    c = client(net)
    c.dora()
    net.advance(4000)
    assert net.store.get(c.address).state == LeaseState.EXPIRED_RECLAIMED
    assert c.renew().mtype == ACK
    assert net.store.get(c.address).state == LeaseState.DEFAULT


def test_4_3_2_renewing_address_no_longer_yours_naks(net):
    a = client(net, 1)
    a.dora()
    net.advance(4000)  # a's binding expires and is reclaimed
    b = client(net, 2)
    b.dora(requested_ip=a.address)
    assert b.address == a.address
    assert a.renew().mtype == NAK
    assert net.store.get(b.address).client_key == b"\x01" + b.mac


def test_4_3_2_renewing_unknown_address_is_silent_unless_authoritative(net):
    c = client(net, 3)
    c.address = POOL[2]
    c.state = "BOUND"
    assert c.renew() is None
    net2 = make_network(server_extra="authoritative = true")
    c2 = client(net2, 3)
    c2.address = POOL[2]
    assert c2.renew().mtype == NAK


def test_4_3_2_new_binding_ends_the_clients_old_one(net):
    c = client(net)
    c.dora(requested_ip=POOL[0])
    # SELECTING another free address (e.g. after moving): one binding per client.
    d, r = net.exchange(build_request(REQUEST, xid=9, chaddr=c.mac, requested_ip=POOL[1],
                                      server_id=SERVER_IP))
    assert r.mtype == ACK
    assert net.store.get(POOL[0]).state == LeaseState.RELEASED
    assert net.store.get_by_client(b"\x01" + c.mac).ip == POOL[1]
    assert client(net, 2).discover(requested_ip=POOL[0]).yiaddr == POOL[0]


# ----------------------------------------------------------------------- 4.3.3 DECLINE


def test_4_3_3_declined_address_set_aside_for_probation():
    net = make_network(global_extra="decline-probation-period = 1000")
    c = client(net)
    c.dora(requested_ip=POOL[0])
    assert c.decline() is None
    lease = net.store.get(POOL[0])
    assert lease.state == LeaseState.DECLINED and lease.expires == int(net.clock.now) + 1000
    others = [client(net, 10 + i).discover() for i in range(4)]
    assert POOL[0] not in {o.yiaddr for o in others if o}
    assert others[-1] is None  # only three addresses left
    net.advance(1001)
    assert net.store.get(POOL[0]).state == LeaseState.EXPIRED_RECLAIMED
    assert client(net, 20).discover(requested_ip=POOL[0]).yiaddr == POOL[0]


def test_4_3_3_decline_of_someone_elses_address_is_ignored(net):
    a = client(net, 1)
    a.dora()
    d, r = net.exchange(build_request(DECLINE, xid=1, chaddr=mac(2), requested_ip=a.address,
                                      server_id=SERVER_IP))
    assert r is None and d.reason == "decline-unknown"
    assert net.store.get(a.address).state == LeaseState.DEFAULT


# ----------------------------------------------------------------------- 4.3.4 RELEASE


def test_4_3_4_release_ends_binding_and_frees_address(net):
    cs = fill_pool(net)
    addr = cs[0].address
    assert cs[0].release() is None
    # RFC 2131 4.3.4: silence is the answer; processed, not a drop
    assert (net.decisions[-1].kind, net.decisions[-1].reason) == (Outcome.SILENT, "released")
    lease = net.store.get(addr)
    assert lease.state == LeaseState.RELEASED
    assert lease.client_key == b"\x01" + cs[0].mac  # affinity kept
    assert client(net, 77).discover().yiaddr == addr
    assert net.engine.pool_stats()[0].used == 4


def test_4_3_4_release_by_another_client_is_ignored(net):
    a = client(net, 1)
    a.dora()
    d, _ = net.exchange(build_request(RELEASE, xid=1, chaddr=mac(2), ciaddr=a.address,
                                      server_id=SERVER_IP))
    assert (d.kind, d.reason) == (Outcome.DROP, "release-unknown")
    assert net.store.get(a.address).state == LeaseState.DEFAULT


# ----------------------------------------------------------------------- 4.3.5 INFORM


def test_4_3_5_inform_acks_configuration_without_lease_fields(net):
    c = client(net, prl=bytes((3, 42)))
    r = c.inform(ip("198.18.0.40"))
    assert r.mtype == ACK and r.yiaddr == 0 and r.ciaddr == ip("198.18.0.40")
    assert not {51, 58, 59} & set(r.options)
    assert r.options[42] == bytes((198, 18, 0, 123)) and r.server_id == SERVER_IP
    d = c.last_decision
    assert (d.dest_ip, d.dest_port, d.binding) == (ip("198.18.0.40"), 68, None)
    assert len(net.store) == 0


# --------------------------------------------------------------- 4.1 reply destination


def test_4_1_no_ciaddr_no_broadcast_bit_unicasts_at_layer2(net):
    c = client(net)
    c.discover()
    d = c.last_decision
    assert d.l2_unicast == (c.offered, c.mac)
    assert d.dest_ip == 0xFFFFFFFF and d.broadcast  # fallback


def test_4_1_broadcast_bit_broadcasts(net):
    c = client(net, broadcast=True)
    r = c.discover()
    d = c.last_decision
    assert d.l2_unicast is None and d.dest_ip == 0xFFFFFFFF and d.dest_port == 68
    assert r.flags & BROADCAST_FLAG


def test_4_1_non_ethernet_client_gets_broadcast(net):
    d, r = net.exchange(build_request(DISCOVER, xid=1, chaddr=b"\x01" * 8, htype=6))
    assert r.mtype == OFFER and d.l2_unicast is None and d.broadcast


def test_4_1_nak_without_relay_is_broadcast(net):
    c = client(net)
    r = c.reboot(ip("203.0.113.9"))
    assert r.mtype == NAK
    assert c.last_decision.dest_ip == 0xFFFFFFFF


# --------------------------------------------------------------- messages that get no answer


def test_4_1_bootreply_and_bootp_are_dropped(net):
    data = bytearray(build_request(DISCOVER, xid=1, chaddr=mac(1)))
    data[0] = 2
    assert net.exchange(bytes(data))[0].reason == "bootreply"
    bootp = build_request(DISCOVER, xid=1, chaddr=mac(1))
    bootp = bootp[:240] + b"\xff" + bootp[241 + 3 :]  # no option 53
    assert net.exchange(bootp)[0].reason == "bootp"


# --------------------------------------------------------------- expiry, recovery, stats


def test_expiry_reclaims_binding_and_frees_address(net):
    cs = fill_pool(net)
    assert client(net, 90).discover() is None
    net.clock.advance(3601)
    nxt = net.engine.reclaim(net.clock.now, 2)
    assert nxt == net.clock.now  # limit hit: call again at once
    net.advance(0)
    assert {net.store.get(c.address).state for c in cs} == {LeaseState.EXPIRED_RECLAIMED}
    assert net.engine.pool_stats()[0].used == 0
    assert net.engine.reclaim(net.clock.now) > net.clock.now


def test_reclaim_returns_next_offer_expiry(net):
    client(net).discover()
    assert net.engine.reclaim(net.clock.now) == net.clock.now + 1.0
    net.clock.advance(59.5)
    assert net.engine.reclaim(net.clock.now) == pytest.approx(net.clock.now + 0.5)


def test_rollback_after_failed_commit_frees_addresses(net):
    c = client(net)
    offer = c.discover()
    data = build_request(REQUEST, xid=7, chaddr=c.mac, requested_ip=offer.yiaddr,
                         server_id=SERVER_IP)
    d = net.engine.handle(parse(data), LINK, net.clock.now)
    batch = net.store.take_pending()
    # The commit fails: the store drops what it staged; the engine follows.
    del net.store._by_ip[d.binding.ip]
    del net.store._by_client[d.binding.client_key]
    net.store.failed(batch)
    net.engine.rollback(batch)
    assert net.engine.pool_stats()[0].used == 0


def test_startup_rebuilds_bitmaps_from_store(net):
    cs = fill_pool(net)
    released = cs[1].address
    cs[0].decline()
    cs[1].release()
    engine2 = Engine(net.engine.config, net.store)
    stats = engine2.pool_stats()
    assert stats == [PoolStat(1, "198.18.0.100 - 198.18.0.103", 4, 3)]
    net.engine = engine2
    c = client(net, 60)
    assert c.dora().yiaddr == released


def test_pool_stats_counts_offers_and_reservations():
    net = make_network(
        subnet_extra='[[subnet4.reservations]]\nhw-address = "02:00:00:00:00:07"\n'
        'ip-address = "198.18.0.101"\n'
    )
    assert net.engine.pool_stats()[0].used == 1
    client(net, 1).discover()
    assert net.engine.pool_stats()[0].used == 2


def test_decision_has_the_contract_fields(net):
    d = client(net).discover() and net.decisions[-1]
    assert isinstance(d, Decision)
    for name in ("kind", "reply", "dest_ip", "dest_port", "broadcast", "l2_unicast", "binding",
                 "reason"):
        assert hasattr(d, name)
    assert not hasattr(d, "__dict__")


def test_bound_client_never_gets_reserved_address_of_another(net):
    net = make_network(
        subnet_extra='[[subnet4.reservations]]\nhw-address = "02:00:00:00:00:07"\n'
        'ip-address = "198.18.0.100"\n'
    )
    got = {client(net, i).discover(requested_ip=POOL[0]).yiaddr for i in range(3)}
    assert POOL[0] not in got
    assert client(net, 7).dora().yiaddr == POOL[0]


def test_store_records_hostname_and_relay_info(net):
    c = client(net)
    offer = c.discover()
    net.exchange(build_request(REQUEST, xid=3, chaddr=c.mac, requested_ip=offer.yiaddr,
                               server_id=SERVER_IP, hostname=b"printer"))
    assert net.store.get(offer.yiaddr).hostname == "printer"


def test_request_without_any_address_is_dropped(net):
    d, r = net.exchange(build_request(REQUEST, xid=1, chaddr=mac(1)))
    assert r is None and d.reason == "no-requested-address"


def test_lease_record_fields(net):
    c = client(net)
    c.dora()
    lease = net.store.get(c.address)
    assert isinstance(lease, Lease)
    assert lease.hw_address == c.mac and lease.subnet_id == 1
    assert lease.issued == int(net.clock.now)


def test_engine_uses_given_store_only():
    store = MemoryLeaseStore()
    store.stage(Lease(POOL[0], b"\x01" + mac(5), mac(5), 1, LeaseState.DEFAULT, 0, 10**10))
    store.take_pending()
    net = Network(make_config(), LINK, store=store)
    assert client(net, 5).discover().yiaddr == POOL[0]
    assert client(net, 6).discover(requested_ip=POOL[0]).yiaddr != POOL[0]


def test_struct_reply_header_sizes(net):
    r = client(net).discover()
    assert r.size >= 300
    assert struct.calcsize("!BBBBIHHIIII16s64s128s") == 236


def test_renewal_without_hostname_keeps_recorded_name(net):
    c = client(net)
    offer = c.discover()
    net.exchange(build_request(REQUEST, xid=3, chaddr=c.mac, requested_ip=offer.yiaddr,
                               server_id=SERVER_IP, hostname=b"printer"))
    net.exchange(build_request(REQUEST, xid=4, chaddr=c.mac, ciaddr=offer.yiaddr))
    lease = net.store.get(offer.yiaddr)
    assert lease.hostname == "printer" and lease.state == LeaseState.DEFAULT


@pytest.mark.parametrize("npools", [3, 70])  # both start-up paths: scan-all and sorted slices
def test_startup_rebuild_with_many_pools(npools):
    pools = ", ".join(f'"10.1.{i}.10 - 10.1.{i}.12"' for i in range(npools))
    more = f"""
[[subnet4]]
id = 7
subnet = "10.1.0.0/16"
relay = ["198.18.30.1"]
pools = [{pools}]

[[subnet4.reservations]]
hw-address = "02:00:00:00:99:99"
ip-address = "10.1.1.11"
"""
    config = make_config(more=more)
    store = MemoryLeaseStore()
    active = set()
    for n, i in enumerate(range(0, npools, 2)):
        addr = ip(f"10.1.{i}.{10 + n % 3}")
        state = (LeaseState.DEFAULT, LeaseState.DECLINED, LeaseState.RELEASED)[n % 3]
        store.stage(Lease(addr, b"\x01" + mac(n), mac(n), 7, state, 0, 2**31))
        if state != LeaseState.RELEASED:
            active.add(addr)
    store.stage(Lease(ip("198.18.0.101"), b"\x01" + mac(500), mac(500), 1, 0, 0, 2**31))
    store.take_pending()
    engine = Engine(config, store)
    stats = engine.pool_stats()
    assert len(stats) == npools + 1
    for st in stats:
        if st.subnet_id != 7:
            assert st.used == 1
            continue
        i = int(st.pool.split(".")[2])
        expect = {a for a in active if (a >> 8) & 0xFF == i}
        if i == 1:
            expect.add(ip("10.1.1.11"))
        assert st.used == len(expect), st


def test_offer_reason_says_how_the_address_was_chosen():
    net = make_network(
        subnet_extra='[[subnet4.reservations]]\nhw-address = "02:00:00:00:00:07"\n'
        'ip-address = "198.18.0.20"\n'
    )
    a = client(net, 1)
    a.discover()
    assert a.last_decision.reason == "allocated"
    a.discover()
    assert a.last_decision.reason == "same-offer"
    a.select()
    a.discover()
    assert a.last_decision.reason == "binding"
    a.dora()
    a.release()
    a.discover()
    assert a.last_decision.reason == "previous"
    b = client(net, 2)
    b.discover(requested_ip=POOL[3])
    assert b.last_decision.reason == "requested"
    client(net, 7).discover()
    assert net.decisions[-1].reason == "reservation"
