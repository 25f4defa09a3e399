"""``fastdhcp demo``: a server on loopback, driven by the built-in relay load for a few seconds.

The first thing a new user runs, as root or not: everything lives in a new temporary directory
(config, LMDB lease database with ``sync = true``, server log), the server listens on
127.0.0.1 at a free port above 1024 and runs as a child process (``fastdhcp serve``, so the
server and the load driver each get a core), and :func:`fastdhcp.loadgen.run_load` plays a
relay agent at 127.0.0.2 doing full DISCOVER-OFFER-REQUEST-ACK exchanges for distinct clients.
The child tells the demo it is ready over an sd_notify socket (the same ``READY=1`` systemd
gets), and is stopped with SIGTERM, which flushes its last commits; the demo then opens the
database read-only and counts the leases.
"""

from __future__ import annotations

import ipaddress
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

SERVER_IP = "127.0.0.1"
RELAY_IP = "127.0.0.2"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0


def free_port() -> int:
    """A UDP port above 1024 free on both the server and the relay address."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 60000)
        socks = []
        try:
            for ip in (SERVER_IP, RELAY_IP):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((ip, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise OSError("no free UDP port found on 127.0.0.1/127.0.0.2")


def _subnet_for(clients: int) -> ipaddress.IPv4Network:
    """The smallest network (in the benchmarking range 198.18.0.0/15 when it fits, else in
    100.64.0.0/10) whose pool holds every client. These addresses appear only inside DHCP
    payloads: replies go to the relay on loopback."""
    for base, widest in (("198.18.0.0", 15), ("100.64.0.0", 10)):
        for prefix in range(24, widest - 1, -1):
            if 2 ** (32 - prefix) - 20 >= clients:
                return ipaddress.IPv4Network(f"{base}/{prefix}")
    raise ValueError(f"--clients {clients}: at most {2**22 - 20} for the demo")


def demo_config(directory: str, port: int, clients: int) -> str:
    """TOML text of the demo server's configuration."""
    net = _subnet_for(clients)
    first = net.network_address + 10
    last = net.broadcast_address - 1
    db = os.path.join(directory, "leases")
    return f"""\
# fastdhcp demo configuration (generated)
[server]
listen-addresses = ["{SERVER_IP}"]
port = {port}
client-port = {port + 1}
log-level = "info"
stats-interval = 1.0

[lease-database]
path = "{db}"
sync = true

[global]
valid-lifetime = 3600
option-data = {{ domain-name-servers = ["{net.network_address + 2}"], domain-name = "demo.test" }}

[[subnet4]]
id = 1
subnet = "{net}"
pools = ["{first} - {last}"]
relay = ["{RELAY_IP}"]
option-data = {{ routers = ["{net.network_address + 1}"] }}
"""


class _Progress:
    """One updating line on a terminal; a line a second otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.shown = False

    def __call__(self, st: Any) -> None:
        now = time.monotonic()
        if not self.tty and now - self.last < 1.0:
            return
        self.last = now
        line = (f"  {st.elapsed:5.1f} s  leases {st.acks:>9,}  {st.exchanges_per_s:>9,.0f}/s  "
                f"naks {st.naks:,}  timeouts {st.timeouts:,}")
        if self.tty:
            sys.stderr.write("\r" + line + "\x1b[K")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.shown = True

    def done(self) -> None:
        if self.tty and self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


class ChildServer:
    """``fastdhcp serve --config FILE`` as a child process, ready when it sends ``READY=1``
    over the sd_notify socket given to it (the protocol systemd uses). Used by the demo and by
    ``bench/bench_server.py``."""

    def __init__(self, config_path: str, log_path: str, notify_path: str) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.notify_path = notify_path
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(notify_path)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fastdhcp", "serve", "--config", config_path],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> bool:
        """True once the server said READY=1; False if it exited or timed out first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            self._notify.settimeout(0.2)
            try:
                data = self._notify.recv(4096)
            except TimeoutError:
                continue
            if b"READY=1" in data.split(b"\n"):
                return True
        return False

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server so far (Linux /proc)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (the server flushes its commits), wait, return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._notify.close()
        try:
            os.unlink(self.notify_path)
        except OSError:
            pass
        return int(self.proc.returncode)


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _fmt_latency(d: dict[str, float]) -> str:
    keys = ("p50", "p90", "p99", "p99.9")
    return "  ".join(f"{k} {d.get(k, float('nan')):7.2f} ms" for k in keys)


def run_demo(
    seconds: float = 5.0, clients: int = 100_000, directory: str | None = None, rate: int = 0
) -> int:
    """Run the demo; print results on stdout, progress on stderr. Returns the exit status."""
    from fastdhcp.loadgen import run_load

    if seconds <= 0 or clients <= 0:
        print("fastdhcp demo: --seconds and --clients must be positive", file=sys.stderr)
        return 1
    try:
        _subnet_for(clients)
    except ValueError as exc:
        print(f"fastdhcp demo: {exc}", file=sys.stderr)
        return 1
    directory = directory or tempfile.mkdtemp(prefix="fastdhcp-demo-")
    os.makedirs(directory, exist_ok=True)
    port = free_port()
    cfg_path = os.path.join(directory, "demo.toml")
    with open(cfg_path, "w") as f:
        f.write(demo_config(directory, port, clients))
    log_path = os.path.join(directory, "server.log")
    db_path = os.path.join(directory, "leases")

    print(f"fastdhcp demo: server on {SERVER_IP}:{port} (lease database {db_path}, sync=true), "
          f"relay {RELAY_IP}, {clients:,} clients, {seconds:g} s", file=sys.stderr, flush=True)
    server = ChildServer(cfg_path, log_path, os.path.join(directory, "notify.sock"))
    try:
        if not server.wait_ready():
            server.stop()
            print("fastdhcp demo: the server did not start; its log:", file=sys.stderr)
            sys.stderr.write(_tail(log_path))
            return 1
        progress = _Progress()
        try:
            stats = run_load(
                (SERVER_IP, port), RELAY_IP, clients=clients, rate=rate, duration=seconds,
                max_exchanges=clients, progress=progress,
            )
        finally:
            progress.done()
    finally:
        status = server.stop()
    if status != 0:
        print(f"fastdhcp demo: the server exited with status {status}; its log:",
              file=sys.stderr)
        sys.stderr.write(_tail(log_path))
        return 1

    from fastdhcp.store import LmdbLeaseStore

    store = LmdbLeaseStore(db_path, readonly=True)
    try:
        count = len(store)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()
    leases_per_s = stats.acks / stats.elapsed if stats.elapsed > 0 else 0.0
    print(f"leases/s        {leases_per_s:,.0f}  ({stats.acks:,} ACKs in {stats.elapsed:.2f} s; "
          f"durable before each ACK: LMDB group commit with fsync)")
    print(f"exchanges       discovers {stats.discovers:,}  offers {stats.offers:,}  "
          f"requests {stats.requests:,}  acks {stats.acks:,}  naks {stats.naks:,}  "
          f"timeouts {stats.timeouts:,}")
    print(f"OFFER latency   {_fmt_latency(stats.offer_latency)}")
    print(f"ACK latency     {_fmt_latency(stats.ack_latency)}")
    print(f"leases in db    {count:,}  ({db_path})")
    print(f"look at them    fastdhcp leases --db {db_path} list")
    print(f"server log      {log_path}")
    print(f"clean up        rm -r {directory}")
    if stats.acks == 0:
        print("fastdhcp demo: the server granted no lease; the end of its log:", file=sys.stderr)
        sys.stderr.write(_tail(log_path, 5))
        return 1
    return 0
