"""The real server on loopback UDP at a high port: relayed DORA checked with scapy, durability
(the lease is in LMDB when its ACK arrives), malformed input, metrics, signals, reload.

In-process tests run the server on uvloop and on the stock asyncio loop (one body, both loops,
as uvloop's own UDP tests do); signal tests run ``fastdhcp serve`` as a child process.
"""

from __future__ import annotations

import signal
import time
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from scapy.layers.dhcp import BOOTP
from service_helpers import (
    POOL,
    RELAY_IP,
    InProcessServer,
    RelayClient,
    ServeProcess,
    config_text,
    dhcp_options,
    free_port,
    free_tcp_port,
    in_pool,
    lmdb_leases,
    mac,
)

from fastdhcp.config import loads

pytestmark = pytest.mark.service

LOOPS = ["uvloop", "asyncio"]


def _config(tmp_path: Path, port: int, **kw: object):  # type: ignore[no-untyped-def]
    return loads(config_text(tmp_path / "db", port, **kw), str(tmp_path / "fastdhcp.toml"))


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_relayed_dora_ack_after_commit(tmp_path: Path, loop_kind: str) -> None:
    port = free_port()
    with InProcessServer(_config(tmp_path, port), loop_kind) as srv, RelayClient(port) as c:
        seen = set()
        for i in range(5):
            chaddr = mac(i + 1)
            circuit = f"olt1/port{i}".encode()
            offer, ack = c.dora(chaddr, 0x1000 + 2 * i, circuit=circuit)
            assert offer.op == 2 and ack.op == 2
            assert dhcp_options(offer)["message-type"] == 2
            assert dhcp_options(ack)["message-type"] == 5
            assert in_pool(offer.yiaddr) and ack.yiaddr == offer.yiaddr
            assert offer.giaddr == RELAY_IP and bytes(offer.chaddr)[:6] == chaddr
            # RFC 3046 2.2: option 82 echoed verbatim
            want82 = b"\x01" + bytes([len(circuit)]) + circuit
            assert dhcp_options(offer)["relay_agent_information"] == want82
            assert dhcp_options(ack)["relay_agent_information"] == want82
            assert dhcp_options(ack)["lease_time"] == 3600
            # RFC 2131 3.1 step 4: the binding is durable before the ACK leaves
            rec = lmdb_leases(tmp_path / "db", ack.yiaddr)[ack.yiaddr]
            assert rec is not None and chaddr in rec
            seen.add(ack.yiaddr)
        assert len(seen) == 5
        m = srv.server.metrics
        assert m.received[1] == 5 and m.received[3] == 5
        assert m.sent[2] == 5 and m.sent[5] == 5
        assert m.ack_latency.count == 5 and m.offer_latency.count == 5
        assert m.commits >= 1
        line = srv.server.stats_line()
        assert "discover" in line and "ack" in line and "5/100" in line


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_malformed_counted_and_serving_continues(tmp_path: Path, loop_kind: str) -> None:
    port = free_port()
    with InProcessServer(_config(tmp_path, port), loop_kind) as srv, RelayClient(port) as c:
        good = c.build("discover", mac(7), 0x77)
        c.send_raw(b"not dhcp at all")  # too short
        bad_cookie = bytearray(good)
        bad_cookie[236:240] = b"\0\0\0\0"
        c.send_raw(bytes(bad_cookie))
        c.send_raw(good[:250])  # options cut off: no end option
        reply = bytearray(good)
        reply[0] = 2  # a BOOTREPLY sent to the server
        c.send_raw(bytes(reply))
        offer, ack = c.dora(mac(8), 0x80)
        assert dhcp_options(ack)["message-type"] == 5 and in_pool(ack.yiaddr)
        m = srv.server.metrics
        assert sum(m.malformed.values()) == 3
        assert m.dropped.get("bootreply") == 1
        assert m.internal_errors == 0


