"""Tests of the relay-mode DORA load driver (fastdhcp.loadgen, ext/fastdhcp/_loadgen.pyx).

Oracles: ISC Kea (a real DHCPv4 server) and its memfile lease file for the DORA runs, scapy for
the wire format of what the driver sends, and a sorted-list model for the latency histogram.
Kea runs in a network namespace created here (its own loopback, port 67 free of the rest of the
machine); the driver is run inside it from a thread that joined the namespace with setns(2).
"""

from __future__ import annotations

import csv
import ctypes
import ipaddress
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP

from fastdhcp._loadgen import Driver, _bucket_mid, _bucket_of, _percentile_of
from fastdhcp.loadgen import LoadStats, main, run_load

KEA = shutil.which("kea-dhcp4") or "/usr/sbin/kea-dhcp4"
RELAY = "127.0.0.2"
RELAY_TINY = "127.0.0.5"     # relay of the one-address subnet (NAK and exhaustion test)
POOL_FIRST = ipaddress.IPv4Address("10.0.0.1")
POOL_LAST = ipaddress.IPv4Address("10.0.255.254")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def mac_text(mac: int) -> str:
    return ":".join(f"{b:02x}" for b in mac.to_bytes(6, "big"))


def in_netns(ns: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run fn in a thread that has joined network namespace `ns` (setns is per thread)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {ns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name=f"in-{ns}")
    t.start()
    t.join(120)
    assert not t.is_alive(), "driver thread did not finish within 120 s"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    """A private network namespace: its loopback up, with the relay address on it."""
    name = f"fdlg{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        for addr in (RELAY, RELAY_TINY):
            subprocess.run(["ip", "-n", name, "addr", "add", f"{addr}/8", "dev", "lo"],
                           check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


class Kea:
    """kea-dhcp4 on 127.0.0.1:port of the namespace, one relayed subnet, memfile leases."""

    def __init__(self, ns: str, workdir: Path, *, port: int = 67, subnet: str = "10.0.0.0/16",
                 pool: tuple[object, object] = (POOL_FIRST, POOL_LAST),
                 relay: str = RELAY) -> None:
        self.ns = ns
        self.port = port
        self.dir = workdir
        self.lease_file = workdir / "leases4.csv"
        self.log = workdir / "kea.log"
        config = {
            "Dhcp4": {
                # Only 127.0.0.1: relayed traffic arrives by unicast UDP (no raw socket).
                "interfaces-config": {"interfaces": ["lo/127.0.0.1"], "dhcp-socket-type": "udp"},
                "lease-database": {"type": "memfile", "persist": True,
                                   "name": str(self.lease_file), "lfc-interval": 0},
                "valid-lifetime": 3600,
                "subnet4": [{
                    "id": 1,
                    "subnet": subnet,
                    "pools": [{"pool": f"{pool[0]} - {pool[1]}"}],
                    "relay": {"ip-addresses": [relay]},
                }],
                "loggers": [{"name": "kea-dhcp4", "severity": "WARN",
                             "output_options": [{"output": str(self.log)}]}],
            }
        }
        self.config = workdir / "kea.json"
        self.config.write_text(json.dumps(config))
        env = dict(os.environ, KEA_PIDFILE_DIR=str(workdir), KEA_LOCKFILE_DIR=str(workdir))
        # `ip netns exec` execs Kea in place: proc.pid is Kea's own pid.
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, KEA, "-c", str(self.config), "-p", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kea-dhcp4 exited: {self.log.read_text(errors='replace')}")
            out = subprocess.run(["ip", "netns", "exec", self.ns, "ss", "-Hlun"],
                                 capture_output=True, text=True).stdout
            if f"127.0.0.1:{self.port} " in out:
                return
            time.sleep(0.1)
        raise RuntimeError(f"kea-dhcp4 did not open 127.0.0.1:{self.port} within 15 s")

    def leases(self) -> dict[str, str]:
        """hwaddr -> address from the memfile (later rows override earlier ones)."""
        out: dict[str, str] = {}
        with open(self.lease_file, newline="") as f:
            for row in csv.DictReader(f):
                out[row["hwaddr"]] = row["address"]
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def kea(netns: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kea]:
    server = Kea(netns, tmp_path_factory.mktemp("kea"))
    try:
        yield server
    finally:
        server.stop()


def check_consistent(s: LoadStats) -> None:
    """Invariants of a finished run, whatever the server did."""
    assert s.done and s.in_flight == 0
    assert s.discovers == s.acks + s.naks + s.timeouts
    assert s.offers == s.requests
    assert s.offers <= s.discovers and s.acks + s.naks <= s.requests + s.naks
    assert s.malformed == 0 and s.send_errors == 0
    for lat in (s.offer_latency, s.ack_latency):
        assert list(lat) == ["p50", "p90", "p99", "p99.9"]
        assert 0 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"]
    if s.elapsed > 0:
        assert s.exchanges_per_s == pytest.approx(s.acks / s.elapsed)


# ---------------------------------------------------------------- against Kea

@pytest.mark.interop
def test_open_loop_dora_against_kea(netns: str, kea: Kea) -> None:
    """2,000 distinct clients at 500/s: every exchange ACKed, Kea's lease file agrees."""
    first = 0x02_00_00_10_00_00
    n, rate, timeout = 2000, 500.0, 2.0
    snapshots: list[LoadStats] = []
    s = in_netns(netns, run_load, ("127.0.0.1", 67), RELAY, clients=100_000, rate=rate,
                 duration=30.0, max_exchanges=n, timeout=timeout, first_mac=first,
                 progress=snapshots.append, progress_interval=0.5, collect=True)
    check_consistent(s)
    assert (s.discovers, s.offers, s.requests, s.acks) == (n, n, n, n)
    assert s.naks == 0 and s.timeouts == 0 and s.stray == 0
    # Open loop: the n-th DISCOVER is not sent before (n - 1) / rate.
    assert s.elapsed >= (n - 1) / rate
    # Every latency was under the timeout, or the exchange would have been a timeout.
    assert s.offer_latency["p99.9"] > 0 and s.ack_latency["p99.9"] > 0
    assert s.offer_latency["p99.9"] <= timeout * 1000 * 1.04
    assert s.cpu_seconds > 0

    macs = [m for m, _ in s.leases]
    addrs = [a for _, a in s.leases]
    assert sorted(macs) == [first + i for i in range(n)]
    assert len(set(addrs)) == n
    assert all(int(POOL_FIRST) <= a <= int(POOL_LAST) for a in addrs)
    on_disk = kea.leases()
    for mac, addr in s.leases:
        assert on_disk[mac_text(mac)] == str(ipaddress.IPv4Address(addr))

    # Progress snapshots: a run in progress, counters never going back.
    assert len(snapshots) >= 2
    assert all(not p.done for p in snapshots)
    for a, b in zip(snapshots, snapshots[1:], strict=False):
        assert a.discovers <= b.discovers and a.acks <= b.acks
    assert all(p.discovers >= p.acks + p.timeouts + p.naks for p in snapshots)


@pytest.mark.interop
def test_closed_loop_repeats_clients(netns: str, kea: Kea) -> None:
    """Closed loop over 300 clients, 4 rounds: each client keeps its one address."""
    first = 0x02_00_00_20_00_00
    clients, n = 300, 1200

    def run() -> tuple[Driver, LoadStats]:
        d = Driver("127.0.0.1", 67, RELAY, clients=clients, rate=0, window=16,
                   duration=60.0, max_exchanges=n, timeout=2.0, first_mac=first, collect=True)
        while not d.step(0.5):
            pass
        d.close()
        return d, d.acked_leases()

    d, leases = in_netns(netns, run)
    assert (d.discovers, d.offers, d.requests, d.acks) == (n, n, n, n)
    assert d.naks == 0 and d.timeouts == 0 and d.in_flight == 0 and d.done
    # Clients are used in turn; each one's ACKs all carry the same address.
    assert [m for m, _ in leases] == [first + i % clients for i in range(n)]
    per_client: dict[int, set[int]] = {}
    for mac, addr in leases:
        per_client.setdefault(mac, set()).add(addr)
    assert all(len(a) == 1 for a in per_client.values())
    assert len({next(iter(a)) for a in per_client.values()}) == clients
    on_disk = kea.leases()
    for mac, addrs in per_client.items():
        assert on_disk[mac_text(mac)] == str(ipaddress.IPv4Address(next(iter(addrs))))
    # One histogram sample per OFFER and per ACK.
    assert sum(c for _, c in d.histogram("offer")) == d.offers
    assert sum(c for _, c in d.histogram("ack")) == d.acks
    assert d.percentiles("offer")["p50"] > 0


def udp_drops(ns: str, local: str) -> int:
    """The kernel's drop counter of the UDP socket bound to `local` (hex, /proc/net/udp)."""
    out = subprocess.run(["ip", "netns", "exec", ns, "cat", "/proc/net/udp"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines()[1:]:
        f = line.split()
        if f[1] == local:
            return int(f[-1])
    raise AssertionError(f"no UDP socket {local} in {ns}")


@pytest.mark.interop
def test_overload_timeouts_are_the_kernels_drops(netns: str, kea: Kea) -> None:
    """6,000 exchanges at 30,000/s swamp Kea: each timeout is a datagram dropped at its socket."""
    kea_sock = "0100007F:0043"                 # 127.0.0.1:67
    before = udp_drops(netns, kea_sock)
    s = in_netns(netns, run_load, ("127.0.0.1", 67), RELAY, rate=30_000, duration=10.0,
                 max_exchanges=6000, timeout=1.5, first_mac=0x02_00_00_50_00_00)
    dropped = udp_drops(netns, kea_sock) - before
    check_consistent(s)
    assert s.discovers == 6000 and s.stray == 0
    assert s.timeouts > 0
    assert s.timeouts == dropped


@pytest.mark.interop
def test_cli_json_against_kea(netns: str, kea: Kea) -> None:
    """`python3 -m fastdhcp.loadgen ... --json` prints the stats; exit 0 (event mode, tick 0)."""
    cmd = ["ip", "netns", "exec", netns, sys.executable, "-m", "fastdhcp.loadgen",
           "127.0.0.1:67", "--relay", RELAY, "-n", "300", "-w", "8", "-d", "30", "--tick", "0",
           "--first-mac", "02:00:00:30:00:00", "--json", "--progress", "0"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["discovers"] == stats["acks"] == 300
    assert stats["timeouts"] == 0 and stats["naks"] == 0 and stats["done"] is True
    assert stats["cpu_per_exchange_us"] > 0
    assert set(stats["ack_latency"]) == {"p50", "p90", "p99", "p99.9"}
    assert kea.leases()[mac_text(0x02_00_00_30_00_00 + 299)].startswith("10.0.")


@pytest.mark.interop
def test_naks_and_timeouts_from_a_one_address_pool(netns: str, tmp_path: Path) -> None:
    """Two clients race for one address: one ACK, one NAK; then the loser gets no answer.

    Kea 2.2 reserves nothing at DISCOVER, so both clients are offered the same address; both
    DISCOVERs leave in one sendmmsg, so Kea reads them before either REQUEST, ACKs the first
    REQUEST and NAKs the second (address now leased to another client, RFC 2131 4.3.2).
    Kea moved to port 1067 still answers relays at giaddr:67, hence relay_port=67.
    """
    first = 0x02_00_00_40_00_00
    tiny = Kea(netns, tmp_path, port=1067, subnet="10.9.0.0/24",
               pool=("10.9.0.1", "10.9.0.1"), relay=RELAY_TINY)
    try:
        kw = {"clients": 2, "rate": 0, "window": 2, "max_exchanges": 2, "timeout": 0.5,
              "first_mac": first, "relay_port": 67, "collect": True}
        s1 = in_netns(netns, run_load, ("127.0.0.1", 1067), RELAY_TINY, **kw)
        s2 = in_netns(netns, run_load, ("127.0.0.1", 1067), RELAY_TINY, **kw)
        on_disk = tiny.leases()
    finally:
        tiny.stop()
    check_consistent(s1)
    assert (s1.discovers, s1.offers, s1.requests, s1.acks, s1.naks, s1.timeouts) == \
        (2, 2, 2, 1, 1, 0)
    [(winner, addr)] = s1.leases
    assert addr == int(ipaddress.IPv4Address("10.9.0.1"))
    assert on_disk == {mac_text(winner): "10.9.0.1"}
    # Second round: the winner renews its address; the pool is empty for the other one,
    # which Kea leaves unanswered: a timeout in the DISCOVER phase.
    check_consistent(s2)
    assert (s2.discovers, s2.offers, s2.acks, s2.naks, s2.timeouts) == (2, 1, 1, 0, 1)
    assert s2.leases == ((winner, addr),)


# ---------------------------------------------------------------- wire format, no server

def test_discovers_on_the_wire_and_timeouts() -> None:
    """What the driver sends, read by scapy; with nobody answering, every exchange times out."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    port = sink.getsockname()[1]
    sink.settimeout(5)
    first = 0x02_AB_CD_00_00_FE
    try:
        s = run_load(("127.0.0.1", port), RELAY, clients=3, rate=0, window=5,
                     max_exchanges=5, timeout=0.2, first_mac=first)
        packets = [sink.recvfrom(2048) for _ in range(5)]
    finally:
        sink.close()
    check_consistent(s)
    assert (s.discovers, s.offers, s.requests, s.acks, s.timeouts) == (5, 0, 0, 0, 5)
    xids = set()
    for i, (data, src) in enumerate(packets):
        assert src == (RELAY, port)            # from the relay's own server-port socket
        assert len(data) == 300
        b = BOOTP(data)
        assert (b.op, b.htype, b.hlen, b.hops) == (1, 1, 6, 1)
        assert b.giaddr == RELAY and b.ciaddr == "0.0.0.0" and b.flags == 0
        assert b.chaddr[:6] == (first + i % 3).to_bytes(6, "big")   # 3 clients in turn
        opts = dict(o for o in b[DHCP].options if isinstance(o, tuple))
        assert opts["message-type"] == 1
        assert "requested_addr" not in opts and "server_id" not in opts
        xids.add(b.xid)
    assert len(xids) == 5


def test_chaddr_counter_wraps_at_48_bits() -> None:
    """Clients first_mac, first_mac + 1, ... modulo 2^48, then back to first_mac."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    port = sink.getsockname()[1]
    sink.settimeout(5)
    try:
        s = run_load(("127.0.0.1", port), RELAY, clients=3, window=4, max_exchanges=4,
                     timeout=0.1, first_mac=0xFFFF_FFFF_FFFE)
        chaddrs = [BOOTP(sink.recv(2048)).chaddr[:6].hex() for _ in range(4)]
    finally:
        sink.close()
    assert s.discovers == 4 and s.timeouts == 4
    assert chaddrs == ["fffffffffffe", "ffffffffffff", "000000000000", "fffffffffffe"]


def test_bad_arguments_and_bind_errors() -> None:
    with pytest.raises(ValueError):
        run_load(("127.0.0.1", 9), RELAY, clients=0)
    with pytest.raises(ValueError):
        run_load(("127.0.0.1", 9), RELAY, window=0)
    with pytest.raises(ValueError):
        Driver("127.0.0.1", 9, RELAY, rate=-1.0)
    with pytest.raises(ValueError):
        Driver("127.0.0.1", 9, RELAY, duration=float("inf"))
    with pytest.raises(ValueError):
        Driver("127.0.0.1", 9, RELAY, timeout=float("nan"))
    # 198.18.0.0/15 is not configured here: the relay address cannot be bound.
    with pytest.raises(OSError, match="cannot bind relay address 198.18.200.1"):
        run_load(("127.0.0.1", 40067), "198.18.200.1", max_exchanges=1)
    assert main(["127.0.0.1:40067", "--relay", "198.18.200.1", "-n", "1",
                 "--progress", "0"]) == 2


# ---------------------------------------------------------------- histogram model

def test_histogram_buckets_are_ordered_and_contain_their_values() -> None:
    last = -1
    for v in [*range(0, 300), *(int(1.07 ** k) for k in range(85, 420))]:
        b = _bucket_of(v)
        assert b >= last
        last = b
    for b in range(1, 1180):
        assert _bucket_mid(b) > _bucket_mid(b - 1)
    for v in (0, 1, 63, 64, 65, 127, 128, 1000, 10**6, 10**9, 10**12):
        mid = _bucket_mid(_bucket_of(v))
        assert abs(mid - v) <= max(0.5, v / 64)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10**11), min_size=1, max_size=400),
    st.sampled_from([0.5, 0.9, 0.99, 0.999]),
)
def test_percentile_matches_nearest_rank_model(samples: list[int], q: float) -> None:
    """The reported percentile is the nearest-rank one, up to the bucket's 1/64 half-width."""
    ordered = sorted(samples)
    k = max(1, math.ceil(q * len(ordered)))
    exact = ordered[k - 1]
    got_ns = _percentile_of(samples, q) * 1e6
    assert abs(got_ns - exact) <= max(0.5, exact / 64) + 1e-6 * exact
