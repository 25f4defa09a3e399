"""The SIGKILL crash loop: the real ``fastdhcp serve`` (``sync = true``) under relayed DORA load,
killed at random moments, restarted on the same database, and checked by an independent reader.

Pieces, each usable alone (``tests/test_crash.py`` unit-tests the checker, then runs the loop;
``tests/crash_loop.py`` runs more rounds):

- :class:`AckLedger`: every ACK the load driver (or a probe client) received, the newest per
  client, with a lower bound on the server time at which it was made;
- :func:`read_db`: the lease database as another process sees it, read with ``lmdb`` and
  ``msgpack`` directly (no fastdhcp code: an independent reader of the layout in
  docs/durability.md);
- :func:`check`: the durability and uniqueness checks of one snapshot against the ledger;
- :class:`CrashLoop`: the rounds (start, probe, load, SIGKILL, read, check).

Why the checks can fail: the kill lands while the driver has exchanges in flight (a loop thread
runs the load; the kill comes after a random 0.2-1.5 s and the load goes on past it), so batches
are being committed and ACKs are leaving at that moment. An ACK whose batch was not durable shows
up as a missing lease, a lease of another client, an older expiry (a lost renewal), or, after the
restart, as its address handed to a new client (double binding).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import random
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import lmdb
import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from config_builder import config_text as builder_config_text  # noqa: E402
from service_helpers import RELAY_IP, SERVER_IP, RelayClient, ServeProcess, free_port  # noqa: E402

#: Lease states as written in records (fastdhcp.leases.LeaseState; repeated here on purpose so
#: that a renumbering there shows up as a failure here).
BOUND = 0
DECLINED = 1
ACTIVE = (BOUND, DECLINED)

LIFETIME = 3600
SUBNET = "198.18.0.0/16"
POOL = ("198.18.1.0", "198.18.254.255")
#: First chaddr of the load driver; probe clients use a separate range.
LOAD_MAC = 0x02_00_00_10_00_00
PROBE_MAC = 0x02_00_00_F0_00_00
#: Self-test ACKs (never sent by any server): clients and addresses (in the subnet, outside
#: the pool) no lease can have.
FAKE_MAC = 0x02_00_00_EE_00_00
FAKE_IP = int(ipaddress.IPv4Address("198.18.0.10"))
#: Seconds a server-side time may be below our reading of the same clock (the server rounds
#: ``now`` up, so 0 would do on a steady clock; 1 s absorbs a small step of the wall clock).
CLOCK_SLACK = 1


def client_key(chaddr: int) -> bytes:
    """The engine's key for a client without option 61: htype (1, Ethernet) + chaddr."""
    return b"\x01" + chaddr.to_bytes(6, "big")


def ipstr(ip: int) -> str:
    return str(ipaddress.IPv4Address(ip))


def macstr(chaddr: int) -> str:
    return chaddr.to_bytes(6, "big").hex(":")


# --------------------------------------------------------------------------- the ledger


@dataclasses.dataclass(slots=True)
class Ack:
    """The newest ACK a client received."""

    ip: int
    not_before: float  #: wall time before its REQUEST was sent (the server's `now` is later)
    round: int
    source: str  #: "load" or "probe"


class AckLedger:
    """Every ACK seen by the clients, keeping the newest per chaddr (ACKs are added in arrival
    order, so a later ``add`` for the same client replaces the earlier one)."""

    def __init__(self) -> None:
        self.latest: dict[int, Ack] = {}
        self.total = 0  #: ACKs added, renewals included
        self.renewals = 0  #: ACKs of a client already in the ledger (from any round)
        self.cross_round_renewals = 0  #: ... whose previous ACK was in an earlier round

    def add(self, chaddr: int, ip: int, not_before: float, rnd: int, source: str = "load") -> None:
        prev = self.latest.get(chaddr)
        if prev is not None:
            self.renewals += 1
            if prev.round != rnd:
                self.cross_round_renewals += 1
        self.latest[chaddr] = Ack(ip, not_before, rnd, source)
        self.total += 1

    def add_many(self, pairs: Iterable[tuple[int, int]], not_before: float, rnd: int) -> int:
        n = 0
        for chaddr, ip in pairs:
            self.add(chaddr, ip, not_before, rnd)
            n += 1
        return n