def test_engine_exception_is_contained(tmp_path: Path) -> None:
    port = free_port()
    with InProcessServer(_config(tmp_path, port)) as srv, RelayClient(port, timeout=2.0) as c:
        calls = []

        class Boom:
            """An edge guard whose first check raises (the path holds only the real Engine,
            so the unexpected exception is injected at the guard, inside the same try)."""

            def check(self, msg, src_ip, now):  # type: ignore[no-untyped-def]
                calls.append(1)
                if len(calls) == 1:
                    raise RuntimeError("injected")
                return None

        def swap() -> None:
            srv.server._guard = Boom()
            srv.server._path = srv.server._make_path()  # the packet path holds the guard

        srv.call_soon(swap)
        c.send_raw(c.build("discover", mac(9), 0x90))
        with pytest.raises(TimeoutError):
            c.recv(0x90)
        offer, ack = c.dora(mac(10), 0xA0)
        assert dhcp_options(ack)["message-type"] == 5
        assert srv.server.metrics.internal_errors == 1


def test_failed_commit_drops_ack_and_rolls_back(tmp_path: Path) -> None:
    """A group commit that fails: its ACK never leaves (counted), the engine rolls back, and the
    client's retransmitted REQUEST is ACKed once the store works again."""
    port = free_port()
    with InProcessServer(_config(tmp_path, port)) as srv, RelayClient(port, timeout=1.5) as c:
        failures = []

        def fail_once(batch):  # type: ignore[no-untyped-def]
            if not failures:
                failures.append(len(batch))
                raise OSError(28, "No space left on device")

        srv.server.store._before_commit = fail_once
        offer = c.exchange("discover", mac(0x33), 0x330)
        req = c.build("request", mac(0x33), 0x331, options=[
            ("server_id", dhcp_options(offer)["server_id"]), ("requested_addr", offer.yiaddr)])
        c.send_raw(req)
        with pytest.raises(TimeoutError):
            c.recv(0x331)
        m = srv.server.metrics
        assert failures and m.commit_failures == 1 and m.acks_lost == 1
        assert m.dropped.get("commit-failed") == 1 and m.sent[5] == 0
        assert lmdb_leases(tmp_path / "db", offer.yiaddr)[offer.yiaddr] is None
        c.send_raw(req)  # the client retransmits
        ack = c.recv(0x331)
        assert dhcp_options(ack)["message-type"] == 5 and ack.yiaddr == offer.yiaddr
        assert lmdb_leases(tmp_path / "db", ack.yiaddr)[ack.yiaddr] is not None


def test_reload_moves_sockets_and_keeps_leases(tmp_path: Path) -> None:
    """reload(config) with another listen address: the old socket closes, the new one serves,
    and every lease (committed or not) is still the client's."""
    port = free_port()
    with InProcessServer(_config(tmp_path, port)) as srv:
        with RelayClient(port) as c:
            _, ack1 = c.dora(mac(0x41), 0x410)
        text = config_text(tmp_path / "db", port).replace('"127.0.0.1"', '"127.0.0.3"')
        new = loads(text, "moved")
        srv.call_soon(srv.server.reload, new)
        assert [k[1] for k in srv.server.endpoints] == ["127.0.0.3"]
        with RelayClient(port, timeout=1.0) as c:
            c.send_raw(c.build("discover", mac(0x42), 0x420))  # old address: nobody listens
            with pytest.raises((TimeoutError, ConnectionRefusedError)):
                c.recv(0x420)
        with RelayClient(port, server_ip="127.0.0.3") as c:
            offer = c.exchange("discover", mac(0x41), 0x430)
            assert offer.yiaddr == ack1.yiaddr  # the existing binding survived the reload
            _, ack2 = c.dora(mac(0x43), 0x440)
            assert in_pool(ack2.yiaddr) and ack2.yiaddr != ack1.yiaddr
        assert srv.server.metrics.reloads == 1


