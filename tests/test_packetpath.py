"""The compiled packet path (fastdhcp._packetpath) on loopback sockets, with a stand-in engine
and a recording stand-in server: what it counts, queues, holds and hands to the server's rare-case
methods. The whole server over it is covered by test_service.py and the interop tests."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from dhcpsim import build_request, ip, mac, relay_agent_info
from fastdhcp._packetpath import PacketPath

from fastdhcp._codec import parse
from fastdhcp._sockio import DatagramIO
from fastdhcp.engine import Decision
from fastdhcp.errors import MalformedPacket
from fastdhcp.metrics import Histogram, Metrics

DISCOVER, REQUEST, RELEASE = 1, 3, 7
GIADDR = ip("198.18.0.1")


def _reply(mtype: int, pad: int = 0) -> bytes:
    """A reply as the codec lays it out: option 53 first, at offset 240."""
    return b"\x02" + bytes(235) + b"\x63\x82\x53\x63" + bytes((53, 1, mtype, 255)) + bytes(pad)


@dataclass
class Ep:
    """What the path reads of the service's Endpoint."""

    sock: socket.socket
    link: Any = "link"
    key: tuple[str, str, int] = ("addr", "127.0.0.1", 0)
    out: list[Any] = field(default_factory=list)
    closed: bool = False
    io: DatagramIO = field(init=False)

    def __post_init__(self) -> None:
        self.io = DatagramIO(self.sock)


