"""UDP GSO in ``fastdhcp._sockio.DatagramIO.send``: replies of one batch to one address and
port, of one size, leave as one ``UDP_SEGMENT`` message; the receiver (a relay: a plain UDP
socket) must still get every reply intact and as its own datagram. Then the whole server: a
burst of relayed DISCOVERs answered through GSO, each OFFER parsed by scapy, the
``fastdhcp_gso_*`` counters matching what the socket layer counted."""

from __future__ import annotations

import random
import select
import socket
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from scapy.layers.dhcp import BOOTP
from service_helpers import (
    RELAY_IP,
    InProcessServer,
    RelayClient,
    config_text,
    dhcp_options,
    free_port,
    free_tcp_port,
    in_pool,
    mac,
)

from fastdhcp._sockio import DatagramIO, Outgoing
from fastdhcp.config import loads
from fastdhcp.netio import str_to_ip

LOOPBACK = 0x7F000001
SO_NO_CHECK = 11  # asm-generic/socket.h: no UDP checksum on send; the kernel refuses GSO then
IPPROTO_UDPLITE = 136


def _pair(proto: int = 0) -> tuple[socket.socket, socket.socket, list[socket.socket]]:
    """A sender and a receiver on loopback (plus a second receiver on another port)."""
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, proto)
    a.bind(("127.0.0.1", 0))
    a.setblocking(False)
    rx = []
    for _ in range(2):
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, proto)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        b.bind(("127.0.0.1", 0))
        b.setblocking(False)
        rx.append(b)
    return a, rx[0], rx