def test_metrics_endpoint(tmp_path: Path) -> None:
    port = free_port()
    mport = free_tcp_port()
    cfg = _config(tmp_path, port, metrics=f"127.0.0.1:{mport}")
    with InProcessServer(cfg) as _srv, RelayClient(port) as c:
        for i in range(3):
            c.dora(mac(0x100 + i), 0x2000 + 2 * i)
        c.send_raw(b"\x01" * 10)
        c.dora(mac(0x200), 0x3000)  # after the junk: the junk has been handled
        # Replies are counted after sendmmsg returns (only what the kernel took counts), so a
        # scrape racing the last ACK's send can see it one reply behind: scrape again until
        # the 4th ACK is counted (bounded), as a Prometheus server would see it next time.
        for _ in range(50):
            text = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics",
                                          timeout=10).read()
            samples = {}
            for fam in text_string_to_metric_families(text.decode()):
                for s in fam.samples:
                    samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
            if samples.get(("fastdhcp_packets_sent_total", (("type", "ack"),))) == 4:
                break
            time.sleep(0.05)
    assert samples[("fastdhcp_packets_received_total", (("type", "discover"),))] == 4
    assert samples[("fastdhcp_packets_sent_total", (("type", "ack"),))] == 4
    assert sum(v for (n, _), v in samples.items() if n == "fastdhcp_malformed_total") == 1
    pool = f"{POOL[0]} - {POOL[1]}"
    labels = (("pool", pool), ("subnet", "198.18.0.0/24"), ("subnet_id", "1"))
    assert samples[("fastdhcp_pool_size", labels)] == 100
    assert samples[("fastdhcp_pool_used", labels)] == 4
    assert samples[("fastdhcp_ack_latency_seconds_count", ())] == 4
    assert samples[("fastdhcp_offer_latency_seconds_count", ())] == 4
    assert samples[("fastdhcp_commit_batch_size_count", ())] >= 1
    assert samples[("fastdhcp_lease_records", ())] == 4


def test_start_failure_leaves_nothing_open(tmp_path: Path) -> None:
    """A busy port: start() raises StartupError and the store is closed again (a second
    server on the same database starts)."""
    import socket

    from fastdhcp.service import StartupError

    port = free_port()
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", port))  # no SO_REUSEADDR: the server's bind fails
    try:
        with pytest.raises(StartupError, match="cannot open sockets"):
            with InProcessServer(_config(tmp_path, port)):
                pass
    finally:
        blocker.close()
    with InProcessServer(_config(tmp_path, port)), RelayClient(port) as c:
        _, ack = c.dora(mac(1), 0x10)
        assert dhcp_options(ack)["message-type"] == 5


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_flushes_and_exits_zero(tmp_path: Path, sig: int) -> None:
    port = free_port()
    cfg = tmp_path / "fastdhcp.toml"
    cfg.write_text(config_text(tmp_path / "db", port))
    with ServeProcess(cfg, tmp_path) as sp, RelayClient(port, timeout=3.0) as c:
        assert sp.wait_notify(), sp.log()
        offers = {}
        for i in range(40):
            offers[i] = c.exchange("discover", mac(0x500 + i), 0x5000 + i)
        for i, offer in offers.items():  # a burst of REQUESTs, then SIGTERM at once
            c.send_raw(c.build("request", mac(0x500 + i), 0x6000 + i, options=[
                ("server_id", dhcp_options(offer)["server_id"]),
                ("requested_addr", offer.yiaddr)]))
        sp.signal(sig)
        acked = {}
        c.sock.settimeout(3.0)
        try:
            while len(acked) < len(offers):
                pkt = BOOTP(c.sock.recvfrom(65536)[0])
                if dhcp_options(pkt)["message-type"] == 5:
                    acked[pkt.xid] = pkt.yiaddr
        except TimeoutError:
            pass
        assert sp.wait(timeout=60) == 0, sp.log()
        log = sp.log()
    assert "Traceback" not in log
    assert "stopped" in log
    records = lmdb_leases(tmp_path / "db")
    # every ACK that left is durable, and the server read the burst before stopping
    for ip in acked.values():
        assert ip in records
    assert acked, log


