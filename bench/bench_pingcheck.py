"""The OFFER latency ping-check adds: DISCOVER sent to OFFER received, with the check off and
on (reply-timeout 10 / 50 / 100 ms, min-ping-requests 1), through the real engine, compiled
packet path and :class:`fastdhcp.service.pingcheck.PingChecker` with a real ICMP socket.

Run as root: ``python3 bench/bench_pingcheck.py [--discovers 200] [--rate 200]``. It re-runs
itself in a private network namespace (``unshare -n``): loopback for the DHCP datagrams, and a
veth pair, one end at 198.18.0.1/22 and the other with no address, out of which the probes of
the pool's addresses go and are never answered (no host claims them in ARP):
a free address, the common case, where the whole reply-timeout is waited for. Nothing leaves
the namespace. Every DISCOVER is from a new client (a new address, so a
probe each), paced at ``--rate`` per second, bounded in count and time.

What it prints per mode: OFFERs received, median / p90 / p99 latency, and the median added over
the "off" run. The "mixed" run shows the loop is not held up: a repeat DISCOVER from a client
whose address is already probed is answered at once while new clients' probes wait. The added
latency is reply-timeout by construction plus what the probe costs
(send, timer, the OFFER's later flush); the figure to watch is that surplus.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import struct
import subprocess
import sys
import time

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)

MODES: tuple[tuple[str, str], ...] = (
    ("off", ""),
    ("on, reply-timeout 10 ms", "enable-ping-check = true\nreply-timeout = 10"),
    ("on, reply-timeout 50 ms", "enable-ping-check = true\nreply-timeout = 50"),
    ("on, reply-timeout 100 ms", "enable-ping-check = true\nreply-timeout = 100"),
)


def _inner_setup() -> None:
    for argv in (["ip", "link", "set", "lo", "up"],
                 ["ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
                 ["ip", "addr", "add", "198.18.0.1/22", "dev", "v0"],
                 ["ip", "link", "set", "v0", "up"], ["ip", "link", "set", "v1", "up"]):
        subprocess.run(argv, check=True, timeout=10)


async def _run_mode(extra: str, n: int, rate: float, mixed: bool = False
                    ) -> tuple[dict[str, list[float]], int, int]:
    """``n`` DISCOVERs of new clients at ``rate``; ``mixed``: the first half (not recorded)
    makes offers, then each new client's DISCOVER is followed by a repeat from one of those,
    whose address is probed already: latencies by kind, ``new`` and ``repeat``."""
    from dhcpsim import build_request  # tests/dhcpsim.py

    from fastdhcp._packetpath import PacketPath
    from fastdhcp._sockio import DatagramIO
    from fastdhcp.config import loads
    from fastdhcp.engine import Engine, Link
    from fastdhcp.leases import MemoryLeaseStore
    from fastdhcp.metrics import Metrics
    from fastdhcp.pathreport import PathReport
    from fastdhcp.service.pingcheck import PingChecker

    loop = asyncio.get_running_loop()
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setblocking(False)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.setblocking(False)
    # A /22 pool on the veth's link (1,009 addresses; --discovers is at most 1,000): every
    # DISCOVER of a run gets an address of its own, probed.
    config = loads(f"""
