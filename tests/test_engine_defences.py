"""The engine's defences: the per-subscriber lease limit and the DECLINE limits.

Clients sit behind one relay whose option 82 names their circuit (and remote id). Exchanges go
through ``tests/dhcpsim.py`` on a fake clock. The oracle for the subscriber counts is computed
here from the store's records with this file's own option 82 parser, not the engine's.
"""

from __future__ import annotations

import struct

import pytest
from config_builder import load_config
from dhcpsim import (
    ACK,
    DISCOVER,
    NAK,
    REQUEST,
    SERVER_IP,
    Client,
    Network,
    build_request,
    ip,
    mac,
    relay_agent_info,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdhcp.consts import Outcome
from fastdhcp.engine import Link
from fastdhcp.leases import LeaseState, MemoryLeaseStore

LINK = Link("", SERVER_IP)
RELAY = ip("198.18.10.1")
FIRST = ip("198.18.1.10")


def config(defences: str, pool: str = "198.18.1.10 - 198.18.1.41", probation: int = 86400):
    return load_config(
        {"listen-addresses": ["198.18.0.1"]},
        global_={"valid-lifetime": 3600, "decline-probation-period": probation},
        global_extra=defences,
        subnets=[{"id": 2, "subnet": "198.18.1.0/24", "relay": ["198.18.10.1"], "pools": [pool]}])


def sub_client(net: Network, n: int, circuit: bytes, remote: bytes | None = None) -> Client:
    return Client(net, mac(n), giaddr=RELAY,
                  relay_info=relay_agent_info(circuit_id=circuit, remote_id=remote))


def parse_rai(rai: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    i = 0
    while i + 2 <= len(rai):
        code, ln = rai[i], rai[i + 1]
        out.setdefault(code, rai[i + 2:i + 2 + ln])
        i += 2 + ln
    return out


def bound_per_subscriber(store, code: int = 1) -> dict[bytes, int]:
    """Oracle: DEFAULT leases per subscriber id, from the store's stored option 82."""
    out: dict[bytes, int] = {}
    for lease in store:
        if lease.state == LeaseState.DEFAULT:
            sid = parse_rai(lease.relay_info).get(code)
            if sid:
                out[sid] = out.get(sid, 0) + 1
    return out


def engine_counts(net: Network) -> dict[bytes, int]:
    return {k[1]: v for k, v in net.engine.subscriber_counts().items()}


# ------------------------------------------------------------------ subscriber lease limit


def test_limit_refuses_discover_silently_and_request_with_nak():
    net = Network(config("subscriber-lease-limit = 2"), LINK)
    a, b, c = (sub_client(net, i, b"port-1") for i in (1, 2, 3))
    assert a.dora().mtype == ACK and b.dora().mtype == ACK
    assert c.discover() is None
    assert net.decisions[-1].kind is Outcome.DROP and net.decisions[-1].reason == "subscriber-limit"
    # An INIT-REBOOT from a client we have no record of stays unanswered as before (RFC 2131
    # 4.3.2, not authoritative): the RFC's checks come first, the limit after them.
    assert c.reboot(ip("198.18.1.30")) is None
    assert net.decisions[-1].reason == "unknown-client"
    # A SELECTING REQUEST (server id ours, a free address) is refused with a NAK.
    data = build_request(REQUEST, xid=9, chaddr=mac(3), giaddr=RELAY, hops=1,
                         requested_ip=ip("198.18.1.31"), server_id=SERVER_IP,
                         relay_info=relay_agent_info(circuit_id=b"port-1"))
    d, r = net.exchange(data)
    assert r.mtype == NAK and d.reason == "subscriber-limit"
    # Another circuit is not affected.
    assert sub_client(net, 4, b"port-2").dora().mtype == ACK
    assert engine_counts(net) == bound_per_subscriber(net.store) == {b"port-1": 2, b"port-2": 1}


def test_bound_clients_renew_rebind_reboot_and_rediscover_at_the_limit():
    net = Network(config("subscriber-lease-limit = 2"), LINK)
    a, b = sub_client(net, 1, b"port-1"), sub_client(net, 2, b"port-1")
    assert a.dora().mtype == ACK and b.dora().mtype == ACK
    assert a.renew().mtype == ACK  # unicast: no option 82 at all
    lease = net.store.get(a.address)
    assert parse_rai(lease.relay_info)[1] == b"port-1"  # the stored option 82 is kept
    assert a.rebind().mtype == ACK
    assert b.reboot().mtype == ACK
    assert b.dora().mtype == ACK  # a bound client asking again is never refused
    assert engine_counts(net) == bound_per_subscriber(net.store) == {b"port-1": 2}


def test_release_and_expiry_free_capacity():
    net = Network(config("subscriber-lease-limit = 2"), LINK)
    a, b, c = (sub_client(net, i, b"port-1") for i in (1, 2, 3))
    assert a.dora().mtype == ACK and b.dora().mtype == ACK
    assert c.dora() is None
    a.release()
    assert c.dora().mtype == ACK
    assert sub_client(net, 4, b"port-1").dora() is None
    net.advance(3601)  # b and c expire (reclaimed)
    assert engine_counts(net) == {}
    d, e = sub_client(net, 4, b"port-1"), sub_client(net, 5, b"port-1")
    assert d.dora().mtype == ACK and e.dora().mtype == ACK
    assert engine_counts(net) == bound_per_subscriber(net.store) == {b"port-1": 2}


def test_decline_frees_capacity_and_remote_id_can_name_the_subscriber():
    net = Network(config('subscriber-lease-limit = 1\nsubscriber-key = "remote-id"'), LINK)
    a = sub_client(net, 1, b"port-1", b"cpe-A")
    b = sub_client(net, 2, b"port-2", b"cpe-A")  # another circuit, the same remote id
    assert a.dora().mtype == ACK
    assert b.dora() is None
    assert net.decisions[-1].reason == "subscriber-limit"
    a.decline()
    assert b.dora().mtype == ACK
    assert engine_counts(net) == bound_per_subscriber(net.store, code=2) == {b"cpe-A": 1}


def test_restart_rebuilds_the_counts(tmp_path):
    from fastdhcp.store import LmdbLeaseStore

    cfg = config("subscriber-lease-limit = 2")
    store = LmdbLeaseStore(tmp_path / "db", sync=False, create=True, map_size=1 << 22)
    try:
        net = Network(cfg, LINK, store=store)
        for i in range(2):
            assert sub_client(net, i, b"port-1").dora().mtype == ACK
        assert sub_client(net, 5, b"port-2").dora().mtype == ACK
        before = net.engine.subscriber_counts()
        store.close()
        store = LmdbLeaseStore(tmp_path / "db", sync=False, map_size=1 << 22)
        net2 = Network(cfg, LINK, store=store)
        assert net2.engine.subscriber_counts() == before
        assert engine_counts(net2) == {b"port-1": 2, b"port-2": 1}
        assert sub_client(net2, 9, b"port-1").dora() is None
        assert sub_client(net2, 10, b"port-2").dora().mtype == ACK
    finally:
        store.close()


def test_counts_follow_a_failed_commit(tmp_path):
    from fastdhcp._codec import parse
    from fastdhcp.store import LmdbLeaseStore

    store = LmdbLeaseStore(tmp_path / "db", sync=False, create=True, map_size=1 << 22)
    try:
        net = Network(config("subscriber-lease-limit = 2"), LINK, store=store)
        assert sub_client(net, 1, b"port-1").dora().mtype == ACK
        offer = sub_client(net, 2, b"port-1").discover()
        data = build_request(REQUEST, xid=5, chaddr=mac(2), giaddr=RELAY, hops=1,
                             requested_ip=offer.yiaddr, server_id=SERVER_IP,
                             relay_info=relay_agent_info(circuit_id=b"port-1"))
        d = net.engine.handle(parse(data), LINK, net.clock.now)
        assert d.kind is Outcome.ACK and engine_counts(net) == {b"port-1": 2}
        # The batch fails to commit: the store forgets it, the engine follows.
        batch = store.take_pending()
        store.failed(batch)
        net.engine.rollback(batch)
        assert engine_counts(net) == bound_per_subscriber(store) == {b"port-1": 1}
    finally:
        store.close()


CIRCUITS = [b"c0", b"c1", b"c2"]
SUB_OPS = st.sampled_from(["dora", "dora", "dora", "discover", "select", "renew", "rebind",
                           "reboot", "reboot-other", "release", "decline", "advance", "move"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(limit=st.integers(1, 3),
       steps=st.lists(st.tuples(SUB_OPS, st.integers(0, 9), st.integers(0, 2),
                                st.sampled_from([1, 61, 1801, 3601])), min_size=1,
                      max_size=60))
def test_cap_holds_over_random_histories(limit, steps):
    net = Network(config(f"subscriber-lease-limit = {limit}", pool="198.18.1.10 - 198.18.1.25"),
                  LINK)
    clients = [sub_client(net, i, CIRCUITS[i % 3]) for i in range(10)]
    for op, n, k, jump in steps:
        c = clients[n]
        if c.play(op, jump):
            pass
        elif op == "reboot-other":
            c.reboot(FIRST + k * 5 + n % 5)
        elif op == "move":  # the client shows up on another circuit
            c.relay_info = relay_agent_info(circuit_id=CIRCUITS[k])
        oracle = bound_per_subscriber(net.store)
        assert all(v <= limit for v in oracle.values()), oracle
        assert engine_counts(net) == oracle
        held = sum(1 for x in clients if net.engine.offered(b"\x01" + x.mac))
        counted = net.engine.subscriber_offers()
        assert sum(counted.values()) <= held and all(v > 0 for v in counted.values())


def test_held_offers_count_against_the_limit():
    """An offer holds an address: a subscriber flooding DISCOVERs from many MACs holds at most
    its limit of addresses, bound and offered together."""
    net = Network(config("subscriber-lease-limit = 2"), LINK)
    cs = [sub_client(net, i, b"port-1") for i in range(5)]
    offers = [c.discover() for c in cs]
    assert [o is not None for o in offers] == [True, True, False, False, False]
    assert {k[1]: v for k, v in net.engine.subscriber_offers().items()} == {b"port-1": 2}
    assert net.engine.pool_stats()[0].used == 2
    # Binding consumes the offers: the count moves from offers to leases.
    assert cs[0].select(offers[0]).mtype == ACK and cs[1].select(offers[1]).mtype == ACK
    assert net.engine.subscriber_offers() == {}
    assert engine_counts(net) == {b"port-1": 2}
    assert cs[2].discover() is None


def test_expired_offers_free_capacity_and_bound_clients_offers_do_not_count():
    net = Network(config("subscriber-lease-limit = 1"), LINK)
    a, b = sub_client(net, 1, b"port-1"), sub_client(net, 2, b"port-1")
    assert a.discover() is not None
    assert b.discover() is None
    net.advance(61)  # offer-lifetime 60: the offer is dropped by reclaim
    assert net.engine.subscriber_offers() == {}
    assert b.dora().mtype == ACK
    assert b.discover() is not None  # b's own binding counts already: its offer does not
    assert net.engine.subscriber_offers() == {}
    assert a.discover() is None


def test_no_limit_configured_counts_nothing():
    net = Network(config(""), LINK)
    for i in range(5):
        assert sub_client(net, i, b"port-1").dora().mtype == ACK
    assert net.engine.subscriber_counts() == {}


def test_requests_without_the_sub_option_are_not_limited():
    net = Network(config("subscriber-lease-limit = 1"), LINK)
    for i in range(3):
        c = Client(net, mac(i), giaddr=RELAY, relay_info=relay_agent_info(remote_id=b"x"))
        assert c.dora().mtype == ACK


# ----------------------------------------------------------------------------- DECLINE


def test_one_client_declining_repeatedly_takes_at_most_its_limit_out_of_service():
    net = Network(config("decline-limit = 3\ndecline-window = 600"), LINK)
    c = sub_client(net, 1, b"port-1")
    reasons = []
    for _ in range(10):
        assert c.dora().mtype == ACK
        c.decline()
        reasons.append(net.decisions[-1].reason)
    declined = [x for x in net.store if x.state == LeaseState.DECLINED]
    assert len(declined) == 3
    assert reasons[:3] == ["declined"] * 3 and set(reasons[3:]) == {"decline-limit"}
    # Ignored: the binding stays as it was, and the pool has lost only 3 addresses.
    assert net.store.get(c.address if c.address else declined[-1].ip) is not None
    bound = [x for x in net.store if x.state == LeaseState.DEFAULT]
    assert len(bound) == 1 and bound[0].client_key == b"\x01" + mac(1)
    assert net.engine.pool_stats()[0].used == 4
    # After the window the client may decline again.
    net.advance(601)
    assert c.dora().mtype == ACK
    c.decline()
    assert net.decisions[-1].reason == "declined"


def test_a_circuit_shares_one_decline_budget_across_its_clients():
    net = Network(config("decline-limit = 2"), LINK)
    reasons = []
    for i in range(6):
        c = sub_client(net, i, b"port-1")  # new MAC every time, same circuit
        assert c.dora().mtype == ACK
        c.decline()
        reasons.append(net.decisions[-1].reason)
    assert reasons == ["declined"] * 2 + ["decline-limit"] * 4
    other = sub_client(net, 50, b"port-2")
    assert other.dora().mtype == ACK
    other.decline()
    assert net.decisions[-1].reason == "declined"


def test_many_circuits_within_their_limits_cannot_exceed_the_pool_cap():
    # Pool of 32, at most 25% (8 addresses) declined at once; 20 circuits declining once each.
    net = Network(config("decline-limit = 1\ndecline-max-fraction = 0.25", probation=1000),
                  LINK)
    reasons = []
    for i in range(20):
        c = sub_client(net, i, b"port-%d" % i)
        assert c.dora().mtype == ACK
        c.decline()
        reasons.append(net.decisions[-1].reason)
    assert reasons.count("declined") == 8
    assert reasons.count("decline-pool-cap") == 12
    assert sum(x.state == LeaseState.DECLINED for x in net.store) == 8
    # Probation over: the declined addresses come back and the cap has room again.
    net.advance(1001)
    assert sum(x.state == LeaseState.DECLINED for x in net.store) == 0
    c = sub_client(net, 99, b"port-99")
    assert c.dora().mtype == ACK
    c.decline()
    assert net.decisions[-1].reason == "declined"


def test_pool_cap_is_rebuilt_at_restart():
    store = MemoryLeaseStore()
    cfg = config("decline-max-fraction = 0.0625")  # 2 of 32
    net = Network(cfg, LINK, store=store)
    for i in range(2):
        c = sub_client(net, i, b"p%d" % i)
        c.dora()
        c.decline()
    net2 = Network(cfg, LINK, store=store)
    c = sub_client(net2, 7, b"p7")
    assert c.dora().mtype == ACK
    c.decline()
    assert net2.decisions[-1].reason == "decline-pool-cap"


def test_decline_tables_are_swept_after_their_window():
    net = Network(config("decline-limit = 1\ndecline-window = 100"), LINK)
    for i in range(5):
        c = sub_client(net, i, b"port-%d" % i)
        c.dora()
        c.decline()
    net.advance(101)
    net.advance(1)
    # Every window has ended: a client and circuit seen before start afresh.
    c = sub_client(net, 0, b"port-0")
    assert c.dora().mtype == ACK
    c.decline()
    assert net.decisions[-1].reason == "declined"


@pytest.mark.parametrize("bad, reason", [
    ("subscriber-key = \"mac\"", "circuit-id"),
    ("decline-max-fraction = 1.5", "out of range"),
    ("subscriber-lease-limit = -1", "out of range"),
    ("decline-window = 0", "out of range"),
])
def test_config_rejects_bad_defence_values(bad, reason):
    from fastdhcp.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        config(bad)
    assert any(reason in line for line in exc.value.problems)


def test_subscriber_limit_discover_then_request_by_packets():
    """The same refusal seen from raw packets (no simulator state): DISCOVER silent, no
    address held; REQUEST NAKed with the broadcast bit for the relay."""
    net = Network(config("subscriber-lease-limit = 1"), LINK)
    assert sub_client(net, 1, b"p").dora().mtype == ACK
    rai = relay_agent_info(circuit_id=b"p")
    d, r = net.exchange(build_request(DISCOVER, xid=1, chaddr=mac(2), giaddr=RELAY, hops=1,
                                      relay_info=rai))
    assert r is None and d.reason == "subscriber-limit"
    assert net.engine.pool_stats()[0].used == 1
    d, r = net.exchange(build_request(REQUEST, xid=2, chaddr=mac(2), giaddr=RELAY, hops=1,
                                      requested_ip=FIRST + 5, server_id=SERVER_IP,
                                      relay_info=rai))
    assert r.mtype == NAK and d.dest_ip == RELAY
    assert struct.unpack("!H", d.reply[10:12])[0] & 0x8000


def test_pool_cap_alone_keeps_no_subscriber_counts():
    net = Network(config("decline-max-fraction = 0.5"), LINK)
    c = sub_client(net, 1, b"port-1")
    assert c.dora().mtype == ACK
    c.decline()
    assert net.decisions[-1].reason == "declined"
    assert net.engine.subscriber_counts() == {}
