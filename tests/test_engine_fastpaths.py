"""The engine's per-packet shortcuts against independent oracles.

Each shortcut in ``fastdhcp._engine`` stands in for a plainer computation: the reply
destination is written out in ``Engine._reply`` instead of calling ``reply_destination``; the
offer heap holds the offers themselves and re-queues a renewed one; relayed subnet selection,
options and server ids come from one-entry caches; a Lease is filled in C. These tests drive
the engine through ``handle``/``reclaim`` and compare with ``reply_destination``, a Python
model of offer expiry, a decoder independent of the codec (dhcpsim) and a plainly made Lease.
"""

from __future__ import annotations

from dhcpsim import (
    DISCOVER,
    REQUEST,
    SERVER_IP,
    build_request,
    decode_reply,
    ip,
    mac,
    make_config,
    relay_agent_info,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from fastdhcp._codec import parse
from fastdhcp.consts import Outcome
from fastdhcp.engine import Engine, Link, reply_destination
from fastdhcp.leases import Lease, MemoryLeaseStore

INFORM = 8
NAK = 6
NOW = 1_700_000_000.0
RELAY = ip("198.18.20.1")
OTHER_RELAY = ip("198.18.30.1")
LIFETIME = 30
LINK = Link("eth0", SERVER_IP)

MORE = f"""
[[subnet4]]
id = 9
subnet = "10.0.0.0/16"
pools = ["10.0.0.10 - 10.0.255.254"]
relay = ["198.18.20.1"]
offer-lifetime = {LIFETIME}
option-data = {{ routers = ["10.0.0.1"] }}

[[subnet4]]
id = 10
subnet = "10.1.0.0/16"
pools = ["10.1.0.10 - 10.1.255.254"]
relay = ["198.18.30.1"]
valid-lifetime = 7200
option-data = {{ routers = ["10.1.0.1"], ntp-servers = ["10.1.0.123"] }}
"""


def _engine() -> tuple[Engine, MemoryLeaseStore]:
    store = MemoryLeaseStore()
    return Engine(make_config(more=MORE), store), store


request_fields = st.fixed_dictionaries({
    "mtype": st.sampled_from([DISCOVER, REQUEST, INFORM]),
    "client": st.integers(1, 40),
    "giaddr": st.sampled_from([0, RELAY, OTHER_RELAY]),
    "ciaddr": st.sampled_from([0, ip("198.18.0.101"), ip("10.0.0.10"), ip("10.1.0.11")]),
    "bcast": st.booleans(),
    "htype": st.sampled_from([1, 1, 6]),
    "hlen": st.sampled_from([6, 6, 8]),
    "requested": st.sampled_from([0, ip("198.18.0.100"), ip("10.0.0.10"), ip("10.0.0.11"),
                                  ip("10.1.0.10")]),
    "server_id": st.sampled_from([0, SERVER_IP, ip("198.18.99.9")]),
    "prl": st.sampled_from([None, b"", bytes((1, 3, 6)), bytes((3, 42, 1, 6, 15, 28))]),
    "lease_time": st.sampled_from([None, 60, 100000]),
    "rai": st.booleans(),
})


def _chaddr(f: dict) -> bytes:
    return mac(f["client"])[: f["hlen"]].ljust(f["hlen"], b"\x07")


def _build(f: dict) -> bytes:
    chaddr = _chaddr(f)
    rai = relay_agent_info(circuit_id=b"c%d" % f["client"]) if f["rai"] else None
    return build_request(
        f["mtype"], xid=f["client"], chaddr=chaddr, htype=f["htype"],
        flags=0x8000 if f["bcast"] else 0, ciaddr=f["ciaddr"], giaddr=f["giaddr"],
        hops=1 if f["giaddr"] else 0, requested_ip=f["requested"], server_id=f["server_id"],
        prl=f["prl"], lease_time=f["lease_time"], relay_info=rai,
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(request_fields, min_size=1, max_size=12))
def test_reply_destination_and_options_match_the_plain_rules(requests):
    """Every reply's destination is what ``reply_destination`` says for it (RFC 2131 4.1),
    the relayed NAK carries the broadcast bit, and the options are those a fresh engine
    (empty caches) gives for the same request in the same state."""
    engine, _ = _engine()
    for f in requests:
        data = _build(f)
        twin, _ = _engine()
        d = engine.handle(parse(data), LINK, NOW)
        if d.reply is None:
            continue
        r = decode_reply(d.reply)
        mtype = r.options[53][0]
        want = reply_destination(mtype, f["giaddr"], f["ciaddr"], f["bcast"], r.yiaddr,
                                 f["htype"], _chaddr(f))
        assert (d.dest_ip, d.dest_port, d.broadcast, d.l2_unicast) == want[:4]
        if want[4]:
            assert r.flags & 0x8000
        else:
            assert r.flags == (0x8000 if f["bcast"] else 0)
        # Options other than the lease times depend only on the subnet, the PRL and the
        # request: a fresh engine (no cache warmed by earlier requests) agrees.
        if mtype != NAK:
            t = twin.handle(parse(data), LINK, NOW)
            if t.reply is not None and decode_reply(t.reply).options[53][0] == mtype:
                fresh = decode_reply(t.reply).options
                assert {c: v for c, v in r.options.items() if c not in (51, 58, 59)} == \
                    {c: v for c, v in fresh.items() if c not in (51, 58, 59)}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["discover", "reclaim", "request"]),
                          st.integers(0, 7), st.integers(-40, 200)),
                min_size=1, max_size=40))