# --------------------------------------------------------------------------- the reader


@dataclasses.dataclass(slots=True)
class Record:
    """One ``leases`` value: msgpack [state, expires, issued, subnet-id, client-key,
    hw-address, hostname, relay-info]."""

    state: int
    expires: int
    issued: int
    subnet_id: int
    client_key: bytes
    hw_address: bytes


@dataclasses.dataclass
class Snapshot:
    """The lease table as one reader saw it (the indexes live in the server's memory)."""

    leases: dict[int, Record]
    read_at: float  #: wall time of the read

    def active(self) -> dict[int, Record]:
        return {ip: r for ip, r in self.leases.items() if r.state in ACTIVE}


def read_db(path: str | os.PathLike[str]) -> Snapshot:
    """Read the lease table at ``path`` read-only, in one transaction.

    Uses ``lmdb`` and ``msgpack`` directly, not fastdhcp.store. Must not run in a process that
    has the same database open (LMDB: one handle per environment and process).
    """
    path = os.fspath(path)
    read_at = time.time()
    leases: dict[int, Record] = {}
    env = lmdb.open(path, readonly=True, max_dbs=8, lock=True, map_size=0)
    try:
        ldb = env.open_db(b"leases", create=False)
        mdb = env.open_db(b"meta", create=False)
        with env.begin() as txn:
            for k, v in txn.cursor(db=ldb):
                rec = msgpack.unpackb(v, use_list=False, raw=False,
                                      unicode_errors="surrogateescape")
                leases[struct.unpack("!I", k)[0]] = Record(
                    rec[0], rec[1], rec[2], rec[3], bytes(rec[4]), bytes(rec[5]))
            if txn.get(b"schema-version", db=mdb) is None:
                raise ValueError(f"{path}: no schema version: not a fastdhcp lease database")
    finally:
        env.close()
    return Snapshot(leases, read_at)


# --------------------------------------------------------------------------- the checker


@dataclasses.dataclass
class CheckResult:
    """What :func:`check` found. ``losses`` and ``doubles`` must be empty."""

    checked: int = 0  #: ACKed (client, address) pairs checked
    losses: list[str] = dataclasses.field(default_factory=list)
    doubles: list[str] = dataclasses.field(default_factory=list)
    moved: int = 0  #: clients whose table lease is a newer one at another address (allowed)
    lost_rounds: list[int] = dataclasses.field(default_factory=list)  #: round of each loss

    @property
    def ok(self) -> bool:
        return not (self.losses or self.doubles)

    def summary(self, limit: int = 10) -> str:
        lines = [f"{self.checked} ACKs checked: {len(self.losses)} lost, "
                 f"{len(self.doubles)} double bindings, {self.moved} moved"]
        for title, items in (("lost", self.losses), ("double", self.doubles)):
            for line in items[:limit]:
                lines.append(f"  {title}: {line}")
            if len(items) > limit:
                lines.append(f"  ... {len(items) - limit} more {title}")
        return "\n".join(lines)


