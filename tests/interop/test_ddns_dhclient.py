"""DDNS end to end: ISC dhclient sends its FQDN (option 81) to fastdhcp, which publishes the
A, PTR and DHCID records in a real Knot DNS server, and withdraws them on DHCPRELEASE; then,
with knotd killed, more clients still all get their leases, and the lost updates are counted.

::

    test process --veth-- dns namespace: knotd + fastdhcp --veth-- client namespace: dhclient
                  198.19.<o>.2 (knot.py)        198.18.64.1/24           (DHCP)

fastdhcp runs in knotd's namespace (the DNS server is one hop away, on the same host
addresses); the test process reads the zones over the knot.py veth with plain dnspython
queries and fastdhcp's Prometheus endpoint on the same address.
"""

from __future__ import annotations

import os
import re
import signal
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.rdatatype
import pytest

from .clients import Dhclient
from .knot import ZONE, Knot, knot_missing, start_knot
from .netns import Cleanup, Namespace, create_namespace, create_veth, sweep_stale
from .servers import FastdhcpServer, LabConfig, SubnetSpec

A, PTR, DHCID = dns.rdatatype.A, dns.rdatatype.PTR, dns.rdatatype.DHCID
SUBNET = "198.18.64.0/24"
SERVER = "198.18.64.1"
RZONE = "64.18.198.in-addr.arpa."
METRICS_PORT = 9167
#: clients run one after the other while knotd is dead (each counted by its BOUND event)
DEAD_DNS_CLIENTS = 4


@dataclass
class Site:
    knot: Knot
    server: FastdhcpServer
    cli: Namespace
    cli_if: str
    dir: Path

    def dhclient(self, name: str, fqdn: str | None) -> Dhclient:
        c = Dhclient(self.cli, self.cli_if, self.dir / name)
        if fqdn is not None:
            # RFC 4702: wire encoding and S=1 (the server does both updates); dhclient 4.4
            # writes the root label after any name in wire form, so the name is given whole
            with open(c.conf, "a") as f:
                f.write(f'send fqdn.fqdn "{fqdn}";\nsend fqdn.encoded on;\n'
                        "send fqdn.server-update on;\n")
        return c

    def metrics_text(self) -> str:
        url = f"http://{self.knot.ip}:{METRICS_PORT}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - our own endpoint
            return str(r.read().decode())

    def metric(self, name: str) -> int:
        text = self.metrics_text()
        m = re.search(rf'^fastdhcp_ddns_statistic_total{{name="{name}"}} (\S+)$', text, re.M)
        assert m is not None, f"{name} not in the metrics:\n{text[-3000:]}"
        return int(float(m.group(1)))


class DdnsServer(FastdhcpServer):
    """The interop fastdhcp with ``[ddns]`` pointed at knotd and metrics on knotd's address."""

    knot: Knot

    def write_config(self) -> Path:
        path = super().write_config()
        k = self.knot
        secret = k.secret_file()
        text = path.read_text().replace(
            "port = 67\n", f'port = 67\nmetrics = "{k.ip}:{METRICS_PORT}"\n', 1)
        text += "\n" + k.ddns_toml(secret, reverse_zone=RZONE, settings=f"""\
ddns-qualifying-suffix = "{ZONE}"
dns-server-timeout = 300
max-retries = 1
retry-backoff = 100""")
        path.write_text(text)
        return path


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    problems = knot_missing()
    for binary in ("dhclient", "ethtool"):
        if not any(os.access(os.path.join(d, binary), os.X_OK)
                   for d in os.environ.get("PATH", "").split(os.pathsep)):
            problems.append(f"{binary} not found")
    if problems:
        msg = "ddns dhclient tests cannot run: " + "; ".join(problems)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    sweep_stale()
    base = Path(tempfile.mkdtemp(prefix="fastdhcp-ddns-"))
    knot = start_knot(base, extra_zones=(RZONE,))
    cleanup = Cleanup()
    server: DdnsServer | None = None
    try:
        tag = str(os.getpid())
        cli = create_namespace(f"fd{tag}-dcl", cleanup)
        srv_if, cli_if = create_veth(knot.ns, f"f{tag}d0", f"{SERVER}/24",
                                     cli, f"f{tag}d1", None, cleanup)
        cfg = LabConfig(interfaces=(srv_if.ifname,), listen_addresses=(),
                        all_interfaces=(srv_if.ifname,),
                        subnets=(SubnetSpec(1, SUBNET, "198.18.64.100 - 198.18.64.199",
                                            (SERVER,), interface=srv_if.ifname),),
                        renew_timer=300, rebind_timer=500)
        server = DdnsServer(knot.ns, cfg, base / "fastdhcp")
        server.knot = knot
        server.start()
        yield Site(knot, server, cli, cli_if.ifname, base)
    finally:
        if server is not None:
            server.stop()
        errors = cleanup.close() + knot.close()
        assert not errors, f"teardown problems: {errors}"


def wait_for(check, what: str, timeout: float = 15.0) -> None:
    """Poll ``check`` until it holds (bounded; the updates are asynchronous by design)."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.1)


def ptr_of(ip: str) -> str:
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa."


def test_fqdn_published_then_withdrawn_on_release(site: Site) -> None:
    k = site.knot
    c = site.dhclient("host1", f"host1.{ZONE}")
    try:
        ev = c.obtain()
        ip = ev.ip
        name = f"host1.{ZONE}"
        wait_for(lambda: k.records(name, A) == [ip],
                 f"A {name} -> {ip}\n{site.server.log()}\n{site.metrics_text()}\n{c.report()}")
        wait_for(lambda: k.records(ptr_of(ip), PTR) == [name], f"PTR {ip} -> {name}")
        assert len(k.records(name, DHCID)) == 1  # RFC 4703: ownership marked
        lease = site.server.lease_for(ip)
        assert lease is not None and lease.raw["hostname"] == name, lease
        assert site.metric("ncr-success") >= 1
        c.release_lease()
        wait_for(lambda: k.records(name, A) == [] and k.records(ptr_of(ip), PTR) == [],
                 f"records of {name} removed after RELEASE\n{site.server.log()}")
        assert k.records(name, DHCID) == []
    finally:
        c.close()


def test_a_dead_dns_server_costs_records_not_leases(site: Site) -> None:
    site.knot.signal(signal.SIGKILL)
    assert site.knot.proc is not None
    site.knot.proc.wait(timeout=10)
    received0 = site.metric("ncr-received")
    bound = []
    for i in range(DEAD_DNS_CLIENTS):
        # a new MAC per client: each is a new binding (and a new name) for the server
        site.cli.run(["ip", "link", "set", site.cli_if, "down"])
        site.cli.run(["ip", "link", "set", site.cli_if, "address", f"02:fd:64:00:00:{i + 10:02x}"])
        site.cli.run(["ip", "link", "set", site.cli_if, "up"])
        c = site.dhclient(f"dead{i}", f"dead{i}.{ZONE}")
        try:
            bound.append(c.obtain().ip)
            c.stop_keep()
        finally:
            c.close()
    assert len(set(bound)) == DEAD_DNS_CLIENTS, bound  # every client got its own lease
    assert site.metric("ncr-received") - received0 == DEAD_DNS_CLIENTS
    wait_for(lambda: site.metric("ncr-failed") >= DEAD_DNS_CLIENTS,
             "every lost update counted as failed")
    # no answer (a timeout) or an ICMP refusal (an error), as the kernel reports the dead port
    assert (site.metric("update-timeout") + site.metric("update-error")) >= DEAD_DNS_CLIENTS
    assert site.server.alive()
