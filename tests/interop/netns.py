"""Network-namespace topologies for the interop tests.

Everything here runs real commands (``ip``, ``ethtool``, ``sysctl`` through ``ip netns exec``)
and registers its own undo step the moment a resource exists, so that a failure half-way
through building a topology still removes every namespace, veth and process it made.

Names carry the test process's pid, so two runs on one machine (two engineers, or CI and a
developer) never collide: namespaces are ``fd<pid>-<role>``, interfaces ``f<pid><tag>`` (Linux
limits interface names to 15 characters).

Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking range) only.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

#: Default bound on any helper command; the long-running ones pass their own.
CMD_TIMEOUT = 20.0


class CommandFailed(RuntimeError):
    """A helper command exited non-zero; the message carries its output."""


def run(argv: Sequence[str], *, timeout: float = CMD_TIMEOUT, check: bool = True,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion with a timeout; raise :class:`CommandFailed` on failure."""
    try:
        cp = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                            input=input)
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(f"timed out after {timeout}s: {shlex.join(argv)}\n"
                            f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}") from exc
    if check and cp.returncode != 0:
        raise CommandFailed(f"exit {cp.returncode}: {shlex.join(argv)}\n"
                            f"stdout: {cp.stdout}\nstderr: {cp.stderr}")
    return cp


def stop_process(proc: subprocess.Popen, *, sig: int = signal.SIGTERM,
                 grace: float = 5.0) -> int | None:
    """Stop ``proc`` (and its process group) with ``sig``, then SIGKILL after ``grace``.

    Only processes this harness started are passed here; each was started in its own session
    (``start_new_session=True``) so that signalling its group reaches the real daemon below an
    ``ip netns exec`` / ``unshare`` wrapper and nothing else.
    """
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            return None


