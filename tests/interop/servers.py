"""DHCP servers under test: fastdhcp (``python3 -m fastdhcp serve``) and Kea (the reference).

Both runners take the same :class:`LabConfig` (one description of subnets, pools and options),
render it in their own configuration language, run the server in the lab's server namespace,
capture its stderr to a file (shown in full when a test fails), and read its lease table back
as :class:`LeaseView` records so that tests compare what a client reports with what the server
believes, in one vocabulary.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .netns import CMD_TIMEOUT, Lab, Namespace, run, stop_process

#: Repository root (tests/interop/ -> ../..), where ``python3 -m fastdhcp`` must resolve.
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SubnetSpec:
    """One subnet as both servers are told about it."""

    id: int
    subnet: str
    pool: str  #: "first - last"
    routers: tuple[str, ...]
    interface: str | None = None  #: the broadcast link that selects this subnet
    relay: tuple[str, ...] = ()  #: extra giaddr values that select this subnet


@dataclass(frozen=True)
class LabConfig:
    """What the servers serve in the lab; see ``netns.Lab`` for the addresses."""

    interfaces: tuple[str, ...]  #: broadcast links (the server's end)
    listen_addresses: tuple[str, ...]  #: unicast-only addresses (relayed traffic)
    all_interfaces: tuple[str, ...]  #: every server interface (Kea listens per interface)
    subnets: tuple[SubnetSpec, ...]
    dns: tuple[str, ...] = ("198.18.0.53", "198.18.0.54")
    domain: str = "interop.example"
    valid_lifetime: int = 600
    # A short T1 makes every client renew on its own within seconds (dhclient and dhcpcd have no
    # "renew now" command); T2 stays far away so that a renewal is a unicast RENEW, not a REBIND.
    renew_timer: int = 4
    rebind_timer: int = 500


@dataclass
class LeaseView:
    """One lease as a test sees it, whatever server holds it."""

    ip: str
    hw_address: str  #: "aa:bb:cc:dd:ee:ff", lower case
    client_id: str  #: hex with colons, or ""
    state: str  #: "bound" | "released" | "expired" | "declined"
    expires: int
    subnet_id: int
    relay_info: bytes = b""  #: option 82 as the server stored it, if it does
    raw: dict = field(default_factory=dict, repr=False)


class ServerFailed(RuntimeError):
    """The server exited early or did not come up; the message carries its stderr."""


class _Runner:
    """What both servers share: a temp dir, a stderr log, start/stop and readiness."""

    name = "server"

    def __init__(self, ns: Namespace, cfg: LabConfig, workdir: Path) -> None:
        self.ns = ns
        self.cfg = cfg
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = self.dir / f"{self.name}.stderr"
        self.proc: subprocess.Popen | None = None
        self._stderr = None

    # -- subclass hooks
    def write_config(self) -> Path:
        raise NotImplementedError

    def command(self, config: Path) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def leases(self) -> list[LeaseView]:
        raise NotImplementedError

    # -- shared
    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it listens on port 67 at every address it must."""
        config = self.write_config()
        self._stderr = open(self.stderr_path, "ab")
        self.proc = self.ns.popen(self.command(config), stdout=self._stderr,
                                  stderr=subprocess.STDOUT, env=self.env())
        deadline = time.monotonic() + timeout
        want = [f"{a}:67" for a in self.cfg.listen_addresses]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerFailed(f"{self.name} exited with {self.proc.returncode} "
                                   f"at start-up\n{self.log()}")
            ss = self.ns.run(["ss", "-H", "-uln"], check=False).stdout
            n67 = sum(1 for line in ss.splitlines() if ":67 " in line)
            if all(w in ss for w in want) and n67 > len(want):
                time.sleep(0.2)  # sockets exist; let the loop enter its wait
                return
            time.sleep(0.1)
        raise ServerFailed(f"{self.name} not listening after {timeout}s\n"
                           f"{self.ns.run(['ss', '-uln'], check=False).stdout}\n{self.log()}")

    def stop(self) -> int | None:
        """SIGTERM the server (clean exit expected), SIGKILL after a grace period."""
        rc = None
        if self.proc is not None:
            rc = stop_process(self.proc, grace=10.0)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return rc

    def kill(self) -> int | None:
        """SIGKILL the server (a crash: no flush, no clean shutdown) and reap it."""
        rc = None
        if self.proc is not None:
            rc = stop_process(self.proc, sig=signal.SIGKILL)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return rc

    def alive(self) -> bool:
        """True while the server process runs."""
        return self.proc is not None and self.proc.poll() is None

    def log(self, tail: int = 200) -> str:
        """The last ``tail`` lines of the server's stderr."""
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no stderr captured)"
        return f"--- {self.name} stderr (last {tail} lines) ---\n" + "\n".join(lines[-tail:])

    def lease_for(self, ip: str) -> LeaseView | None:
        """The server's current record for ``ip``, or None."""
        for lease in self.leases():
            if lease.ip == ip:
                return lease
        return None


