"""Ping-check through the compiled packet path and fastdhcp.service.pingcheck, on loopback UDP
sockets with the real engine, and an ICMP socket stand-in that answers for chosen addresses
(the real ICMP socket is tested against 127.0.0.1 below, and against a host in a namespace in
tests/interop/test_rapid_ping.py)."""

from __future__ import annotations

import asyncio
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from dhcpsim import build_request, decode_reply, ip, mac, make_config
from path_rig import Ep

from fastdhcp._packetpath import HeldOffer, PacketPath
from fastdhcp.consts import MessageType
from fastdhcp.engine import Engine
from fastdhcp.leases import Lease, LeaseState, MemoryLeaseStore
from fastdhcp.metrics import Metrics
from fastdhcp.pathreport import PathReport
from fastdhcp.service import pingcheck
from fastdhcp.service.pingcheck import MAX_TRIES, IcmpSocket, PingChecker, Reply

PING = "enable-ping-check = true\nmin-ping-requests = 2\nreply-timeout = 20"


class FakeIcmp:
    """An ICMP socket whose hosts in ``answering`` reply to every echo request."""

    kind = "fake"

    def __init__(self, answering: set[int]) -> None:
        self.answering = answering
        self.sent: list[int] = []
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._queue: list[Reply] = []

    def fileno(self) -> int:
        return self._r.fileno()

    def send(self, addr: int, seq: int) -> None:
        self.sent.append(addr)
        if addr in self.answering:
            self._queue.append(Reply(addr, 1, seq))
            self._w.send(b"x")  # readable: the loop calls the checker's reader

    def receive(self, limit: int = 64) -> list[Reply]:
        try:
            self._r.recv(4096)
        except BlockingIOError:
            pass
        out, self._queue = self._queue, []
        return out

    def close(self) -> None:
        self._r.close()
        self._w.close()


class Rig:
    """The packet path over a ping-check config and its checker with a fake ICMP socket; the
    OFFERs go to the peer socket (layer-2 unicast answered with 127.0.0.1, client-port =
    the peer's port)."""

    def __init__(self, socks: Any, loop: asyncio.AbstractEventLoop, answering: set[int],
                 extra: str = PING, open_socket: Any = None) -> None:
        self.server, self.peer = socks
        port = self.peer.getsockname()[1]
        self.config = make_config(server_extra=f"client-port = {port}", subnet_extra=extra)
        self.store = MemoryLeaseStore()
        self.engine = Engine(self.config, self.store)
        self.metrics = Metrics()
        self.icmp = FakeIcmp(answering)
        self.kicks = 0
        self.checker = PingChecker(loop, self.metrics, self.engine, self._kick,
                                   open_socket=open_socket or (lambda: self.icmp))
        self.path = PacketPath(self.engine, self.metrics, PathReport(), None, None,
                               lambda ep, d: ip("127.0.0.1"), False, self.checker.submit)
        self.checker.attach(self.path, self.config.subnets)
        self.ep = Ep(self.server)

    def _kick(self) -> None:
        self.kicks += 1
        batch = self.store.take_pending()  # what the group commit does
        self.store.write(batch)
        self.store.committed(batch)

    def discover(self, n: int = 1, xid: int = 1) -> None:
        data = build_request(MessageType.DISCOVER, xid=xid, chaddr=mac(n))
        self.peer.sendto(data, self.server.getsockname())
        time.sleep(0.02)
        assert self.path.read(self.ep, 64, time.time(), time.perf_counter()) == 1
        self.path.flush(self.ep)

    def replies(self) -> list[Any]:
        self.peer.settimeout(0.05)
        out = []
        try:
            while True:
                out.append(decode_reply(self.peer.recv(2048)))
        except TimeoutError:
            return out


def test_a_marked_offer_is_held_not_sent(socks: Any) -> None:
    got: list[HeldOffer] = []
    server, peer = socks
    engine = Engine(make_config(subnet_extra=PING), MemoryLeaseStore())
    path = PacketPath(engine, Metrics(), PathReport(), None, None, lambda ep, d: 0, False,
                      got.extend)
    ep = Ep(server)
    peer.sendto(build_request(MessageType.DISCOVER, xid=5, chaddr=mac(1), flags=0x8000),
                server.getsockname())
    time.sleep(0.02)
    assert path.read(ep, 64, time.time(), time.perf_counter()) == 1
    assert ep.out == []  # nothing queued: the OFFER waits for its probe
    (held,) = got
    assert held.key == b"\x01" + mac(1) and held.tries == 0
    assert engine.offered(held.key) == held.ip
    assert decode_reply(held.out.data).yiaddr == held.ip