class Cleanup:
    """A LIFO stack of undo steps; every step runs even if an earlier one raised."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, fn: Callable[[], object]) -> None:
        """Register ``fn`` to undo ``what``; runs before anything registered earlier."""
        self._steps.append((what, fn))

    def close(self) -> list[str]:
        """Run every step; return the failures as text (never raises)."""
        errors = []
        while self._steps:
            what, fn = self._steps.pop()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - teardown must go on
                errors.append(f"{what}: {exc}")
        return errors


@dataclass
class Namespace:
    """One network namespace, with ``/etc/netns/<name>/resolv.conf`` empty so that no client
    run inside it can touch the host's resolver (``ip netns exec`` bind-mounts it over
    ``/etc/resolv.conf``)."""

    name: str

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], **kw) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace (bounded, checked unless ``check=False``)."""
        return run(self.argv(argv), **kw)

    def sh(self, script: str, **kw) -> subprocess.CompletedProcess[str]:
        """Run a shell snippet inside the namespace."""
        return self.run(["sh", "-c", script], **kw)

    def popen(self, argv: Sequence[str], *, stdout=None, stderr=None,
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start a long-running command inside the namespace in its own session."""
        return subprocess.Popen(self.argv(argv), stdout=stdout, stderr=stderr,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)

    def sysctl(self, key: str, value: str | int) -> None:
        """Set a sysctl inside the namespace (net.* keys are per namespace)."""
        self.run(["sysctl", "-q", "-w", f"{key}={value}"])


def create_namespace(name: str, cleanup: Cleanup) -> Namespace:
    """Create namespace ``name`` with loopback up, IPv6 off, rp_filter off, an empty resolver."""
    etc = f"/etc/netns/{name}"
    os.makedirs(etc, exist_ok=True)
    cleanup.push(f"rm {etc}", lambda: shutil.rmtree(etc, ignore_errors=True))
    with open(f"{etc}/resolv.conf", "w"):
        pass
    run(["ip", "netns", "add", name])
    cleanup.push(f"netns {name}", lambda: _delete_namespace(name))
    ns = Namespace(name)
    ns.run(["ip", "link", "set", "lo", "up"])
    for key, value in (("net.ipv6.conf.all.disable_ipv6", 1),
                       ("net.ipv6.conf.default.disable_ipv6", 1),
                       ("net.ipv4.conf.all.rp_filter", 0),
                       ("net.ipv4.conf.default.rp_filter", 0)):
        ns.sysctl(key, value)
    return ns


def _delete_namespace(name: str) -> None:
    """Kill whatever still runs in ``name`` (only our own children live there), then delete it.

    Deleting a namespace removes the veth ends inside it, and with them their peers.
    """
    cp = run(["ip", "netns", "pids", name], check=False)
    for pid in cp.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    for _ in range(50):
        if not run(["ip", "netns", "pids", name], check=False).stdout.strip():
            break
        time.sleep(0.05)
    run(["ip", "netns", "delete", name], check=False)


@dataclass
class Link:
    """One end of a veth pair: its namespace, interface name and address (with prefix)."""

    ns: Namespace
    ifname: str
    cidr: str | None  #: "198.18.0.1/24", or None for an end that a DHCP client configures

    @property
    def ip(self) -> str:
        """The address without its prefix length."""
        assert self.cidr is not None
        return self.cidr.split("/")[0]


def create_veth(a: Namespace, a_if: str, a_cidr: str | None,
                b: Namespace, b_if: str, b_cidr: str | None,
                cleanup: Cleanup) -> tuple[Link, Link]:
    """Join ``a`` and ``b`` with a veth pair, both ends up, checksum offload off.

    Offload off matters: on veth the kernel leaves UDP checksums partial, and raw-socket DHCP
    software (dhclient, dhcrelay, Kea's raw sockets) then sees bad checksums and drops frames.
    """
    run(["ip", "link", "add", a_if, "netns", a.name, "type", "veth",
         "peer", "name", b_if, "netns", b.name])
    # Removing one end removes both; namespace deletion covers it too, this is belt and braces.
    cleanup.push(f"veth {a_if}", lambda: a.run(["ip", "link", "del", a_if], check=False))
    for ns, ifname, cidr in ((a, a_if, a_cidr), (b, b_if, b_cidr)):
        ns.run(["ethtool", "-K", ifname, "tx", "off", "rx", "off"])
        ns.sysctl(f"net.ipv4.conf.{ifname}.rp_filter", 0)
        if cidr:
            ns.run(["ip", "addr", "add", cidr, "dev", ifname])
        ns.run(["ip", "link", "set", ifname, "up"])
    return Link(a, a_if, a_cidr), Link(b, b_if, b_cidr)


@dataclass
class Lab:
    """The whole interop topology (built once per session).

    ::

        cli [c0] --198.18.0.0/24-- [s0] srv [s1] --198.18.1.0/24-- [r1] relay [r2] --+
                                        srv [s2] --198.18.8.0/24-- [p0] perf          |
                                                        rcli [rc0] --198.18.2.0/24----+

    - ``cli``: DHCP clients on the server's broadcast link (server 198.18.0.1).
    - ``relay``: dhcrelay between ``rcli`` (client side 198.18.2.1) and the server
      (server side 198.18.1.2); the server routes 198.18.2.0/24 back via 198.18.1.2.
    - ``perf``: perfdhcp as a relay at 198.18.8.2 (giaddr), talking to 198.18.8.1.
    """

    tag: str
    srv: Namespace
    cli: Namespace
    relay: Namespace
    rcli: Namespace
    perf: Namespace
    srv_cli: Link  #: s0, 198.18.0.1/24
    cli_if: Link  #: c0, unconfigured
    srv_relay: Link  #: s1, 198.18.1.1/24
    relay_up: Link  #: r1, 198.18.1.2/24
    relay_down: Link  #: r2, 198.18.2.1/24
    rcli_if: Link  #: rc0, unconfigured
    srv_perf: Link  #: s2, 198.18.8.1/24
    perf_if: Link  #: p0, 198.18.8.2/24
    cleanup: Cleanup = field(repr=False, default_factory=Cleanup)

    def close(self) -> list[str]:
        """Remove everything the lab made; returns teardown problems as text."""
        return self.cleanup.close()


def build_lab(tag: str | None = None) -> Lab:
    """Build the topology described on :class:`Lab`; on any error, undo what was made."""
    tag = tag or str(os.getpid())
    cleanup = Cleanup()
    try:
        names = {role: f"fd{tag}-{role}" for role in ("srv", "cli", "relay", "rcli", "perf")}
        ns = {role: create_namespace(name, cleanup) for role, name in names.items()}
        ifn = f"f{tag}"
        srv_cli, cli_if = create_veth(ns["srv"], ifn + "s0", "198.18.0.1/24",
                                      ns["cli"], ifn + "c0", None, cleanup)
        srv_relay, relay_up = create_veth(ns["srv"], ifn + "s1", "198.18.1.1/24",
                                          ns["relay"], ifn + "r1", "198.18.1.2/24", cleanup)
        relay_down, rcli_if = create_veth(ns["relay"], ifn + "r2", "198.18.2.1/24",
                                          ns["rcli"], ifn + "rc0", None, cleanup)
        srv_perf, perf_if = create_veth(ns["srv"], ifn + "s2", "198.18.8.1/24",
                                        ns["perf"], ifn + "p0", "198.18.8.2/24", cleanup)
        ns["relay"].sysctl("net.ipv4.ip_forward", 1)
        # The server answers a relay at giaddr (198.18.2.1): route the client side via the relay.
        ns["srv"].run(["ip", "route", "add", "198.18.2.0/24", "via", "198.18.1.2"])
        return Lab(tag=tag, srv=ns["srv"], cli=ns["cli"], relay=ns["relay"], rcli=ns["rcli"],
                   perf=ns["perf"], srv_cli=srv_cli, cli_if=cli_if, srv_relay=srv_relay,
                   relay_up=relay_up, relay_down=relay_down, rcli_if=rcli_if,
                   srv_perf=srv_perf, perf_if=perf_if, cleanup=cleanup)
    except BaseException:
        cleanup.close()
        raise


def leftovers(tag: str) -> list[str]:
    """Namespaces, /etc/netns entries and links of run ``tag`` still present (for tests of the
    teardown itself)."""
    found = [n for n in run(["ip", "netns", "list"]).stdout.split() if n.startswith(f"fd{tag}-")]
    if os.path.isdir("/etc/netns"):
        found += [f"/etc/netns/{n}" for n in os.listdir("/etc/netns") if n.startswith(f"fd{tag}-")]
    links = run(["ip", "-o", "link", "show"]).stdout
    found += [line.split(":")[1].strip() for line in links.splitlines()
              if line.split(":")[1].strip().split("@")[0].startswith(f"f{tag}")]
    return found


def sweep_stale() -> list[str]:
    """Remove labs left by interop runs that were killed before their teardown (``kill -9``,
    a lost CI runner): namespaces ``fd<pid>-<role>`` whose ``<pid>`` no longer runs and in
    which nothing runs any more, and their ``/etc/netns`` entries. Namespaces that still hold
    processes are left alone (they are not ours to end) and reported."""
    kept = []
    names = run(["ip", "netns", "list"]).stdout.split()
    etc = os.listdir("/etc/netns") if os.path.isdir("/etc/netns") else []
    for name in sorted(set(names) | set(etc)):
        m = re.fullmatch(
            r"fd(\d+)-(srv|cli|relay|rcli|perf|dns|ksrv|fsrv|crel|csrv|ccli|ha1|ha2|hab)", name)
        if not m or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        if name in names:
            if run(["ip", "netns", "pids", name], check=False).stdout.strip():
                kept.append(name)
                continue
            run(["ip", "netns", "delete", name], check=False)
        shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)
    return kept
