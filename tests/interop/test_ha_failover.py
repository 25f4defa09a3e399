"""An HA pair in network namespaces, each server a real ``fastdhcp serve`` process (or Kea 2.2
with its control agent), on one bridged link with a relay address; the test plays the relay
(giaddr 198.18.4.10, hops 1) and sends every query to both servers, as a relay configured
with two servers does::

    ha1 [198.18.4.1] --+                      pool 198.18.5.10 - 198.18.5.250 (subnet 1,
     [198.18.6.1]      +-- br0 [198.18.4.10]  selected by giaddr = relay 198.18.4.10)
          |            |   (relay namespace)
     [198.18.6.2]      |
    ha2 [198.18.4.2] --+

Each server's HTTP control socket (basic auth) on the peers' own link (198.18.6.0/24) is its
peer URL, so that the link between the peers can be cut while clients reach both (a split
brain); the Unix control socket is how the test reads states and leases. What is checked,
across the whole life of the pair:

- start-up: both reach the mode's normal state (the secondary syncs from the primary);
- load-balancing: every client gets exactly one OFFER and one ACK, from the server whose scope
  the RFC 3074 hash puts it in; both scopes are served; every ACKed lease is in both tables;
- failover: SIGKILL one server while relayed DORA and renewals run with a rising ``secs``;
  the survivor goes to partner-down and serves every client;
- recovery: the dead one restarts on its own lease table, syncs from the survivor, and the
  pair returns to load-balancing;
- maintenance (then, on the same pair): ``ha-maintenance-start`` on the survivor puts it in
  partner-in-maintenance and the other in in-maintenance, the survivor serves every client;
  ``ha-maintenance-cancel`` returns both to the normal state; a second start, SIGTERM to the
  other, partner-down, the other restarted: normal again (:func:`maintenance`);
- always: no ACKed lease is missing from the survivor, no address is bound to two clients in
  either table.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP

from fastdhcp import slices
from fastdhcp._hascope import lb_hash
from fastdhcp.ha.peer import REQUEST_TIMEOUT
from tests.control_helpers import unix_command

from .netns import CMD_TIMEOUT, Cleanup, Namespace, create_namespace, create_veth, run, stop_process

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
RELAY_IP = "198.18.4.10"
SERVER_IPS = ("198.18.4.1", "198.18.4.2")
PEER_IPS = ("198.18.6.1", "198.18.6.2")  #: the HA link: HTTP control sockets, peer URLs
#: a backup server (server3) on the clients' link, in the relay's namespace: DHCP socket and
#: HTTP control socket (its peer URL) both on this address
BACKUP_IP = "198.18.4.3"
HTTP_PORT = 8001
POOL = ("198.18.5.10", "198.18.5.250")
#: the pool split per server by Kea's HA classes (``client-class = "HA_server1"`` ...), the
#: fastdhcp + Kea pair's: a client of server X's scope gets an address of X's pool from
#: whichever server answers it (both servers classify it HA_X by the same hash)
SPLIT = (("198.18.5.10", "198.18.5.129"), ("198.18.5.130", "198.18.5.250"))
PASSWORD = "ha-pair-secret"
#: Kea's timers shrunk so that a failover takes seconds: max-response-delay 2 s after the
#: last contact, then 3 distinct clients with secs > 1 s (max-unacked-clients 2, + 1)
TIMERS = {"heartbeat-delay": 500, "max-response-delay": 2000, "max-ack-delay": 1000,
          "max-unacked-clients": 2, "sync-timeout": 20000}
ROLES = {"load-balancing": ("primary", "secondary"), "hot-standby": ("primary", "standby")}


# ------------------------------------------------------------------ the topology


@dataclass
class PairLab:
    servers: tuple[Namespace, Namespace]
    ifnames: tuple[str, str]  #: each server's end of the link
    relay: Namespace
    cleanup: Cleanup
    peer_ifnames: tuple[str, str] = ("", "")  #: each server's end of the HA link

    def cut(self, up: bool = False) -> None:
        """Take the link between the peers down (or up again): both stay reachable by the
        relay."""
        for ns, ifname in zip(self.servers, self.peer_ifnames, strict=True):
            ns.run(["ip", "link", "set", ifname, "up" if up else "down"])


def build_pair_lab(tag: str) -> PairLab:
    """Three namespaces: the two servers' ends bridged in the relay's, the bridge holding the
    relay address."""
    cleanup = Cleanup()
    try:
        ns1 = create_namespace(f"fd{tag}-ha1", cleanup)
        ns2 = create_namespace(f"fd{tag}-ha2", cleanup)
        relay = create_namespace(f"fd{tag}-hab", cleanup)
        relay.run(["ip", "link", "add", "br0", "type", "bridge"])
        for i, ns in enumerate((ns1, ns2)):
            _, port = create_veth(ns, f"f{tag}h{i + 1}", f"{SERVER_IPS[i]}/24",
                                  relay, f"f{tag}b{i + 1}", None, cleanup)
            relay.run(["ip", "link", "set", port.ifname, "master", "br0"])
        relay.run(["ip", "addr", "add", f"{RELAY_IP}/24", "dev", "br0"])
        relay.run(["ip", "link", "set", "br0", "up"])
        create_veth(ns1, f"f{tag}p1", f"{PEER_IPS[0]}/24", ns2, f"f{tag}p2",
                    f"{PEER_IPS[1]}/24", cleanup)
        return PairLab((ns1, ns2), (f"f{tag}h1", f"f{tag}h2"), relay, cleanup,
                       (f"f{tag}p1", f"f{tag}p2"))
    except BaseException:
        cleanup.close()
        raise


_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def socket_in(ns: Namespace, addr: tuple[str, int]) -> socket.socket:
    """A UDP socket bound in namespace ``ns`` (made by a short-lived thread that enters the
    namespace: a socket keeps the namespace it was made in, the test process stays out)."""
    out: list[socket.socket | BaseException] = []

    def work() -> None:
        try:
            fd = os.open(f"/var/run/netns/{ns.name}", os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(addr)
            out.append(s)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            out.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


# ------------------------------------------------------------------ the relay (the test)


@dataclass
class Client:
    mac: bytes
    xid: int
    ip: str | None = None
    server: str | None = None  #: who ACKed it last
    acks: list[tuple[str, str]] = field(default_factory=list)  #: (server, address)


class Relay:
    """Relays the test's clients' queries to both servers; gathers the replies by xid."""

    def __init__(self, ns: Namespace, grace: float = 0.2) -> None:
        #: how long to wait for a second answer once every query has one
        self.grace = grace
        self.sock = socket_in(ns, (RELAY_IP, 67))
        self.sock.settimeout(0.05)
        self.targets = list(SERVER_IPS)

    def close(self) -> None:
        self.sock.close()

    def _build(self, kind: str, c: Client, secs: int, options: list[Any],
               ciaddr: str = "0.0.0.0") -> bytes:
        opts: list[Any] = [("message-type", kind), *options,
                           ("relay_agent_information", b"\x01\x06port-1"), "end"]
        return bytes(BOOTP(op=1, htype=1, hlen=6, hops=1, xid=c.xid, secs=secs, ciaddr=ciaddr,
                           giaddr=RELAY_IP, chaddr=c.mac + bytes(10)) / DHCP(options=opts))

    def round(self, queries: list[tuple[Client, bytes]], wait: float = 1.0
              ) -> dict[int, list[tuple[str, Any]]]:
        """Send each query to every server; the replies by xid, (server, BOOTP) each, until
        every query has one and a grace for a second one passed, or ``wait`` elapsed."""
        want = {c.xid for c, _ in queries}
        for _, data in queries:
            for t in self.targets:
                self.sock.sendto(data, (t, 67))
        got: dict[int, list[tuple[str, Any]]] = {}
        end = time.monotonic() + wait
        grace: float | None = None
        while time.monotonic() < (grace or end):
            try:
                data, (src, _) = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            pkt = BOOTP(data)
            if pkt.xid in want:
                got.setdefault(pkt.xid, []).append((src, pkt))
            if grace is None and want <= set(got):
                grace = min(end, time.monotonic() + self.grace)  # a second answer comes now
        return got

    def dora(self, clients: list[Client], secs: int = 0, options: tuple[Any, ...] = ()
             ) -> dict[int, list[tuple[str, Any]]]:
        """DISCOVER to both, then REQUEST the offered address from the offerer (``options``
        in both); returns the OFFERs by xid (the ACKs are recorded on each client)."""
        offers = self.round([(c, self._build("discover", c, secs, [*options]))
                             for c in clients])
        reqs = []
        for c in clients:
            for _src, o in offers.get(c.xid, [])[:1]:
                sid = _opt(o, "server_id")
                reqs.append((c, self._build("request", c, secs, [
                    ("server_id", sid), ("requested_addr", o.yiaddr), *options])))
        self._acks(self.round(reqs), clients)
        return offers

    def renew(self, clients: list[Client], secs: int) -> None:
        """A relayed REBINDING-style REQUEST (ciaddr set, no server id) to both servers."""
        self._acks(self.round([(c, self._build("request", c, secs, [], ciaddr=c.ip or ""))
                               for c in clients]), clients)

    @staticmethod
    def _acks(replies: dict[int, list[tuple[str, Any]]], clients: list[Client]) -> None:
        for c in clients:
            for src, pkt in replies.get(c.xid, []):
                if _opt(pkt, "message-type") == 5:
                    c.acks.append((src, pkt.yiaddr))
                    c.ip, c.server = pkt.yiaddr, src


def _n(ip: str) -> int:
    return int.from_bytes(socket.inet_aton(ip), "big")


def _opt(pkt: Any, name: str) -> Any:
    for o in pkt[DHCP].options:
        if isinstance(o, tuple) and o[0] == name:
            return o[1]
    return None


def clients(n: int, start: int) -> list[Client]:
    return [Client(bytes([0x02, 0x4a, 0, 0, (start + i) >> 8, (start + i) & 255]),
                   0x4A000000 + ((start + i) << 4)) for i in range(n)]


def scope_of(c: Client) -> int:
    """0: the primary's scope, 1: the secondary's (the hash both peers compute)."""
    return lb_hash(c.mac) % 2


# ------------------------------------------------------------------ the servers


class Fastdhcp:
    """``fastdhcp serve`` in its namespace, HA with the other, its own lease table."""

    def __init__(self, ns: Namespace, index: int, mode: str, workdir: Path, *,
                 split: bool = False, backup: bool = False, workers: int = 1) -> None:
        self.ns = ns
        self.workers = workers  #: [server] workers: > 1 runs the supervisor and its workers
        self.index = index
        self.ip = (*SERVER_IPS, BACKUP_IP)[index]
        self.backup = backup  #: server3 (a backup) is in the peers
        self.name = f"server{index + 1}"
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sock = self.dir / "ctl.sock"
        self.db = self.dir / "db"
        self.proc: subprocess.Popen | None = None
        (self.dir / "ha.pw").write_text(PASSWORD + "\n")
        self.config = self.dir / "fastdhcp.toml"
        self.config.write_text(fastdhcp_config(self, mode, split))
        self._log: Any = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
        self._log = open(self.dir / "stderr.log", "ab")
        self.proc = self.ns.popen([sys.executable, "-m", "fastdhcp", "serve", "--config",
                                   str(self.config)], stdout=self._log,
                                  stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"{self.name} exited\n{self.log()}"
            if self.sock.exists():
                try:
                    if unix_command(self.sock, "status-get", timeout=2)["result"] == 0:
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not start\n{self.log()}")

    def kill(self) -> None:
        assert self.proc is not None
        stop_process(self.proc, sig=signal.SIGKILL)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace=10.0)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def state(self) -> str:
        st = unix_command(self.sock, "status-get", timeout=5)["arguments"]
        return str(st["high-availability"][0]["ha-servers"]["local"]["state"])

    def scopes(self) -> list[str]:
        st = unix_command(self.sock, "status-get", timeout=5)["arguments"]
        return list(st["high-availability"][0]["ha-servers"]["local"]["scopes"])

    def command(self, name: str, arguments: Any = None) -> dict[str, Any]:
        return unix_command(self.sock, name, arguments, timeout=20)

    def leases(self) -> dict[str, str]:
        """address -> hw-address of every bound lease, read from the LMDB table (works with
        the server running or dead)."""
        cp = run([sys.executable, "-m", "fastdhcp", "leases", "--db", str(self.db), "--json",
                  "list"], timeout=CMD_TIMEOUT)
        out = {}
        for rec in json.loads(cp.stdout):
            state = rec.get("state")
            if state in (0, "default", "DEFAULT", "bound"):
                out[rec.get("address") or rec["ip"]] = str(
                    rec.get("hw-address") or rec.get("hw_address")).lower()
        return out

    def log(self) -> str:
        try:
            return (self.dir / "stderr.log").read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return "(no log)"


def peer_urls(backup: bool) -> tuple[str, ...]:
    """The peers' URL addresses: the pair's on the HA link, then the backup's if any."""
    return (*PEER_IPS, BACKUP_IP) if backup else PEER_IPS