def test_no_answer_sends_the_offer_after_min_ping_requests(socks: Any) -> None:
    async def body() -> None:
        rig = Rig(socks, asyncio.get_running_loop(), set())
        rig.discover()
        assert rig.replies() == []  # held while probed
        assert rig.checker.pending == 1
        await asyncio.sleep(0.2)  # 2 requests x 20 ms, with room for a loaded machine
        (offer,) = rig.replies()
        assert offer.mtype == MessageType.OFFER
        assert rig.icmp.sent == [offer.yiaddr, offer.yiaddr]  # min-ping-requests = 2
        m = rig.metrics
        assert (m.ping_checks, m.ping_free, m.ping_conflicts) == (1, 1, 0)
        assert m.sent[MessageType.OFFER] == 1 and m.offer_latency.count == 1
        assert m.offer_latency.sum >= 0.04  # the probe's wait is in the OFFER's latency
        # The offer is probed now: a repeat DISCOVER is answered at once.
        rig.discover(xid=2)
        (again,) = rig.replies()
        assert again.yiaddr == offer.yiaddr and rig.checker.pending == 0
        rig.checker.close()
    asyncio.run(body())


def test_an_address_that_answers_is_declined_and_the_next_one_offered(socks: Any) -> None:
    async def body() -> None:
        first = ip("198.18.0.100")  # next-fit's first pick in the preset's pool
        rig = Rig(socks, asyncio.get_running_loop(), {first})
        rig.discover()
        await asyncio.sleep(0.2)
        (offer,) = rig.replies()
        assert offer.yiaddr != first
        assert rig.icmp.sent[0] == first and rig.icmp.sent[1:] == [offer.yiaddr] * 2
        lease = rig.store.get(first)
        assert lease is not None and lease.state == LeaseState.DECLINED and rig.kicks == 1
        c = rig.engine.subnet_counters()[1]
        assert (c.declined, c.ping_conflicts) == (1, 1)
        m = rig.metrics
        assert (m.ping_checks, m.ping_conflicts, m.ping_free) == (2, 1, 1)
        # Other clients are served, never with the declined address.
        rig.discover(n=2, xid=3)
        await asyncio.sleep(0.2)
        (other,) = rig.replies()
        assert other.yiaddr not in (first, offer.yiaddr)
        rig.checker.close()
    asyncio.run(body())


def test_the_loop_serves_others_while_a_probe_waits(socks: Any) -> None:
    async def body() -> None:
        rig = Rig(socks, asyncio.get_running_loop(), set(), extra=PING + """
[[subnet4.reservations]]
hw-address = "02:00:00:00:00:07"
ip-address = "198.18.0.50"
""")
        rig.discover(n=1, xid=1)  # a new address: probed, 2 x 20 ms
        rig.discover(n=7, xid=2)  # a reservation: never probed
        (first,) = rig.replies()
        assert first.xid == 2 and first.yiaddr == ip("198.18.0.50")
        # Answered while the first DISCOVER's probe is still running, its OFFER still held.
        assert rig.checker.pending == 1 and rig.icmp.sent == [rig.engine.offered(
            b"\x01" + mac(1))]
        await asyncio.sleep(0.2)
        (second,) = rig.replies()
        assert second.xid == 1
        rig.checker.close()
    asyncio.run(body())


def test_a_discover_is_dropped_after_max_tries_addresses_in_use(socks: Any) -> None:
    async def body() -> None:
        pool = {ip("198.18.0.100") + i for i in range(4)}
        rig = Rig(socks, asyncio.get_running_loop(), pool)
        rig.discover()
        await asyncio.sleep(0.2)
        assert rig.replies() == []
        assert len(rig.icmp.sent) == MAX_TRIES
        declined = [a for a in pool if (le := rig.store.get(a)) is not None
                    and le.state == LeaseState.DECLINED]
        assert len(declined) == MAX_TRIES
        assert rig.metrics.ping_gave_up == 1
        assert rig.metrics.dropped.get("ping-check-in-use") == 1
        rig.checker.close()
    asyncio.run(body())


