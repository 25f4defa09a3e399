"""``lease4-resend-ddns`` and the lease commands' ``fqdn-fwd`` / ``fqdn-rev`` on a running
server (Unix control socket, scapy relay client): Kea's result codes and texts, and the add
really queued (the worker's ``ncr-received``). The DNS server is a closed loopback port: the
updates fail, counted, and DHCP goes on."""

from __future__ import annotations

import time
from pathlib import Path

from fastdhcp.config import loads
from tests.control_helpers import control_config_text, unix_command
from tests.service_helpers import InProcessServer, RelayClient, dhcp_options, free_port, mac

DDNS = """
[ddns]
ddns-qualifying-suffix = "example.net."
dns-server-timeout = 50
max-retries = 0
[[ddns.forward-ddns.ddns-domains]]
name = "example.net."
dns-servers = [{ ip-address = "127.0.0.1", port = 9 }]
"""


def server(tmp_path: Path, ddns: bool) -> tuple[InProcessServer, Path, int]:
    port = free_port()
    sock = tmp_path / "ctl" / "fastdhcp4.sock"
    text = control_config_text(tmp_path / "db", port, sock) + (DDNS if ddns else "")
    return InProcessServer(loads(text)), sock, port


def dora(c: RelayClient, n: int, hostname: bytes | None, answered: bool = True) -> str:
    extra = [("hostname", hostname)] if hostname is not None else []
    offer = c.exchange("discover", mac(n), 0x100 * n, options=list(extra))
    ack = c.exchange("request", mac(n), 0x100 * n + 1, options=[
        ("server_id", dhcp_options(offer)["server_id"]), ("requested_addr", offer.yiaddr),
        *extra])
    assert dhcp_options(ack)["message-type"] == 5
    if hostname is not None and answered:  # option 12 answered qualified (with [ddns])
        assert dhcp_options(ack)["hostname"] == hostname + b".example.net"
    return str(ack.yiaddr)


def test_resend_without_ddns_is_refused(tmp_path: Path) -> None:
    srv, sock, port = server(tmp_path, ddns=False)
    with srv, RelayClient(port) as c:
        ip = dora(c, 1, b"pc1", answered=False)
        a = unix_command(sock, "lease4-resend-ddns", {"ip-address": ip})
        assert (a["result"], a["text"]) == (1, "DDNS updating is not enabled")


def test_resend_queues_the_add_with_keas_answers(tmp_path: Path) -> None:
    srv, sock, port = server(tmp_path, ddns=True)
    with srv, RelayClient(port) as c:
        named = dora(c, 1, b"pc1")
        plain = dora(c, 2, None)
        got = unix_command(sock, "lease4-get", {"ip-address": named})["arguments"]
        assert (got["hostname"], got["fqdn-fwd"], got["fqdn-rev"]) == (
            "pc1.example.net.", True, True)
        stats = srv.server.ddns
        assert stats is not None
        end = time.monotonic() + 10
        while stats.stats.values()["ncr-received"] < 1 and time.monotonic() < end:
            time.sleep(0.02)
        assert stats.stats.values()["ncr-received"] == 1  # the ACK's add, after the commit
        a = unix_command(sock, "lease4-resend-ddns", {"ip-address": named})
        assert (a["result"], a["text"]) == (
            0, f"NCR generated for: {named}, hostname: pc1.example.net.")
        assert stats.stats.values()["ncr-received"] == 2
        a = unix_command(sock, "lease4-resend-ddns", {"ip-address": plain})
        assert (a["result"], a["text"]) == (
            1, f"Lease for: {plain}, has no hostname, nothing to update")
        a = unix_command(sock, "lease4-resend-ddns", {"ip-address": "198.18.0.250"})
        assert (a["result"], a["text"]) == (3, "No lease found for: 198.18.0.250")
        # the DNS server is not there: the updates fail, counted; DHCP is unaffected
        end = time.monotonic() + 10
        while stats.stats.values()["ncr-failed"] < 2 and time.monotonic() < end:
            time.sleep(0.02)
        assert stats.stats.values()["ncr-failed"] == 2
        dora(c, 3, b"pc3")


def test_a_partners_named_lease_is_withdrawn_when_it_ends_here(tmp_path: Path) -> None:
    """A lease that arrives with ``fqdn-fwd`` / ``fqdn-rev`` (an HA partner's update after it
    published the name, or lease4-add) publishes nothing here, but its record keeps the flags
    as Kea's lease does: when its client releases it at this server (a survivor in
    partner-down), the name is withdrawn."""
    srv, sock, port = server(tmp_path, ddns=True)
    with srv, RelayClient(port) as c:
        ip = dora(c, 4, None)  # an address of the pool, then handed over as the partner's
        assert unix_command(sock, "lease4-del", {"ip-address": ip})["result"] == 0
        hw = mac(5)
        a = unix_command(sock, "lease4-update", {
            "ip-address": ip, "hw-address": hw.hex(":"), "valid-lft": 600,
            "expire": int(time.time()) + 600, "subnet-id": 1, "force-create": True,
            "hostname": "pc5.example.net.", "fqdn-fwd": True, "fqdn-rev": False})
        assert a["result"] == 0, a
        got = unix_command(sock, "lease4-get", {"ip-address": ip})["arguments"]
        assert (got["hostname"], got["fqdn-fwd"], got["fqdn-rev"]) == (
            "pc5.example.net.", True, False)
        stats = srv.server.ddns
        assert stats is not None
        time.sleep(0.2)
        assert stats.stats.values()["ncr-received"] == 0  # the partner published it
        c.send_raw(c.build("release", hw, 0x5000, ciaddr=ip, options=[
            ("server_id", c.server_ip)]))
        end = time.monotonic() + 10
        while stats.stats.values()["ncr-received"] < 1 and time.monotonic() < end:
            time.sleep(0.02)
        assert stats.stats.values()["ncr-received"] == 1  # the removal of pc5's name
