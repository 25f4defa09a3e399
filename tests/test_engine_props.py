"""Property test: random multi-client histories against small pools.

Many clients (direct on eth0, and relayed onto a shared network), four- and two-address pools,
random DISCOVER / REQUEST / RENEW / REBIND / INIT-REBOOT / RELEASE / DECLINE / INFORM and time
jumps. After every step:

* no address is bound to two clients: each client that believes it holds an address (it got an
  ACK, the lease has not run out, it has not released, declined or been NAKed) holds a distinct
  one, and the store's record of that address is that client's active binding;
* every ACKed address lies in the client's subnet group and in a pool of it, or is the client's
  reservation;
* every pool bitmap marks used exactly the addresses that a lease, an offer or a reservation
  claims (the allocator never leaks nor double-books);
* the store holds at most one bound (DEFAULT) lease per client.
"""

from __future__ import annotations

import ipaddress

from dhcpsim import ACK, SERVER_IP, Client, Network, ip, mac, make_config, relay_agent_info
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdhcp.consts import Outcome
from fastdhcp.engine import Link
from fastdhcp.leases import LeaseState

RELAY = ip("198.18.10.1")

MORE = """
[[subnet4]]
id = 2
subnet = "198.18.1.0/24"
shared-network = "cable"
relay = ["198.18.10.1"]
pools = ["198.18.1.10 - 198.18.1.11"]

[[subnet4]]
id = 3
subnet = "198.18.2.0/24"
shared-network = "cable"
pools = ["198.18.2.10 - 198.18.2.11"]

[[subnet4.reservations]]
hw-address = "02:00:00:00:00:0b"
ip-address = "198.18.2.11"
"""
SUBNET_EXTRA = """
[[subnet4.reservations]]
hw-address = "02:00:00:00:00:02"
ip-address = "198.18.0.101"
"""

DIRECT = range(0, 6)  # on eth0: pool of 4, one address reserved for client 2
RELAYED = range(8, 14)  # via the relay: shared network of 2 + 2, one reserved for client 11

OPS = st.sampled_from(
    ["dora", "dora", "discover", "select", "select-other", "renew", "rebind", "reboot",
     "reboot-any", "release", "decline", "inform", "advance", "steal", "steal-reboot",
     "steal-renew"]
)
JUMPS = st.sampled_from([1, 30, 59, 61, 1799, 1801, 3599, 3601, 5000])
STEP = st.tuples(OPS, st.sampled_from([*DIRECT, *RELAYED]), JUMPS, st.integers(0, 31))


def allowed(n: int) -> set[int]:
    """Addresses client ``n`` may be ACKed: its link's pools, plus its reservation."""
    if n in DIRECT:
        out = {ip("198.18.0.100") + i for i in range(4)} - {ip("198.18.0.101")}
        if n == 2:
            out.add(ip("198.18.0.101"))
    else:
        out = {ip("198.18.1.10"), ip("198.18.1.11"), ip("198.18.2.10")}
        if n == 11:
            out.add(ip("198.18.2.11"))
    return out


ALL_POOL = sorted(allowed(2) | allowed(11) | {ip("198.18.0.101"), ip("198.18.2.11")})


def check(net: Network, clients: dict[int, Client]) -> None:
    now = net.clock.now
    held: dict[int, int] = {}
    for n, c in clients.items():
        if c.bound:
            assert c.address not in held, f"{c.address:#x} bound to {held.get(c.address)} and {n}"
            held[c.address] = n
            lease = net.store.get(c.address)
            assert lease is not None and lease.state == LeaseState.DEFAULT
            assert lease.client_key == b"\x01" + c.mac
            assert lease.expires >= c.expires - 1e-9 or lease.expires >= now
    for n, c in clients.items():
        for what, addr in c.history:
            if what == "ack":
                assert addr in allowed(n), f"client {n} got {ipaddress.IPv4Address(addr)}"
        c.history = [h for h in c.history if h[0] != "ack"]
    engine = net.engine
    reserved = {ip("198.18.0.101"), ip("198.18.2.11")}
    for stat, bm in zip(engine.pool_stats(), engine.pool_bitmaps(), strict=True):
        expect = 0
        for a in range(bm.first, bm.last + 1):
            lease = net.store.get(a)
            claimed = a in reserved or engine.is_offered(a) or (lease is not None and lease.active)
            assert bm.is_free(a) != claimed, f"bit of {ipaddress.IPv4Address(a)}"
            expect += claimed
        assert stat.used == expect
    keys = [x.client_key for x in net.store if x.state == LeaseState.DEFAULT]
    assert len(keys) == len(set(keys))


