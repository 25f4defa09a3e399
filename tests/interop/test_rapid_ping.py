"""Rapid commit (RFC 4039) and ping-check against real clients and a real squatting host.

The session's fastdhcp is reconfigured for this module (SIGHUP with ``rapid-commit`` and
ping-check on in ``[global]``) and put back afterwards. Clients: scapy, which sends exactly the
DISCOVER asked for from the client namespace and captures the answer, and dhcpcd with
``option rapid_commit``. The squatter is the client namespace itself holding a pool address
(``ip addr add``): its kernel answers the server's ICMP echo, as a host configured by hand
would. Kea 2.2 has neither feature: against it these tests do not apply.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .clients import Capture, Dhcpcd, Udhcpc
from .netns import Lab
from .servers import FastdhcpServer
from .wire import decode, dhcp_options

#: Added to [global] for the rapid-commit tests.
RAPID = "rapid-commit = true\n"
#: Added to [global] for the ping-check tests: probes of 200 ms (the machine is loaded; a veth
#: answers an echo in well under 1 ms when it is not).
PING = "enable-ping-check = true\nreply-timeout = 200\n"

#: Run inside the client namespace: one DISCOVER out of IFACE, the first BOOTREPLY with its
#: xid back, printed as hex (empty when none came).
SCAPY_DISCOVER = r"""
import sys
from scapy.all import BOOTP, DHCP, IP, UDP, Ether, conf, srp1
iface, mac, xid, rapid, requested = sys.argv[1:6]
xid, rapid = int(xid), rapid == "1"
conf.checkIPaddr = False
opts = [("message-type", "discover"), ("param_req_list", [1, 3, 6, 51, 54])]
if requested:
    opts.append(("requested_addr", requested))
if rapid:
    opts.append(("rapid_commit", b""))
chaddr = bytes.fromhex(mac.replace(":", "")) + bytes(10)
pkt = (Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
       / UDP(sport=68, dport=67) / BOOTP(chaddr=chaddr, xid=xid, flags=0x8000)
       / DHCP(options=opts + ["end"]))
ans = srp1(pkt, iface=iface, timeout=6, verbose=0)
print(bytes(ans[UDP].payload).hex() if ans is not None else "")
"""


def _reloads(server: FastdhcpServer) -> int:
    return server.log(tail=100000).count("reload: applied")


def _reload(server: FastdhcpServer, text: str) -> None:
    before = _reloads(server)
    (server.dir / "fastdhcp.toml").write_text(text)
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGHUP)  # ip netns exec execs: the pid is the server's
    deadline = time.monotonic() + 15
    while _reloads(server) == before:
        assert time.monotonic() < deadline, f"no reload\n{server.log()}"
        time.sleep(0.1)


def _configured(server: FastdhcpServer, extra: str) -> Iterator[FastdhcpServer]:
    """The session's server with ``extra`` added to [global]; restored afterwards."""
    if server.name != "fastdhcp":
        pytest.skip("Kea 2.2 has no DHCPv4 rapid commit and no ping-check")
    path = server.dir / "fastdhcp.toml"
    original = path.read_text()
    assert "\n[global]\n" in original
    _reload(server, original.replace("\n[global]\n", "\n[global]\n" + extra, 1))
    try:
        yield server
    finally:
        _reload(server, original)


@pytest.fixture
def rapid_server(server: FastdhcpServer) -> Iterator[FastdhcpServer]:
    """The session's server with rapid-commit on in [global] (ping-check off)."""
    yield from _configured(server, RAPID)


@pytest.fixture
def ping_server(server: FastdhcpServer) -> Iterator[FastdhcpServer]:
    """The session's server with ping-check on in [global] (and rapid-commit too: a DISCOVER
    for a new address must then still be probed, so it gets an OFFER)."""
    yield from _configured(server, RAPID + PING)


def _discover(lab: Lab, tmp: Path, mac: str, xid: int, *, rapid: bool,
              requested: str = "") -> tuple[bytes, dict[int, bytes]]:
    script = tmp / "discover.py"
    script.write_text(SCAPY_DISCOVER)
    cp = lab.cli.run([sys.executable, str(script), lab.cli_if.ifname, mac, str(xid),
                      "1" if rapid else "0", requested], timeout=30)
    raw = bytes.fromhex(cp.stdout.strip())
    assert raw, f"no reply to the DISCOVER\n{cp.stderr}"
    return raw, dhcp_options(raw)


def _yiaddr(raw: bytes) -> str:
    return ".".join(str(b) for b in raw[16:20])