def check(snap: Snapshot, ledger: AckLedger, lifetime: int = LIFETIME,
          slack: int = CLOCK_SLACK) -> CheckResult:
    """Check ``snap`` against every client's newest ACK in ``ledger``.

    Loss: the ACKed address has no lease, or its lease names another hw-address or client key,
    is not bound, or expires before ``ceil(not_before) + lifetime`` (the engine stamps
    ``ceil(now) + lifetime`` and its ``now`` is not earlier than ``not_before``): a lost renewal
    leaves the older expiry. Allowed instead: the client holds a bound lease at another address
    issued after that ACK (a later renewal we did not see ACKed), counted as ``moved``.

    Double binding: two active leases with one client key; two clients whose newest ACKs name
    the same address.
    """
    res = CheckResult()
    leases = snap.leases
    active = snap.active()
    # Active leases by client: more than one is a double binding.
    by_client: dict[bytes, list[int]] = {}
    for ip, r in active.items():
        by_client.setdefault(r.client_key, []).append(ip)
    for key, ips in by_client.items():
        if len(ips) > 1:
            res.doubles.append(f"client {key.hex()} has {len(ips)} active leases: "
                               + ", ".join(ipstr(i) for i in sorted(ips)))
    # Two clients ACKed the same address (each believes it holds it).
    acked_by_ip: dict[int, list[int]] = {}
    for chaddr, ack in ledger.latest.items():
        acked_by_ip.setdefault(ack.ip, []).append(chaddr)
    for ip, macs in acked_by_ip.items():
        if len(macs) > 1:
            res.doubles.append(f"{ipstr(ip)} was ACKed to {len(macs)} clients that still hold "
                               "it: " + ", ".join(macstr(m) for m in macs))
    # Every ACK.
    for chaddr, ack in ledger.latest.items():
        res.checked += 1
        hw = chaddr.to_bytes(6, "big")
        key = client_key(chaddr)
        need = math.ceil(ack.not_before) + lifetime - slack
        lease = leases.get(ack.ip)
        why = None
        if lease is None:
            why = "no lease record"
        elif lease.hw_address != hw or lease.client_key != key:
            why = f"lease belongs to {lease.hw_address.hex(':')} (key {lease.client_key.hex()})"
        elif lease.state != BOUND:
            why = f"lease state {lease.state}, not bound"
        elif lease.expires < need:
            why = f"expires {lease.expires} < {need} (older than the ACK: lost renewal)"
        elif lease.expires > snap.read_at + lifetime + 1:
            why = f"expires {lease.expires} after the read time + lifetime (impossible)"
        if why is None:
            continue
        # A later renewal at another address (not seen ACKed) also keeps the promise.
        newer = [ip for ip in by_client.get(key, ())
                 if ip != ack.ip and leases[ip].state == BOUND
                 and leases[ip].issued >= math.floor(ack.not_before) - slack
                 and leases[ip].hw_address == hw]
        if newer:
            res.moved += 1
            continue
        res.losses.append(f"{macstr(chaddr)} ACKed {ipstr(ack.ip)} in round {ack.round} "
                          f"({ack.source}): {why}")
        res.lost_rounds.append(ack.round)
    return res


# --------------------------------------------------------------------------- the loop


def config_text(db: Path, port: int, *, batch_size: int = 256, max_wait_ms: float = 2.0) -> str:
    """A relayed /16 with a 65,024-address pool (no address is ever reused in a run), sync on."""
    return builder_config_text(
        {"listen-addresses": [SERVER_IP], "port": port, "client-port": port + 1,
         "stats-interval": 60.0},
        lease_database={"path": db, "sync": True, "batch-size": batch_size,
                        "max-wait-ms": max_wait_ms},
        global_={"valid-lifetime": LIFETIME},
        subnets=[{"id": 1, "subnet": SUBNET, "pools": [f"{POOL[0]} - {POOL[1]}"],
                  "relay": [RELAY_IP], "option-data": {"routers": ["198.18.0.1"]}}])


@dataclasses.dataclass
class RoundReport:
    """One round: the load until the kill, and what the check found after it."""

    round: int
    kill_at: float  #: seconds after the load started
    first_mac: int
    acks: int  #: ACKs the driver received this round
    acks_before_kill_100ms: int  #: ACKs in the 100 ms before the kill (load was running)
    in_flight_at_kill: int  #: most exchanges in flight in the driver's last 5 snapshots (20 ms
    #: apart) before the kill
    timeouts: int  #: exchanges cut by the kill (and sent to the dead server after it)
    renewals: int  #: ACKs this round for clients ACKed in earlier rounds
    #: leases bound this round for clients not ACKed this round: their commit beat the kill but
    #: their ACK did not reach the driver, i.e. the kill landed between a commit and delivery
    committed_unacked: int
    result: CheckResult
    leases_in_table: int
    start_s: float  #: seconds from spawn to READY=1 of this round's server

    @property
    def new_losses(self) -> int:
        """Losses of ACKs received since the previous restart: what this kill lost."""
        return sum(1 for r in self.result.lost_rounds if r == self.round)