def test_offers_expire_when_the_model_says(steps):
    """Held offers against a model: a DISCOVER holds (or renews) the client's offer until
    its time + offer-lifetime, a REQUEST binding it consumes it, ``reclaim(now)`` drops every
    offer whose expiry is <= now and asks to be called again no later than the earliest
    expiry left. Times move backwards as well as forwards."""
    engine, store = _engine()
    model: dict[int, float] = {}  # client -> offer expiry
    for op, client, dt in steps:
        now = NOW + dt
        key = b"\x01" + mac(client)
        if op == "discover":
            d = engine.handle(parse(build_request(DISCOVER, xid=client, chaddr=mac(client),
                                                  giaddr=RELAY, hops=1)), LINK, now)
            if d.kind is Outcome.OFFER:
                model[client] = now + LIFETIME
            else:
                model.pop(client, None)
        elif op == "request":
            held = engine.offered(key)
            if not held:
                continue
            d = engine.handle(parse(build_request(REQUEST, xid=client, chaddr=mac(client),
                                                  giaddr=RELAY, hops=1, requested_ip=held,
                                                  server_id=SERVER_IP)), LINK, now)
            assert d.kind is Outcome.ACK
            model.pop(client, None)
            store.take_pending()
        else:
            nxt = engine.reclaim(now)
            model = {c: e for c, e in model.items() if e > now}
            assert nxt <= now + 1.0
            if model:
                assert nxt <= min(model.values())
        for c in range(8):
            held = engine.offered(b"\x01" + mac(c))
            assert bool(held) == (c in model), (c, model)
            if held:
                assert engine.is_offered(held)


def test_lease_made_in_c_is_a_plain_lease():
    """A binding's lease, made in C without calling Lease, equals one made by calling it,
    field by field."""
    engine, store = _engine()
    rai = relay_agent_info(circuit_id=b"ge-0/0/1", remote_id=b"cpe")
    d = engine.handle(parse(build_request(DISCOVER, xid=1, chaddr=mac(1), giaddr=RELAY,
                                          hops=1, relay_info=rai)), LINK, NOW)
    offered = decode_reply(d.reply).yiaddr
    d = engine.handle(parse(build_request(REQUEST, xid=1, chaddr=mac(1), giaddr=RELAY, hops=1,
                                          requested_ip=offered, server_id=SERVER_IP,
                                          hostname=b"host1", relay_info=rai)), LINK, NOW)
    assert d.kind is Outcome.ACK
    lease = d.binding
    assert type(lease) is Lease
    want = Lease(offered, b"\x01" + mac(1), mac(1), 9, 0, int(NOW), int(NOW) + 3600, "host1",
                 rai)
    assert lease == want
    assert lease.astuple() == want.astuple()
    assert store.get(offered) is lease


