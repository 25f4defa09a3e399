"""The compiled packet path (fastdhcp._packetpath) on loopback sockets, with the real engine
on a simulated config: what it counts, queues, holds and reports. It calls nothing of the
service: what it needs is given at construction (metrics, a report, ``hold``, ``l2_dest``).
The whole server over it is covered by test_service.py and the interop tests."""

from __future__ import annotations

import socket
import time
from typing import Any

from dhcpsim import SERVER_IP, build_request, ip, mac, make_config, relay_agent_info
from path_rig import Ep

from fastdhcp._codec import parse
from fastdhcp._packetpath import HeldAck, PacketPath
from fastdhcp._sockio import Outgoing
from fastdhcp.consts import MessageType
from fastdhcp.engine import Engine, Link
from fastdhcp.leases import MemoryLeaseStore
from fastdhcp.metrics import Histogram, Metrics
from fastdhcp.pathreport import MAX_EVENTS, Event, PathReport

DISCOVER, REQUEST, RELEASE = MessageType.DISCOVER, MessageType.REQUEST, MessageType.RELEASE
L2_DEST = 0x7F000001  # what the test's l2_dest answers for a layer-2 unicast


def _reply(mtype: int, pad: int = 0) -> bytes:
    """A reply as the codec lays it out: option 53 first, at offset 240."""
    return b"\x02" + bytes(235) + b"\x63\x82\x53\x63" + bytes((53, 1, mtype, 255)) + bytes(pad)


class Owner:
    """What the path is given: a report, a hold list and an l2_dest that records its calls."""

    def __init__(self, fail_l2: bool = False) -> None:
        self.report = PathReport()
        self.held: list[HeldAck] = []
        self.l2_calls: list[tuple[Any, Any]] = []
        self.fail_l2 = fail_l2

    def l2_dest(self, ep: Any, d: Any) -> int:
        self.l2_calls.append((ep, d))
        if self.fail_l2:
            raise RuntimeError("injected")
        return L2_DEST

    def events(self) -> list[Any]:
        return self.report.take()[0]


def _engine() -> Engine:
    return Engine(make_config(), MemoryLeaseStore())


def _deliver(peer: socket.socket, server: socket.socket, datagrams: list[bytes]) -> None:
    for d in datagrams:
        peer.sendto(d, server.getsockname())
    time.sleep(0.05)  # loopback delivery is synchronous; this only yields the CPU


def _path(owner: Owner, metrics: Metrics, engine: Engine | None = None, guard: Any = None,
          debug: bool = False) -> PacketPath:
    return PacketPath(engine or _engine(), metrics, owner.report, guard, owner.held.extend,
                      owner.l2_dest, debug)


def _dora_requests(n: int) -> tuple[list[bytes], list[bytes]]:
    """n DISCOVERs and the REQUESTs for the addresses the engine will offer (next-fit)."""
    twin = _engine()
    link = Link("eth0", SERVER_IP)
    discovers, requests = [], []
    for i in range(n):
        d = build_request(DISCOVER, xid=i, chaddr=mac(i), flags=0x8000)
        offer = twin.handle(parse(d), link, 1000.0)
        yiaddr = int.from_bytes(offer.reply[16:20], "big")
        discovers.append(d)
        requests.append(build_request(REQUEST, xid=10 + i, chaddr=mac(i), flags=0x8000,
                                      requested_ip=yiaddr, server_id=SERVER_IP))
    return discovers, requests


def test_read_queues_offers_holds_acks_and_counts(socks: Any) -> None:
    server, peer = socks
    owner, m = Owner(), Metrics()
    ep = Ep(server)
    discovers, requests = _dora_requests(3)
    _deliver(peer, server, discovers + requests[:2])
    t0 = time.perf_counter()
    n = _path(owner, m).read(ep, 128, 1000.0, t0)
    assert n == 5
    assert m.received[DISCOVER] == 3 and m.received[REQUEST] == 2
    # broadcast bit set: OFFERs to 255.255.255.255:68, their type known without reading back
    assert [(o.dest_ip, o.dest_port, o.message_type, o.received_at) for o in ep.out] == \
        [(0xFFFFFFFF, 68, 2, t0)] * 3
    assert [h.endpoint for h in owner.held] == [ep, ep]
    assert [(h.out.message_type, h.out.data[242]) for h in owner.held] == [(5, 5), (5, 5)]
    assert all(t0 <= h.held_at <= time.perf_counter() for h in owner.held)
    assert owner.events() == [] and owner.l2_calls == [] and m.dropped == {}


