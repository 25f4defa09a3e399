"""``Engine.reload(config)``: leases survive, held offers survive when their address still has a
pool, bitmaps of changed pools are rebuilt, and no bound or held address is ever handed out.

Every exchange goes through ``tests/dhcpsim.py`` (requests built with struct, replies decoded
there), on a fake clock, against a MemoryLeaseStore shared across the reload as the service
shares its LmdbLeaseStore.
"""

from __future__ import annotations

import ipaddress

from config_builder import load_config
from dhcpsim import ACK, NAK, SERVER_IP, Client, Network, ip, mac, relay_agent_info
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdhcp.engine import Link
from fastdhcp.leases import LeaseState

LINK = Link("eth0", SERVER_IP)
RELAY = ip("198.18.10.1")


def config(pools: list[str], reservations: str = "", relayed_pools: list[str] | None = None,
           authoritative: bool = False):
    """eth0's subnet 198.18.0.0/24 with ``pools``; optionally a relayed subnet 198.18.1.0/24."""
    subnets = [{"id": 1, "subnet": "198.18.0.0/24", "interface": "eth0", "pools": pools}]
    if relayed_pools is not None:
        subnets.append({"id": 2, "subnet": "198.18.1.0/24", "relay": ["198.18.10.1"],
                        "pools": relayed_pools})
    return load_config({"interfaces": ["eth0"], "authoritative": authoritative},
                       global_={"valid-lifetime": 3600}, subnets=subnets,
                       subnet_extra=reservations)


def a(last: int) -> int:
    return ip("198.18.0.0") + last


def test_offer_held_across_reload_is_not_offered_to_another_client():
    net = Network(config(["198.18.0.100 - 198.18.0.101"]), LINK)
    c1, c2 = Client(net, mac(1)), Client(net, mac(2))
    offer = c1.discover()
    assert offer is not None and offer.yiaddr == a(100)
    # Same pool, and a second pool added: the offer stays held.
    net.engine.reload(config(["198.18.0.100 - 198.18.0.101", "198.18.0.110/31"]))
    assert net.engine.offered(b"\x01" + mac(1)) == a(100)
    o2 = c2.discover()
    assert o2 is not None and o2.yiaddr != a(100)
    assert c1.select(offer).mtype == ACK and c1.address == a(100)


def test_offer_held_across_resize_is_kept_in_the_rebuilt_bitmap():
    net = Network(config(["198.18.0.100 - 198.18.0.101"]), LINK)
    c1 = Client(net, mac(1))
    offer = c1.discover()
    assert offer.yiaddr == a(100)
    # The pool grows: its bitmap is new, rebuilt from the store, reservations and offers.
    net.engine.reload(config(["198.18.0.100 - 198.18.0.103"]))
    assert not net.engine.pool_bitmaps()[0].is_free(a(100))
    others = [Client(net, mac(10 + i)) for i in range(3)]
    got = [c.dora().yiaddr for c in others]
    assert sorted(got) == [a(101), a(102), a(103)]
    assert Client(net, mac(20)).discover() is None  # exhausted: a(100) is still held
    assert net.decisions[-1].reason == "pool-exhausted"
    assert c1.select(offer).mtype == ACK


def test_offer_outside_every_new_pool_is_dropped_and_its_bit_freed():
    net = Network(config(["198.18.0.100 - 198.18.0.101"]), LINK)
    c1 = Client(net, mac(1))
    assert c1.discover().yiaddr == a(100)
    net.engine.reload(config(["198.18.0.101 - 198.18.0.102"]))
    assert net.engine.offered(b"\x01" + mac(1)) == 0
    assert not net.engine.is_offered(a(100))
    assert net.engine.pool_stats()[0].used == 0
    # The client's REQUEST for the vanished offer is refused, not bound.
    r = c1.select()
    assert r is not None and r.mtype == NAK


def test_lease_in_removed_pool_is_kept_and_its_renewal_naked():
    net = Network(config(["198.18.0.100 - 198.18.0.101", "198.18.0.120/31"]), LINK)
    c1 = Client(net, mac(1))
    net.engine.reload(config(["198.18.0.120/31"]))  # nothing bound yet: c1 gets the /31
    assert c1.dora().yiaddr == a(120)
    net.engine.reload(config(["198.18.0.100 - 198.18.0.101"]))
    lease = net.store.get(a(120))
    assert lease is not None and lease.state == LeaseState.DEFAULT  # the store is unchanged
    assert lease.client_key == b"\x01" + mac(1)
    # RFC 2131 4.3.2: the address is not valid on the link any more -> DHCPNAK, in every
    # state that names it; the client goes back to INIT and gets an address of the new pool.
    r = c1.renew()
    assert r is not None and r.mtype == NAK
    c1.address = a(120)
    assert c1.rebind().mtype == NAK
    assert c1.reboot(a(120)).mtype == NAK
    assert c1.dora().yiaddr in (a(100), a(101))
    # The old record stays until it is replaced or expires; expiry reclaims it normally.
    net.advance(3601)
    old = net.store.get(a(120))
    assert old is not None and old.state == LeaseState.RELEASED