def test_relay_cache_follows_the_relay_and_reload():
    """Relayed requests from two relays alternate between their subnets (the one-entry
    selection cache is keyed by giaddr), and a reload that moves a relay moves its
    clients."""
    engine, _ = _engine()
    for k in range(6):
        relay, net = (RELAY, ip("10.0.0.0")) if k % 2 else (OTHER_RELAY, ip("10.1.0.0"))
        d = engine.handle(parse(build_request(DISCOVER, xid=k, chaddr=mac(k), giaddr=relay,
                                              hops=1)), LINK, NOW)
        assert decode_reply(d.reply).yiaddr & 0xFFFF0000 == net
    engine.reload(make_config(more=MORE.replace('relay = ["198.18.20.1"]', 'relay = []')
                              .replace('relay = ["198.18.30.1"]',
                                       'relay = ["198.18.30.1", "198.18.20.1"]')))
    d = engine.handle(parse(build_request(DISCOVER, xid=99, chaddr=mac(99), giaddr=RELAY,
                                          hops=1)), LINK, NOW)
    assert decode_reply(d.reply).yiaddr & 0xFFFF0000 == ip("10.1.0.0")


class _CountingStore(MemoryLeaseStore):
    """A MemoryLeaseStore counting the engine's per-packet calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {"get": 0, "get_by_client": 0, "stage": 0}

    def get(self, ip):
        self.calls["get"] += 1
        return super().get(ip)

    def get_by_client(self, client_key):
        self.calls["get_by_client"] += 1
        return super().get_by_client(client_key)

    def stage(self, lease):
        self.calls["stage"] += 1
        super().stage(lease)

    def take_calls(self) -> dict[str, int]:
        out, self.calls = self.calls, dict.fromkeys(self.calls, 0)
        return out


def test_store_is_read_at_most_once_per_question():
    """A relayed DORA and a renewal ask the store each thing at most once (the store in
    the server is LMDB: every call counts): DISCOVER looks the client up, the REQUEST of an
    offer made to a client with no binding reads nothing, a renewal reads the address and
    the client once each; with subscriber-lease-limit the bind reads the address once."""
    for extra, bind_gets in (("", 0), ("subscriber-lease-limit = 16", 1)):
        store = _CountingStore()
        engine = Engine(make_config(global_extra=extra, more=MORE), store)
        rai = relay_agent_info(circuit_id=b"ge-0/0/7")
        store.take_calls()
        d = engine.handle(parse(build_request(DISCOVER, xid=1, chaddr=mac(1), giaddr=RELAY,
                                              hops=1, relay_info=rai)), LINK, NOW)
        offered = decode_reply(d.reply).yiaddr
        assert store.take_calls() == {"get": 0, "get_by_client": 1, "stage": 0}
        d = engine.handle(parse(build_request(REQUEST, xid=1, chaddr=mac(1), giaddr=RELAY,
                                              hops=1, requested_ip=offered,
                                              server_id=SERVER_IP, relay_info=rai)),
                          LINK, NOW)
        assert d.kind is Outcome.ACK
        assert store.take_calls() == {"get": bind_gets, "get_by_client": 0, "stage": 1}
        store.take_pending()
        d = engine.handle(parse(build_request(REQUEST, xid=2, chaddr=mac(1), ciaddr=offered)),
                          Link("", SERVER_IP), NOW + 100)
        assert d.kind is Outcome.ACK and d.binding.expires == int(NOW) + 100 + 3600
        assert store.take_calls() == {"get": 1, "get_by_client": 1, "stage": 1}
        if extra:
            assert engine.subscriber_counts() == {(9, b"ge-0/0/7"): 1}


def test_renewed_offer_requeued_and_clock_stepping_back():
    """The two heap cases spelt out: an offer renewed later stays held past its first
    expiry and goes at its second; an offer renewed with an earlier expiry (the clock
    stepped back) goes at that earlier time."""
    engine, _ = _engine()
    key = b"\x01" + mac(1)

    def discover(t: float) -> None:
        d = engine.handle(parse(build_request(DISCOVER, xid=1, chaddr=mac(1), giaddr=RELAY,
                                              hops=1)), LINK, t)
        assert d.kind is Outcome.OFFER

    discover(NOW)
    discover(NOW + 20)  # held until NOW + 50 now
    held = engine.offered(key)
    assert engine.reclaim(NOW + LIFETIME) <= NOW + 20 + LIFETIME
    assert engine.offered(key) == held
    engine.reclaim(NOW + 20 + LIFETIME)
    assert engine.offered(key) == 0 and not engine.is_offered(held)

    discover(NOW + 100)  # held until NOW + 130
    discover(NOW)  # clock back: held until NOW + 30
    held = engine.offered(key)
    assert engine.reclaim(NOW + LIFETIME - 1) <= NOW + LIFETIME
    assert engine.offered(key) == held
    engine.reclaim(NOW + LIFETIME)
    assert engine.offered(key) == 0 and not engine.is_offered(held)
