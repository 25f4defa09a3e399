"""The engine over the durable store (``fastdhcp.store.LmdbLeaseStore``): the same rules hold,
and a restarted engine rebuilds its pools and client affinity from what was committed."""

from __future__ import annotations

import random

import pytest
from dhcpsim import ACK, NAK, SERVER_IP, Client, Network, ip, mac, make_config
from test_engine_props import DIRECT, RELAYED, play

from fastdhcp.consts import Outcome
from fastdhcp.engine import Engine, Link
from fastdhcp.leases import LeaseState
from fastdhcp.store import LmdbLeaseStore

LINK = Link("eth0", SERVER_IP)


@pytest.fixture
def store(tmp_path):
    s = LmdbLeaseStore(tmp_path / "db", sync=False, create=True, map_size=1 << 22)
    yield s
    s.close()


def test_dora_release_decline_then_restart(tmp_path, store):
    config = make_config()
    net = Network(config, LINK, store=store)
    a, b, c = (Client(net, mac(n)) for n in (1, 2, 3))
    for x in (a, b, c):
        assert x.dora().mtype == ACK
    kept, released, declined = a.address, b.address, c.address
    b.release()
    c.decline()
    store.close()

    store2 = LmdbLeaseStore(tmp_path / "db", sync=False, map_size=1 << 22)
    try:
        net2 = Network(config, LINK, store=store2)
        assert net2.engine.pool_stats()[0].used == 2  # a's binding and c's decline
        assert store2.get(declined).state == LeaseState.DECLINED
        a.net = net2
        assert a.renew().mtype == ACK and a.address == kept
        # b comes back and gets its previous address (affinity survives the restart).
        b.net = net2
        assert b.dora().yiaddr == released
        # c's address stays set aside; c gets the last free one.
        c.net = net2
        assert c.dora().yiaddr not in (kept, released, declined)
        assert Client(net2, mac(9)).discover() is None
        # Someone else claiming a's address is refused.
        intruder = Client(net2, mac(10))
        assert intruder.reboot(kept).mtype == NAK
    finally:
        store2.close()


def test_engine_reads_staged_bindings_before_commit(store):
    net = Network(make_config(), LINK, store=store)
    c = Client(net, mac(1))
    offer = c.discover()
    from dhcpsim import REQUEST, build_request

    from fastdhcp._codec import parse

    d = net.engine.handle(parse(build_request(REQUEST, xid=1, chaddr=c.mac,
                                              requested_ip=offer.yiaddr,
                                              server_id=SERVER_IP)), LINK, net.clock.now)
    assert d.kind is Outcome.ACK
    # Not committed yet: a second engine decision already sees the staged binding.
    other = Client(net, mac(2))
    assert other.discover(requested_ip=offer.yiaddr).yiaddr != offer.yiaddr
    net.commit()
    assert store.get(offer.yiaddr).client_key == b"\x01" + c.mac


def test_random_history_over_lmdb(store):
    rnd = random.Random(3046)
    ops = ["dora", "dora", "renew", "rebind", "reboot", "release", "decline", "advance",
           "discover", "select", "steal", "steal-reboot", "steal-renew"]
    steps = [
        (rnd.choice(ops), rnd.choice([*DIRECT, *RELAYED]), rnd.choice([1, 61, 1801, 3601]),
         rnd.randrange(32))
        for _ in range(400)
    ]
    play(steps, store=store)


def test_restart_of_engine_on_same_open_store(store):
    config = make_config()
    net = Network(config, LINK, store=store)
    cs = [Client(net, mac(n)) for n in range(4)]
    for x in cs:
        x.dora()
    engine = Engine(config, store)
    assert engine.pool_stats()[0].used == 4
    assert ip("198.18.0.100") in {x.address for x in cs}
