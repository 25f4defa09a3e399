"""The real server under a hostile datagram stream, then serving valid clients.

The in-process server (uvloop, loopback, high port, as in tests/test_service.py) receives
20,000 datagrams from a relay-address socket: mutated and truncated DHCP messages, oversize
ones (up to the UDP maximum of 65,507 bytes), BOOTREPLYs, random bytes, empty datagrams and a
share of valid requests. Afterwards:

* the server is alive and nothing escaped as an internal error;
* its Prometheus page accounts for every datagram: malformed by reason (the reason each
  datagram gets from the codec, folded into a label as the service does), BOOTREPLYs dropped,
  requests received by message type, and every request answered or dropped by a reason; the
  kernel's drop counter for the server socket (``/proc/net/udp``) is part of the sum, so the
  check is exact even if the kernel dropped some (the stream is sent in bursts, each sent
  only after the server has counted the previous one, so normally it drops none);
* valid clients are served: 300 relayed DORAs through ``fastdhcp.loadgen.run_load`` all
  complete, and a scapy-built exchange gets its ACK.

Network safety: every datagram of 28 bytes or more carries giaddr = the relay address, so any
reply goes back to the test's relay socket on loopback (RFC 2131 4.1: a relayed request is
answered at giaddr), never to an address a mutation made up. No wall-clock assertions: waits
are bounded, and only counts are asserted.
"""

from __future__ import annotations

import random
import socket
import struct
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_helpers import (
    RELAY_IP,
    SERVER_IP,
    InProcessServer,
    RelayClient,
    dhcp_options,
    free_port,
    free_tcp_port,
    mac,
)

from fastdhcp._codec import parse
from fastdhcp.config import loads
from fastdhcp.errors import MalformedPacket
from fastdhcp.loadgen import run_load
from fastdhcp.metrics import label

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.vectors import names, vector  # noqa: E402

pytestmark = pytest.mark.service

TOTAL = 20_000
BURST = 200
UDP_MAX = 65_507
RELAY_INT = struct.unpack("!I", socket.inet_aton(RELAY_IP))[0]

CONFIG = """
[server]
listen-addresses = ["{server}"]
port = {port}
client-port = {cport}
metrics = "127.0.0.1:{mport}"

[lease-database]
path = "{db}"
sync = false

[global]
valid-lifetime = 3600
offer-lifetime = 60
option-data = {{ domain-name-servers = ["198.18.0.53"], domain-name = "example.test" }}

# A /16 so that the offers held for the stream's many random clients cannot exhaust the pool
# before the valid clients come.
[[subnet4]]
id = 1
subnet = "198.18.0.0/16"
pools = ["198.18.1.0 - 198.18.200.255"]
relay = ["{relay}"]
option-data = {{ routers = ["198.18.0.1"] }}
"""


def _seeds(relay: RelayClient) -> list[bytes]:
    """Valid relayed requests of every type (scapy-built) and the annotated vectors."""
    out = [vector(n) for n in names()]
    for i, kind in enumerate(("discover", "request", "release", "decline", "inform")):
        for j in range(4):
            out.append(relay.build(kind, mac(0x9000 + 10 * i + j), 0x5000 + 10 * i + j,
                                   circuit=b"port-%d" % j,
                                   options=[("requested_addr", f"198.18.1.{j + 1}"),
                                            ("param_req_list", [1, 3, 6, 15])]))
    return out


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        n = len(b)
        op = rng.randrange(6)
        if op == 0 and n:
            b[rng.randrange(n)] = rng.randrange(256)
        elif op == 1 and n > 240:  # an option code or length byte
            b[rng.randrange(240, n)] = rng.choice((0, 1, 2, 4, 52, 53, 82, 255,
                                                   rng.randrange(256)))
        elif op == 2:
            i = rng.randrange(n + 1)
            b[i:i] = rng.randbytes(rng.randint(1, 24))
        elif op == 3 and n > 1:
            i = rng.randrange(n)
            del b[i : i + rng.randint(1, 40)]
        elif op == 4 and n > 240:  # a TLV of a fixed-length or structured option
            code = rng.choice((50, 51, 52, 53, 54, 57, 61, 82, 118))
            v = rng.randbytes(rng.choice((0, 1, 2, 3, 4, 5)))
            i = rng.randrange(240, n + 1)
            b[i:i] = bytes((code, len(v))) + v
        elif op == 5 and n > 3:  # htype/hlen/hops
            b[rng.randrange(1, 4)] = rng.choice((0, 1, 6, 16, 17, 255))
    return bytes(b)


