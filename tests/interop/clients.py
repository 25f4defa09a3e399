"""Drivers for real DHCP software run inside the lab's namespaces.

Each client gets a private work dir with its own config, hook script, lease/state files and pid
file, so that nothing it does touches the host: the hook records what the client was told
(address, routers, DNS, domain) as one file per event in ``events.d`` and configures the address on
the client's own interface inside its namespace only; no hook ever writes ``/etc/resolv.conf``
or a route. dhcpcd, whose state paths are compiled in, runs under ``unshare -m`` with a tmpfs
on ``/run`` and its work dir bind-mounted on ``/var/lib/dhcpcd``.

Every command is bounded by a timeout; every daemon is started in its own session and stopped
by its own pid (the namespace teardown kills anything left).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .netns import CommandFailed, Namespace, run, stop_process

#: How long a client may take to reach a state (a DORA here takes well under a second; dhcpcd
#: and dhclient back off a few seconds if a first attempt is lost).
STATE_TIMEOUT = 25.0

# The hook: one event file per call with the variables the three clients use
# (dhclient and dhcpcd: $reason and new_*; udhcpc: $1 and ip/router/dns/domain/mask).
# Then it does the minimum configuration the client needs to renew by unicast (dhclient and
# udhcpc leave addressing to the script; dhcpcd configures the interface itself).
_HOOK = r"""#!/bin/sh
# fastdhcp interop hook: configure only this namespace's interface, then record the event
# (in that order, so that a test that sees the event can rely on the address being there).
# Each event is written to a temp file and renamed into place, so a reader never sees half of
# one; names sort by time (nanoseconds, fixed width) then pid.
{configure}
tmp={events}/.tmp.$$
{{
  echo "arg1=$1"
  echo "time=$(date +%s)"
  env | grep -E '^(reason|interface|new_[a-z0-9_]*|old_ip_address)=' || true
  env | grep -E '^(ip|router|dns|domain|subnet|mask|serverid|lease)=' || true
}} > "$tmp"
mv "$tmp" {events}/"$(date +%s%N).$$"
exit 0
"""

_CONF_DHCLIENT = r"""
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    if [ "$old_ip_address" != "$new_ip_address" ]; then ip -4 addr flush dev "$interface"; fi
    ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
  EXPIRE|FAIL|RELEASE|STOP)
    ip -4 addr flush dev "$interface" ;;
esac
"""

_CONF_UDHCPC = r"""
case "$1" in
  bound|renew)
    ip -4 addr replace "$ip/${mask:-24}" dev "$interface" ;;
  deconfig|leasefail|nak)
    ip -4 addr flush dev "$interface" ;;