class FastdhcpServer(_Runner):
    """``python3 -m fastdhcp serve --config FILE`` with an LMDB lease table in the work dir."""

    name = "fastdhcp"

    @property
    def db(self) -> Path:
        return self.dir / "leases.lmdb"

    def write_config(self) -> Path:
        c = self.cfg
        q = json.dumps  # a JSON string or list of strings is valid TOML
        lines = [
            "[server]",
            f"interfaces = {q(list(c.interfaces))}",
            f"listen-addresses = {q(list(c.listen_addresses))}",
            "port = 67",
            "client-port = 68",
            "",
            "[lease-database]",
            f"path = {q(str(self.db))}",
            "sync = true",
            "",
            "[global]",
            f"valid-lifetime = {c.valid_lifetime}",
            f"renew-timer = {c.renew_timer}",
            f"rebind-timer = {c.rebind_timer}",
            f"option-data = {{ domain-name-servers = {q(list(c.dns))}, "
            f"domain-name = {q(c.domain)} }}",
        ]
        for s in c.subnets:
            lines += ["", "[[subnet4]]", f"id = {s.id}", f"subnet = {q(s.subnet)}",
                      f"pools = {q([s.pool])}",
                      f"option-data = {{ routers = {q(list(s.routers))} }}"]
            if s.interface:
                lines.append(f"interface = {q(s.interface)}")
            if s.relay:
                lines.append(f"relay = {q(list(s.relay))}")
        path = self.dir / "fastdhcp.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def command(self, config: Path) -> list[str]:
        return [sys.executable, "-m", "fastdhcp", "serve", "--config", str(config)]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def leases(self) -> list[LeaseView]:
        """``fastdhcp leases --db PATH --json list``, read while the server runs."""
        cp = run([sys.executable, "-m", "fastdhcp", "leases", "--db", str(self.db), "--json",
                  "list"], timeout=CMD_TIMEOUT)
        return [self._view(rec) for rec in json.loads(cp.stdout)]

    @staticmethod
    def _view(rec: dict) -> LeaseView:
        state = rec.get("state")
        names = {0: "bound", 1: "declined", 2: "expired", 3: "released"}
        if isinstance(state, int):
            state = names.get(state, str(state))
        else:
            state = str(state).lower()
            state = {"default": "bound", "expired-reclaimed": "expired"}.get(state, state)
        relay = rec.get("relay-info") or rec.get("relay_info") or ""
        relay_b = bytes.fromhex(relay.replace(":", "")) if isinstance(relay, str) else b""
        cid = rec.get("client-id") or rec.get("client_id") or rec.get("client_key") or ""
        return LeaseView(
            ip=rec.get("address") or rec["ip"],
            hw_address=str(rec.get("hw-address") or rec.get("hw_address") or "").lower(),
            client_id=str(cid).lower(),
            state=state,
            expires=int(rec.get("expires") or 0),
            subnet_id=int(rec.get("subnet-id") or rec.get("subnet_id") or 0),
            relay_info=relay_b,
            raw=rec,
        )


