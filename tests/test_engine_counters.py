"""The engine's per-subnet event counts behind Kea's statistics (fastdhcp.engine.
SubnetCounters): what counts as a new assignment, an allocation failure, a decline, a
reclamation and a reservation conflict, with the independent client simulator (dhcpsim) on a
fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dhcpsim import Client, Network, ip, mac, make_network

from fastdhcp.metrics import Metrics
from fastdhcp.statistics import Statistics


def counts(net: Network, sid: int = 1) -> tuple[int, int, int, int, int, int]:
    c = net.engine.subnet_counters()[sid]
    return (c.assigned, c.alloc_fail, c.declined, c.reclaimed, c.reclaimed_declined,
            c.conflicts)


def test_new_bindings_count_renewals_do_not(net: Network) -> None:
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


def test_reservation_held_by_another_client_is_a_conflict(net: Network) -> None:
    from dhcpsim import ipstr, make_config

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


def test_counters_survive_a_reload(net: Network) -> None:
    assert Client(net, mac(1)).dora() is not None
    before = net.engine.subnet_counters()[1]
    net.engine.reload(net.engine.config)
    after = net.engine.subnet_counters()[1]
    assert after is before and after.assigned == 1


# ------------------------------------------------------------------ the Kea view over them

SHARED = """
[[subnet4]]
id = 2
subnet = "198.18.2.0/24"
pools = ["198.18.2.10 - 198.18.2.10"]
relay = ["198.18.10.1"]
shared-network = "sn"

[[subnet4]]
id = 3
subnet = "198.18.3.0/24"
pools = ["198.18.3.10 - 198.18.3.10"]
shared-network = "sn"

[[subnet4]]
id = 4
subnet = "198.18.4.0/24"
relay = ["198.18.11.1"]
"""


@dataclass
class Source:
    """What fastdhcp.statistics reads, from a dhcpsim network (the service's Server in life)."""

    net: Network
    metrics: Metrics = field(default_factory=Metrics)

    @property
    def config(self) -> Any:
        return self.net.engine.config

    @property
    def engine(self) -> Any:
        return self.net.engine

    @property
    def store(self) -> Any:
        return self.net.store


def test_allocation_failures_by_kind_of_subnet() -> None:
    net = make_network(more=SHARED)
    stats = Statistics(Source(net))
    a = Client(net, mac(1), giaddr=ip("198.18.10.1"))
    b = Client(net, mac(2), giaddr=ip("198.18.10.1"))
    assert a.dora() is not None and b.dora() is not None  # the shared network is full
    assert Client(net, mac(3), giaddr=ip("198.18.10.1")).discover() is None
    assert Client(net, mac(4), giaddr=ip("198.18.11.1")).discover() is None  # no pools
    v = {name: s.value for name, s in stats.get_all().items()}
    assert v["v4-allocation-fail"] == 2
    assert v["v4-allocation-fail-shared-network"] == 1
    assert v["v4-allocation-fail-no-pools"] == 1
    assert v["v4-allocation-fail-subnet"] == 0
    assert v["v4-allocation-fail-classes"] == 1  # not for the subnet with no pools to try
    assert v["subnet[2].v4-allocation-fail-shared-network"] == 1  # the subnet selected
    assert v["subnet[4].v4-allocation-fail-no-pools"] == 1
    assert "subnet[3].v4-allocation-fail" not in v
    assert v["subnet[2].total-addresses"] == v["subnet[3].total-addresses"] == 1
    assert v["subnet[4].total-addresses"] == 0
    assert v["subnet[2].assigned-addresses"] + v["subnet[3].assigned-addresses"] == 2
    assert v["cumulative-assigned-addresses"] == 2


def test_declined_leases_at_start_are_counted() -> None:
    net = make_network(global_extra="decline-probation-period = 1000")
    a, b = Client(net, mac(1)), Client(net, mac(2))
    assert a.dora() is not None and b.dora() is not None
    assert a.decline() is None
    stats = Statistics(Source(net))  # as a restarted server: one declined lease in the table
    assert stats.get("declined-addresses") == stats.get("subnet[1].declined-addresses")
    assert stats.get("subnet[1].declined-addresses").value == 1  # type: ignore[union-attr]
    assert b.decline() is None
    assert stats.get("subnet[1].declined-addresses").value == 2  # type: ignore[union-attr]
    net.advance(1001)  # both reclaimed after probation
    v = {name: s.value for name, s in stats.get_all().items()}
    assert v["declined-addresses"] == 0 and v["subnet[1].declined-addresses"] == 0
    assert v["reclaimed-declined-addresses"] == 2 and v["reclaimed-leases"] == 2
    assert v["subnet[1].assigned-addresses"] == 0
    assert [r.to_json() for r in stats.rows()] == [[1, 4, 2, 0, 0]]