def fastdhcp_config(s: Fastdhcp, mode: str, split: bool = False) -> str:
    q = json.dumps
    pools = (", ".join(f'{{ pool = "{a} - {b}", client-class = "HA_server{i + 1}" }}'
                       for i, (a, b) in enumerate(SPLIT))
             if split else f'"{POOL[0]} - {POOL[1]}"')
    peers = ""
    for i, ip in enumerate(peer_urls(s.backup)):
        peers += f"""
[[high-availability.peers]]
name = "server{i + 1}"
url = "http://{ip}:{HTTP_PORT}/"
role = "{(*ROLES[mode], "backup")[i]}"
basic-auth-user = "ha"
basic-auth-password-file = {q(str(s.dir / "ha.pw"))}
"""
    timers = "\n".join(f"{k} = {v}" for k, v in TIMERS.items())
    return f"""
[server]
listen-addresses = ["{s.ip}"]
port = 67
workers = {s.workers}

[lease-database]
path = {q(str(s.db))}
sync = true

[global]
valid-lifetime = 600
renew-timer = 150
rebind-timer = 300

[[subnet4]]
id = 1
subnet = "198.18.5.0/24"
pools = [{pools}]
relay = ["{RELAY_IP}"]
option-data = {{ routers = ["198.18.5.1"] }}

[[control-sockets]]
socket-type = "unix"
socket-name = {q(str(s.sock))}

[[control-sockets]]
socket-type = "http"
socket-address = "{(*PEER_IPS, BACKUP_IP)[s.index]}"
socket-port = {HTTP_PORT}
authentication = {{ type = "basic", directory = {q(str(s.dir))}, clients = [
    {{ user = "ha", password-file = "ha.pw" }} ] }}

{DDNS_TOML if split else ""}
[high-availability]
this-server-name = "{s.name}"
mode = "{mode}"
{timers}
{peers}"""