class RecordingServer:
    """The rare-case methods of fastdhcp.service.Server, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_") or name.startswith("__"):
            raise AttributeError(name)

        def record(*args: Any) -> Any:
            self.calls.append((name, *args))
            if name == "_dest_ip":
                return 0x7F000001
            if name == "_send_failed":
                return {i for i, _err in args[2]}
            return None

        return record

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


class ScriptedEngine:
    """handle() returns what ``decide(msg)`` says and remembers every message it saw."""

    def __init__(self, decide: Any) -> None:
        self.decide = decide
        self.seen: list[Any] = []

    def handle(self, msg: Any, link: Any, now: float) -> Decision:
        self.seen.append(msg)
        return self.decide(msg)


@pytest.fixture
def socks() -> Iterator[tuple[socket.socket, socket.socket]]:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setblocking(False)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2.0)
    yield server, peer
    server.close()
    peer.close()


def _deliver(peer: socket.socket, server: socket.socket, datagrams: list[bytes]) -> None:
    for d in datagrams:
        peer.sendto(d, server.getsockname())
    time.sleep(0.05)  # loopback delivery is synchronous; this only yields the CPU


def _path(srv: RecordingServer, engine: Any, metrics: Metrics, held: list[Any],
          guard: Any = None, debug: bool = False) -> PacketPath:
    return PacketPath(srv, engine, metrics, guard, held.extend, debug)


def test_read_queues_offers_holds_acks_and_counts(socks: Any) -> None:
    server, peer = socks
    port = peer.getsockname()[1]

    def decide(msg: Any) -> Decision:
        if msg.message_type == DISCOVER:
            return Decision("offer", reply=_reply(2), dest_ip=GIADDR, dest_port=port)
        return Decision("ack", reply=_reply(5), dest_ip=GIADDR, dest_port=port,
                        binding=("lease", msg.xid))

    engine = ScriptedEngine(decide)
    srv, m, held = RecordingServer(), Metrics(), []
    ep = Ep(server)
    reqs = [build_request(DISCOVER, xid=i, chaddr=mac(i), giaddr=GIADDR) for i in range(3)]
    reqs += [build_request(REQUEST, xid=10 + i, chaddr=mac(i), giaddr=GIADDR) for i in range(2)]
    _deliver(peer, server, reqs)
    t0 = time.perf_counter()
    n = _path(srv, engine, m, held).read(ep, 128, 1000.0, t0)
    assert n == 5
    assert [x.xid for x in engine.seen] == [0, 1, 2, 10, 11]
    assert m.received[DISCOVER] == 3 and m.received[REQUEST] == 2
    assert [item[1:] for item in ep.out] == [(GIADDR, port, t0)] * 3
    assert [tok[0] for tok in held] == [ep, ep]
    assert [tok[1][0][242] for tok in held] == [5, 5]
    assert all(t0 <= tok[2] <= time.perf_counter() for tok in held)
    assert srv.calls == []


def test_rare_cases_go_to_the_server(socks: Any) -> None:
    server, peer = socks

    def decide(msg: Any) -> Decision:
        if msg.xid == 1:
            raise RuntimeError("injected")
        if msg.xid == 2:
            return Decision("drop", reason="pool-exhausted")
        return Decision("offer", reply=_reply(2), dest_ip=0xFFFFFFFF, dest_port=68,
                        l2_unicast=(ip("198.18.0.9"), mac(3)))

    engine = ScriptedEngine(decide)
    srv, m, held = RecordingServer(), Metrics(), []
    ep = Ep(server)
    bootreply = bytearray(build_request(DISCOVER, xid=4, chaddr=mac(4)))
    bootreply[0] = 2
    _deliver(peer, server, [
        b"\x01\x01\x06",  # malformed: shorter than a BOOTP header
        bytes(bootreply),
        build_request(DISCOVER, xid=1, chaddr=mac(1), giaddr=GIADDR),
        build_request(DISCOVER, xid=2, chaddr=mac(2), giaddr=GIADDR),
        build_request(DISCOVER, xid=3, chaddr=mac(3)),
    ])
    path = _path(srv, engine, m, held, debug=True)
    assert path.read(ep, 128, 1000.0, time.perf_counter()) == 5
    names = srv.names()
    assert names == ["_malformed", "_bootreply", "_internal_error", "_log_decision",
                     "_engine_dropped", "_log_decision", "_dest_ip"]
    assert isinstance(srv.calls[0][2], MalformedPacket)
    assert srv.calls[0][3:] == (0x7F000001, peer.getsockname()[1])
    assert isinstance(srv.calls[2][4], RuntimeError)
    assert srv.calls[4][3].reason == "pool-exhausted"
    # the layer-2 unicast destination is the server's answer, not the decision's broadcast
    assert [item[1:3] for item in ep.out] == [(0x7F000001, 68)]
    assert m.received[DISCOVER] == 3  # parsed requests only
    assert held == []


def test_guard_and_unrelayed_option82(socks: Any) -> None:
    server, peer = socks
    seen_by_guard: list[tuple[int, int, float]] = []

    class Guard:
        def check(self, msg: Any, src_ip: int, now: float) -> str | None:
            seen_by_guard.append((msg.xid, src_ip, now))
            return "untrusted-relay" if msg.xid == 1 else None

    engine = ScriptedEngine(lambda msg: Decision("drop", reason="x"))
    srv, m, held = RecordingServer(), Metrics(), []
    ep = Ep(server)
    info = relay_agent_info(circuit_id=b"port-1")
    _deliver(peer, server, [
        build_request(DISCOVER, xid=1, chaddr=mac(1), giaddr=GIADDR, relay_info=info),
        build_request(DISCOVER, xid=2, chaddr=mac(2), relay_info=info),  # not relayed
        build_request(DISCOVER, xid=3, chaddr=mac(3), giaddr=GIADDR, relay_info=info),
    ])
    t0 = time.perf_counter()
    assert _path(srv, engine, m, held, guard=Guard()).read(ep, 128, 1000.0, t0) == 3
    assert seen_by_guard == [(1, 0x7F000001, t0), (2, 0x7F000001, t0), (3, 0x7F000001, t0)]
    assert srv.names() == ["_guard_dropped", "_engine_dropped", "_engine_dropped"]
    assert srv.calls[0][3] == "untrusted-relay"
    # RFC 3046 2.1/2.2: the unrelayed request reaches the engine without its option 82
    assert [x.xid for x in engine.seen] == [2, 3]
    assert engine.seen[0].relay_agent_info is None
    assert engine.seen[1].relay_agent_info == parse(
        build_request(DISCOVER, xid=3, chaddr=mac(3), giaddr=GIADDR, relay_info=info)
    ).relay_agent_info
    assert m.agent_info_ignored == 1


def test_read_respects_the_limit(socks: Any) -> None:
    server, peer = socks
    engine = ScriptedEngine(lambda msg: Decision("drop", reason="x"))
    srv, m, held = RecordingServer(), Metrics(), []
    ep = Ep(server)
    _deliver(peer, server, [build_request(DISCOVER, xid=i, chaddr=mac(i), giaddr=GIADDR)
                            for i in range(100)])
    path = _path(srv, engine, m, held)
    assert path.read(ep, 70, 1000.0, 0.0) == 70
    assert path.read(ep, 70, 1000.0, 0.0) == 30
    assert path.read(ep, 70, 1000.0, 0.0) == 0
    assert [x.xid for x in engine.seen] == list(range(100))


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
            ep.out.append((_reply(mtype, pad=mtype), ip(dest[0]), dest[1], now - age))
    path = _path(RecordingServer(), ScriptedEngine(None), m, [])
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


def test_flush_failures_are_the_servers_to_count(socks: Any) -> None:
    server, peer = socks
    dest = peer.getsockname()
    srv, m = RecordingServer(), Metrics()
    ep = Ep(server)
    t0 = time.perf_counter()
    ep.out = [(_reply(2), ip(dest[0]), dest[1], t0), (_reply(2), ip(dest[0]), 0, t0),
              (_reply(5), ip(dest[0]), dest[1], t0)]
    _path(srv, ScriptedEngine(None), m, []).flush(ep)
    assert srv.names() == ["_send_failed"]
    failed = srv.calls[0][3]
    assert [i for i, _err in failed] == [1]  # port 0: EINVAL
    assert (m.sent[2], m.sent[5]) == (1, 1)
    assert m.offer_latency.count == 1 and m.ack_latency.count == 1


def test_flush_on_a_closed_endpoint_counts_drops(socks: Any) -> None:
    server, _peer = socks
    m = Metrics()
    ep = Ep(server)
    ep.closed = True
    ep.out = [(_reply(5), 1, 2, 0.0)] * 3
    _path(RecordingServer(), ScriptedEngine(None), m, []).flush(ep)
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
        item = (_reply(5), ip(dest[0]), dest[1], t0)
        _path(RecordingServer(), ScriptedEngine(None), m, []).deliver(
            [(a, item, t0), (b, item, t0), (a, item, t0)])
        assert a.out == [] and b.out == []
        senders = sorted(peer.recvfrom(2048)[1][1] for _ in range(3))
        assert senders == sorted([server.getsockname()[1]] * 2 + [other.getsockname()[1]])
        assert m.sent[5] == 3 and m.ack_latency.count == 3
    finally:
        other.close()