def play(steps: list[tuple[str, int, int, int]], store=None) -> None:
    """Run ``steps`` (op, client, time jump, selector) with the checks after each one."""
    net = Network(make_config(subnet_extra=SUBNET_EXTRA, more=MORE), Link("eth0", SERVER_IP),
                  store=store)
    clients: dict[int, Client] = {}
    for n in [*DIRECT, *RELAYED]:
        if n in RELAYED:
            clients[n] = Client(net, mac(n), giaddr=RELAY,
                                relay_info=relay_agent_info(circuit_id=b"p%d" % n))
        else:
            clients[n] = Client(net, mac(n))
    order = [*DIRECT, *RELAYED]
    for op, n, jump, k in steps:
        c = clients[n]
        # Half the time aim at an address another client holds, to provoke conflicts.
        other = clients[order[k % len(order)]].address if k & 1 else 0
        target = other or ALL_POOL[k % len(ALL_POOL)]
        holders = [x.address for x in clients.values() if x.address and x is not c]
        stolen = holders[k % len(holders)] if holders else ALL_POOL[k % len(ALL_POOL)]
        if op == "discover":
            c.discover(requested_ip=target if k & 2 else 0)
        elif c.play(op, jump):
            pass
        elif op == "select-other":
            if c.last is not None and c.last.options.get(53) == b"\x02":
                c.select(c.last, server_id=ip("198.18.0.2"))
        elif op == "reboot-any":
            c.reboot(target)
        elif op == "inform":
            r = c.inform(ip("198.18.0.50"))
            assert r is None or (r.mtype == ACK and r.yiaddr == 0)
        elif op == "steal":  # ask for another client's address, take whatever is offered
            o = c.discover(requested_ip=stolen)
            if o is not None:
                c.select(o)
        elif op == "steal-reboot":
            c.reboot(stolen)
        elif op == "steal-renew":  # claim another client's address as ours
            saved = (c.address, c.state, c.expires)
            c.address = stolen
            if c.renew() is None:  # ignored: the client keeps what it had
                c.address, c.state, c.expires = saved
        check(net, clients)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, min_size=1, max_size=60))
def test_no_address_bound_twice_and_acks_stay_in_pool(steps):
    play(steps)


def test_long_fixed_history():
    """A deterministic long run through the same checks (pool churn over many lease times)."""
    import random

    rnd = random.Random(2131)
    ops = ["dora", "dora", "renew", "rebind", "reboot", "release", "decline", "advance",
           "discover", "select", "reboot-any", "select-other", "steal", "steal-reboot",
           "steal-renew"]
    steps = [
        (rnd.choice(ops), rnd.choice([*DIRECT, *RELAYED]),
         rnd.choice([1, 61, 1801, 3601]), rnd.randrange(32))
        for _ in range(1500)
    ]
    play(steps)


ADDRS = st.sampled_from([0, *ALL_POOL, ip("198.18.0.1"), ip("198.18.0.50"), RELAY,
                         ip("198.18.2.1"), ip("203.0.113.9"), 0xFFFFFFFF])


@settings(max_examples=600, deadline=None)
@given(
    mtype=st.integers(0, 12),
    ciaddr=ADDRS,
    giaddr=ADDRS,
    requested=ADDRS,
    server_id=ADDRS,
    selection=ADDRS,
    flags=st.sampled_from([0, 0x8000]),
    htype=st.sampled_from([1, 6, 0]),
    hwaddr=st.binary(min_size=0, max_size=16),
    client_id=st.none() | st.binary(min_size=0, max_size=20),
    prl=st.none() | st.binary(min_size=0, max_size=30),
    lease_time=st.none() | st.integers(0, 0xFFFFFFFF),
    rai=st.none() | st.builds(relay_agent_info, st.none() | st.binary(max_size=8),
                              st.none() | st.binary(max_size=8), ADDRS, ADDRS),
)
def test_any_wellformed_request_gets_a_decision(mtype, ciaddr, giaddr, requested, server_id,
                                                selection, flags, htype, hwaddr, client_id,
                                                prl, lease_time, rai):
    """Whatever a (well-formed) request says, handle() decides without raising, and any reply
    is a BOOTREPLY of a known type to a sane destination."""
    from dhcpsim import build_request, decode_reply

    from fastdhcp._codec import parse

    net = Network(make_config(subnet_extra=SUBNET_EXTRA, more=MORE), Link("eth0", SERVER_IP))
    if mtype:
        data = build_request(
            mtype, xid=1, chaddr=hwaddr, htype=htype, flags=flags, ciaddr=ciaddr,
            giaddr=giaddr, requested_ip=requested, server_id=server_id, client_id=client_id,
            prl=prl, lease_time=lease_time, subnet_selection=selection, relay_info=rai,
        )
    else:
        data = build_request(1, xid=1, chaddr=hwaddr)
        data = data[:240] + b"\xff" + bytes(len(data) - 241)  # BOOTP: no option 53
    for _ in range(2):  # the second time with whatever state the first left
        d = net.engine.handle(parse(data), net.link, net.clock.now)
        net.commit()
        assert d.kind in (Outcome.OFFER, Outcome.ACK, Outcome.NAK, Outcome.SILENT, Outcome.DROP)
        if d.kind in (Outcome.DROP, Outcome.SILENT):
            assert d.reply is None and d.reason
            continue
        r = decode_reply(d.reply)
        assert r.op == 2 and r.xid == 1
        assert r.mtype == {Outcome.OFFER: 2, Outcome.ACK: 5, Outcome.NAK: 6}[d.kind]
        assert d.dest_port in (67, 68)
        if giaddr:
            assert (d.dest_ip, d.dest_port) == (giaddr, 67)
        if d.kind is Outcome.ACK and r.yiaddr:
            assert d.binding is not None and d.binding.ip == r.yiaddr