def test_sighup_bad_config_keeps_serving_good_config_applies(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "fastdhcp.toml"
    cfg.write_text(config_text(tmp_path / "db", port, routers="198.18.0.1"))
    with ServeProcess(cfg, tmp_path) as sp, RelayClient(port) as c:
        assert sp.wait_notify(), sp.log()
        offer, ack = c.dora(mac(1), 0x100)
        first_ip = ack.yiaddr
        assert dhcp_options(ack)["router"] == "198.18.0.1"

        cfg.write_text("[server]\nport = 'sixty-seven'\n[[subnet4]]\nid = 1\n")
        sp.signal(signal.SIGHUP)
        assert sp.wait_notify(), sp.log()
        assert "still serving the previous configuration" in sp.log()
        assert "server.port" in sp.log()
        _, ack2 = c.dora(mac(2), 0x200)
        assert dhcp_options(ack2)["router"] == "198.18.0.1"

        cfg.write_text(config_text(tmp_path / "db", port, routers="198.18.0.254"))
        sp.signal(signal.SIGHUP)
        assert sp.wait_notify(), sp.log()
        assert "reload: applied" in sp.log()
        _, ack3 = c.dora(mac(3), 0x300)
        assert dhcp_options(ack3)["router"] == "198.18.0.254"
        # no lease lost: the first client gets its address back
        offer4 = c.exchange("discover", mac(1), 0x400)
        assert offer4.yiaddr == first_ip
        assert sp.proc.poll() is None
    assert "Traceback" not in sp.log()


def test_l2_unicast_arp_injection_in_netns() -> None:
    """SIOCSARP puts a (completed) entry in the kernel's neighbour table, so a reply to a client
    without an address can be sent as IP unicast. Checked in a private network namespace."""
    import subprocess
    import sys

    ns = f"fdtest{free_port()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        sh = ["ip", "netns", "exec", ns]
        subprocess.run(sh + ["ip", "link", "add", "d0", "type", "veth", "peer", "name", "d1"],
                       check=True)
        subprocess.run(sh + ["ip", "link", "set", "d1", "up"], check=True)
        subprocess.run(sh + ["ip", "addr", "add", "198.18.5.1/24", "dev", "d0"], check=True)
        subprocess.run(sh + ["ip", "link", "set", "d0", "up"], check=True)
        code = (
            "import socket; from fastdhcp import netio\n"
            "assert netio.interface_ipv4('d0') == netio.str_to_ip('198.18.5.1')\n"
            "s = netio.open_interface_socket('d0', 6767)\n"
            "ip = netio.str_to_ip('198.18.5.77')\n"
            "netio.inject_arp(s, 'd0', ip, bytes.fromhex('02aabbccddee'))\n"
            "s.sendto(b'x' * 300, ('198.18.5.77', 6768))\n"
        )
        subprocess.run(sh + [sys.executable, "-c", code], check=True,
                       cwd=Path(__file__).parent.parent)
        neigh = subprocess.run(sh + ["ip", "neigh", "show", "dev", "d0"], check=True,
                               capture_output=True, text=True).stdout
        assert "198.18.5.77" in neigh and "02:aa:bb:cc:dd:ee" in neigh
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


_NS_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"fdC")
s.bind(("0.0.0.0", int(sys.argv[2])))
s.settimeout(float(sys.argv[4]))
s.sendto(bytes.fromhex(sys.argv[1]), ("255.255.255.255", int(sys.argv[3])))
try:
    data, addr = s.recvfrom(65536)
    print(addr[0], data.hex())
except TimeoutError:
    print("timeout")
"""


def test_interface_socket_broadcast_and_l2_unicast_in_netns(tmp_path: Path) -> None:
    """A directly attached client (no relay) in its own namespace, joined to the server's by a
    veth pair: a broadcast DISCOVER reaches the SO_BINDTODEVICE socket; with the broadcast bit
    the OFFER comes back as a broadcast; without it the server adds an ARP entry for yiaddr ->
    chaddr and unicasts (the kernel neighbour table shows it)."""
    import subprocess
    import sys

    from scapy.layers.dhcp import DHCP

    tag = free_port()
    ns_s, ns_c = f"fds{tag}", f"fdc{tag}"
    sport, cport = 6767, 6768
    run = subprocess.run
    run(["ip", "netns", "add", ns_s], check=True)
    run(["ip", "netns", "add", ns_c], check=True)
    try:
        in_s = ["ip", "netns", "exec", ns_s]
        in_c = ["ip", "netns", "exec", ns_c]
        run(["ip", "link", "add", "fdS", "netns", ns_s, "type", "veth", "peer", "name", "fdC",
             "netns", ns_c], check=True)
        run(in_s + ["ip", "addr", "add", "198.18.7.1/24", "dev", "fdS"], check=True)
        run(in_c + ["ip", "addr", "add", "198.18.7.2/24", "dev", "fdC"], check=True)
        for pre, dev in ((in_s, "fdS"), (in_c, "fdC"), (in_s, "lo"), (in_c, "lo")):
            run(pre + ["ip", "link", "set", dev, "up"], check=True)
        cfg = tmp_path / "fastdhcp.toml"
        cfg.write_text(f"""