def hostile_stream(seeds: list[bytes], rng: random.Random) -> list[bytes]:
    """``TOTAL`` datagrams: (share) mutated 40 %, truncated 15 %, random 13 %, BOOTREPLY 10 %,
    valid 10 %, oversize 5 %, no option 53 / odd types 5 %, empty or tiny 2 %."""
    out: list[bytes] = []
    for _ in range(TOTAL):
        base = rng.choice(seeds)
        r = rng.random()
        if r < 0.40:
            d = _mutate(rng, base)
        elif r < 0.55:
            d = base[: rng.randrange(len(base))]
        elif r < 0.68:
            d = rng.randbytes(rng.choice((rng.randrange(1, 240), rng.randrange(240, 1500))))
            if rng.random() < 0.5 and len(d) >= 240:  # random options after a good cookie
                d = d[:236] + b"\x63\x82\x53\x63" + d[240:]
        elif r < 0.78:
            d = b"\x02" + base[1:]
        elif r < 0.88:
            d = base
        elif r < 0.93:
            size = rng.choice((UDP_MAX, rng.randrange(len(base), UDP_MAX + 1)))
            fill = b"\0" if rng.random() < 0.5 else rng.randbytes(1)
            d = (base + fill * size)[:size]  # padding after the end option, or garbage
        elif r < 0.98:
            b = bytearray(base)
            if len(b) > 242 and b[240] == 53:
                b[242] = rng.choice((0, 2, 5, 6, 9, 13, 200, 255))
            d = bytes(b)
        else:
            d = rng.randbytes(rng.randrange(0, 28))
        if len(d) >= 28:  # giaddr = the relay: replies come back to the test's socket
            d = d[:24] + struct.pack("!I", RELAY_INT) + d[28:]
        out.append(d[:UDP_MAX])
    return out


def expected_counts(stream: list[bytes]) -> tuple[Counter[str], int, Counter[int]]:
    """(malformed by label, BOOTREPLYs, datagrams by message type) the service must report.
    BOOTREPLYs count by type too (dropped, but received: Kea's pkt4-offer-received)."""
    malformed: Counter[str] = Counter()
    replies = 0
    received: Counter[int] = Counter()
    for d in stream:
        try:
            m = parse(d)
        except MalformedPacket as exc:
            malformed[label(exc.reason)] += 1
            continue
        if m.op != 1:
            replies += 1
        received[m.message_type] += 1
    return malformed, replies, received


def udp_drops(port: int) -> int:
    """The kernel's drop counter of the UDP socket bound to SERVER_IP:port (/proc/net/udp)."""
    ip_hex = socket.inet_aton(SERVER_IP)[::-1].hex().upper()
    want = f"{ip_hex}:{port:04X}"
    total = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1] == want:
                total += int(parts[-1])
    return total


def _accounted(m) -> int:  # type: ignore[no-untyped-def]
    """Datagrams the service has finished with: malformed, BOOTREPLY, answered or dropped."""
    requests_done = sum(m.sent) + sum(v for k, v in m.dropped.items() if k != "bootreply")
    return sum(m.malformed.values()) + m.dropped.get("bootreply", 0) + requests_done


