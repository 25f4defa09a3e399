"""A real authoritative DNS server for the DDNS tests: Knot DNS (Debian ``knot``) in a network
namespace of its own, joined to the test process's namespace by a veth pair.

::

    test process (root namespace)              namespace fd<pid>-dns
    f<pid>k0 198.19.<o>.1/24  ------ veth ------  f<pid>k1 198.19.<o>.2/24  knotd

``<o>`` is derived from the pid so that two runs on one machine do not share a subnet; the
addresses are from 198.18.0.0/15 (RFC 2544), as every interop address. knotd serves a forward
zone ``example.test.`` and the reverse zone of the /24, both updatable only with the TSIG key
``dhcp-key`` (HMAC-SHA256); its state (zones, journal, control socket) lives in a private
directory. Every resource made registers its undo step at once (netns.Cleanup).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from .netns import Cleanup, Namespace, create_namespace, run, stop_process

ZONE = "example.test."
KEY_NAME = "dhcp-key"
#: knotd answers an UPDATE with REFUSED unless both the key and this ACL match.
_CONF = """\
server:
    rundir: "{dir}/run"
    listen: {ip}@53
log:
  - target: stderr
    any: info
key:
  - id: {key}
    algorithm: hmac-sha256
    secret: {secret}
acl:
  - id: updates
    key: {key}
    action: update
database:
    storage: "{dir}/db"
template:
  - id: default
    storage: "{dir}/zones"
    file: "%s.zone"
    acl: updates
    zonefile-sync: -1
zone:
  - domain: {zone}
  - domain: {rzone}
{more_zones}"""
_ZONEFILE = """\
$TTL 300
@ SOA ns.{zone} hostmaster.{zone} 1 3600 900 604800 300
@ NS ns.{zone}
"""


@dataclass
class Knot:
    """A running knotd and what a test needs to talk to it."""

    ns: Namespace
    dir: Path
    ip: str  #: knotd's address
    prefix: str  #: "198.19.<o>." (host addresses for leases: prefix + "100" ...)
    secret: bytes  #: the TSIG secret (raw)
    extra_zones: tuple[str, ...] = ()  #: more zones served (a DHCP subnet's reverse zone)
    proc: subprocess.Popen | None = None
    cleanup: Cleanup = field(default_factory=Cleanup, repr=False)

    @property
    def reverse_zone(self) -> str:
        """The /24's in-addr.arpa zone."""
        a, b, c = self.prefix.strip(".").split(".")
        return f"{c}.{b}.{a}.in-addr.arpa."

    def secret_file(self, secret: bytes | None = None) -> Path:
        """A file holding ``secret`` (default: the right one) in base64, for [ddns]."""
        data = self.secret if secret is None else secret
        path = self.dir / f"secret-{base64.b16encode(data[:4]).decode()}"
        path.write_text(base64.b64encode(data).decode() + "\n")
        return path

    def ddns_toml(self, secret_file: Path, *, key_name: str = KEY_NAME,
                  reverse_zone: str | None = None, settings: str = "") -> str:
        """A ``[ddns]`` table (``settings`` its own lines) with the TSIG key in ``secret_file``
        and the forward zone and ``reverse_zone`` (default: this server's /24) served here."""
        rzone = self.reverse_zone if reverse_zone is None else reverse_zone
        return f"""[ddns]
{settings}
[[ddns.tsig-keys]]
name = "{key_name}"
secret-file = "{secret_file}"
[[ddns.forward-ddns.ddns-domains]]
name = "{ZONE}"
key-name = "{key_name}"
dns-servers = [{{ ip-address = "{self.ip}" }}]
[[ddns.reverse-ddns.ddns-domains]]
name = "{rzone}"
key-name = "{key_name}"
dns-servers = [{{ ip-address = "{self.ip}" }}]
"""

    def start(self) -> None:
        """Start knotd and wait until it answers for both zones."""
        log = open(self.dir / "knotd.log", "ab")
        self.proc = self.ns.popen(["knotd", "-c", str(self.dir / "knot.conf")],
                                  stdout=log, stderr=log)
        log.close()
        proc = self.proc
        self.cleanup.push("knotd", lambda: stop_process(proc))
        end = time.monotonic() + 10
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"knotd exited with {proc.returncode}:\n{self.log()}")
            if all(self.soa(z) for z in (ZONE, self.reverse_zone, *self.extra_zones)):
                return
            time.sleep(0.1)
        raise RuntimeError(f"knotd did not answer within 10 s:\n{self.log()}")

    def soa(self, zone: str) -> bool:
        """True when knotd answers the zone's SOA authoritatively."""
        try:
            answer = dns.query.udp(dns.message.make_query(zone, dns.rdatatype.SOA), self.ip,
                                   timeout=0.3)
        except (dns.exception.Timeout, OSError):
            return False
        return bool(answer.answer)

    def records(self, name: str, rdtype: dns.rdatatype.RdataType) -> list[str]:
        """The records knotd serves at ``name`` (a plain query: independent of the updater)."""
        answer = dns.query.tcp(dns.message.make_query(name, rdtype), self.ip, timeout=2)
        return sorted(r.to_text().replace(" ", "") for rrset in answer.answer
                      if rrset.rdtype == rdtype for r in rrset)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to knotd (the process this harness started, by its pid)."""
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def log(self) -> str:
        """knotd's output so far."""
        try:
            return (self.dir / "knotd.log").read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> list[str]:
        """Stop knotd, remove the namespace, veth and directory; teardown problems as text."""
        return self.cleanup.close()