class KeaServer(_Runner):
    """``kea-dhcp4 -c FILE`` (Kea 2.2) with a memfile lease file in the work dir."""

    name = "kea"

    @property
    def lease_file(self) -> Path:
        return self.dir / "kea-leases4.csv"

    def write_config(self) -> Path:
        c = self.cfg
        subnets = []
        for s in c.subnets:
            sub: dict = {"id": s.id, "subnet": s.subnet, "pools": [{"pool": s.pool}],
                         "option-data": [{"name": "routers", "data": ", ".join(s.routers)}]}
            if s.interface:
                sub["interface"] = s.interface
            if s.relay:
                sub["relay"] = {"ip-addresses": list(s.relay)}
            subnets.append(sub)
        conf = {"Dhcp4": {
            "interfaces-config": {"interfaces": list(c.all_interfaces)},
            "lease-database": {"type": "memfile", "persist": True,
                               "name": str(self.lease_file), "lfc-interval": 0},
            "valid-lifetime": c.valid_lifetime,
            "renew-timer": c.renew_timer,
            "rebind-timer": c.rebind_timer,
            # Kea stores option 82 in the lease's user context with this on.
            "store-extended-info": True,
            "option-data": [
                {"name": "domain-name-servers", "data": ", ".join(c.dns)},
                {"name": "domain-name", "data": c.domain},
            ],
            "subnet4": subnets,
            "loggers": [{"name": "kea-dhcp4", "severity": "INFO",
                         "output_options": [{"output": "stderr"}]}],
        }}
        path = self.dir / "kea-dhcp4.json"
        path.write_text(json.dumps(conf, indent=2))
        return path

    def command(self, config: Path) -> list[str]:
        return ["kea-dhcp4", "-c", str(config)]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Keep Kea's pid and lock files out of /run.
        env["KEA_PIDFILE_DIR"] = str(self.dir)
        env["KEA_LOCKFILE_DIR"] = str(self.dir)
        return env

    def leases(self) -> list[LeaseView]:
        """The memfile CSV is a log: the last row for an address is its current state; a row
        with valid lifetime 0 and state 0 is how Kea records a deleted (e.g. released) lease."""
        latest: dict[str, dict] = {}
        try:
            with open(self.lease_file, newline="") as f:
                for row in csv.DictReader(f):
                    latest[row["address"]] = row
        except FileNotFoundError:
            return []
        out = []
        for ip, row in latest.items():
            state = int(row.get("state") or 0)
            valid = int(row.get("valid_lifetime") or 0)
            name = {0: "bound", 1: "declined", 2: "expired"}.get(state, str(state))
            if name == "bound" and valid == 0:
                name = "released"
            relay = b""
            ctx = row.get("user_context") or ""
            if ctx:
                try:
                    info = json.loads(ctx.replace("&#x2c", ","))
                    hexs = (info.get("ISC", {}).get("relay-agent-info") or "")
                    if isinstance(hexs, dict):
                        hexs = hexs.get("sub-options", "")
                    relay = bytes.fromhex(hexs.removeprefix("0x"))
                except (ValueError, AttributeError):
                    relay = b""
            cid = row.get("client_id") or ""
            out.append(LeaseView(ip=ip, hw_address=row["hwaddr"].lower(), client_id=cid.lower(),
                                 state=name, expires=int(row["expire"]),
                                 subnet_id=int(row["subnet_id"]), relay_info=relay, raw=row))
        return out


SERVERS = {"fastdhcp": FastdhcpServer, "kea": KeaServer}


def lab_config(lab: Lab) -> LabConfig:
    """The subnets the tests expect, laid on ``lab``'s interfaces.

    The decoy subnet 3 comes before subnet 2 and neither is tied to an interface: only the
    relay's giaddr (198.18.2.1, inside subnet 2) can select subnet 2, and a server that picked
    "the first subnet" or "the receiving interface's subnet" would give the wrong address.
    """
    return LabConfig(
        interfaces=(lab.srv_cli.ifname,),
        listen_addresses=(lab.srv_relay.ip, lab.srv_perf.ip),
        all_interfaces=(lab.srv_cli.ifname, lab.srv_relay.ifname, lab.srv_perf.ifname),
        subnets=(
            SubnetSpec(1, "198.18.0.0/24", "198.18.0.100 - 198.18.0.199", ("198.18.0.1",),
                       interface=lab.srv_cli.ifname),
            SubnetSpec(3, "198.18.3.0/24", "198.18.3.100 - 198.18.3.199", ("198.18.3.1",)),
            SubnetSpec(2, "198.18.2.0/24", "198.18.2.100 - 198.18.2.199", ("198.18.2.1",)),
            SubnetSpec(8, "198.18.12.0/22", "198.18.12.10 - 198.18.15.250", ("198.18.12.1",),
                       relay=(lab.perf_if.ip,)),
        ),
    )