#: DDNS on, no domain configured: names decided and flagged, nothing sent (ncr-no-zone)
DDNS_TOML = """[ddns]
ddns-qualifying-suffix = "example.org"
"""

KEA = shutil.which("kea-dhcp4")
CA = shutil.which("kea-ctrl-agent")
HOOKS = Path("/usr/lib/x86_64-linux-gnu/kea/hooks")


class KeaPeer:
    """kea-dhcp4 2.2 (HA + lease_cmds hooks, memfile persisted) and its kea-ctrl-agent (the
    peer URL, basic auth) in the namespace of server ``index``."""

    def __init__(self, ns: Namespace, index: int, mode: str, workdir: Path, ifname: str, *,
                 split: bool = False, backup: bool = False) -> None:
        self.ns = ns
        self.index = index
        self.ip = SERVER_IPS[index]
        self.name = f"server{index + 1}"
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sock = self.dir / "kea4.sock"
        self.procs: list[subprocess.Popen] = []
        ha = {"this-server-name": self.name, "mode": mode, **TIMERS,
              "peers": [{"name": f"server{i + 1}", "url": f"http://{ip}:{HTTP_PORT}/",
                         "role": (*ROLES[mode], "backup")[i], "auto-failover": True,
                         "basic-auth-user": "ha", "basic-auth-password": PASSWORD}
                        for i, ip in enumerate(peer_urls(backup))]}
        dhcp = {"Dhcp4": {
            "interfaces-config": {"interfaces": [ifname], "dhcp-socket-type": "udp"},
            "control-socket": {"socket-type": "unix", "socket-name": str(self.sock)},
            "lease-database": {"type": "memfile", "persist": True, "lfc-interval": 0,
                               "name": str(self.dir / "leases.csv")},
            "valid-lifetime": 600, "renew-timer": 150, "rebind-timer": 300,
            **({"dhcp-ddns": {"enable-updates": True},
                "ddns-qualifying-suffix": "example.org"} if split else {}),
            "multi-threading": {"enable-multi-threading": False},
            "hooks-libraries": [
                {"library": str(HOOKS / "libdhcp_lease_cmds.so")},
                {"library": str(HOOKS / "libdhcp_ha.so"),
                 "parameters": {"high-availability": [ha]}}],
            "subnet4": [{"id": 1, "subnet": "198.18.5.0/24",
                         "pools": ([{"pool": f"{a} - {b}", "client-class": f"HA_server{i + 1}"}
                                    for i, (a, b) in enumerate(SPLIT)] if split
                                   else [{"pool": f"{POOL[0]} - {POOL[1]}"}]),
                         "relay": {"ip-addresses": [RELAY_IP]},
                         "option-data": [{"name": "routers", "data": "198.18.5.1"}]}],
            "loggers": [{"name": "kea-dhcp4", "severity": "INFO",
                         "output_options": [{"output": str(self.dir / "kea.log")}]}],
        }}
        ca = {"Control-agent": {
            "http-host": PEER_IPS[index], "http-port": HTTP_PORT,
            "authentication": {"type": "basic", "realm": "kea",
                               "clients": [{"user": "ha", "password": PASSWORD}]},
            "control-sockets": {"dhcp4": {"socket-type": "unix",
                                          "socket-name": str(self.sock)}},
            "loggers": [{"name": "kea-ctrl-agent", "severity": "WARN",
                         "output_options": [{"output": str(self.dir / "ca.log")}]}],
        }}
        (self.dir / "kea.json").write_text(json.dumps(dhcp))
        (self.dir / "ca.json").write_text(json.dumps(ca))

    def start(self) -> None:
        env = dict(os.environ, KEA_PIDFILE_DIR=str(self.dir), KEA_LOCKFILE_DIR=str(self.dir))
        assert KEA is not None and CA is not None
        for argv in ([KEA, "-c", str(self.dir / "kea.json")],
                     [CA, "-c", str(self.dir / "ca.json")]):
            self.procs.append(self.ns.popen(argv, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, env=env))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert all(p.poll() is None for p in self.procs), f"Kea exited\n{self.log()}"
            try:
                if self.sock.exists() and unix_command(self.sock, "status-get",
                                                       timeout=2)["result"] == 0:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"Kea did not start\n{self.log()}")

    def kill(self) -> None:
        for p in self.procs:
            stop_process(p, sig=signal.SIGKILL)
        self.procs = []

    def stop(self) -> None:
        for p in self.procs:
            stop_process(p, grace=10.0)
        self.procs = []

    def state(self) -> str:
        st = unix_command(self.sock, "status-get", timeout=5)["arguments"]
        return str(st["high-availability"][0]["ha-servers"]["local"]["state"])

    def scopes(self) -> list[str]:
        st = unix_command(self.sock, "status-get", timeout=5)["arguments"]
        return list(st["high-availability"][0]["ha-servers"]["local"]["scopes"])

    def command(self, name: str, arguments: Any = None) -> dict[str, Any]:
        return unix_command(self.sock, name, arguments, timeout=20)

    def leases(self) -> dict[str, str]:
        ans = unix_command(self.sock, "lease4-get-all", timeout=10)
        return {x["ip-address"]: x["hw-address"].lower()
                for x in (ans.get("arguments") or {}).get("leases", []) if x["state"] == 0}

    def log(self) -> str:
        try:
            return (self.dir / "kea.log").read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            return "(no log)"