@dataclasses.dataclass
class CrashReport:
    """The whole run."""

    seed: int
    rounds: list[RoundReport]
    final: CheckResult | None = None
    ledger_clients: int = 0
    acks_total: int = 0
    probes: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)  #: probe / restart failures

    @property
    def acks_checked(self) -> int:
        return sum(r.result.checked for r in self.rounds) + (self.final.checked if self.final
                                                             else 0)

    @property
    def losses(self) -> int:
        return sum(len(r.result.losses) for r in self.rounds) + (
            len(self.final.losses) if self.final else 0)

    @property
    def doubles(self) -> int:
        return sum(len(r.result.doubles) for r in self.rounds) + (
            len(self.final.doubles) if self.final else 0)

    @property
    def ok(self) -> bool:
        return (not self.problems and all(r.result.ok for r in self.rounds)
                and (self.final is None or self.final.ok))

    def summary(self) -> str:
        lines = [f"crash loop seed {self.seed}: {len(self.rounds)} SIGKILL rounds, "
                 f"{self.acks_total} ACKs received ({self.ledger_clients} clients), "
                 f"{self.acks_checked} ACK checks, {self.losses} losses, "
                 f"{self.doubles} double bindings, {self.probes} restart probes"]
        for r in self.rounds:
            lines.append(
                f"  round {r.round}: start {r.start_s:.2f} s, kill at {r.kill_at:.3f} s, "
                f"{r.acks} ACKs ({r.renewals} renewals), {r.acks_before_kill_100ms} in the last "
                f"100 ms, {r.in_flight_at_kill} in flight, {r.timeouts} timeouts, "
                f"{r.committed_unacked} committed unACKed; table "
                f"{r.leases_in_table} leases; "
                f"{r.result.summary().splitlines()[0]}")
            lines.extend(r.result.summary().splitlines()[1:])
        if self.final is not None:
            lines.append("  after a clean stop: " + self.final.summary().replace("\n", "\n  "))
        lines.extend(f"  problem: {p}" for p in self.problems)
        return "\n".join(lines)


