"""Lab, servers and load runs for ``bench/compare.py`` (the whole-server comparison with Kea).

Topology (two network namespaces from the interop harness, ``tests/interop/netns.py``)::

    srv [s0] 198.19.255.1/24 ---- veth ---- 198.19.255.2/24 [p0] perf

The load tool in ``perf`` acts as a relay agent (giaddr 198.19.255.2, port 67) and the server in
``srv`` answers the relay at giaddr:67. Both servers serve one subnet, 198.18.0.0/15, which holds
the giaddr (so the subnet is selected by giaddr, RFC 2131 4.3.1), with one pool of 130,814
addresses that leaves out the link's own /24.

Every measurement (:func:`run_segment`) starts a fresh server on an empty lease database in a
new temp dir, reads the server's CPU time (utime + stime of the whole process, every thread,
from ``/proc/PID/stat``) just before and just after the load, counts the leases it holds at the
end, stops it (SIGTERM, exit status checked) and removes the temp dir.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
from interop import netns
from interop.clients import parse_perfdhcp

REPO = Path(__file__).resolve().parents[1]

SERVER_IP = "198.19.255.1"
RELAY_IP = "198.19.255.2"
LINK_PREFIX = 24
SUBNET = "198.18.0.0/15"
POOL_FIRST, POOL_LAST = "198.18.0.1", "198.19.254.254"
POOL_SIZE = 131072 - 256 - 2  #: the /15 minus the link's /24, network and broadcast
ROUTER = "198.19.255.1"
DNS = ("198.18.0.53", "198.18.0.54")
DOMAIN = "bench.example"
VALID, RENEW, REBIND = 3600, 900, 1800
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVERS = ("kea", "kea-mt", "fastdhcp", "fastdhcp-nosync")
"""``kea`` is Kea single-threaded, ``kea-mt`` Kea with its multi-threading (:class:`KeaTuning`);
the comparison takes the better of the two. ``fastdhcp-nosync`` (``sync = false``,
MDB_NOSYNC) is not in the default comparison: it separates the cost of the fsyncs from the
rest of the server. Beside these, ``fastdhcp-wN`` is fastdhcp with ``[server] workers = N``
(:func:`fastdhcp_workers`; compare.py's ``--workers``)."""
_WORKERS = re.compile(r"fastdhcp-w([1-9][0-9]*)")


def fastdhcp_workers(kind: str) -> int | None:
    """N for a ``fastdhcp-wN`` kind (``[server] workers = N``), None for any other kind."""
    m = _WORKERS.fullmatch(kind)
    return int(m.group(1)) if m else None


def known_server(kind: str) -> bool:
    """A kind :class:`Server` can run: one of :data:`SERVERS` or ``fastdhcp-wN``."""
    return kind in SERVERS or fastdhcp_workers(kind) is not None
#: The receive buffer fastdhcp's socket has: it asks for 8 MiB (fastdhcp.netio.RCVBUF) and
#: the kernel doubles what a setsockopt asks for (socket(7)), so `ss -m` shows rb16777216;
#: a socket that sets nothing, as Kea's, gets net.core.rmem_default as it is. With
#: :func:`raise_rmem` Kea gets the same 16 MiB (the first smoke run, with the default at
#: 8 MiB, showed Kea 8,192 KiB against fastdhcp's 16,384).
RCVBUF = 2 * 8 * 1024 * 1024
_RMEM = ("/proc/sys/net/core/rmem_default", "/proc/sys/net/core/rmem_max")


@dataclass(frozen=True)
class KeaTuning:
    """Kea's ``multi-threading`` map for ``kea-mt``: ``thread-pool-size`` threads (0: Kea's
    default, one per core) and ``packet-queue-size`` packets queued per thread pool (Kea's
    DHCPv4 default: 64)."""

    threads: int = 2
    queue: int = 64


@dataclass
class BenchLab:
    """The two namespaces and their veth; :meth:`close` removes all of it (and what runs in it)."""

    tag: str
    srv: netns.Namespace
    perf: netns.Namespace
    cleanup: netns.Cleanup = field(repr=False)

    def close(self) -> list[str]:
        """Undo everything; teardown problems as text (never raises)."""
        return self.cleanup.close()


def build_lab() -> BenchLab:
    """Create ``fd<pid>-srv`` and ``fd<pid>-perf`` joined by a veth pair (offload off).

    The names follow the interop harness's scheme, so its ``sweep_stale()`` also removes a lab
    of this script that was killed with SIGKILL.
    """
    tag = str(os.getpid())
    cleanup = netns.Cleanup()
    try:
        srv = netns.create_namespace(f"fd{tag}-srv", cleanup)
        perf = netns.create_namespace(f"fd{tag}-perf", cleanup)
        netns.create_veth(srv, f"f{tag}s0", f"{SERVER_IP}/{LINK_PREFIX}",
                          perf, f"f{tag}p0", f"{RELAY_IP}/{LINK_PREFIX}", cleanup)
        # Socket buffers: net.core.rmem_* are not per namespace (not writable in one).
        # fastdhcp and the driver force 8 MiB (16 MiB in effect, RCVBUF); Kea and perfdhcp
        # take rmem_default, which compare.py raises to the same for the run
        # (raise_rmem) unless told not to. Each run records the buffer the server's socket
        # really has (Server.rcvbuf), and drops at either socket are counted separately
        # (udp_rcvbuf_errors).
        return BenchLab(tag, srv, perf, cleanup)
    except BaseException:
        cleanup.close()
        raise


def fastdhcp_config(workdir: Path, sync: bool = True, workers: int | None = None) -> str:
    """TOML for fastdhcp: one subnet, the pool, LMDB with ``sync = true``, warnings only;
    ``[server] workers = N`` when ``workers`` is given (none: the server's default)."""
    q = json.dumps
    return "\n".join([
        "[server]",
        f"listen-addresses = [{q(SERVER_IP)}]",
        "port = 67",
        "client-port = 68",
        'log-level = "warning"',
        *([f"workers = {workers}"] if workers is not None else []),
        "",
        "[lease-database]",
        f"path = {q(str(workdir / 'leases.lmdb'))}",
        f"sync = {str(sync).lower()}",
        "",
        "[global]",
        f"valid-lifetime = {VALID}",
        f"renew-timer = {RENEW}",
        f"rebind-timer = {REBIND}",
        f"option-data = {{ domain-name-servers = {q(list(DNS))}, domain-name = {q(DOMAIN)} }}",
        "",
        "[[subnet4]]",
        "id = 1",
        f"subnet = {q(SUBNET)}",
        f"pools = [{q(f'{POOL_FIRST} - {POOL_LAST}')}]",
        f"option-data = {{ routers = [{q(ROUTER)}] }}",
        "",
    ])


def raise_rmem(size: int = RCVBUF) -> dict[str, int]:
    """Raise the host's net.core.rmem_default and rmem_max to at least ``size``, so that Kea's
    socket gets the receive buffer fastdhcp forces; returns the previous values for
    :func:`restore_rmem` (the host's sysctls: restore them however the run ends)."""
    old = {path: int(Path(path).read_text()) for path in _RMEM}
    for path in reversed(_RMEM):  # max first: a default above max is capped by it
        if old[path] < size:
            Path(path).write_text(str(size))
    return old


def restore_rmem(old: dict[str, int]) -> None:
    """Put back what :func:`raise_rmem` found."""
    for path in _RMEM:  # default first: it must not exceed the max being lowered
        Path(path).write_text(str(old[path]))


def parse_rcvbuf(ss_output: str, addr: str) -> int:
    """The receive buffer (``skmem:(...,rb<bytes>,...)``) of the UDP socket bound to
    ``addr`` (``ip:port``) in ``ss -H -uln -m`` output (a socket's line, then its skmem line);
    the largest when several are bound there, 0 when there is none."""
    found = 0
    lines = ss_output.splitlines()
    for i, line in enumerate(lines):
        fields = line.split()
        if len(fields) < 4 or fields[3] != addr:
            continue
        m = re.search(r"skmem:\([^)]*?\brb(\d+)", " ".join(lines[i:i + 2]))
        if m:
            found = max(found, int(m.group(1)))
    return found


def kea_config(workdir: Path, ifname: str, tuning: KeaTuning | None = None) -> dict[str, Any]:
    """Kea 2.2 at its fastest: memfile (persist, no LFC) in ``workdir`` (a fresh lease file
    per run), WARN logging, UDP sockets (all traffic is relayed), the same subnet, pool,
    timers and options; single-threaded, or with ``tuning`` multi-threaded."""
    mt: dict[str, Any] = {"enable-multi-threading": False}
    if tuning is not None:
        mt = {"enable-multi-threading": True, "thread-pool-size": tuning.threads,
              "packet-queue-size": tuning.queue}
    return {"Dhcp4": {
        "interfaces-config": {"interfaces": [ifname], "dhcp-socket-type": "udp"},
        "multi-threading": mt,
        "lease-database": {"type": "memfile", "persist": True,
                           "name": str(workdir / "kea-leases4.csv"), "lfc-interval": 0},
        "valid-lifetime": VALID,
        "renew-timer": RENEW,
        "rebind-timer": REBIND,
        "option-data": [{"name": "domain-name-servers", "data": ", ".join(DNS)},
                        {"name": "domain-name", "data": DOMAIN}],
        "subnet4": [{"id": 1, "subnet": SUBNET,
                     "pools": [{"pool": f"{POOL_FIRST} - {POOL_LAST}"}],
                     "option-data": [{"name": "routers", "data": ROUTER}]}],
        "loggers": [{"name": "kea-dhcp4", "severity": "WARN",
                     "output_options": [{"output": "stderr"}]}],
    }}



def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from the parent ids in /proc/*/stat; ``pid`` first."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parent[int(entry)] = int(raw.rsplit(")", 1)[1].split()[1])
    out, i = [pid], 0
    while i < len(out):
        out += sorted(p for p, pp in parent.items() if pp == out[i])
        i += 1
    return out


class Server:
    """One server process in ``srv`` on a fresh temp dir (removed by :meth:`stop`)."""

    def __init__(self, kind: str, lab: BenchLab, keep: bool = False,
                 kea: KeaTuning | None = None) -> None:
        if not known_server(kind):
            raise ValueError(f"unknown server {kind!r}")
        self.kind = kind
        self.kea = kea or KeaTuning()
        self.lab = lab
        self.keep = keep
        self.dir = Path(tempfile.mkdtemp(prefix=f"fdcompare-{kind}-"))
        self.log_path = self.dir / "server.stderr"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 20.0) -> None:
        """Start and wait until ``SERVER_IP:67`` is bound; check the pid is the server's own."""
        if self.kind.startswith("fastdhcp"):
            cfg = self.dir / "fastdhcp.toml"
            cfg.write_text(fastdhcp_config(self.dir, sync=self.kind != "fastdhcp-nosync",
                                           workers=fastdhcp_workers(self.kind)))
            argv = [sys.executable, "-m", "fastdhcp", "serve", "--config", str(cfg)]
            # faulthandler: a crash of the server under load leaves its tracebacks in the log.
            env = dict(os.environ, PYTHONFAULTHANDLER="1", PYTHONPATH=str(REPO) + os.pathsep
                       + os.environ.get("PYTHONPATH", ""))
        else:
            cfg = self.dir / "kea-dhcp4.json"
            tuning = self.kea if self.kind == "kea-mt" else None
            cfg.write_text(json.dumps(kea_config(self.dir, f"f{self.lab.tag}s0", tuning),
                                      indent=2))
            argv = [shutil.which("kea-dhcp4") or "/usr/sbin/kea-dhcp4", "-c", str(cfg)]
            env = dict(os.environ, KEA_PIDFILE_DIR=str(self.dir), KEA_LOCKFILE_DIR=str(self.dir))
        ready = None
        if self.kind.startswith("fastdhcp"):
            # With workers the supervisor binds port 67 before its workers have started
            # (~1 s of imports each), so a bound socket is not a serving server: wait for the
            # READY=1 it sends once every worker has (sd_notify; the single process sends it
            # once it serves too). A path socket: abstract ones are per network namespace.
            ready = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            ready.bind(str(self.dir / "notify.sock"))
            ready.setblocking(False)
            env["NOTIFY_SOCKET"] = str(self.dir / "notify.sock")
        self._log = open(self.log_path, "ab")
        self.proc = self.lab.srv.popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_serving(timeout, ready)
        finally:
            if ready is not None:
                ready.close()

    def _wait_serving(self, timeout: float, ready: socket.socket | None) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        said_ready = ready is None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited {self.proc.returncode} at start-up:\n"
                                   f"{self.log()}")
            while not said_ready:
                try:
                    said_ready = b"READY=1" in ready.recv(4096).split(b"\n")  # type: ignore[union-attr]
                except BlockingIOError:
                    break
            ss = self.lab.srv.run(["ss", "-H", "-uln"], check=False).stdout
            if said_ready and f"{SERVER_IP}:67 " in ss:
                # `ip netns exec` execs the command, so the Popen pid is the server's; the CPU
                # figures depend on that, hence the check.
                comm = Path(f"/proc/{self.proc.pid}/comm").read_text().strip()
                if comm == "ip":
                    raise RuntimeError("ip netns exec forked: server pid unknown")
                time.sleep(0.3)  # socket bound; let the loop reach its wait
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} not listening on {SERVER_IP}:67 after {timeout}s\n"
                           f"{self.log()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def pids(self) -> list[int]:
        """The server process and its descendants (the worker processes of ``workers = N``);
        the server first."""
        return process_tree(self.pid)

    def cpu_seconds(self) -> float:
        """utime + stime of the server process and its worker processes (every thread), from
        /proc/PID/stat (a child's own figures: they are counted while it runs)."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue  # a worker that just ended
            total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK

    def thread_cpu(self) -> dict[int, tuple[str, float, float]]:
        """Per thread of the server and its worker processes: tid -> (name, user s, system s),
        from /proc/PID/task (a worker's threads named ``wK:`` before the name, K its rank in
        :meth:`pids`)."""
        out = {}
        for rank, pid in enumerate(self.pids()):
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except FileNotFoundError:
                continue
            for tid in tids:
                try:
                    raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                except FileNotFoundError:
                    continue  # thread ended between listdir and read
                name = raw[raw.index("(") + 1: raw.rindex(")")]
                f = raw.rsplit(")", 1)[1].split()
                out[int(tid)] = (f"w{rank}:{name}" if rank else name, int(f[11]) / CLK_TCK,
                                 int(f[12]) / CLK_TCK)
        return out

    def rcvbuf(self) -> int:
        """The receive buffer the kernel gave the server's socket (bytes, ``ss -m``)."""
        out = self.lab.srv.run(["ss", "-H", "-uln", "-m"], check=False).stdout
        return parse_rcvbuf(out, f"{SERVER_IP}:67")

    def socket_drops(self) -> int:
        """Datagrams the kernel dropped at port-67 sockets in ``srv`` (receive buffer full)."""
        out = self.lab.srv.run(["cat", "/proc/net/udp"], check=False).stdout
        total = 0
        for line in out.splitlines()[1:]:
            f = line.split()
            if len(f) > 12 and f[1].endswith(":0043"):
                total += int(f[-1])
        return total

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def lease_count(self) -> int:
        """Addresses bound at the end (fastdhcp: its lease CLI on the LMDB database, safe while
        it runs; Kea: the memfile CSV log, last row per address, lifetime > 0)."""
        if self.kind.startswith("fastdhcp"):
            cp = netns.run([sys.executable, "-m", "fastdhcp", "leases", "--db",
                            str(self.dir / "leases.lmdb"), "--json", "list"], timeout=120)
            recs = json.loads(cp.stdout)
            return sum(1 for r in recs if str(r.get("state", "")).lower()
                       in ("default", "bound", "0"))
        latest: dict[str, tuple[str, str]] = {}
        try:
            with open(self.dir / "kea-leases4.csv") as f:
                header = f.readline().rstrip("\n").split(",")
                ia, iv, ist = (header.index("address"), header.index("valid_lifetime"),
                               header.index("state"))
                for line in f:
                    row = line.split(",")
                    latest[row[ia]] = (row[iv], row[ist])
        except FileNotFoundError:
            return 0
        return sum(1 for v, s in latest.values() if int(v) > 0 and s == "0")

    def log(self, tail: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(lines[-tail:])

    def stop(self) -> int | None:
        """SIGTERM (SIGKILL after a grace period); remove the temp dir unless ``keep``."""
        rc = None
        if self.proc is not None:
            rc = netns.stop_process(self.proc, sig=signal.SIGTERM, grace=15.0)
        if self._log is not None:
            self._log.close()
            self._log = None
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        return rc


def udp_rcvbuf_errors(ns: netns.Namespace) -> int:
    """``Udp: RcvbufErrors`` of a namespace (/proc/net/snmp is per network namespace): datagrams
    lost because a receiving socket's buffer was full, whichever socket (the load tool's too)."""
    lines = [ln.split() for ln in ns.run(["cat", "/proc/net/snmp"]).stdout.splitlines()
             if ln.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def fsync_probe_ms(directory: Path, n: int = 20) -> float:
    """Median ms of a 4 KiB write + fdatasync in ``directory`` (the disk the LMDB commits hit),
    taken just before a run: context for fastdhcp's ACK latency on a shared disk."""
    path = directory / "fsync-probe"
    times = []
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        block = os.urandom(4096)
        for i in range(n):
            t0 = time.perf_counter()
            os.pwrite(fd, block, (i * 7919 % 256) * 4096)
            os.fdatasync(fd)
            times.append((time.perf_counter() - t0) * 1e3)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    times.sort()
    return times[len(times) // 2]


def _perfdhcp_delays(text: str) -> dict[str, dict[str, float]]:
    """``avg delay`` etc. in ms per exchange section of perfdhcp's report."""
    out: dict[str, dict[str, float]] = {}
    cur: dict[str, float] | None = None
    for line in text.splitlines():
        m = re.match(r"\*+\s*Statistics for:\s*([A-Z0-9-]+)", line)
        if m:
            cur = out.setdefault(m.group(1), {})
            continue
        m = re.match(r"\s*(min delay|avg delay|max delay|std deviation):\s*([0-9.]+)\s*ms", line)
        if m and cur is not None:
            cur[m.group(1)] = float(m.group(2))
    return out


def run_perfdhcp(lab: BenchLab, rate: int, seconds: int, clients: int) -> tuple[dict, list[str]]:
    """perfdhcp relay mode as the issue states it; ACKs counted over the period."""
    argv = ["perfdhcp", "-4", "-g", "single", "-l", RELAY_IP, "-r", str(rate), "-R", str(clients),
            "-p", str(seconds), "-W", "1000000", "-d", "1", "-s", "1", SERVER_IP]
    t0 = time.monotonic()
    cp = lab.perf.run(argv, timeout=seconds + 60, check=False)
    wall = time.monotonic() - t0
    text = cp.stdout + cp.stderr
    if cp.returncode not in (0, 3):  # 3: perfdhcp saw drops
        raise RuntimeError(f"perfdhcp exit {cp.returncode}:\n{text[-3000:]}")
    rep = parse_perfdhcp(cp.returncode, text)
    delays = _perfdhcp_delays(text)
    started = rep.count("DISCOVER-OFFER", "sent packets")
    acks = rep.count("REQUEST-ACK", "received packets")
    return {
        "tool": "perfdhcp", "started": started, "offers": rep.count("DISCOVER-OFFER",
                                                                    "received packets"),
        "acks": acks, "naks": 0, "drops": started - acks,
        "drop_ratio": (started - acks) / max(1, started), "acks_per_s": acks / seconds,
        "offer_ms": {"avg": delays.get("DISCOVER-OFFER", {}).get("avg delay", float("nan")),
                     "max": delays.get("DISCOVER-OFFER", {}).get("max delay", float("nan"))},
        "ack_ms": {"avg": delays.get("REQUEST-ACK", {}).get("avg delay", float("nan")),
                   "max": delays.get("REQUEST-ACK", {}).get("max delay", float("nan"))},
        "rejected": rep.stats["REQUEST-ACK"].get("rejected leases", 0),
        "non_unique": rep.stats["DISCOVER-OFFER"].get("non unique addresses", 0)
        + rep.stats["REQUEST-ACK"].get("non unique addresses", 0),
        "tool_wall_s": wall,
    }, argv


def run_loadgen(lab: BenchLab, rate: int, seconds: float, clients: int) -> tuple[dict, list[str]]:
    """The project's driver (compiled) in ``perf``, open loop at ``rate``, 1 s timeout."""
    argv = [sys.executable, "-m", "fastdhcp.loadgen", f"{SERVER_IP}:67", "--relay", RELAY_IP,
            "-r", str(rate), "-R", str(clients), "-d", f"{seconds:g}", "-t", "1", "--json",
            "--progress", "0"]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cp = subprocess.run(lab.perf.argv(argv), capture_output=True, text=True,
                        timeout=seconds + 60, env=env)
    if cp.returncode not in (0, 1):
        raise RuntimeError(f"loadgen exit {cp.returncode}:\n{cp.stderr[-3000:]}")
    s = json.loads(cp.stdout[cp.stdout.index("{"): cp.stdout.rindex("}") + 1])
    started, acks = s["discovers"], s["acks"]
    return {
        "tool": "loadgen", "started": started, "offers": s["offers"], "acks": acks,
        "naks": s["naks"], "drops": started - acks, "drop_ratio": s["drop_ratio"],
        # ACKs over the sending period, like the perfdhcp figures (not over the drain too).
        "acks_per_s": acks / seconds,
        "offer_ms": dict(s["offer_latency"]), "ack_ms": dict(s["ack_latency"]),
        "driver_cpu_us_per_dora": s["cpu_per_exchange_us"], "stray": s["stray"],
        "elapsed": s["elapsed"],
    }, argv


def run_segment(lab: BenchLab, kind: str, tool: str, rate: int, seconds: float, clients: int,
                *, keep: bool = False, profile: Path | None = None,
                kea: KeaTuning | None = None) -> dict[str, Any]:
    """One measurement on a fresh server and empty database; see the module docstring.

    ``profile``: also run ``py-spy record --native`` on the server during the load (raw
    collapsed stacks written there); the CPU figures of such a run include py-spy's sampling
    and are marked ``profiled``.
    """
    srv = Server(kind, lab, keep=keep, kea=kea)
    spy = None
    try:
        fsync_ms = fsync_probe_ms(srv.dir)
        srv.start()
        rcvbuf = srv.rcvbuf()
        drops0 = srv.socket_drops()
        rcv0 = {"srv": udp_rcvbuf_errors(lab.srv), "perf": udp_rcvbuf_errors(lab.perf)}
        load0 = os.getloadavg()[0]
        if profile is not None:
            spy = subprocess.Popen(
                ["py-spy", "record", "--native", "--threads", "--format", "raw", "--rate", "50",
                 "--duration", str(int(seconds)), "-o", str(profile), "-p", str(srv.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu0 = srv.cpu_seconds()
        threads0 = srv.thread_cpu()
        if tool == "perfdhcp":
            res, argv = run_perfdhcp(lab, rate, int(seconds), clients)
        else:
            res, argv = run_loadgen(lab, rate, seconds, clients)
        cpu = (srv.cpu_seconds() if srv.alive() else cpu0) - cpu0
        crashed = not srv.alive()
        threads1 = {} if crashed else srv.thread_cpu()
        if crashed:
            # Recorded, not raised: the tool's counters are still what the clients saw, and
            # the step counts as failed (compare.passes). The log has faulthandler's traceback.
            print(f"warning: {kind} died under load (exit {srv.proc.returncode}):\n{srv.log()}",
                  file=sys.stderr)
        if spy is not None:
            spy.wait(timeout=60)
            spy = None
        res.update({
            "server": kind, "rate": rate, "seconds": seconds, "clients": clients,
            "server_cpu_s": cpu, "cpu_us_per_dora": cpu / max(1, res["acks"]) * 1e6,
            "server_cores": cpu / seconds, "socket_drops": max(0, srv.socket_drops() - drops0),
            "rcvbuf_errors_srv": udp_rcvbuf_errors(lab.srv) - rcv0["srv"],
            "rcvbuf_errors_tool": udp_rcvbuf_errors(lab.perf) - rcv0["perf"],
            "fsync_ms": fsync_ms, "rcvbuf_bytes": rcvbuf,
            # Per thread (the loop is the main thread, named like the process): user and
            # system CPU seconds over the load, so the split loop/writer, user/kernel is known.
            "threads": [{"tid": tid, "name": name, "user_s": u - threads0.get(tid, (0, 0, 0))[1],
                         "sys_s": st - threads0.get(tid, (0, 0, 0))[2]}
                        for tid, (name, u, st) in sorted(threads1.items())],
            # Counted after a crash too (the database is intact): ACKed leases must be there.
            "leases": srv.lease_count(), "load_before": load0,
            "load_after": os.getloadavg()[0],
            "command": argv, "profiled": profile is not None, "crashed": crashed,
            "crash_log": srv.log(60) if crashed else "",
        })
        return res
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()  # not in a session of its own: a plain kill of our child
            spy.wait(timeout=10)
        rc = srv.stop()
        if rc not in (0, None) and kind.startswith("fastdhcp"):
            print(f"warning: fastdhcp exited {rc} on SIGTERM:\n{srv.log()}", file=sys.stderr)