Server = Fastdhcp | KeaPeer


def wait_states(servers: list[Server], want: str, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen = [s.state() for s in servers]
        if all(x == want for x in seen):
            return
        time.sleep(0.2)
    logs = "\n".join(f"--- {s.name}\n{s.log()}" for s in servers)
    raise AssertionError(f"states {seen}, not all {want}\n{logs}")


def no_address_twice(table: dict[str, str], who: str) -> None:
    """One address per client in ``table`` (address -> hw): no client twice, and (being a
    dict keyed by address) no address twice."""
    by_hw: dict[str, list[str]] = {}
    for ip, hw in table.items():
        by_hw.setdefault(hw, []).append(ip)
    doubled = {hw: ips for hw, ips in by_hw.items() if len(ips) > 1}
    assert not doubled, f"{who}: clients with two addresses: {doubled}"


# ------------------------------------------------------------------ the tests


@pytest.fixture
def pair_lab(interop_ready: None) -> Iterator[PairLab]:
    lab = build_pair_lab(str(os.getpid()))
    try:
        yield lab
    finally:
        errors = lab.cleanup.close()
        assert not errors, errors


def failover(servers: list[Server], relay: Relay, mode: str, victim: int, *, n: int = 40,
             one_at_a_time: bool = False) -> dict[str, str]:
    """The whole life of a pair (the module docstring): start-up, the mode's normal state,
    SIGKILL ``servers[victim]`` under relayed DORA and renewals with a rising secs, the
    survivor serving every client in partner-down, the victim back, synced, normal again.
    ``one_at_a_time``: one client's DORA after the other (a pair that shares a pool without
    allocation shares, as with a Kea peer, may give one address to two clients whose
    DISCOVERs race; each ACK waits for the partner's update, so sequential clients cannot)."""
    for s in servers:
        s.start()
    wait_states(servers, mode)

    def scope_server(c: Client) -> str:
        return SERVER_IPS[scope_of(c) if mode == "load-balancing" else 0]

    dora = dora_fn(relay, one_at_a_time)

    # the normal state: one OFFER and one ACK each, from the server of the client's scope
    first = clients(n, 0)
    offers = dora(first, 0)
    for c in first:
        got = offers.get(c.xid, [])
        assert len(got) == 1, (c.mac.hex(), got)
        assert got[0][0] == scope_server(c)
        assert len(c.acks) == 1 and c.server == scope_server(c), c
    assert {c.server for c in first} == {scope_server(c) for c in first}
    if mode == "load-balancing":
        assert {c.server for c in first} == set(SERVER_IPS)  # both scopes served
    acked = {c.ip: c.mac.hex(":") for c in first}
    assert len(acked) == n  # no address on two clients
    for s in servers:  # each server's table: its own leases and the partner's updates
        table = s.leases()
        missing = {ip: hw for ip, hw in acked.items() if table.get(ip) != hw}
        assert not missing, (s.name, missing)

    # failover: the victim dies; renewals and new clients with a rising secs
    survivor = servers[1 - victim]
    servers[victim].kill()
    late = clients(n // 2, 100)
    pending = first + late
    secs = 0
    deadline = time.monotonic() + 40
    while pending and time.monotonic() < deadline:
        secs += 1
        olds = [c for c in pending if c.ip is not None]
        news = [c for c in pending if c.ip is None]
        before = {id(c): len(c.acks) for c in pending}
        if olds:
            relay.renew(olds, secs)
        if news:
            dora(news, secs)
        pending = [c for c in pending if len(c.acks) == before[id(c)]]
        time.sleep(0.3)
    assert not pending, (f"{len(pending)} clients not served by the survivor",
                         survivor.state(), survivor.log())
    assert survivor.state() == "partner-down"
    for c in first:  # every ACK since came from the survivor, each client kept its address
        assert c.acks[1:] and all(src == survivor.ip for src, _ in c.acks[1:]), c
        assert {ip for _, ip in c.acks} == {c.ip}, c
    acked.update({c.ip: c.mac.hex(":") for c in late})
    assert len(acked) == n + n // 2  # no address on two clients
    table = survivor.leases()
    missing = {ip: hw for ip, hw in acked.items() if table.get(ip) != hw}
    assert not missing, ("ACKed leases missing from the survivor", missing)
    no_address_twice(table, "survivor")

    # recovery: the victim restarts on its own table, syncs, both back to the normal state
    servers[victim].start()
    wait_states(servers, mode, timeout=60)
    back = servers[victim].leases()
    missing = {ip: hw for ip, hw in acked.items() if back.get(ip) != hw}
    assert not missing, ("leases of the outage missing after the sync", missing)
    no_address_twice(back, f"{servers[victim].name} after the sync")
    fresh = clients(n // 4, 200)
    offers = dora(fresh, 0)
    for c in fresh:
        assert len(offers.get(c.xid, [])) == 1 and c.server == scope_server(c), c
    assert not {c.ip for c in fresh} & set(acked)
    acked.update({c.ip: c.mac.hex(":") for c in fresh})
    assert len(acked) == n + n // 2 + n // 4
    return acked


Dora = Callable[[list[Client], int], dict[int, list[tuple[str, Any]]]]


def dora_fn(relay: Relay, one_at_a_time: bool) -> Dora:
    """DORA for a list of clients: all at once, or one client after the other."""
    def dora(cs: list[Client], secs: int = 0) -> dict[int, list[tuple[str, Any]]]:
        if not one_at_a_time:
            return relay.dora(cs, secs)
        out: dict[int, list[tuple[str, Any]]] = {}
        for c in cs:
            out.update(relay.dora([c], secs))
        return out
    return dora


def maintenance(servers: list[Server], relay: Relay, mode: str, stayer: int,
                acked: dict[str, str], *, n: int = 16, one_at_a_time: bool = False) -> None:
    """The maintenance runbook on a pair in its normal state, as docs/high-availability.md
    gives it: ``ha-maintenance-start`` on the server that stays (``servers[stayer]``) puts it
    in partner-in-maintenance (every scope: both peers' in load-balancing, the primary's in
    hot-standby) and the other in in-maintenance (no scope, no answer to any client); the
    stayer serves every client. ``ha-maintenance-cancel`` then brings both back to the normal
    state. A second start, then the other stopped with SIGTERM: the stayer goes to
    partner-down and keeps serving; the other restarted on its own table syncs and the pair
    returns to the normal state by itself. Every ACKed lease is in both tables at the end, no
    address on two clients."""
    dora = dora_fn(relay, one_at_a_time)
    stay, other = servers[stayer], servers[1 - stayer]
    every_scope = ["server1", "server2"] if mode == "load-balancing" else ["server1"]

    def start_maintenance() -> None:
        ans = stay.command("ha-maintenance-start")
        assert ans["result"] == 0, ans
        wait_states([stay], "partner-in-maintenance", timeout=10)
        wait_states([other], "in-maintenance", timeout=10)
        assert stay.scopes() == every_scope and other.scopes() == []

    def served_by_stayer(cs: list[Client]) -> None:
        offers = dora(cs, 0)
        for c in cs:
            got = offers.get(c.xid, [])
            assert [src for src, _ in got] == [stay.ip], (c.mac.hex(), got)
            assert len(c.acks) == 1 and c.server == stay.ip, c
        acked.update({c.ip: c.mac.hex(":") for c in cs})

    # start, serve, cancel: back to the normal state, every lease in both tables
    start_maintenance()
    served_by_stayer(clients(n, 300))
    ans = stay.command("ha-maintenance-cancel")
    assert ans["result"] == 0, ans
    wait_states(servers, mode, timeout=30)
    for s in servers:
        table = s.leases()
        missing = {ip: hw for ip, hw in acked.items() if table.get(ip) != hw}
        assert not missing, (s.name, "missing after ha-maintenance-cancel", missing)
    # start, stop the other (SIGTERM), serve, restart: normal again, nothing lost
    start_maintenance()
    other.stop()
    wait_states([stay], "partner-down", timeout=20)
    served_by_stayer(clients(n, 400))
    assert len(acked) == len(set(acked.values()))  # no address on two clients
    other.start()
    wait_states(servers, mode, timeout=60)
    for s in servers:
        table = s.leases()
        missing = {ip: hw for ip, hw in acked.items() if table.get(ip) != hw}
        assert not missing, (s.name, "missing after the maintenance", missing)
        no_address_twice(table, s.name)
    # nothing left to cancel: refused, as Kea refuses it (its text names the state)
    ans = stay.command("ha-maintenance-cancel")
    assert ans["result"] == 1 and "partner-in-maintenance" in ans["text"], ans


def worker_restart(s: Fastdhcp, servers: list[Server], relay: Relay, mode: str,
                   acked: dict[str, str]) -> None:
    """SIGKILL worker 1 of a multi-worker HA server: the supervisor restarts it, it reads the
    supervisor's HA state as it starts (a new worker serves nobody until then), and its
    clients are served again; the pair never leaves its normal state."""
    def worker_pids() -> list[int]:
        st = unix_command(s.sock, "status-get", timeout=5)["arguments"]
        return [int(w.get("pid", 0)) for w in st["workers"]]

    before = worker_pids()
    os.kill(before[1], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            now = worker_pids()
        except (OSError, KeyError, ValueError):
            now = []
        if len(now) == 2 and now[1] not in (0, before[1]):
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"worker 1 of {s.name} not restarted\n{s.log()}")
    assert [x.state() for x in servers] == [mode, mode]
    mine = [c for c in clients(64, 500) if slices.steer(c.mac, s.workers) == 1
            and (mode == "hot-standby" or SERVER_IPS[scope_of(c)] == s.ip)][:6]
    assert mine
    deadline = time.monotonic() + 20
    pending = mine
    while pending and time.monotonic() < deadline:  # (its first state may be a moment off)
        relay.dora(pending, 0)
        pending = [c for c in pending if not c.acks]
    assert not pending, ("clients of the restarted worker not served", s.log())
    for c in mine:
        assert c.server == s.ip, c
    acked.update({c.ip: c.mac.hex(":") for c in mine})
    assert len(acked) == len(set(acked.values()))  # no address on two clients


@pytest.mark.parametrize("mode,victim,workers", [
    ("load-balancing", 1, (1, 1)), ("hot-standby", 0, (1, 1)), ("load-balancing", 0, (2, 1))],
    ids=["lb-secondary-dies", "hs-primary-dies", "lb-2-workers-dies"])
def test_fastdhcp_pair(pair_lab: PairLab, tmp_path: Path, mode: str, victim: int,
                       workers: tuple[int, int]) -> None:
    """``workers``: each server's ``[server] workers``; with 2, the supervisor runs the one HA
    service and its workers serve the slices (fastdhcp.service.front_ha)."""
    servers: list[Server] = [Fastdhcp(pair_lab.servers[i], i, mode, tmp_path / f"s{i + 1}",
                                      workers=workers[i]) for i in range(2)]
    relay = Relay(pair_lab.relay)
    try:
        acked = failover(servers, relay, mode, victim)
        maintenance(servers, relay, mode, 1 - victim, acked)
        for s in servers:
            if isinstance(s, Fastdhcp) and s.workers > 1:
                worker_restart(s, servers, relay, mode, acked)
        for s in servers:  # the HA gauges: one state, the server's (no worker label)
            text = s.command("metrics-get")["arguments"]["exposition"]
            lines = [x for x in text.splitlines() if x.startswith("fastdhcp_ha_state{")]
            assert f'fastdhcp_ha_state{{state="{mode}"}} 1.0' in lines, (s.name, lines)
            assert sum(x.endswith(" 1.0") for x in lines) == 1 and "worker=" not in \
                "".join(lines), lines
    finally:
        relay.close()
        for s in servers:
            s.stop()


@pytest.mark.parametrize("victim,workers", [(1, 1), (0, 1), (1, 2)],
                         ids=["kea-dies", "fastdhcp-dies", "kea-dies-fastdhcp-2-workers"])
def test_fastdhcp_and_kea_pair(pair_lab: PairLab, tmp_path: Path, victim: int,
                               workers: int) -> None:
    """fastdhcp (server1, primary) and a real Kea 2.2 (server2, secondary), load-balancing,
    the pool split per server by the ``HA_server1`` / ``HA_server2`` classes: every client,
    whichever server answered it (its own, or the survivor in partner-down, or the stayer in
    maintenance), has an address of its scope's pool, so fastdhcp classifies as Kea does.
    ``workers``: fastdhcp's ``[server] workers`` (2: one HA service in the supervisor, Kea's
    per-lease updates stored by the worker owning each address)."""
    if KEA is None or CA is None or not (HOOKS / "libdhcp_ha.so").exists():
        pytest.fail("kea-dhcp4, kea-ctrl-agent and the HA hook are needed (Debian "
                    "kea-dhcp4-server, kea-ctrl-agent)")
    mode = "load-balancing"
    servers: list[Server] = [
        Fastdhcp(pair_lab.servers[0], 0, mode, tmp_path / "s1", split=True, workers=workers),
        KeaPeer(pair_lab.servers[1], 1, mode, tmp_path / "s2", pair_lab.ifnames[1],
                split=True)]
    relay = Relay(pair_lab.relay, grace=0.05)
    try:
        acked = failover(servers, relay, mode, victim, n=16, one_at_a_time=True)
        maintenance(servers, relay, mode, 1 - victim, acked, n=8, one_at_a_time=True)
        by_mac = {c.mac.hex(":"): c for c in clients(500, 0)}
        for ip, hw in acked.items():  # each in its scope's pool, whoever answered it
            a, b = SPLIT[scope_of(by_mac[hw])]
            assert _n(a) <= _n(ip) <= _n(b), (ip, hw, scope_of(by_mac[hw]))
        assert {scope_of(by_mac[hw]) for hw in acked.values()} == {0, 1}
        fqdn_updates(servers, relay)
    finally:
        relay.close()
        for s in servers:
            s.stop()


def fqdn_updates(servers: list[Server], relay: Relay) -> None:
    """A client of each scope sends option 81 (S=1, a partial name): the server of its scope
    qualifies the name and sets both DNS update flags (fastdhcp and Kea, each with DDNS on and
    ``ddns-qualifying-suffix``), and its lease update carries them (``fqdn-fwd``,
    ``fqdn-rev``, ``hostname``): the partner's copy of each lease shows the same three."""
    pair = [c for c in clients(40, 600) if scope_of(c) == 0][:1] + [
        c for c in clients(40, 600) if scope_of(c) == 1][:1]
    for i, c in enumerate(pair):
        relay.dora([c], 0, (("client_FQDN", b"\x01\x00\x00" + f"fq{i}".encode()),))
        assert c.ip is not None and c.server == SERVER_IPS[i], c
        copies = []
        for s in servers:
            ans = s.command("lease4-get", {"ip-address": c.ip})
            assert ans["result"] == 0, (s.name, ans)
            x = ans["arguments"]
            copies.append((x["fqdn-fwd"], x["fqdn-rev"], x["hostname"]))
        assert copies[0] == copies[1], (c, copies)
        assert copies[0][:2] == (True, True), (c, copies)
        assert copies[0][2].rstrip(".") == f"fq{i}.example.org", (c, copies)


def test_split_brain_between_fastdhcp_peers(pair_lab: PairLab, tmp_path: Path) -> None:
    """The link between two fastdhcp peers cut, both reached by every client: both go to
    partner-down and serve everyone, yet no address is bound to two clients (each allocates
    only from its own share); the link back, they resync to load-balancing with every lease
    ACKed during the cut in both tables, each address's later copy (cltt) kept on both sides,
    and a client that took an address from each keeping the later one (fastdhcp.ha.reconcile).
    """
    mode = "load-balancing"
    servers: list[Server] = [Fastdhcp(pair_lab.servers[i], i, mode, tmp_path / f"s{i + 1}")
                             for i in range(2)]
    relay = Relay(pair_lab.relay)
    try:
        for s in servers:
            s.start()
        wait_states(servers, mode)
        first = clients(20, 0)
        relay.dora(first)
        assert all(len(c.acks) == 1 for c in first)
        pair_lab.cut()
        cut_at = time.monotonic()
        # clients of both scopes keep asking both servers, secs rising, until both take over
        secs = 0
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            secs += 1
            relay.renew(first, secs)
            if all(s.state() == "partner-down" for s in servers):
                break
            time.sleep(0.3)
        assert [s.state() for s in servers] == ["partner-down"] * 2, [s.log() for s in servers]
        # new clients now get two OFFERs (one from each, each from its own share) and take the
        # first, as clients do; renewals get the same address from both
        late = clients(30, 100)
        offers = relay.dora(late, secs)
        assert sum(len(offers.get(c.xid, [])) == 2 for c in late) > len(late) // 2, offers
        assert all(c.acks for c in late)
        relay.renew(first, secs + 1)
        for c in first:
            assert {ip for _, ip in c.acks} == {c.ip}, c
        tables = [s.leases() for s in servers]
        holders: dict[str, set[str]] = {}
        for table in tables:
            for ip, hw in table.items():
                holders.setdefault(ip, set()).add(hw)
        doubled = {ip: hws for ip, hws in holders.items() if len(hws) > 1}
        assert not doubled, ("one address bound to two clients in the split brain", doubled)
        for c in late:  # the address each new client took is of its server's share
            assert int(c.ip.rsplit(".", 1)[1]) % 2 == SERVER_IPS.index(c.server or ""), c
        # one client renewed by the secondary alone a second later: its copy there is the
        # later; another client's DORA answered by the primary alone, then a second later a
        # new DORA answered by the secondary alone: it is bound to one address on each side
        time.sleep(1.1)
        renewed, mover = first[0], clients(1, 150)[0]
        relay.targets = [SERVER_IPS[1]]
        relay.renew([renewed], secs + 2)
        relay.targets = [SERVER_IPS[0]]
        relay.dora([mover], secs)
        old_ip = mover.ip
        time.sleep(1.1)
        relay.targets = [SERVER_IPS[1]]
        relay.dora([mover], secs)
        relay.targets = list(SERVER_IPS)
        assert len(mover.acks) == 2 and mover.ip != old_ip and old_ip is not None, mover
        later = servers[1].command("lease4-get", {"ip-address": renewed.ip})["arguments"]
        earlier = servers[0].command("lease4-get", {"ip-address": renewed.ip})["arguments"]
        assert later["cltt"] > earlier["cltt"], (later, earlier)
        # the link returns: both resync and load-balance again, no lease lost
        pair_lab.cut(up=True)
        wait_states(servers, mode, timeout=60)
        acked = {c.ip: c.mac.hex(":") for c in first + late + [mover]}
        assert len(acked) == len(first) + len(late) + 1
        for s in servers:
            table = s.leases()
            missing = {ip: hw for ip, hw in acked.items() if table.get(ip) != hw}
            assert not missing, (s.name, "lost in the reconciliation", missing)
            # the mover keeps its later binding, its earlier address is free again
            assert old_ip not in table, (s.name, old_ip, table.get(old_ip))
            no_address_twice(table, s.name)
            # the later copy of the renewed lease won on both sides
            got = s.command("lease4-get", {"ip-address": renewed.ip})["arguments"]
            assert got["cltt"] == later["cltt"], (s.name, got, later)
        # and still once every request in flight across the cut has ended: the first renewals
        # after the cut went as a batch on a keep-alive connection and hang until
        # REQUEST_TIMEOUT, after the resync; the communication-recovery their failure causes
        # once flushed the backlog queued before partner-down, the renewal's earlier cltt over
        # the later (3 runs in 8 under load, 2026-12-07, when the reads above came late)
        time.sleep(max(0.0, cut_at + REQUEST_TIMEOUT + 2.0 - time.monotonic()))
        wait_states(servers, mode, timeout=30)
        for s in servers:
            got = s.command("lease4-get", {"ip-address": renewed.ip})["arguments"]
            assert got["cltt"] == later["cltt"], (s.name, "an older copy came back", got, later)
            table = s.leases()
            missing = {ip: hw for ip, hw in acked.items() if table.get(ip) != hw}
            assert not missing and old_ip not in table, (s.name, missing, table.get(old_ip))
    finally:
        relay.close()
        for s in servers:
            s.stop()


def test_kea_pair_with_fastdhcp_backup(pair_lab: PairLab, tmp_path: Path) -> None:
    """A Kea 2.2 load-balancing pair (server1, server2) with a fastdhcp backup (server3): the
    pair reaches load-balancing with the backup listed, the backup stays in the backup state
    and answers no client, and every lease either Kea ACKs (each sends its updates to the
    backup too, not waiting for it: wait-backup-ack false) is in the backup's table; a
    RELEASE reaches it as a delete."""
    if KEA is None or CA is None or not (HOOKS / "libdhcp_ha.so").exists():
        pytest.fail("kea-dhcp4, kea-ctrl-agent and the HA hook are needed (Debian "
                    "kea-dhcp4-server, kea-ctrl-agent)")
    mode = "load-balancing"
    pair_lab.relay.run(["ip", "addr", "add", f"{BACKUP_IP}/24", "dev", "br0"])
    keas: list[Server] = [KeaPeer(pair_lab.servers[i], i, mode, tmp_path / f"s{i + 1}",
                                  pair_lab.ifnames[i], backup=True) for i in range(2)]
    backup = Fastdhcp(pair_lab.relay, 2, mode, tmp_path / "s3", backup=True)
    relay = Relay(pair_lab.relay, grace=0.05)
    relay.targets = [*SERVER_IPS, BACKUP_IP]  # the backup gets every query too
    try:
        backup.start()
        for k in keas:
            k.start()
        wait_states(keas, mode)
        assert backup.state() == "backup"
        cs = clients(16, 700)
        offers = dora_fn(relay, True)(cs, 0)
        for c in cs:
            got = offers.get(c.xid, [])
            assert [src for src, _ in got] == [SERVER_IPS[scope_of(c)]], (c.mac.hex(), got)
            assert len(c.acks) == 1, c
        acked = {c.ip: c.mac.hex(":") for c in cs}
        assert len(acked) == len(cs) and {c.server for c in cs} == set(SERVER_IPS)
        deadline = time.monotonic() + 10
        missing = acked
        while missing and time.monotonic() < deadline:
            table = backup.leases()
            missing = {ip: hw for ip, hw in acked.items() if table.get(ip) != hw}
            time.sleep(0.2)
        assert not missing, ("ACKed by the Kea pair, missing from the backup", missing,
                             backup.log())
        no_address_twice(table, "backup")
        # a RELEASE to the client's server: its lease4-del reaches the backup
        gone = cs[0]
        relay.round([(gone, relay._build("release", gone, 0, [
            ("server_id", gone.server)], ciaddr=gone.ip or ""))], wait=0.5)
        deadline = time.monotonic() + 10
        while gone.ip in backup.leases() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert gone.ip not in backup.leases(), backup.log()
        assert backup.state() == "backup"
    finally:
        relay.close()
        for s in [*keas, backup]:
            s.stop()