def test_lease_in_removed_pool_comes_back_used_when_the_pool_returns():
    net = Network(config(["198.18.0.100/31"]), LINK)
    c1, c2 = Client(net, mac(1)), Client(net, mac(2))
    assert c1.dora().yiaddr == a(100)
    net.engine.reload(config(["198.18.0.110/31"]))
    net.engine.reload(config(["198.18.0.100/31"]))
    assert not net.engine.pool_bitmaps()[0].is_free(a(100))
    assert c2.dora().yiaddr == a(101)
    assert c1.renew().mtype == ACK


def test_pool_shrunk_below_its_bindings_exhausts_and_grown_pool_hands_out_new_addresses():
    net = Network(config(["198.18.0.100 - 198.18.0.103"]), LINK)
    cs = [Client(net, mac(i)) for i in range(4)]
    assert sorted(c.dora().yiaddr for c in cs) == [a(100), a(101), a(102), a(103)]
    net.engine.reload(config(["198.18.0.100 - 198.18.0.101"]))
    assert net.engine.pool_stats()[0].used == 2
    assert Client(net, mac(9)).discover() is None
    net.engine.reload(config(["198.18.0.100 - 198.18.0.107"]))
    assert net.engine.pool_stats()[0].used == 4  # every binding, also those outside the /31
    new = [Client(net, mac(20 + i)) for i in range(4)]
    assert sorted(c.dora().yiaddr for c in new) == [a(104), a(105), a(106), a(107)]
    for c in cs:
        assert c.renew().mtype == ACK


def test_reservation_added_and_removed_on_an_unchanged_pool():
    net = Network(config(["198.18.0.100/31"]), LINK)
    res = """
[[subnet4.reservations]]
hw-address = "02:00:00:00:00:07"
ip-address = "198.18.0.100"
"""
    net.engine.reload(config(["198.18.0.100/31"], res))
    assert Client(net, mac(1)).dora().yiaddr == a(101)
    assert Client(net, mac(2)).discover() is None  # a(100) is reserved for client 7
    c7 = Client(net, mac(7))
    assert c7.dora().yiaddr == a(100)
    c7.release()
    assert net.engine.pool_stats()[0].used == 2  # released, but still reserved
    net.engine.reload(config(["198.18.0.100/31"]))
    # No reservation, released: the bit is free again.
    assert net.engine.pool_stats()[0].used == 1


def test_subnet_removed_relayed_renewal_is_ignored_lease_kept():
    net = Network(config(["198.18.0.100/31"], relayed_pools=["198.18.1.10/31"]), LINK)
    c = Client(net, mac(1), giaddr=RELAY, relay_info=relay_agent_info(circuit_id=b"x"))
    assert c.dora().yiaddr == ip("198.18.1.10")
    net.engine.reload(config(["198.18.0.100/31"]))
    # The relay's link is no longer served: nothing answers for it (RFC 2131 4.3.2: a server
    # with no record of the client's network stays silent), and the record is kept.
    assert c.rebind() is None and net.decisions[-1].reason == "no-subnet"
    assert net.store.get(ip("198.18.1.10")).state == LeaseState.DEFAULT


def test_reload_keeps_counting_config_dependent_tables():
    """After a reload the server id cache, option cache and selectors follow the new config."""
    net = Network(config(["198.18.0.100/31"]), LINK)
    c = Client(net, mac(1))
    assert c.dora().mtype == ACK
    new = config(["198.18.0.100/31"])
    net.engine.reload(new)
    assert net.engine.config is new
    assert c.renew().mtype == ACK


# ------------------------------------------------------------------------- property test

LAYOUTS = [
    (["198.18.0.100 - 198.18.0.103"], ""),
    (["198.18.0.100 - 198.18.0.101", "198.18.0.110/31"], ""),
    (["198.18.0.98 - 198.18.0.105"], """
[[subnet4.reservations]]
hw-address = "02:00:00:00:00:02"
ip-address = "198.18.0.104"
"""),
    (["198.18.0.102 - 198.18.0.103"], """
[[subnet4.reservations]]
hw-address = "02:00:00:00:00:03"
ip-address = "198.18.0.102"
"""),
]
CONFIGS = [config(p, r) for p, r in LAYOUTS]
OPS = st.sampled_from(["dora", "dora", "discover", "select", "renew", "reboot", "release",
                       "decline", "advance", "reload", "reload"])
