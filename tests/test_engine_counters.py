"""The engine's per-subnet event counts behind Kea's statistics (fastdhcp.engine.
SubnetCounters): what counts as a new assignment, an allocation failure, a decline, a
reclamation and a reservation conflict, with the independent client simulator (dhcpsim) on a
fake clock."""

from __future__ import annotations

from dhcpsim import Client, Network, mac, make_network


def counts(net: Network, sid: int = 1) -> tuple[int, int, int, int, int, int]:
    c = net.engine.subnet_counters()[sid]
    return (c.assigned, c.alloc_fail, c.declined, c.reclaimed, c.reclaimed_declined,
            c.conflicts)


def test_new_bindings_count_renewals_do_not() -> None:
    net = make_network()
    a = Client(net, mac(1))
    assert a.dora() is not None
    assert counts(net)[0] == 1
    assert a.renew() is not None and a.rebind() is not None
    assert a.reboot() is not None  # INIT-REBOOT of the same binding
    assert a.dora() is not None  # a fresh DORA of a bound client: its own address again
    assert counts(net)[0] == 1
    b = Client(net, mac(2))
    assert b.dora() is not None
    assert counts(net)[0] == 2
    assert b.release() is None
    assert b.dora() is not None  # after a release: a new binding again (as Kea's count)
    assert counts(net)[0] == 3


def test_exhaustion_declines_and_reclaims() -> None:
    net = make_network(global_extra="decline-probation-period = 1000")
    clients = [Client(net, mac(i)) for i in range(1, 5)]
    for c in clients:  # the pool has 4 addresses
        assert c.dora() is not None
    late = Client(net, mac(9))
    assert late.discover() is None
    assert late.discover() is None
    assert counts(net)[:2] == (4, 2)
    assert clients[0].decline() is None
    assert counts(net)[2] == 1
    net.advance(1001)  # probation over: the declined address is reclaimed
    assert counts(net)[2:5] == (1, 1, 1)
    net.advance(3600)  # every other binding expires
    assert counts(net)[3:5] == (4, 1)


def test_reservation_held_by_another_client_is_a_conflict() -> None:
    from dhcpsim import ipstr, make_config

    net = make_network()
    other = Client(net, mac(1))
    assert other.dora() is not None
    # The address is reserved for another client only now (a reload): the reservation and
    # the binding conflict, as Kea's v4-reservation-conflicts counts them.
    net.engine.reload(make_config(
        subnet_extra='[[subnet4.reservations]]\nhw-address = "02:00:00:00:00:07"\n'
                     f'ip-address = "{ipstr(other.address)}"\n'))
    owner = Client(net, mac(7))
    offer = owner.discover()
    assert offer is None or offer.yiaddr != other.address
    assert counts(net)[5] == 1


def test_counters_survive_a_reload() -> None:
    net = make_network()
    assert Client(net, mac(1)).dora() is not None
    before = net.engine.subnet_counters()[1]
    net.engine.reload(net.engine.config)
    after = net.engine.subnet_counters()[1]
    assert after is before and after.assigned == 1