class CrashLoop:
    """Runs ``rounds`` kill/restart rounds of ``fastdhcp serve`` on one database in ``workdir``.

    Each round: start the server (wait for READY=1); after the first round, probe it (a DORA
    from a known client must get its address back, a new client must get an address no lease
    holds: the pool bitmaps were rebuilt); run the relay load at ``rate``/s in a thread; SIGKILL
    the server after a random ``kill_range`` seconds while the load goes on; read the database
    and :func:`check` it. Round r's clients start at a random point inside round r-1's ACKed
    range (30-70 %), so part of each round renews earlier clients and part is new. After the
    last round: restart, probe, stop with SIGTERM, check the cleanly closed database.
    """

    def __init__(self, workdir: Path, *, rounds: int = 6, rate: float = 2000.0,
                 seed: int | None = None, kill_range: tuple[float, float] = (0.2, 1.5),
                 timeout: float = 0.5, fake_acks: int = 0, mutant: str | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.workdir = Path(workdir)
        self.db = self.workdir / "db"
        self.rounds = rounds
        self.rate = rate
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
        self.rng = random.Random(self.seed)
        self.kill_range = kill_range
        self.timeout = timeout
        self.log = log or (lambda s: None)
        #: Self-test: ACKs that never happened, added to the ledger after round 0 (addresses
        #: outside the pool, so no lease can ever match): every check must report each as lost.
        self.fake_acks = fake_acks
        #: Self-test: run a deliberately broken server (tests/crash_mutant.py).
        self.mutant = mutant
        self._prefix: tuple[str, ...] = ()
        if mutant is not None:
            from crash_mutant import sitecustomize

            mdir = self.workdir / "mutant"
            mdir.mkdir(exist_ok=True)
            here = str(Path(__file__).resolve().parent)
            (mdir / "sitecustomize.py").write_text(sitecustomize(mutant, here))
            path = os.pathsep.join(p for p in (str(mdir), os.environ.get("PYTHONPATH")) if p)
            self._prefix = ("env", f"PYTHONPATH={path}")
        self.ledger = AckLedger()
        self.port = free_port()
        self.config_path = self.workdir / "fastdhcp.toml"
        self.config_path.write_text(config_text(self.db, self.port))
        self.report = CrashReport(self.seed, [])
        self._probe_n = 0

    # A fresh server process for round `rnd`, ready to serve.
    def _start(self, rnd: int) -> tuple[ServeProcess, float]:
        rdir = self.workdir / f"round{rnd}"
        rdir.mkdir(exist_ok=True)
        t = time.monotonic()
        srv = ServeProcess(self.config_path, rdir, prefix=self._prefix)
        if not srv.wait_notify(timeout=120.0):
            log = srv.log()
            srv.close()
            raise RuntimeError(f"seed {self.seed}: server of round {rnd} did not start:\n{log}")
        return srv, time.monotonic() - t

    def _probe(self, rnd: int, snap: Snapshot) -> None:
        """Restart checks against the snapshot taken after the last kill."""
        try:
            self._probe_dora(rnd, snap)
        except (TimeoutError, KeyError, OSError) as exc:
            self.report.problems.append(f"round {rnd}: probe DORA failed: {exc!r}")

    def _probe_dora(self, rnd: int, snap: Snapshot) -> None:
        by_key = {r.client_key: ip for ip, r in snap.leases.items() if r.state == BOUND}
        active = set(snap.active())
        known = [m for m in self.ledger.latest if client_key(m) in by_key]
        with RelayClient(self.port, timeout=10.0) as c:
            if known:
                chaddr = self.rng.choice(sorted(known))
                want = by_key[client_key(chaddr)]
                t = time.time()
                _, ack = c.dora(chaddr.to_bytes(6, "big"), 0x5000_0000 + 16 * rnd)
                got = int(ipaddress.IPv4Address(ack.yiaddr))
                self.report.probes += 1
                if got != want:
                    self.report.problems.append(
                        f"round {rnd}: known client {macstr(chaddr)} holds {ipstr(want)} in the "
                        f"table but the restarted server ACKed {ipstr(got)}")
                self.ledger.add(chaddr, got, t, rnd, "probe")
            chaddr = PROBE_MAC + self._probe_n
            self._probe_n += 1
            t = time.time()
            _, ack = c.dora(chaddr.to_bytes(6, "big"), 0x5000_0008 + 16 * rnd)
            got = int(ipaddress.IPv4Address(ack.yiaddr))
            self.report.probes += 1
            if got in active:
                holder = snap.leases[got].hw_address.hex(":")
                self.report.problems.append(
                    f"round {rnd}: new client {macstr(chaddr)} was ACKed {ipstr(got)}, which "
                    f"the table binds to {holder}: the pool bitmap was not rebuilt")
            self.ledger.add(chaddr, got, t, rnd, "probe")

    def _load_and_kill(self, rnd: int, srv: ServeProcess, first_mac: int
                       ) -> tuple[Any, float, int, int]:
        from fastdhcp.loadgen import LoadStats, run_load

        kill_at = self.rng.uniform(*self.kill_range)
        snaps: list[tuple[float, int, int]] = []  # (monotonic, acks, in flight)
        out: dict[str, Any] = {}
        started = threading.Event()

        def progress(s: LoadStats) -> None:
            snaps.append((time.monotonic(), s.acks, s.in_flight))

        def body() -> None:
            try:
                started.set()
                out["stats"] = run_load(
                    (SERVER_IP, self.port), RELAY_IP, clients=1 << 24, rate=self.rate,
                    duration=kill_at + 0.4, timeout=self.timeout, first_mac=first_mac,
                    collect=True, progress=progress, progress_interval=0.02)
            except BaseException as exc:  # reported by the caller
                out["error"] = exc
            finally:
                started.set()

        th = threading.Thread(target=body, name=f"crash-load-{rnd}", daemon=True)
        th.start()
        started.wait(10.0)
        t0 = time.monotonic()
        time.sleep(max(0.0, t0 + kill_at - time.monotonic()))
        t_kill = time.monotonic()
        running = th.is_alive()
        srv.signal(signal.SIGKILL)
        srv.wait(timeout=30)
        th.join(timeout=60)
        if "error" in out:
            raise RuntimeError(f"seed {self.seed}: load of round {rnd} failed") from out["error"]
        if th.is_alive() or "stats" not in out:
            raise RuntimeError(f"seed {self.seed}: load of round {rnd} did not finish")
        if not running:
            raise RuntimeError(f"seed {self.seed}: load of round {rnd} ended before the kill")
        before = [s for s in snaps if s[0] <= t_kill]
        recent = [s for s in before if s[0] >= t_kill - 0.1]
        acks_recent = before[-1][1] - recent[0][1] if recent else 0
        # The driver's last few snapshots (not a time window: a starved driver thread takes
        # fewer of them, and that must not read as "nothing in flight").
        in_flight = max((s[2] for s in before[-5:]), default=0)
        return out["stats"], kill_at, acks_recent, in_flight

    def run(self) -> CrashReport:
        """All rounds, then the clean restart; returns the report (does not raise on findings,
        raises RuntimeError when the machinery itself fails: a server that does not start)."""
        first_mac = LOAD_MAC
        prev_acks = 0
        snap: Snapshot | None = None
        for rnd in range(self.rounds):
            srv, start_s = self._start(rnd)
            try:
                if snap is not None:
                    self._probe(rnd, snap)
                if rnd:
                    # Part renewals of the previous round's clients, part new clients.
                    first_mac += int(prev_acks * self.rng.uniform(0.3, 0.7))
                known = set(self.ledger.latest)
                not_before = time.time()
                stats, kill_at, acks_recent, in_flight = self._load_and_kill(rnd, srv, first_mac)
            finally:
                srv.close()
            renewals = sum(1 for m, _ in stats.leases if m in known)
            self.ledger.add_many(stats.leases, not_before, rnd)
            if rnd == 0:
                for i in range(self.fake_acks):
                    self.ledger.add(FAKE_MAC + i, FAKE_IP + i, time.time(), rnd, "fake")
            prev_acks = stats.acks
            snap = read_db(self.db)
            res = check(snap, self.ledger)
            acked_now = {client_key(m) for m, a in self.ledger.latest.items() if a.round == rnd}
            unacked = sum(1 for r in snap.leases.values()
                          if r.state == BOUND and r.issued >= math.floor(not_before)
                          and r.client_key not in acked_now)
            rr = RoundReport(rnd, kill_at, first_mac, stats.acks, acks_recent, in_flight,
                             stats.timeouts, renewals, unacked, res, len(snap.leases),
                             start_s)
            self.report.rounds.append(rr)
            self.log(f"round {rnd}: kill at {kill_at:.3f} s, {stats.acks} ACKs, "
                     f"{res.summary().splitlines()[0]}")
        # Last restart: probe, then a clean stop, and the cleanly closed database is checked.
        srv, _ = self._start(self.rounds)
        try:
            if snap is not None:
                self._probe(self.rounds, snap)
            srv.signal(signal.SIGTERM)
            rc = srv.wait(timeout=60)
            if rc != 0:
                self.report.problems.append(f"clean stop exited {rc}:\n{srv.log()[-2000:]}")
        finally:
            srv.close()
        snap = read_db(self.db)
        self.report.final = check(snap, self.ledger)
        self.report.ledger_clients = len(self.ledger.latest)
        self.report.acks_total = self.ledger.total
        return self.report