def _wait(cond, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _scrape(mport: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10).read()
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _family(samples, name: str, key: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {dict(lbl)[key]: v for (n, lbl), v in samples.items() if n == name}


def test_hostile_stream_accounted_then_valid_clients_served(tmp_path: Path) -> None:
    port = free_port()
    mport = free_tcp_port()
    cfg = loads(CONFIG.format(server=SERVER_IP, port=port, cport=port + 1, mport=mport,
                              db=tmp_path / "db", relay=RELAY_IP), str(tmp_path / "f.toml"))
    rng = random.Random(20261127)
    with InProcessServer(cfg) as srv:
        m = srv.server.metrics
        with RelayClient(port, timeout=5.0) as relay:
            stream = hostile_stream(_seeds(relay), rng)
            want_bad, want_replies, want_received = expected_counts(stream)
            # every class of datagram is really in the stream
            assert sum(want_bad.values()) > TOTAL // 3 and want_replies > TOTAL // 20
            assert sum(want_received.values()) > TOTAL // 10
            assert max(len(d) for d in stream) == UDP_MAX and min(len(d) for d in stream) == 0
            drops0 = udp_drops(port)

            answers = [0]
            stop = threading.Event()

            def drain() -> None:  # the replies to the relay address: read, count, drop
                s = relay.sock
                s.settimeout(0.05)
                while not stop.is_set():
                    try:
                        s.recvfrom(65536)
                        answers[0] += 1
                    except (TimeoutError, BlockingIOError):
                        continue

            t = threading.Thread(target=drain, daemon=True)
            t.start()
            try:
                sent = 0
                for i in range(0, TOTAL, BURST):
                    for d in stream[i : i + BURST]:
                        relay.sock.sendto(d, (SERVER_IP, port))
                    sent += len(stream[i : i + BURST])
                    _wait(lambda n=sent: _accounted(m) + udp_drops(port) - drops0 >= n,
                          f"the server to account for {sent} datagrams")
                # held ACKs leave after their group commit: wait for the last ones
                _wait(lambda: _accounted(m) + udp_drops(port) - drops0 == TOTAL,
                      "the last commits")
            finally:
                stop.set()
                t.join(timeout=10)
            kernel_drops = udp_drops(port) - drops0

        assert m.internal_errors == 0, m.dropped
        assert m.commit_failures == 0 and m.send_errors == 0
        samples = _scrape(mport)
        got_bad = _family(samples, "fastdhcp_malformed_total", "reason")
        got_drop = _family(samples, "fastdhcp_dropped_total", "reason")
        got_recv = _family(samples, "fastdhcp_packets_received_total", "type")
        got_sent = _family(samples, "fastdhcp_packets_sent_total", "type")
        if kernel_drops == 0:
            # exact, by reason and by type
            assert got_bad == {k: float(v) for k, v in want_bad.items()}
            assert got_drop.get("bootreply", 0) == want_replies
            assert sum(got_recv.values()) == sum(want_received.values())
            from fastdhcp.metrics import type_name

            assert got_recv == {type_name(k): float(v) for k, v in want_received.items()}
        # every datagram is accounted for once: malformed, BOOTREPLY, answered or dropped
        requests_done = sum(got_sent.values()) + sum(
            v for k, v in got_drop.items() if k != "bootreply")
        assert requests_done + got_drop.get("bootreply", 0) == sum(got_recv.values())
        assert (sum(got_bad.values()) + got_drop.get("bootreply", 0) + requests_done
                + kernel_drops == TOTAL)
        assert answers[0] <= sum(got_sent.values())  # no reply went anywhere else

        # the server still serves: 300 relayed DORAs through the load driver, all complete
        sent_acks = m.sent[5]
        stats = run_load((SERVER_IP, port), RELAY_IP, clients=300, max_exchanges=300,
                         window=16, duration=60.0, timeout=3.0, first_mac=0x0A0000000000)
        assert stats.discovers == 300 and stats.acks == 300, stats
        assert stats.naks == 0 and stats.timeouts == 0 and stats.malformed == 0, stats
        assert m.sent[5] - sent_acks == 300
        # and one more exchange checked field by field with scapy
        with RelayClient(port, timeout=5.0) as c:
            offer, ack = c.dora(mac(0xBEEF), 0xBEEF00)
        assert dhcp_options(ack)["message-type"] == 5 and ack.yiaddr == offer.yiaddr
        assert m.internal_errors == 0


def test_request_whose_option82_cannot_be_echoed_is_a_counted_drop(tmp_path: Path) -> None:
    """A relayed DISCOVER with 616 bytes of option 82 (valid, found by the engine fuzzer): the
    OFFER could not carry it back (RFC 3046 2.2, 576-byte limit), so the request is dropped
    and counted by a reason, not an internal error; the next client is served."""
    from tests.vectors import load_hex

    port = free_port()
    mport = free_tcp_port()
    cfg = loads(CONFIG.format(server=SERVER_IP, port=port, cport=port + 1, mport=mport,
                              db=tmp_path / "db", relay=RELAY_IP), str(tmp_path / "f.toml"))
    data = load_hex((ROOT / "tests" / "vectors" / "fuzz" / "engine_oversize_option82.hex")
                    .read_text())
    data = data[:24] + struct.pack("!I", RELAY_INT) + data[28:]
    with InProcessServer(cfg) as srv, RelayClient(port, timeout=5.0) as c:
        m = srv.server.metrics
        c.send_raw(data)
        offer, ack = c.dora(mac(0xC0FFEE), 0xC0FFEE)  # handled after the big one
        assert dhcp_options(ack)["message-type"] == 5
        assert m.received[1] == 2 and m.sent[2] == 1
        assert m.internal_errors == 0, m.dropped
        assert sum(m.dropped.values()) == 1, m.dropped
        assert [r for r, n in m.dropped.items() if n] == ["relay-info-too-long"], m.dropped