def start_knot(base: Path, extra_zones: tuple[str, ...] = ()) -> Knot:
    """Build the namespace and veth of the module docstring and start knotd in it, serving
    ``extra_zones`` too (updatable with the same key)."""
    tag = str(os.getpid())
    octet = os.getpid() % 250 + 1
    prefix = f"198.19.{octet}."
    cleanup = Cleanup()
    try:
        work = base / "knot"
        for sub in ("run", "db", "zones"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        cleanup.push(f"rm {work}", lambda: shutil.rmtree(work, ignore_errors=True))
        ns = create_namespace(f"fd{tag}-dns", cleanup)
        here, there = f"f{tag}k0", f"f{tag}k1"
        run(["ip", "link", "add", here, "type", "veth", "peer", "name", there, "netns", ns.name])
        cleanup.push(f"veth {here}", lambda: run(["ip", "link", "del", here], check=False))
        run(["ip", "addr", "add", f"{prefix}1/24", "dev", here])
        run(["ip", "link", "set", here, "up"])
        ns.run(["ip", "addr", "add", f"{prefix}2/24", "dev", there])
        ns.run(["ip", "link", "set", there, "up"])
        secret = os.urandom(32)
        knot = Knot(ns, work, f"{prefix}2", prefix, secret, extra_zones, cleanup=cleanup)
        (work / "knot.conf").write_text(_CONF.format(
            dir=work, ip=knot.ip, key=KEY_NAME, secret=base64.b64encode(secret).decode(),
            zone=ZONE, rzone=knot.reverse_zone,
            more_zones="".join(f"  - domain: {z}\n" for z in extra_zones)))
        for zone in (ZONE, knot.reverse_zone, *extra_zones):
            (work / "zones" / f"{zone}zone").write_text(_ZONEFILE.format(zone=ZONE))
        knot.start()
        return knot
    except BaseException:
        cleanup.close()
        raise


def knot_missing() -> list[str]:
    """What this machine lacks for the knot tests."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root (network namespaces need root)")
    for binary in ("knotd", "ip"):
        if shutil.which(binary) is None:
            problems.append(f"{binary} not found (Debian packages knot, iproute2; see "
                            ".ci/apt-packages.txt)")
    return problems