[server]
interfaces = ["fdS"]
port = {sport}
client-port = {cport}
[lease-database]
path = "{tmp_path / 'db'}"
[[subnet4]]
id = 7
subnet = "198.18.7.0/24"
interface = "fdS"
pools = ["198.18.7.100 - 198.18.7.150"]
""")
        with ServeProcess(cfg, tmp_path, prefix=tuple(in_s)) as sp:
            assert sp.wait_notify(), sp.log()
            results = {}
            for flag, chaddr in ((0x8000, mac(0x71)), (0, mac(0x72))):
                pkt = BOOTP(op=1, htype=1, hlen=6, xid=0x700 + flag // 0x8000, flags=flag,
                            chaddr=chaddr + b"\0" * 10) / DHCP(
                    options=[("message-type", "discover"), "end"])
                res = run(in_c + [sys.executable, "-c", _NS_CLIENT, bytes(pkt).hex(),
                                  str(cport), str(sport), "3" if flag else "1"],
                          check=True, capture_output=True, text=True, timeout=60)
                results[flag] = res.stdout.split()
            src, data = results[0x8000]
            offer = BOOTP(bytes.fromhex(data))
            assert src == "198.18.7.1"
            assert dhcp_options(offer)["message-type"] == 2
            assert dhcp_options(offer)["server_id"] == "198.18.7.1"
            assert in_pool(offer.yiaddr, ("198.18.7.100", "198.18.7.150"))
            neigh = run(in_s + ["ip", "neigh", "show", "dev", "fdS"], check=True,
                        capture_output=True, text=True).stdout
            assert mac(0x72).hex(":") in neigh, (neigh, sp.log())
            assert mac(0x71).hex(":") not in neigh
    finally:
        run(["ip", "netns", "del", ns_s], check=False)
        run(["ip", "netns", "del", ns_c], check=False)


# ----------------------------------------------------------------------------- unit pieces

@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), max_size=200))
def test_histogram_matches_cumulative_count_model(values: list[float]) -> None:
    from fastdhcp.metrics import LATENCY_BUCKETS, Histogram

    h = Histogram(LATENCY_BUCKETS)
    for v in values:
        h.observe(v)
    acc = 0
    for i, bound in enumerate(LATENCY_BUCKETS):
        acc += h.counts[i]
        assert acc == sum(1 for v in values if v <= bound)  # Prometheus "le" semantics
    assert sum(h.counts) == h.count == len(values)
    assert h.sum == pytest.approx(sum(values))
    bounds = [*LATENCY_BUCKETS, float("inf")]
    for q in (0.5, 0.9, 0.99, 0.999):
        if not values:
            assert h.quantile(q) == 0.0
            continue
        got = h.quantile(q)
        i = bounds.index(got)
        # the smallest bucket bound whose cumulative count reaches q of the values
        assert sum(1 for v in values if v <= got) >= q * len(values)
        if i:
            assert sum(1 for v in values if v <= bounds[i - 1]) < q * len(values)


def test_rate_limited_log_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from fastdhcp.service import RateLimitedLog

    logger = logging.getLogger("fastdhcp.test.ratelimit")
    rl = RateLimitedLog(logger, burst=3, period=3600)
    with caplog.at_level(logging.INFO, logger="fastdhcp.test.ratelimit"):
        for i in range(1000):
            rl(logging.INFO, "junk", "junk %d", i)
        rl(logging.INFO, "other", "other")
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == ["junk 0", "junk 1", "junk 2", "other"]


def test_sd_notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from fastdhcp.service import sd_notify

    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sd_notify("READY=1") is False
    path = str(tmp_path / "n.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert sd_notify("READY=1\nSTATUS=x") is True
        assert s.recv(100) == b"READY=1\nSTATUS=x"


def test_datagram_io_against_plain_sockets() -> None:
    """fastdhcp._sockio (recvmmsg/sendmmsg) against Python's own socket calls as the oracle:
    order, contents, addresses, batch limits, and per-datagram send errors."""
    import random
    import select
    import socket

    import fastdhcp._sockio
    from fastdhcp._sockio import DatagramIO, Outgoing

    assert fastdhcp._sockio.__file__.endswith(".so")  # the compiled module, no Python twin
    rng = random.Random(7)
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        a.bind(("127.0.0.1", 0))
        b.bind((RELAY_IP, 0))
        a.setblocking(False)
        b.settimeout(5)
        # one datagram a message, in order (UDP GSO groups and reorders: test_sockio_gso.py)
        io = DatagramIO(a, gso=False)
        assert io.recv(64) == []
        sizes = [1, 300, 576, 1500, 9000]
        payloads = [rng.randbytes(rng.choice(sizes)) for _ in range(150)]
        payloads[77] = rng.randbytes(65507)  # the largest UDP/IPv4 payload
        got = []
        for start in range(0, len(payloads), 8):  # 8 at a time: within the receive buffer
            for p in payloads[start:start + 8]:
                b.sendto(p, a.getsockname())
            while len(got) < min(start + 8, len(payloads)):
                select.select([a], [], [], 5)
                batch = io.recv(64)
                assert 0 < len(batch) <= 64
                got += batch
        b_ip, b_port = b.getsockname()
        assert [g[0] for g in got] == payloads
        assert {(g[1], g[2], g[3]) for g in got} == {(0x7F000002, b_port, False)}
        assert io.recv(0) == []

        a_port = a.getsockname()[1]
        short = [p for p in payloads if len(p) <= 1500][:60]
        items = [Outgoing(p, 0x7F000002, b_port) for p in short]
        items.insert(10, Outgoing(b"bad port", 0x7F000002, 0))
        failed = io.send(items)
        assert [i for i, _ in failed] == [10]
        for p in short:
            data, src = b.recvfrom(65536)
            assert data == p and src == ("127.0.0.1", a_port)
    finally:
        a.close()
        b.close()


def test_reason_labels_fold_numbers() -> None:
    from fastdhcp.metrics import Metrics

    m = Metrics()
    for n in range(200):
        m.bad(f"too short: {n} bytes, a DHCP message has at least 240")
        m.drop(f"option {n} has length {n + 1}, not 4")
    m.drop("no-subnet")
    assert m.malformed == {"too short: N bytes, a DHCP message has at least N": 200}
    assert m.dropped == {"option N has length N, not N": 200, "no-subnet": 1}


def test_pace_timer_fires_once_clears_and_disarms() -> None:
    import select

    from fastdhcp._sockio import PaceTimer

    t = PaceTimer()
    try:
        assert not t.armed and t.remaining() == 0.0
        assert select.select([t], [], [], 0)[0] == []
        t.arm(0.02)
        assert t.armed and 0.0 < t.remaining() <= 0.02
        assert select.select([t], [], [], 5.0)[0] == [t]  # fired
        assert t.clear() == 1 and not t.armed
        assert select.select([t], [], [], 0)[0] == []  # consumed: not readable any more
        assert t.clear() == 0  # nothing to consume
        t.arm(0.0)  # zero still fires (a zero it_value would disarm a timerfd)
        assert select.select([t], [], [], 5.0)[0] == [t]
        t.arm(5.0)  # re-arming replaces the expiry that fired unread
        assert 4.0 < t.remaining() <= 5.0
        t.disarm()
        assert not t.armed and t.remaining() == 0.0
        assert select.select([t], [], [], 0)[0] == []
    finally:
        t.close()
    assert t.fd == -1
    with pytest.raises(ValueError):
        t.arm(1.0)
    t.close()  # twice is harmless