def test_release_is_processed_not_dropped(socks: Any) -> None:
    server, peer = socks
    owner, m = Owner(), Metrics()
    ep = Ep(server)
    engine = _engine()
    path = _path(owner, m, engine)
    discovers, requests = _dora_requests(1)
    _deliver(peer, server, discovers)
    path.read(ep, 128, 1000.0, 0.0)
    _deliver(peer, server, requests)
    path.read(ep, 128, 1000.0, 0.0)
    ack = owner.held[0].out.data
    yiaddr = int.from_bytes(ack[16:20], "big")
    _deliver(peer, server, [build_request(RELEASE, xid=99, chaddr=mac(0), ciaddr=yiaddr,
                                          server_id=SERVER_IP)])
    assert path.read(ep, 128, 1000.0, 0.0) == 1
    # RFC 2131 4.3.4: no reply, and no drop counted or reported (Kea: pkt4-release-received)
    assert m.received[RELEASE] == 1 and m.dropped == {}
    assert owner.events() == []


def test_rare_cases_are_counted_and_reported(socks: Any) -> None:
    server, peer = socks
    owner, m = Owner(), Metrics()
    ep = Ep(server)
    bootreply = bytearray(build_request(DISCOVER, xid=4, chaddr=mac(4)))
    bootreply[0] = 2
    src = (0x7F000001, peer.getsockname()[1])
    _deliver(peer, server, [
        b"\x01\x01\x06",  # malformed: shorter than a BOOTP header
        bytes(bootreply),
        build_request(REQUEST, xid=2, chaddr=mac(2)),  # no requested address: a drop
        build_request(DISCOVER, xid=3, chaddr=mac(3)),  # no broadcast bit: layer-2 unicast
    ])
    path = _path(owner, m, debug=True)
    assert path.read(ep, 128, 1000.0, time.perf_counter()) == 4
    events = owner.events()
    assert [e.event for e in events] == [Event.MALFORMED, Event.DECISION, Event.ENGINE_DROP,
                                         Event.DECISION, Event.ENGINE_DROP, Event.DECISION]
    assert all((e.ip, e.port, e.where) == (*src, "127.0.0.1") for e in events)
    # one BOOTREPLY check, the engine's
    assert (events[2].reason, events[2].op, events[2].xid) == ("bootreply", 2, 4)
    assert (events[4].reason, events[4].message_type, events[4].chaddr) == \
        ("no-requested-address", 3, mac(2))
    assert events[5].reason.startswith("offer")
    assert m.dropped == {"bootreply": 1, "no-requested-address": 1}
    assert sum(m.malformed.values()) == 1
    # the layer-2 unicast destination is l2_dest's answer, not the decision's broadcast
    assert [(o.dest_ip, o.dest_port) for o in ep.out] == [(L2_DEST, 68)]
    # parsed datagrams, the BOOTREPLY's too (Kea counts it received, then dropped)
    assert m.received[DISCOVER] == 2 and m.received[REQUEST] == 1
    assert owner.held == []


def test_an_unexpected_exception_is_counted_and_reported(socks: Any) -> None:
    server, peer = socks
    owner, m = Owner(fail_l2=True), Metrics()
    ep = Ep(server)
    _deliver(peer, server, [build_request(DISCOVER, xid=3, chaddr=mac(3))])
    assert _path(owner, m).read(ep, 128, 1000.0, 0.0) == 1
    (ev,) = owner.events()
    assert ev.event is Event.INTERNAL_ERROR and isinstance(ev.error, RuntimeError)
    assert m.internal_errors == 1 and m.dropped == {"internal-error": 1} and ep.out == []


def test_the_report_is_bounded(socks: Any) -> None:
    server, peer = socks
    owner, m = Owner(), Metrics()
    ep = Ep(server)
    n = MAX_EVENTS + 20
    path = _path(owner, m)
    for start in range(0, n, 50):
        _deliver(peer, server, [b"\x01\x01"] * min(50, n - start))
        path.read(ep, 128, 1000.0, 0.0)
    events, lost = owner.report.take()
    assert (len(events), lost) == (MAX_EVENTS, 20)
    assert sum(m.malformed.values()) == n  # counted exactly, whatever was kept
    assert owner.report.take() == ([], 0)


def test_guard_and_unrelayed_option82(socks: Any) -> None:
    server, peer = socks
    seen_by_guard: list[tuple[int, int, float]] = []

    class Guard:
        def check(self, msg: Any, src_ip: int, now: float) -> str | None:
            seen_by_guard.append((msg.xid, src_ip, now))
            return "untrusted-relay" if msg.xid == 1 else None

    owner, m = Owner(), Metrics()
    ep = Ep(server)
    info = relay_agent_info(circuit_id=b"port-1")
    _deliver(peer, server, [
        build_request(DISCOVER, xid=1, chaddr=mac(1), flags=0x8000, relay_info=info),
        build_request(DISCOVER, xid=2, chaddr=mac(2), flags=0x8000, relay_info=info),
    ])
    t0 = time.perf_counter()
    assert _path(owner, m, guard=Guard()).read(ep, 128, 1000.0, t0) == 2
    assert seen_by_guard == [(1, 0x7F000001, t0), (2, 0x7F000001, t0)]
    events = owner.events()
    assert [(e.event, e.reason) for e in events] == [(Event.GUARD_DROP, "untrusted-relay")]
    # RFC 3046 2.1/2.2: the unrelayed request is served without its option 82, so the
    # OFFER does not echo it
    (offer,) = ep.out
    assert b"port-1" not in offer.data and m.agent_info_ignored == 1


