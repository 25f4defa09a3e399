"""Helpers for the service and CLI tests: configs, a relay-agent client built on scapy (the
independent oracle for packets), an in-process server on its own loop thread, a ``fastdhcp
serve`` child process with sd_notify readiness, and an LMDB reader in a separate process (LMDB
forbids opening one environment twice in a process; a separate reader is also what
``fastdhcp leases`` is)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

# the service tests' config is the one test builder's loopback preset (re-exported to tests)
from config_builder import SERVICE_POOL as POOL
from config_builder import service_config_text as config_text  # noqa: F401
from scapy.layers.dhcp import BOOTP, DHCP

from fastdhcp.demo import RELAY_IP, SERVER_IP, free_port  # noqa: F401  (re-exported to tests)

ROOT = Path(__file__).resolve().parent.parent

MSG = {"discover": 1, "offer": 2, "request": 3, "decline": 4, "ack": 5, "nak": 6,
       "release": 7, "inform": 8}


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind((SERVER_IP, 0))
        return int(s.getsockname()[1])


def mac(n: int) -> bytes:
    return bytes([0x02, 0, 0]) + n.to_bytes(3, "big")


def dhcp_options(pkt: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for opt in pkt[DHCP].options:
        if isinstance(opt, tuple):
            out[opt[0]] = opt[1] if len(opt) == 2 else opt[1:]
    return out


class RelayClient:
    """Plays a relay agent at 127.0.0.2: sends scapy-built relayed requests (giaddr set, hops
    1, option 82) to the server and receives its replies at giaddr:server-port."""

    def __init__(self, port: int, timeout: float = 5.0, server_ip: str = SERVER_IP) -> None:
        self.port = port
        self.server_ip = server_ip
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((RELAY_IP, port))
        self.sock.settimeout(timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RelayClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, (self.server_ip, self.port))

    def build(self, kind: str, chaddr: bytes, xid: int, *, circuit: bytes = b"port-1",
              options: list[Any] | None = None, ciaddr: str = "0.0.0.0") -> bytes:
        opts: list[Any] = [("message-type", kind)]
        opts += options or []
        opts.append(("relay_agent_information", b"\x01" + bytes([len(circuit)]) + circuit))
        opts.append("end")
        pkt = BOOTP(op=1, htype=1, hlen=6, hops=1, xid=xid, ciaddr=ciaddr, giaddr=RELAY_IP,
                    chaddr=chaddr + b"\0" * (16 - len(chaddr))) / DHCP(options=opts)
        return bytes(pkt)

    def recv(self, xid: int) -> Any:
        """The next reply with this xid, parsed by scapy (raises TimeoutError)."""
        deadline = time.monotonic() + (self.sock.gettimeout() or 5.0)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply for xid {xid:#x}")
            self.sock.settimeout(left)
            data, _ = self.sock.recvfrom(65536)
            pkt = BOOTP(data)
            if pkt.xid == xid:
                return pkt

    def exchange(self, kind: str, chaddr: bytes, xid: int, **kw: Any) -> Any:
        self.send_raw(self.build(kind, chaddr, xid, **kw))
        return self.recv(xid)

    def dora(self, chaddr: bytes, xid: int, circuit: bytes = b"port-1") -> tuple[Any, Any]:
        """DISCOVER -> OFFER -> REQUEST -> ACK; returns (offer, ack)."""
        offer = self.exchange("discover", chaddr, xid, circuit=circuit)
        sid = dhcp_options(offer)["server_id"]
        ack = self.exchange("request", chaddr, xid + 1, circuit=circuit, options=[
            ("server_id", sid), ("requested_addr", offer.yiaddr)])
        return offer, ack


def in_pool(ip: str, pools: tuple[str, str] = POOL) -> bool:
    a = ipaddress.IPv4Address(ip)
    return ipaddress.IPv4Address(pools[0]) <= a <= ipaddress.IPv4Address(pools[1])


_READER = r"""
import json, struct, sys, lmdb
env = lmdb.open(sys.argv[1], readonly=True, max_dbs=16, lock=True)
db = env.open_db(b"leases", create=False)
out = {}
with env.begin(db=db) as txn:
    if len(sys.argv) > 2:
        for ip in sys.argv[2:]:
            v = txn.get(struct.pack("!I", int(ip)))
            out[ip] = v.hex() if v is not None else None
    else:
        for k, v in txn.cursor():
            out[str(struct.unpack("!I", k)[0])] = v.hex()
print(json.dumps(out))
"""


def lmdb_leases(db: Path | str, *ips: str) -> dict[str, bytes | None]:
    """Raw ``leases`` records (msgpack bytes) by dotted IP, read with the ``lmdb`` module in a
    separate process; with no ``ips``, every record."""
    ints = [str(int(ipaddress.IPv4Address(ip))) for ip in ips]
    res = subprocess.run([sys.executable, "-c", _READER, str(db), *ints], capture_output=True,
                         text=True, timeout=60, check=True)
    raw = json.loads(res.stdout)
    return {str(ipaddress.IPv4Address(int(k))): (bytes.fromhex(v) if v is not None else None)
            for k, v in raw.items()}


class InProcessServer:
    """A :class:`fastdhcp.service.Server` running on its own event loop thread (uvloop or the
    stock asyncio loop), so that the test's blocking client can run on the main thread."""

    def __init__(self, config: Any, loop_kind: str = "uvloop") -> None:
        from fastdhcp.service import Server

        self.server = Server(config)
        if loop_kind == "uvloop":
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call_soon(self, fn: Any, *args: Any, timeout: float = 60.0) -> Any:
        async def run() -> Any:
            return fn(*args)
        return self.call(run(), timeout)

    def __enter__(self) -> InProcessServer:
        self.thread.start()
        try:
            self.call(self.server.start())
        except BaseException:
            self._shutdown_loop()
            raise
        return self

    def stop(self) -> None:
        if self.server._started and not self.server._closing:
            self.call(self.server.stop())

    def _shutdown_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self._shutdown_loop()


class ServeProcess:
    """``python -m fastdhcp serve --config FILE`` as a child, ready when it sends READY=1 over
    the sd_notify socket the test provides."""

    def __init__(self, config_path: Path, workdir: Path, *args: str,
                 prefix: tuple[str, ...] = ()) -> None:
        self.notify_path = str(workdir / f"notify-{os.getpid()}-{random.random():.6f}.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.log_path = workdir / "serve.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "fastdhcp", "serve", "--config", str(config_path),
             *args],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, env=env, cwd=ROOT,
        )

    def wait_notify(self, state: bytes = b"READY=1", timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            self.notify.settimeout(0.2)
            try:
                data = self.notify.recv(4096)
            except TimeoutError:
                continue
            if state in data.split(b"\n"):
                return True
        return False

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self.notify.close()
        try:
            os.unlink(self.notify_path)
        except OSError:
            pass

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