STEP = st.tuples(OPS, st.integers(0, 7), st.integers(0, len(CONFIGS) - 1),
                 st.sampled_from([1, 59, 61, 1801, 3601]))


def _pools_of(cfg) -> list[tuple[int, int]]:
    return [(p.first, p.last) for s in cfg.subnets for p in s.pools]


def _check(net: Network, clients: list[Client], cfg) -> None:
    engine = net.engine
    held: dict[int, int] = {}
    for n, c in enumerate(clients):
        if c.bound:
            assert c.address not in held, f"{c.address:#x} bound to {held[c.address]} and {n}"
            held[c.address] = n
            lease = net.store.get(c.address)
            assert lease is not None and lease.state == LeaseState.DEFAULT
            assert lease.client_key == b"\x01" + c.mac
    # Offers: an offered address is neither another client's binding nor outside the config.
    reserved = {r.ip for s in cfg.subnets for r in s.reservations}
    pools = _pools_of(cfg)
    for c in clients:
        off = engine.offered(b"\x01" + c.mac)
        if off:
            assert any(f <= off <= e for f, e in pools) or off in reserved
            lease = net.store.get(off)
            assert lease is None or not lease.active or lease.client_key == b"\x01" + c.mac
    # Bitmaps follow the claims exactly, under the current config's pools and reservations.
    assert [(bm.first, bm.last) for bm in engine.pool_bitmaps()] == sorted(pools)
    for bm in engine.pool_bitmaps():
        for x in range(bm.first, bm.last + 1):
            lease = net.store.get(x)
            claimed = x in reserved or engine.is_offered(x) or (lease is not None and lease.active)
            assert bm.is_free(x) != claimed, f"bit of {ipaddress.IPv4Address(x)}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, min_size=1, max_size=50))
def test_reloads_never_hand_out_a_bound_or_held_address(steps):
    net = Network(CONFIGS[0], LINK)
    cfg = CONFIGS[0]
    clients = [Client(net, mac(i)) for i in range(8)]
    for op, n, k, jump in steps:
        c = clients[n]
        if c.play(op, jump):
            pass
        elif op == "reload":
            cfg = CONFIGS[k]
            net.engine.reload(cfg)
        for h in c.history:
            if h[0] == "ack":
                assert any(f <= h[1] <= e for f, e in _pools_of(cfg)) or h[1] in {
                    r.ip for s in cfg.subnets for r in s.reservations}
        c.history.clear()
        _check(net, clients, cfg)


def test_reload_answers_from_the_new_options_not_the_caches():
    """Replies filtered by the same parameter request list, on the same link and relay, are
    cached (option lists, server id, relayed selection): a reload must empty every cache,
    or the old configuration's options keep going out."""

    def cfg(router: str, dns: str):
        subnets = [{"id": 1, "subnet": "198.18.0.0/24", "interface": "eth0",
                    "pools": ["198.18.0.100 - 198.18.0.103"],
                    "option-data": {"routers": [router]}},
                   {"id": 2, "subnet": "198.18.1.0/24", "relay": ["198.18.10.1"],
                    "pools": ["198.18.1.100 - 198.18.1.103"],
                    "option-data": {"routers": [router.replace(".0.", ".1.")]}}]
        return load_config({"interfaces": ["eth0"]},
                           global_={"valid-lifetime": 3600,
                                    "option-data": {"domain-name-servers": [dns]}},
                           subnets=subnets)

    net = Network(cfg("198.18.0.1", "198.18.0.53"), LINK)
    direct, relayed = Client(net, mac(1)), Client(net, mac(2), giaddr=RELAY)
    for c, router in ((direct, "198.18.0.1"), (relayed, "198.18.1.1")):
        r = c.dora()
        assert r is not None and r.mtype == ACK
        assert r.options[3] == ipaddress.IPv4Address(router).packed
        assert r.options[6] == ipaddress.IPv4Address("198.18.0.53").packed
    net.engine.reload(cfg("198.18.0.2", "198.18.0.54"))
    for c, router in ((direct, "198.18.0.2"), (relayed, "198.18.1.2")):
        r = c.renew()
        assert r is not None and r.mtype == ACK
        assert r.options[3] == ipaddress.IPv4Address(router).packed
        assert r.options[6] == ipaddress.IPv4Address("198.18.0.54").packed
        r = Client(net, mac(10 + c.mac[-1]), giaddr=c.giaddr).discover()
        assert r is not None and r.options[3] == ipaddress.IPv4Address(router).packed