def _drain(sock: socket.socket, want: int, timeout: float = 5.0) -> list[bytes]:
    """Datagrams read one recv at a time (each recv returns exactly one datagram)."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        select.select([sock], [], [], 0.2)
        try:
            while True:
                got.append(sock.recv(70000))
        except BlockingIOError:
            pass
    # nothing beyond what was sent
    select.select([sock], [], [], 0.05)
    try:
        got.append(sock.recv(70000))
    except BlockingIOError:
        pass
    return got


def test_same_destination_and_size_leave_as_gso_and_arrive_one_by_one() -> None:
    a, b, rx = _pair()
    try:
        io = DatagramIO(a)
        assert io.gso and io.gso_errno == 0  # Linux >= 4.18: every CI host here
        rng = random.Random(19)
        ports = [s.getsockname()[1] for s in rx]
        # 150 replies: two receivers, sizes 300 / 301 / 576 mixed, one too large to segment
        items = []
        for i in range(150):
            size = rng.choice((300, 301, 576))
            payload = i.to_bytes(2, "big") + rng.randbytes(size - 2)
            items.append(Outgoing(payload, LOOPBACK, ports[i % 2]))
        items.insert(40, Outgoing(b"\x00\x99" + rng.randbytes(3000), LOOPBACK, ports[0]))
        assert io.send(items) == []
        assert io.gso_sends > 0
        # Every datagram that shared a message with others was counted, once.
        assert io.gso_datagrams >= 2 * io.gso_sends
        assert io.gso_datagrams <= len(items) - 1  # the 3,002-byte one never joins
        for k, sock in enumerate(rx):
            want = [it.data for it in items if it.dest_port == ports[k]]
            got = _drain(sock, len(want))
            assert sorted(got) == sorted(want)  # intact, one datagram each, none extra
            for size in (300, 301, 576):  # the order of one destination and size is kept
                assert [g for g in got if len(g) == size] == [w for w in want
                                                              if len(w) == size]
    finally:
        a.close()
        for s in rx:
            s.close()


def test_gso_groups_counted_exactly() -> None:
    a, b, _rx = _pair()
    try:
        io = DatagramIO(a)
        port = b.getsockname()[1]
        # 64 of 300 bytes (a batch: at most 64 a message), then 10 of 200 bytes, then a lone one
        items = [Outgoing(bytes([i]) * 300, LOOPBACK, port) for i in range(64)]
        items += [Outgoing(bytes([i]) * 200, LOOPBACK, port) for i in range(10)]
        items.append(Outgoing(b"x" * 100, LOOPBACK, port))
        assert io.send(items) == []
        # batch 1 (64 datagrams): one message of 64; batch 2: one of 10 and the lone one
        assert (io.gso_sends, io.gso_datagrams) == (2, 74)
        got = _drain(b, len(items))
        assert sorted(got) == sorted(it.data for it in items)
    finally:
        a.close()
        b.close()


def test_gso_off_sends_one_datagram_a_message() -> None:
    a, b, _rx = _pair()
    try:
        io = DatagramIO(a, gso=False)
        assert not io.gso
        port = b.getsockname()[1]
        items = [Outgoing(bytes([i]) * 300, LOOPBACK, port) for i in range(20)]
        assert io.send(items) == []
        assert (io.gso_sends, io.gso_datagrams) == (0, 0)
        assert _drain(b, 20) == [it.data for it in items]  # and in order
    finally:
        a.close()
        b.close()


def test_refused_gso_message_is_resent_one_by_one() -> None:
    # SO_NO_CHECK: the kernel refuses a GSO send with EINVAL; GSO stays on for other sizes
    a, b, _rx = _pair()
    try:
        a.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        io = DatagramIO(a)
        port = b.getsockname()[1]
        items = [Outgoing(bytes([i]) * 300, LOOPBACK, port) for i in range(12)]
        assert io.send(items) == []
        assert io.gso and io.gso_fallbacks == 1 and io.gso_sends == 0
        assert sorted(_drain(b, 12)) == sorted(it.data for it in items)
    finally:
        a.close()
        b.close()


def test_socket_that_cannot_gso_turns_it_off_once() -> None:
    # UDP-Lite: the kernel knows the option but fails the send with EIO: off for good
    a, b, _rx = _pair(IPPROTO_UDPLITE)
    try:
        io = DatagramIO(a)
        port = b.getsockname()[1]
        first = [Outgoing(bytes([i]) * 300, LOOPBACK, port) for i in range(8)]
        assert io.send(first) == []
        assert not io.gso and io.gso_errno == 5  # EIO
        again = [Outgoing(bytes([100 + i]) * 300, LOOPBACK, port) for i in range(8)]
        assert io.send(again) == []
        assert io.gso_sends == 0
        assert sorted(_drain(b, 16)) == sorted(it.data for it in first + again)
    finally:
        a.close()
        b.close()


def test_failed_gso_message_reports_each_of_its_datagrams() -> None:
    a, b, _rx = _pair()
    try:
        io = DatagramIO(a)
        port = b.getsockname()[1]
        items = [Outgoing(b"a" * 300, LOOPBACK, port) for _ in range(3)]
        # port 0: EINVAL for a plain datagram too, so the re-sent ones fail one by one
        items += [Outgoing(b"b" * 300, LOOPBACK, 0) for _ in range(3)]
        failed = io.send(items)
        assert sorted(i for i, _ in failed) == [3, 4, 5]
        assert sorted(_drain(b, 3)) == [b"a" * 300] * 3
    finally:
        a.close()
        b.close()


def _scrape(mport: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10).read()
    return {s.name: s.value for fam in text_string_to_metric_families(text.decode())
            for s in fam.samples if not s.labels}


def test_server_burst_to_one_relay_goes_out_through_gso(tmp_path: Path) -> None:
    port = free_port()
    mport = free_tcp_port()
    cfg = loads(config_text(tmp_path / "db", port, metrics=f"127.0.0.1:{mport}"),
                str(tmp_path / "fastdhcp.toml"))
    n = 48
    with InProcessServer(cfg) as srv, RelayClient(port) as relay:
        relay.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sender = DatagramIO(relay.sock, gso=False)  # the burst arrives at once
        xids = [0x5000 + i for i in range(n)]
        burst = [Outgoing(relay.build("discover", mac(0x900 + i), xid), str_to_ip("127.0.0.1"),
                          port) for i, xid in enumerate(xids)]
        assert sender.send(burst) == []
        offers = {}
        relay.sock.settimeout(5)
        while len(offers) < n:
            data, src = relay.sock.recvfrom(65536)  # one datagram, one OFFER
            pkt = BOOTP(data)
            assert len(data) == len(bytes(pkt))  # nothing glued on: exactly one message
            assert dhcp_options(pkt)["message-type"] == 2
            assert pkt.xid not in offers
            offers[pkt.xid] = pkt
        assert sorted(offers) == xids
        assert all(in_pool(p.yiaddr) and p.giaddr == RELAY_IP for p in offers.values())
        assert len({p.yiaddr for p in offers.values()}) == n
        metrics = srv.server.metrics
        for _ in range(50):  # counted after sendmmsg returned: a scrape may be a send behind
            seen = _scrape(mport)
            if seen.get("fastdhcp_gso_datagrams_total") == metrics.gso_datagrams:
                break
            time.sleep(0.05)
    # the first DISCOVER is answered at once, the rest of the burst in paced reads: some of
    # those replies share a GSO message
    assert metrics.gso_sends >= 1 and metrics.gso_datagrams >= 2
    assert metrics.gso_datagrams <= n
    assert seen["fastdhcp_gso_sends_total"] == metrics.gso_sends
    assert seen["fastdhcp_gso_datagrams_total"] == metrics.gso_datagrams
    assert seen["fastdhcp_gso_disabled_total"] == 0
    assert seen["fastdhcp_gso_fallbacks_total"] == 0
