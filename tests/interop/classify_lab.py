"""Kea 2.2 and fastdhcp side by side, for the classification tests (issue 16).

::

    ksrv [k0] 198.18.60.1 --veth-- 198.18.60.2 [kr]  crel  [fr] 198.18.61.2 --veth-- [f0] fsrv
                                                      lo: relay addresses 198.19.80.1, 81.1

- ``ksrv``: kea-dhcp4 (UDP sockets on k0), ``fsrv``: ``fastdhcp serve`` (listen-address
  198.18.61.1); each routes the relay addresses (198.19.0.0/16) back to ``crel``.
- ``crel``: the relay: :mod:`tests.interop.relay_probe` sends the same crafted message from a
  relay address (giaddr) to each server and reads both answers.

Both servers start once and take each pattern's configuration by ``config-set`` over their
Unix control sockets (as the reference's own runs did with Kea): Kea the pattern's JSON, fastdhcp
what ``fastdhcp import-kea`` makes of the same JSON, under its own ``[server]`` section.
"""

from __future__ import annotations

import ipaddress
import json
import os
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastdhcp.kea.config_import import convert
from tests.control_helpers import unix_command

from .netns import Cleanup, Namespace, create_namespace, create_veth, stop_process
from .servers import REPO
from .wire import dhcp_options

RELAYS = ("198.19.80.1", "198.19.81.1")
KEA_IP, FAST_IP = "198.18.60.1", "198.18.61.1"
#: Kea answers in well under a second; 20 s covers a loaded CI machine.
START_TIMEOUT = 20.0
#: How long a server may take to answer one message before it counts as silent. Both answer
#: in a few ms here; the machine is shared by several test runs.
ANSWER_WAIT = 2.0
#: Options not compared: 54 (each server's own address), 58/59 (Kea 2.2 sends T1/T2 only when
#: configured, fastdhcp always: docs/configuration.md; the patterns configure none).
NOT_COMPARED = (54, 58, 59)
#: BOOTREQUEST header up to chaddr (RFC 2131 2), for the crafted messages.
_HDR = struct.Struct("!BBBBIHHIIII16s64s128s")
COOKIE = b"\x63\x82\x53\x63"


def opt(code: int, value: bytes) -> bytes:
    """One option TLV."""
    return bytes((code, len(value))) + value


def request_bytes(kind: int, *, mac: bytes, xid: int, giaddr: str, options: bytes,
                  ciaddr: str = "0.0.0.0") -> bytes:
    """A relayed BOOTREQUEST of message type ``kind`` (hops 1), padded to 300 bytes."""
    hdr = _HDR.pack(1, 1, len(mac), 1, xid, 0, 0, int(ipaddress.IPv4Address(ciaddr)), 0, 0,
                    int(ipaddress.IPv4Address(giaddr)), mac.ljust(16, b"\0"), b"", b"")
    return (hdr + COOKIE + opt(53, bytes((kind,))) + options + b"\xff").ljust(300, b"\0")


@dataclass(frozen=True)
class Reply:
    """What a client sees in one answer, in the terms the comparison uses."""

    kind: int  #: option 53
    yiaddr: str
    siaddr: str
    sname: str
    file: str
    options: dict[int, str]  #: code -> hex, overloaded sname/file areas included (RFC 2132 9.3)
    server_id: str

    @classmethod
    def parse(cls, data: bytes) -> Reply:
        opts = dhcp_options(data)
        overload = opts.pop(52, b"\0")[0]
        sname, file = data[44:108], data[108:236]
        for flag, area in ((1, file), (2, sname)):
            if overload & flag:
                opts.update(dhcp_options(b"\0" * 236 + COOKIE + area + b"\xff"))
        text = {a: area.split(b"\0")[0].decode("latin-1") for a, area in
                (("sname", sname), ("file", file))}
        return cls(
            kind=opts.get(53, b"\0")[0],
            yiaddr=str(ipaddress.IPv4Address(data[16:20])),
            siaddr=str(ipaddress.IPv4Address(data[20:24])),
            sname="" if overload & 2 else text["sname"],
            file="" if overload & 1 else text["file"],
            options={c: v.hex() for c, v in sorted(opts.items())},
            server_id=str(ipaddress.IPv4Address(opts.get(54, b"\0" * 4))),
        )

    def view(self, pool_of: Any) -> dict[str, Any]:
        """The compared facts: the pool (not the address: the allocators may pick other
        addresses of one pool), fixed fields, options."""
        return {"kind": self.kind, "pool": pool_of(self.yiaddr), "siaddr": self.siaddr,
                "sname": self.sname, "file": self.file,
                "options": {c: v for c, v in self.options.items() if c not in NOT_COMPARED}}