def test_a_repeat_discover_joins_the_running_probe(socks: Any) -> None:
    async def body() -> None:
        rig = Rig(socks, asyncio.get_running_loop(), set())
        rig.discover(xid=1)
        rig.discover(xid=2)  # the client retransmits while the probe runs
        assert rig.checker.pending == 1
        await asyncio.sleep(0.2)
        (offer,) = rig.replies()  # one OFFER, for the newest DISCOVER
        assert offer.xid == 2 and len(rig.icmp.sent) == 2
        assert rig.metrics.dropped.get("ping-check-repeat") == 1
        rig.checker.close()
    asyncio.run(body())


def test_an_offer_withdrawn_during_its_probe_is_not_sent(socks: Any) -> None:
    async def body() -> None:
        rig = Rig(socks, asyncio.get_running_loop(), set())
        rig.discover()
        (addr,) = list(rig.checker._probes)
        # lease4-add gives the address to another client while the probe runs.
        rig.engine.admin_put(Lease(addr, b"\x01" + mac(9), mac(9), 1, LeaseState.DEFAULT,
                                   int(time.time()), int(time.time()) + 3600, "", b""))
        await asyncio.sleep(0.2)
        assert rig.replies() == []
        assert rig.metrics.dropped.get("ping-check-offer-gone") == 1
        rig.checker.close()
    asyncio.run(body())


def test_without_an_icmp_socket_offers_go_unprobed_and_are_counted(socks: Any) -> None:
    def refuse() -> IcmpSocket:
        raise PermissionError(1, "Operation not permitted")

    async def body() -> None:
        rig = Rig(socks, asyncio.get_running_loop(), set(), open_socket=refuse)
        assert rig.checker.socket_kind is None
        rig.discover()
        (offer,) = rig.replies()
        assert offer.mtype == MessageType.OFFER
        assert rig.metrics.ping_errors == 1 and rig.metrics.ping_checks == 0
        rig.checker.close()
    asyncio.run(body())


def test_the_real_icmp_socket_hears_loopback_answer() -> None:
    sock = IcmpSocket()  # unprivileged where ping_group_range allows, else raw (root here)
    try:
        assert sock.kind in ("dgram", "raw")
        sock.send(ip("127.0.0.1"), 4242)
        deadline = time.monotonic() + 2.0
        got: list[Reply] = []
        while not got and time.monotonic() < deadline:
            time.sleep(0.01)
            got = sock.receive()
        assert [(r.source, r.seq) for r in got] == [(ip("127.0.0.1"), 4242)]
    finally:
        sock.close()


def test_checksum_is_rfc_1071() -> None:
    # RFC 1071's example words: 0001 f203 f4f5 f6f7 sum to ddf2, complemented 220d.
    assert pingcheck._checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


_DGRAM_PROBE = """
import sys
import time
sys.path.insert(0, sys.argv[1])
from fastdhcp.service.pingcheck import IcmpSocket
s = IcmpSocket()
s.send(0x7F000001, 7)
got = []
deadline = time.monotonic() + 2.0
while not got and time.monotonic() < deadline:
    time.sleep(0.01)
    got = s.receive()
print(s.kind, [(r.source, r.seq) for r in got])
"""


def test_the_unprivileged_icmp_socket_where_ping_group_range_allows() -> None:
    # net.ipv4.ping_group_range is per network namespace: a private one that allows every
    # group gets the datagram kind, whose identifier the kernel sets and filters on.
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("needs root (a network namespace)")
        pytest.skip("needs root (a network namespace)")
    root = str(Path(__file__).resolve().parent.parent)
    script = ("ip link set lo up && sysctl -q -w net.ipv4.ping_group_range='0 2147483647' && "
              f"exec {shlex.quote(sys.executable)} -c {shlex.quote(_DGRAM_PROBE)} "
              f"{shlex.quote(root)}")
    cp = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True,
                        timeout=30)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == f"dgram [({ip('127.0.0.1')}, 7)]", cp.stdout + cp.stderr