def test_read_respects_the_limit(socks: Any) -> None:
    server, peer = socks
    owner, m = Owner(), Metrics()
    ep = Ep(server)
    _deliver(peer, server, [build_request(DISCOVER, xid=i, chaddr=mac(i), flags=0x8000)
                            for i in range(100)])
    path = _path(owner, m)
    assert path.read(ep, 70, 1000.0, 0.0) == 70
    assert path.read(ep, 70, 1000.0, 0.0) == 30
    assert path.read(ep, 70, 1000.0, 0.0) == 0
    assert m.received[DISCOVER] == 100


def test_flush_sends_counts_and_observes_like_histogram(socks: Any) -> None:
    server, peer = socks
    dest = peer.getsockname()
    m = Metrics()
    ep = Ep(server)
    now = time.perf_counter()
    # ages chosen well inside their buckets, so the time the flush takes cannot move them
    ages = {2: [0.0035, 0.7, 30.0], 5: [0.04, 0.0035], 6: [0.3]}
    for mtype, lst in ages.items():
        for age in lst:
            ep.out.append(Outgoing(_reply(mtype, pad=mtype), ip(dest[0]), dest[1], mtype,
                                   now - age))
    path = _path(Owner(), m)
    path.flush(ep)
    assert ep.out == []
    got = sorted(peer.recv(2048)[242] for _ in range(6))
    assert got == [2, 2, 2, 5, 5, 6]
    assert (m.sent[2], m.sent[5], m.sent[6]) == (3, 2, 1)
    for hist, mtype in ((m.offer_latency, 2), (m.ack_latency, 5)):
        oracle = Histogram(hist.bounds)
        for age in ages[mtype]:
            oracle.observe(age)
        assert hist.counts == oracle.counts
        assert hist.count == oracle.count
        assert oracle.sum <= hist.sum < oracle.sum + 0.5 * len(ages[mtype])


def test_flush_failures_are_counted_and_reported(socks: Any) -> None:
    server, peer = socks
    dest = peer.getsockname()
    owner, m = Owner(), Metrics()
    ep = Ep(server)
    t0 = time.perf_counter()
    ep.out = [Outgoing(_reply(2), ip(dest[0]), dest[1], 2, t0),
              Outgoing(_reply(2), ip(dest[0]), 0, 2, t0),
              Outgoing(_reply(5), ip(dest[0]), dest[1], 5, t0)]
    _path(owner, m).flush(ep)
    (ev,) = owner.events()
    assert (ev.event, ev.port, ev.message_type) == (Event.SEND_FAILED, 0, 2)
    assert ev.errno != 0  # port 0: EINVAL
    assert m.send_errors == 1 and m.dropped == {"send-error": 1}
    assert (m.sent[2], m.sent[5]) == (1, 1)
    assert m.offer_latency.count == 1 and m.ack_latency.count == 1


def test_flush_on_a_closed_endpoint_counts_drops(socks: Any) -> None:
    server, _peer = socks
    m = Metrics()
    ep = Ep(server)
    ep.closed = True
    ep.out = [Outgoing(_reply(5), 1, 2, 5, 0.0)] * 3
    _path(Owner(), m).flush(ep)
    assert ep.out == [] and m.dropped == {"socket-closed": 3} and sum(m.sent) == 0


def test_deliver_queues_by_endpoint_and_sends(socks: Any) -> None:
    server, peer = socks
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    try:
        dest = peer.getsockname()
        m = Metrics()
        a, b = Ep(server), Ep(other)
        t0 = time.perf_counter()
        item = Outgoing(_reply(5), ip(dest[0]), dest[1], 5, t0)
        _path(Owner(), m).deliver([HeldAck(a, item, t0), HeldAck(b, item, t0),
                                   HeldAck(a, item, t0)])
        assert a.out == [] and b.out == []
        senders = sorted(peer.recvfrom(2048)[1][1] for _ in range(3))
        assert senders == sorted([server.getsockname()[1]] * 2 + [other.getsockname()[1]])
        assert m.sent[5] == 3 and m.ack_latency.count == 3
    finally:
        other.close()