esac
"""


@dataclass
class Event:
    """One hook invocation: ``reason`` normalised to upper case (udhcpc's ``$1`` too)."""

    reason: str
    env: dict[str, str]

    @property
    def ip(self) -> str:
        """The address the client was given (dhclient/dhcpcd ``new_ip_address``, udhcpc ``ip``)."""
        return self.env.get("new_ip_address") or self.env.get("ip", "")

    @property
    def routers(self) -> list[str]:
        """Option 3 as the client reports it."""
        return (self.env.get("new_routers") or self.env.get("router", "")).split()

    @property
    def dns(self) -> list[str]:
        """Option 6 as the client reports it."""
        return (self.env.get("new_domain_name_servers") or self.env.get("dns", "")).split()

    @property
    def domain(self) -> str:
        """Option 15 as the client reports it."""
        return (self.env.get("new_domain_name") or self.env.get("domain", "")).strip()


class ClientError(AssertionError):
    """A client did not do what the test expected; carries its log and events."""


class _Client:
    """Shared pieces: work dir, hook, event log, waiting for events."""

    name = "client"
    configure = ""

    def __init__(self, ns: Namespace, ifname: str, workdir: Path) -> None:
        self.ns = ns
        self.ifname = ifname
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.events_path = self.dir / "events.d"
        self.events_path.mkdir(exist_ok=True)
        self.hook = self.dir / "hook.sh"
        self.hook.write_text(_HOOK.format(events=shlex.quote(str(self.events_path)),
                                          configure=self.configure))
        self.hook.chmod(self.hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        self.log_path = self.dir / f"{self.name}.log"
        self.transcript: list[str] = []

    @property
    def mac(self) -> str:
        """The client interface's MAC address."""
        return self.ns.run(["cat", f"/sys/class/net/{self.ifname}/address"]).stdout.strip().lower()

    def events(self) -> list[Event]:
        """Every hook call so far, oldest first."""
        out: list[Event] = []
        for block in self._event_texts():
            env = {}
            for line in block.splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    env[key] = value.strip("'\"")
            reason = (env.get("reason") or env.get("arg1") or "").upper()
            out.append(Event(reason, env))
        return out

    def _event_texts(self) -> list[str]:
        """The hook's event files, oldest first."""
        names = sorted(p.name for p in self.events_path.iterdir() if not p.name.startswith("."))
        return [(self.events_path / n).read_text(errors="replace") for n in names]

    def wait_event(self, reasons: set[str], *, after: int = 0,
                   timeout: float = STATE_TIMEOUT) -> Event:
        """The first event numbered ``after`` or later whose reason is in ``reasons``."""
        deadline = time.monotonic() + timeout
        while True:
            evs = self.events()
            for ev in evs[after:]:
                if ev.reason in reasons:
                    return ev
            if time.monotonic() > deadline:
                raise ClientError(f"{self.name}: no {sorted(reasons)} event within {timeout}s "
                                  f"(events so far: {[e.reason for e in evs]})\n{self.report()}")
            self._check_alive()
            time.sleep(0.1)

    def _check_alive(self) -> None:
        """Hook for daemons: raise if the client process died."""

    def _run(self, argv: list[str], timeout: float = STATE_TIMEOUT,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        self.transcript.append("$ " + shlex.join(argv))
        try:
            cp = self.ns.run(argv, timeout=timeout, check=check)
        except CommandFailed as exc:
            self.transcript.append(str(exc))
            raise ClientError(f"{self.name}: {exc}\n{self.report()}") from exc
        self.transcript.append(cp.stdout + cp.stderr)
        return cp

    def report(self) -> str:
        """What this client did and saw, for assertion messages."""
        try:
            log = self.log_path.read_text(errors="replace")[-6000:]
        except FileNotFoundError:
            log = ""
        evs = "".join("--- event\n" + t for t in self._event_texts())[-6000:]
        return (f"--- {self.name} transcript ---\n" + "\n".join(self.transcript)[-6000:]
                + f"\n--- {self.name} log ---\n{log}\n--- {self.name} hook events ---\n{evs}")

    # -- the lifecycle the tests drive (shared; a client overrides what it does differently)
    def obtain(self) -> Event:
        """DORA by broadcast; the BOUND event."""
        n = len(self.events())
        self.start()
        return self.wait_event({"BOUND"}, after=n)

    def renew(self) -> Event:
        """Wait for the client to renew on its own at T1 (a unicast REQUEST to the server):
        the RENEW event."""
        return self.wait_event({"RENEW"}, after=len(self.events()))

    def addresses(self) -> list[str]:
        """IPv4 addresses configured on the client interface (inside its namespace)."""
        out = self.ns.run(["ip", "-4", "-o", "addr", "show", "dev", self.ifname]).stdout
        return re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", out)


class Dhclient(_Client):
    """ISC dhclient 4.4, run in the foreground (``-d -1``: its whole log is ours, where a
    forked dhclient logs to syslog only); ``-x`` stops it keeping the lease (the next run does
    INIT-REBOOT from the ``-lf`` file); ``-r`` releases. It renews on its own at T1."""

    name = "dhclient"
    configure = _CONF_DHCLIENT

    def __init__(self, ns: Namespace, ifname: str, workdir: Path) -> None:
        super().__init__(ns, ifname, workdir)
        self.conf = self.dir / "dhclient.conf"
        self.conf.write_text(
            "timeout 30;\nretry 5;\ninitial-interval 1;\n"
            "request subnet-mask, broadcast-address, routers, domain-name, "
            "domain-name-servers, dhcp-lease-time, dhcp-renewal-time, dhcp-rebinding-time;\n")
        self.leases = self.dir / "dhclient.leases"
        self.pidfile = self.dir / "dhclient.pid"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def _argv(self, *flags: str) -> list[str]:
        return ["dhclient", *flags, "-4", "-v", "-cf", str(self.conf), "-sf", str(self.hook),
                "-lf", str(self.leases), "-pf", str(self.pidfile), self.ifname]

    def start(self) -> None:
        """Start dhclient in the foreground (``-d``, so its whole log lands in our file): it
        obtains a lease, or with a lease file reboots into it, then stays to renew."""
        argv = self._argv("-d", "-1")
        self.transcript.append("$ " + shlex.join(self.ns.argv(argv)))
        if self._log is None:
            self._log = open(self.log_path, "ab")
        self.proc = self.ns.popen(argv, stdout=self._log, stderr=subprocess.STDOUT)

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() not in (None, 0):
            raise ClientError(f"dhclient exited with {self.proc.returncode}\n{self.report()}")

    def _reap(self) -> None:
        """Wait for the foreground dhclient that ``-x``/``-r`` just stopped."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                stop_process(self.proc)
            self.proc = None

    def stop_keep(self) -> None:
        """Stop the running dhclient without releasing (``-x``, through the pid file)."""
        self._run(self._argv("-x"))
        self._reap()

    def release(self) -> None:
        """Release the lease and stop the running dhclient (``-r``)."""
        self._run(self._argv("-r"))
        self._reap()

    def close(self) -> None:
        """Stop a dhclient still running, without releasing."""
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- the lifecycle the tests drive
    def reboot(self) -> Event:
        """Stop keeping the lease, start again: INIT-REBOOT from the lease file (REBOOT)."""
        self.stop_keep()
        n = len(self.events())
        self.start()
        return self.wait_event({"REBOOT", "BOUND"}, after=n)

    def release_lease(self) -> None:
        """``-r``: DHCPRELEASE, then the RELEASE event."""
        n = len(self.events())
        self.release()
        self.wait_event({"RELEASE"}, after=n)


class Dhcpcd(_Client):
    """dhcpcd 9 in the foreground (``-B``), IPv4 only, inside a private mount namespace: a
    tmpfs on ``/run`` (its control socket and pid file) and the work dir bind-mounted on
    ``/var/lib/dhcpcd`` (its lease file), so a second run finds the saved lease and does
    INIT-REBOOT. ``-k`` (release) goes to the running daemon's control socket through
    ``nsenter`` into the same mount namespace."""

    name = "dhcpcd"

    def __init__(self, ns: Namespace, ifname: str, workdir: Path) -> None:
        super().__init__(ns, ifname, workdir)
        self.state = self.dir / "state"
        self.state.mkdir(exist_ok=True)
        self.conf = self.dir / "dhcpcd.conf"
        # noarp: no RFC 5227 probe (seconds of delay, nothing to learn here); no IPv4LL, no
        # IPv6; a MAC-based client id so the lease record is easy to match.
        self.conf.write_text(
            "noarp\nnoipv4ll\nipv4only\nclientid\nnohook resolv.conf\n"
            "option domain_name_servers, domain_name, routers, subnet_mask\n")
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> None:
        """Start the daemon (first run: DORA; later runs: INIT-REBOOT from the lease file)."""
        inner = " && ".join([
            "mount -t tmpfs tmpfs /run",
            "mkdir -p /run/dhcpcd",
            f"mount --bind {shlex.quote(str(self.state))} /var/lib/dhcpcd",
            "exec " + shlex.join(["dhcpcd", "-4", "-B", "-d", "-t", "30", "-f", str(self.conf),
                                  "-c", str(self.hook), self.ifname]),
        ])
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", inner]
        self.transcript.append("$ " + shlex.join(self.ns.argv(argv)))
        self._log = open(self.log_path, "ab")
        self.proc = self.ns.popen(argv, stdout=self._log, stderr=subprocess.STDOUT)

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ClientError(f"dhcpcd exited with {self.proc.returncode}\n{self.report()}")

    def control(self, *flags: str) -> None:
        """Run ``dhcpcd FLAGS IF`` against the running daemon's control socket."""
        assert self.proc is not None
        argv = ["nsenter", "-t", str(self.proc.pid), "-m", "-n", "dhcpcd", "-4", *flags,
                "-f", str(self.conf), self.ifname]
        self.transcript.append("$ " + shlex.join(argv))
        cp = run(argv, timeout=STATE_TIMEOUT, check=False)
        self.transcript.append(cp.stdout + cp.stderr)
        if cp.returncode != 0:
            raise ClientError(f"dhcpcd {flags} exited {cp.returncode}\n{self.report()}")

    def release(self, timeout: float = STATE_TIMEOUT) -> None:
        """Release the lease (``-k`` via the control socket): dhcpcd sends a RELEASE, runs its
        hook with STOP and exits; returns once it has exited and logged the RELEASE."""
        self.control("-k")
        assert self.proc is not None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise ClientError(
                f"dhcpcd still running {timeout}s after -k\n{self.report()}") from exc
        self.close()
        if "sending RELEASE" not in self.log_path.read_text(errors="replace"):
            raise ClientError(f"dhcpcd exited after -k without a RELEASE\n{self.report()}")

    def stop_keep(self) -> None:
        """Stop the daemon without releasing (dhcpcd releases on exit only if told to)."""
        self.close()

    def reboot(self) -> Event:
        """Stop the daemon (lease kept in the state dir), start again: INIT-REBOOT (REBOOT)."""
        self.stop_keep()
        if not self.lease_file_exists():
            raise ClientError(f"dhcpcd saved no lease file\n{self.report()}")
        n = len(self.events())
        self.start()
        return self.wait_event({"REBOOT", "BOUND"}, after=n)

    def release_lease(self) -> None:
        """``-k``: see :meth:`release`."""
        self.release()

    def lease_file_exists(self) -> bool:
        """True once dhcpcd has saved a lease (``/var/lib/dhcpcd/IF.lease``)."""
        return any(self.state.glob("*.lease"))

    def close(self) -> None:
        """SIGTERM the daemon (no release), wait for it."""
        if self.proc is not None:
            stop_process(self.proc, grace=5.0)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class Udhcpc(_Client):
    """busybox udhcpc in the foreground: SIGUSR1 renews (unicast REQUEST), SIGUSR2 releases.
    It keeps no lease file; ``-r IP`` asks for the previous address again (a DISCOVER carrying
    option 50: busybox has no INIT-REBOOT state)."""

    name = "udhcpc"
    configure = _CONF_UDHCPC

    def __init__(self, ns: Namespace, ifname: str, workdir: Path) -> None:
        super().__init__(ns, ifname, workdir)
        self.pidfile = self.dir / "udhcpc.pid"
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, requested: str | None = None, *, quit_after_bound: bool = False) -> None:
        """Start udhcpc (stays in the foreground; or exits once bound with ``quit_after_bound``)."""
        argv = ["busybox", "udhcpc", "-f", "-n", "-t", "5", "-T", "2", "-i", self.ifname,
                "-s", str(self.hook), "-p", str(self.pidfile),
                "-O", "router", "-O", "dns", "-O", "domain"]
        if requested:
            argv += ["-r", requested]
        if quit_after_bound:
            argv.append("-q")
        self.transcript.append("$ " + shlex.join(self.ns.argv(argv)))
        if self._log is None:
            self._log = open(self.log_path, "ab")
        self.proc = self.ns.popen(argv, stdout=self._log, stderr=subprocess.STDOUT)

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() not in (None, 0):
            raise ClientError(f"udhcpc exited with {self.proc.returncode}\n{self.report()}")

    def signal(self, sig: int) -> None:
        """Signal the udhcpc process named in its ``-p`` pid file."""
        pid = int(self.pidfile.read_text().split()[0])
        self.transcript.append(f"kill -{signal.Signals(sig).name} {pid}")
        os.kill(pid, sig)

    def renew(self) -> Event:
        """SIGUSR1: a unicast REQUEST to the server; the renew event."""
        n = len(self.events())
        self.signal(signal.SIGUSR1)
        return self.wait_event({"RENEW"}, after=n)

    def reboot(self) -> Event:
        """Restart asking for the previous address (``-r``): the bound event."""
        ip = [e.ip for e in self.events() if e.ip][-1]
        self.close()
        n = len(self.events())
        self.start(requested=ip)
        return self.wait_event({"BOUND"}, after=n)

    def release_lease(self) -> None:
        """SIGUSR2: a DHCPRELEASE, then the deconfig event."""
        n = len(self.events())
        self.signal(signal.SIGUSR2)
        self.wait_event({"DECONFIG"}, after=n)
        if "sending release" not in self.log_path.read_text(errors="replace"):
            raise ClientError(f"udhcpc sent no release\n{self.report()}")

    def close(self) -> None:
        """SIGTERM (udhcpc does not release on exit without -R), wait."""
        if self.proc is not None:
            stop_process(self.proc, grace=5.0)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class Dhcrelay:
    """ISC dhcrelay in the foreground: ``-a`` adds option 82 (circuit-id = the downstream
    interface name) and strips it from replies before they reach the client."""

    def __init__(self, ns: Namespace, down_if: str, up_if: str, server: str,
                 workdir: Path) -> None:
        self.ns = ns
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "dhcrelay.log"
        self.argv = ["dhcrelay", "-4", "-d", "-a", "-pf", str(self.dir / "dhcrelay.pid"),
                     "-id", down_if, "-iu", up_if, server]
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 10.0) -> None:
        """Start and wait until it says it is listening on both interfaces."""
        self._log = open(self.log_path, "ab")
        self.proc = self.ns.popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if self.proc.poll() is not None:
                raise ClientError(f"dhcrelay exited {self.proc.returncode}\n{text}")
            if text.count("Sending on") >= 2:
                return
            time.sleep(0.1)
        raise ClientError(f"dhcrelay not ready after {timeout}s\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class Capture:
    """tcpdump writing a pcap of DHCP traffic on one interface (read back with scapy)."""

    def __init__(self, ns: Namespace, ifname: str, path: Path) -> None:
        self.ns = ns
        self.path = path
        self.err_path = path.with_suffix(".stderr")
        # --immediate-mode: without it, packets wait in the kernel's ring-buffer block (up to a
        # second) and the last ones before SIGINT can be lost.
        # -Z root: tcpdump otherwise drops to its own user, which may not write into a private
        # temp dir. Keep the .pcap suffix: AppArmor's tcpdump profile (Ubuntu) allows writing
        # only such files.
        self.argv = ["tcpdump", "-i", ifname, "-n", "--immediate-mode", "-U", "-s", "0",
                     "-Z", "root", "-w", str(path),
                     "udp", "port", "67", "or", "udp", "port", "68"]
        self.proc: subprocess.Popen | None = None
        self._err = None

    def start(self, timeout: float = 10.0) -> None:
        """Start tcpdump and wait until it reports it is listening."""
        self._err = open(self.err_path, "ab")
        self.proc = self.ns.popen(self.argv, stdout=subprocess.DEVNULL, stderr=self._err)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "listening on" in self.err_path.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise ClientError(f"tcpdump did not start\n{self.err_path.read_text(errors='replace')}")

    def stop(self) -> list:
        """Stop tcpdump (SIGINT flushes) and return the packets (scapy)."""
        from scapy.all import rdpcap  # registers the Ethernet/IP/DHCP layers

        if self.proc is not None:
            time.sleep(0.3)  # frames still in flight on the veth (a RELEASE has no answer)
            stop_process(self.proc, sig=signal.SIGINT)
            self.proc = None
        if self._err is not None:
            self._err.close()
            self._err = None
        return list(rdpcap(str(self.path)))


@dataclass
class PerfdhcpResult:
    """perfdhcp's report: per exchange ("DISCOVER-OFFER", "REQUEST-ACK") its counters
    ("sent packets", "received packets", "drops", "orphans", "rejected leases",
    "non unique addresses", ...)."""

    returncode: int
    output: str
    stats: dict[str, dict[str, int]]

    def count(self, exchange: str, key: str) -> int:
        """One counter; KeyError if perfdhcp did not report it (a format change must fail)."""
        return self.stats[exchange][key]


def run_perfdhcp(ns: Namespace, local: str, server: str, *, rate: int = 100, clients: int = 500,
                 period: int = 5, timeout: float = 60.0) -> PerfdhcpResult:
    """``perfdhcp -4 -g single`` as a relay at ``local`` (giaddr) for ``period`` seconds at
    ``rate`` exchanges/s over ``clients`` distinct clients; waits 1 s for the last replies."""
    argv = ["perfdhcp", "-4", "-g", "single", "-l", local, "-r", str(rate), "-R", str(clients),
            "-p", str(period), "-W", "1000000", "-d", "1", "-s", "1", server]
    cp = ns.run(argv, timeout=timeout, check=False)
    return parse_perfdhcp(cp.returncode, cp.stdout + cp.stderr)


def parse_perfdhcp(returncode: int, text: str) -> PerfdhcpResult:
    """Collect the integer counters under each ``***Statistics for: X***`` heading."""
    stats: dict[str, dict[str, int]] = {}
    section: dict[str, int] | None = None
    for line in text.splitlines():
        m = re.match(r"\*+\s*Statistics for:\s*([A-Z0-9-]+)", line)
        if m:
            section = stats.setdefault(m.group(1), {})
            continue
        if line.startswith("***"):
            section = None
            continue
        m = re.match(r"\s*([a-z][a-z ]*[a-z]):\s*(\d+)\s*$", line)
        if m and section is not None:
            section[m.group(1)] = int(m.group(2))
    return PerfdhcpResult(returncode, text, stats)