def test_rapid_commit_scapy_gets_an_ack_and_the_lease_is_bound(lab, rapid_server, client_mac,
                                                               tmp_path):
    raw, opts = _discover(lab, tmp_path, client_mac, 0x4039, rapid=True)
    assert opts[53] == b"\x05", f"expected an ACK, got type {opts[53]!r}"
    assert opts.get(80) == b""  # RFC 4039 4: the ACK carries Rapid Commit, empty
    assert int.from_bytes(raw[4:8], "big") == 0x4039
    addr = _yiaddr(raw)
    lease = rapid_server.lease_for(addr)
    # The ACK left after the commit: the record is in the database the moment it arrived.
    assert lease is not None and lease.state == "bound"
    assert lease.hw_address == client_mac


def test_without_option_80_the_client_still_gets_an_offer(lab, rapid_server, client_mac,
                                                          tmp_path):
    raw, opts = _discover(lab, tmp_path, client_mac, 0x4040, rapid=False)
    assert opts[53] == b"\x02" and 80 not in opts
    lease = rapid_server.lease_for(_yiaddr(raw))
    assert lease is None or lease.hw_address != client_mac  # an OFFER commits nothing


def test_dhcpcd_with_rapid_commit_binds_in_two_messages(lab, rapid_server, client_mac, tmp_path):
    capture = Capture(lab.cli, lab.cli_if.ifname, tmp_path / "cli.pcap")
    capture.start()
    client = Dhcpcd(lab.cli, lab.cli_if.ifname, tmp_path / "dhcpcd")
    client.conf.write_text(client.conf.read_text() + "option rapid_commit\n")
    try:
        bound = client.obtain()
    finally:
        client.close()
        msgs = decode(capture.stop())
    ctx = "\n".join(map(str, msgs)) + "\n" + client.report()
    mine = [m for m in msgs if m.chaddr == client_mac]
    assert [m.kind for m in mine[:2]] == ["DISCOVER", "ACK"], ctx
    assert 80 in mine[1].options, ctx
    assert "OFFER" not in [m.kind for m in mine], ctx
    # The lab's renew-timer is 4 s: a REQUEST later on is a renewal (ciaddr set), never the
    # SELECTING one a four-message exchange would have.
    assert all(m.ciaddr == bound.ip for m in mine if m.kind == "REQUEST"), ctx
    discover = next(m for m in msgs if m.kind == "DISCOVER")
    assert 80 in discover.options, ctx  # dhcpcd did ask for it
    lease = rapid_server.lease_for(bound.ip)
    assert lease is not None and lease.state == "bound", ctx


@pytest.fixture
def squatter(lab: Lab, ping_server: FastdhcpServer, client_mac: str) -> Iterator[str]:
    """A free pool address of subnet 1, held by hand on the client namespace's interface."""
    used = {lease.ip for lease in ping_server.leases()}
    addr = next(f"198.18.0.{n}" for n in range(199, 100, -1) if f"198.18.0.{n}" not in used)
    lab.cli.run(["ip", "addr", "add", f"{addr}/24", "dev", lab.cli_if.ifname])
    try:
        yield addr
    finally:
        lab.cli.run(["ip", "addr", "del", f"{addr}/24", "dev", lab.cli_if.ifname],
                    check=False)


def test_ping_check_never_offers_an_address_in_use_and_declines_it(lab, ping_server, squatter,
                                                                   client_mac, tmp_path):
    # The client asks for the squatted address (with option 80 too): without ping-check it
    # would be offered, or ACKed.
    raw, opts = _discover(lab, tmp_path, client_mac, 0x5151, rapid=True, requested=squatter)
    assert opts[53] == b"\x02"
    assert _yiaddr(raw) != squatter
    lease = ping_server.lease_for(squatter)
    assert lease is not None and lease.state == "declined", ping_server.log()
    assert lease.hw_address == ""  # no client declined it: the server did
    # Asked again, it is still not offered (declined for the probation period).
    raw2, _ = _discover(lab, tmp_path, client_mac, 0x5152, rapid=False, requested=squatter)
    assert _yiaddr(raw2) != squatter
    # Another client is served, and not with the squatted address.
    other = Udhcpc(lab.cli, lab.cli_if.ifname, tmp_path / "udhcpc")
    try:
        got = other.obtain()
    finally:
        other.close()
    assert got.ip != squatter
    bound = ping_server.lease_for(got.ip)
    assert bound is not None and bound.state == "bound"
