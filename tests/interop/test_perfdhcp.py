"""ISC perfdhcp, a short modest run in relay mode: every exchange completes, nothing dropped.

perfdhcp given a unicast server address acts as a relay: source port 67, giaddr = its ``-l``
address (198.18.8.2), hops 1; the server selects subnet 8 through that subnet's ``relay``
list (giaddr is outside every subnet) and answers to giaddr:67. 100 exchanges/s for 5 s over
500 clients is far below any server's limit: this proves correctness under a steady stream
(distinct xids and clients in flight, OFFER -> REQUEST -> ACK matching), not speed.
"""

from __future__ import annotations

import ipaddress

from .checks import in_pool, subnet
from .clients import run_perfdhcp

PERF_SUBNET = 8
RATE, CLIENTS, PERIOD = 100, 500, 5


def test_perfdhcp_relay_mode_no_drops(lab, lab_cfg, live_server):
    server = live_server
    result = run_perfdhcp(lab.perf, lab.perf_if.ip, lab.srv_perf.ip, rate=RATE,
                          clients=CLIENTS, period=PERIOD)
    ctx = f"\n--- perfdhcp (exit {result.returncode}) ---\n{result.output}"
    assert result.returncode == 0, ctx
    assert set(result.stats) == {"DISCOVER-OFFER", "REQUEST-ACK"}, ctx
    for exchange in ("DISCOVER-OFFER", "REQUEST-ACK"):
        sent = result.count(exchange, "sent packets")
        assert result.count(exchange, "received packets") == sent, ctx
        for counter in ("drops", "orphans", "rejected leases", "non unique addresses"):
            assert result.count(exchange, counter) == 0, f"{exchange} {counter}{ctx}"
    # At 100/s for 5 s perfdhcp starts about 500 exchanges; ask for most of them, so a run
    # that silently did little cannot pass.
    offers = result.count("DISCOVER-OFFER", "sent packets")
    assert offers >= RATE * PERIOD * 0.8, ctx
    assert result.count("REQUEST-ACK", "sent packets") == offers, ctx

    spec = subnet(lab_cfg, PERF_SUBNET)
    net = ipaddress.IPv4Network(spec.subnet)
    leases = [x for x in server.leases() if ipaddress.IPv4Address(x.ip) in net]
    bound = [x for x in leases if x.state == "bound"]
    assert all(x.subnet_id == PERF_SUBNET and in_pool(x.ip, spec) for x in leases), leases[:5]
    # perfdhcp draws its clients at random from CLIENTS MACs, so some ACKs renew a lease it
    # already holds: distinct bound leases are at most the ACKs and at most the clients.
    acks = result.count("REQUEST-ACK", "received packets")
    assert 0 < len(bound) <= min(acks, CLIENTS), f"{len(bound)} bound leases, {acks} ACKs{ctx}"
    assert len({x.hw_address for x in bound}) == len(bound), "two leases for one client"