@dataclass
class SideBySide:
    """The three namespaces, the two servers and the probe (see the module docstring)."""

    workdir: Path
    tag: str = field(default_factory=lambda: str(os.getpid()))
    cleanup: Cleanup = field(default_factory=Cleanup)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    probe: subprocess.Popen[str] | None = None

    @property
    def kea_sock(self) -> Path:
        return self.workdir / "kea4.sock"

    @property
    def fast_sock(self) -> Path:
        return self.workdir / "fastdhcp4.sock"

    def start(self) -> None:
        try:
            self._topology()
            self._start_kea()
            self._start_fastdhcp()
            self._start_probe()
        except BaseException:
            self.close()
            raise

    def _topology(self) -> None:
        t = self.tag
        self.kns = create_namespace(f"fd{t}-ksrv", self.cleanup)
        self.fns = create_namespace(f"fd{t}-fsrv", self.cleanup)
        self.rns = create_namespace(f"fd{t}-crel", self.cleanup)
        self.kif, _ = create_veth(self.kns, f"f{t}k0", f"{KEA_IP}/24", self.rns, f"f{t}kr",
                                  "198.18.60.2/24", self.cleanup)
        self.fif, _ = create_veth(self.fns, f"f{t}f0", f"{FAST_IP}/24", self.rns, f"f{t}fr",
                                  "198.18.61.2/24", self.cleanup)
        for ip in RELAYS:
            self.rns.run(["ip", "addr", "add", f"{ip}/32", "dev", "lo"])
        self.kns.run(["ip", "route", "add", "198.19.0.0/16", "via", "198.18.60.2"])
        self.fns.run(["ip", "route", "add", "198.19.0.0/16", "via", "198.18.61.2"])

    def _wait_control(self, name: str, sock: Path) -> None:
        wait_control(self.procs[name], sock, self.workdir / f"{name}.log")

    def log(self, name: str, tail: int = 60) -> str:
        """The last lines a server wrote."""
        return log_tail(self.workdir / f"{name}.log", tail)

    # -- configurations

    def kea_config(self, d4: dict[str, Any]) -> dict[str, Any]:
        """A pattern's ``Dhcp4`` body with this lab's plumbing (interface, socket, memfile)."""
        return {"Dhcp4": {
            "interfaces-config": {"interfaces": [self.kif.ifname], "dhcp-socket-type": "udp"},
            "control-socket": {"socket-type": "unix", "socket-name": str(self.kea_sock)},
            "lease-database": {"type": "memfile", "persist": False},
            "multi-threading": {"enable-multi-threading": False},
            "loggers": [{"name": "kea-dhcp4", "severity": "INFO",
                         "output_options": [{"output": "stderr"}]}],
            **d4}}

    def fastdhcp_document(self, d4: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """What ``fastdhcp import-kea`` makes of a pattern's ``Dhcp4`` body, with this lab's
        server section; and the import's unsupported lines (carried on regardless, as
        ``--allow-unsupported`` does, so that the comparison shows what they change)."""
        result = convert({"Dhcp4": d4}, db_path=str(self.workdir / "fastdhcp.lmdb"))
        doc = dict(result.document)
        doc["server"] = {"listen-addresses": [FAST_IP], "port": 67, "client-port": 68}
        doc["lease-database"] = {"path": str(self.workdir / "fastdhcp.lmdb"), "sync": False}
        doc["control-sockets"] = [{"socket-type": "unix", "socket-name": str(self.fast_sock)}]
        return doc, [f.line() for f in result.unsupported]

    def _start_kea(self) -> None:
        self.procs["kea"] = start_kea(self.kns, self.workdir, self.kea_config(BASE),
                                      self.cleanup)
        self._wait_control("kea", self.kea_sock)

    def _start_fastdhcp(self) -> None:
        doc, _ = self.fastdhcp_document(BASE)
        self.procs["fastdhcp"] = start_fastdhcp(self.fns, self.workdir, doc, self.cleanup)
        self._wait_control("fastdhcp", self.fast_sock)

    def _start_probe(self) -> None:
        probe = self.rns.argv([sys.executable, str(Path(__file__).with_name("relay_probe.py"))])
        self.probe = subprocess.Popen(probe, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, start_new_session=True)
        proc = self.probe
        self.cleanup.push("stop probe", lambda: stop_process(proc))

    def configure_kea(self, d4: dict[str, Any]) -> None:
        """Kea on one ``Dhcp4`` body (this lab's plumbing added); AssertionError if refused."""
        ans = unix_command(self.kea_sock, "config-set", self.kea_config(d4), timeout=30)
        assert ans.get("result") == 0, f"kea config-set: {ans.get('text')}"

    def configure_fastdhcp(self, d4: dict[str, Any]) -> tuple[str | None, list[str]]:
        """fastdhcp on what import-kea makes of ``d4``: (config-set's refusal or None, the
        import's unsupported lines)."""
        doc, unsupported = self.fastdhcp_document(d4)
        ans = unix_command(self.fast_sock, "config-set", {"Dhcp4": doc}, timeout=30)
        refused = None if ans.get("result") == 0 else f"fastdhcp config-set: {ans.get('text')}"
        return refused, unsupported

    # -- traffic

    def exchange(self, sends: list[tuple[str, str, bytes]], wait: float = ANSWER_WAIT
                 ) -> list[bytes | None]:
        """Send each (relay address, server address, message); the first answer to each."""
        assert self.probe is not None and self.probe.stdin and self.probe.stdout
        req = {"sends": [{"src": s, "dst": d, "data": m.hex()} for s, d, m in sends],
               "wait": wait}
        self.probe.stdin.write(json.dumps(req) + "\n")
        self.probe.stdin.flush()
        line = self.probe.stdout.readline()
        if not line:
            raise RuntimeError("the relay probe exited")
        return [bytes.fromhex(r) if r else None for r in json.loads(line)["replies"]]

    def alive(self) -> dict[str, int | None]:
        """Each server's exit code, None while it runs."""
        return {name: p.poll() for name, p in self.procs.items()}

    def close(self) -> list[str]:
        """Stop everything, remove the namespaces; the teardown problems as text."""
        return self.cleanup.close()


def _popen(name: str, ns: Namespace, workdir: Path, argv: list[str], env: dict[str, str],
           cleanup: Cleanup) -> subprocess.Popen[bytes]:
    log = open(workdir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
    cleanup.push(f"close {name} log", log.close)
    proc = ns.popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    cleanup.push(f"stop {name}", lambda: stop_process(proc, grace=10.0))
    return proc


def start_kea(ns: Namespace, workdir: Path, config: dict[str, Any],
              cleanup: Cleanup) -> subprocess.Popen[bytes]:
    """kea-dhcp4 on ``config`` (its whole document) in ``ns``, pid and lock files and its log
    (``kea.log``) in ``workdir``; stopped by ``cleanup``."""
    path = workdir / "kea-dhcp4.json"
    path.write_text(json.dumps(config, indent=1))
    env = dict(os.environ, KEA_PIDFILE_DIR=str(workdir), KEA_LOCKFILE_DIR=str(workdir))
    return _popen("kea", ns, workdir, ["kea-dhcp4", "-c", str(path)], env, cleanup)


def start_fastdhcp(ns: Namespace, workdir: Path, doc: dict[str, Any],
                   cleanup: Cleanup) -> subprocess.Popen[bytes]:
    """``fastdhcp serve`` on ``doc`` (written as TOML) in ``ns``, its log ``fastdhcp.log`` in
    ``workdir``; stopped by ``cleanup``."""
    import tomli_w

    path = workdir / "fastdhcp.toml"
    path.write_text(tomli_w.dumps(doc))
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="1")
    return _popen("fastdhcp", ns, workdir, [sys.executable, "-m", "fastdhcp", "serve",
                                            "--config", str(path)], env, cleanup)


def wait_control(proc: subprocess.Popen[bytes], sock: Path, log: Path) -> None:
    """Until the server's control socket answers (it has read its config and opened its
    sockets); RuntimeError with its log when it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if unix_command(sock, "statistic-get", {"name": "pkt4-received"})["result"] \
                    in (0, 3):
                return
        except (OSError, ValueError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start (exit {proc.poll()}):\n{log_tail(log)}")
        time.sleep(0.1)


def log_tail(path: Path, tail: int = 60) -> str:
    """The last ``tail`` lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-tail:])
    except FileNotFoundError:
        return "(no log)"


#: What both servers run before the first pattern: one plain subnet.
BASE: dict[str, Any] = {
    "valid-lifetime": 3600,
    "subnet4": [{"id": 10, "subnet": "198.19.80.0/24",
                 "pools": [{"pool": "198.19.80.10 - 198.19.80.250"}]}],
}