[server]
interfaces = ["eth0"]
listen-addresses = ["198.18.0.1"]
client-port = {client.getsockname()[1]}
[lease-database]
path = "/nonexistent"
[[subnet4]]
id = 1
subnet = "198.18.0.0/22"
interface = "eth0"
pools = ["198.18.0.10 - 198.18.3.250"]
{extra}
""")
    engine = Engine(config, MemoryLeaseStore())
    metrics = Metrics()

    class Ep:
        def __init__(self) -> None:
            self.link = Link("eth0", 0xC6120001)
            self.key = ("addr", "127.0.0.1", 0)
            self.out: list[object] = []
            self.closed = False
            self.io = DatagramIO(server)

    ep = Ep()
    checker = PingChecker(loop, metrics, engine, lambda: None)
    path = PacketPath(engine, metrics, PathReport(), None, None,
                      lambda e, d: 0x7F000001, False, checker.submit if extra else None)
    checker.attach(path, config.subnets)

    def readable() -> None:
        path.read(ep, 64, time.time(), time.perf_counter())
        path.flush(ep)

    sent: dict[int, tuple[str, float]] = {}
    got: dict[str, list[float]] = {"new": [], "repeat": [], "warm-up": []}
    done = asyncio.Event()
    want = n + (n // 2 if mixed else 0)

    def reply() -> None:
        while True:
            try:
                data = client.recv(2048)
            except BlockingIOError:
                return
            xid = struct.unpack_from("!I", data, 4)[0]
            entry = sent.pop(xid, None)
            if entry is not None:
                got[entry[0]].append(time.perf_counter() - entry[1])
                if sum(map(len, got.values())) >= want:
                    done.set()

    def send(kind: str, xid: int, i: int) -> None:
        mac = b"\x02" + (0x100000 + i).to_bytes(5, "big")
        sent[xid] = (kind, time.perf_counter())
        client.sendto(build_request(1, xid=xid, chaddr=mac), server.getsockname())

    loop.add_reader(server.fileno(), readable)
    loop.add_reader(client.fileno(), reply)
    try:
        warm = n // 2 if mixed else 0
        for i in range(n):
            send("warm-up" if i < warm else "new", 0x10000 + i, i)
            if i >= warm and mixed:
                await asyncio.sleep(0.5 / rate)
                send("repeat", 0x20000 + i, i - warm)  # its address probed in the warm-up
                await asyncio.sleep(0.5 / rate)
            else:
                await asyncio.sleep(1.0 / rate)
            if i == warm - 1:
                await asyncio.sleep(0.5)  # the warm-up's probes end
        try:
            await asyncio.wait_for(done.wait(), timeout=5.0)
        except TimeoutError:
            pass
    finally:
        loop.remove_reader(server.fileno())
        loop.remove_reader(client.fileno())
        checker.close()
        server.close()
        client.close()
    return got, metrics.ping_checks, metrics.ping_errors


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _inner(args: argparse.Namespace) -> int:
    _inner_setup()
    base = None
    print(f"{args.discovers} DISCOVERs per mode at {args.rate:g}/s, every one a new client "
          "(mixed: half, then one new and one repeat of an already probed client in turn)")
    print(f"{'mode':28} {'offers':>6} {'probed':>6} {'errors':>6} {'median':>9} {'p90':>9} "
          f"{'p99':>9} {'added':>9}")
    runs = [(name, extra, False) for name, extra in MODES]
    runs.append(("mixed, 100 ms", MODES[-1][1], True))
    for name, extra, mixed in runs:
        by_kind, probed, errors = asyncio.run(_run_mode(extra, args.discovers, args.rate, mixed))
        for kind in ("new", "repeat"):
            lat = by_kind[kind]
            if kind == "repeat" and not mixed:
                continue
            label = f"{name}: {kind}" if mixed else name
            if not lat:
                print(f"{label:28} no OFFER received")
                continue
            med = statistics.median(lat)
            if base is None:
                base = med
            _row(label, lat, probed, errors, med - base)
    return 0


def _row(label: str, lat: list[float], probed: int, errors: int, added: float) -> None:
    print(f"{label:28} {len(lat):6d} {probed:6d} {errors:6d} "
          f"{statistics.median(lat) * 1e3:7.3f}ms {_pct(lat, .9) * 1e3:7.3f}ms "
          f"{_pct(lat, .99) * 1e3:7.3f}ms {added * 1e3:7.3f}ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--discovers", type=int, default=200)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.discovers = max(1, min(args.discovers, 1000))  # bounded, and within the pool
    args.rate = max(1.0, min(args.rate, 5000.0))
    if args.inner:
        return _inner(args)
    if os.geteuid() != 0:
        print("needs root (a network namespace and a raw ICMP socket)", file=sys.stderr)
        return 1
    return subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__),
                           "--inner", "--discovers", str(args.discovers), "--rate",
                           str(args.rate)], timeout=600).returncode


if __name__ == "__main__":
    sys.exit(main())
