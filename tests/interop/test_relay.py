"""A client behind ISC dhcrelay (RFC 2131 4.1 relay handling, RFC 3046 option 82).

The server has two subnets that no interface selects (3 listed first, then 2). The relay's
client-side address 198.18.2.1 goes out as giaddr, and only giaddr can tell the server to use
subnet 2. dhcrelay ``-a`` adds option 82 (circuit-id = its client-side interface name); the
server must echo it verbatim in its replies (RFC 3046 2.2), which a capture on the relay's
server-side interface shows (dhcrelay strips the option before the client sees the reply).
"""

from __future__ import annotations

import ipaddress
import time

import pytest
from scapy.layers.dhcp import BOOTP
from scapy.layers.inet import IP, UDP

from .checks import assert_lease_matches
from .clients import Capture, Dhcrelay, Udhcpc

RELAYED_SUBNET = 2
DHCP_NAMES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 5: "ACK", 6: "NAK", 7: "RELEASE"}


def dhcp_options(payload: bytes) -> dict[int, bytes]:
    """Options of a BOOTP payload (main area only; what these tests need), repeats concatenated
    (RFC 3396). A tiny independent walker, so the check does not depend on scapy's option
    decoding."""
    assert payload[236:240] == b"\x63\x82\x53\x63", "no magic cookie"
    out: dict[int, bytes] = {}
    i = 240
    while i < len(payload):
        code = payload[i]
        if code == 0:
            i += 1
            continue
        if code == 255:
            break
        n = payload[i + 1]
        out[code] = out.get(code, b"") + payload[i + 2:i + 2 + n]
        i += 2 + n
    return out


def sub_options(opt82: bytes) -> dict[int, bytes]:
    """Option 82's sub-options (RFC 3046 2.0)."""
    out, i = {}, 0
    while i + 2 <= len(opt82):
        out[opt82[i]] = opt82[i + 2:i + 2 + opt82[i + 1]]
        i += 2 + opt82[i + 1]
    return out


@pytest.fixture
def relay(lab, tmp_path):
    """dhcrelay in the relay namespace, forwarding to the server's relay-side address."""
    r = Dhcrelay(lab.relay, lab.relay_down.ifname, lab.relay_up.ifname, lab.srv_relay.ip,
                 tmp_path / "relay")
    r.start()
    yield r
    r.close()


def test_relayed_client_gets_giaddr_subnet_and_option82_echo(lab, lab_cfg, live_server, relay,
                                                             tmp_path):
    server = live_server
    capture = Capture(lab.relay, lab.relay_up.ifname, tmp_path / "relay-up.pcap")
    capture.start()
    client = Udhcpc(lab.rcli, lab.rcli_if.ifname, tmp_path / "udhcpc")
    mac = client.mac
    try:
        t0 = time.time()
        bound = client.obtain()
        assert_lease_matches(server, bound, lab_cfg, mac, RELAYED_SUBNET, not_before=t0)
        assert ipaddress.IPv4Address(bound.ip) in ipaddress.IPv4Network("198.18.2.0/24")
    finally:
        client.close()
        packets = capture.stop()
    ctx = f"\n--- dhcrelay ---\n{relay.log()[-3000:]}\n{client.report()}"

    upstream, replies = [], []
    for p in packets:
        if UDP not in p:
            continue
        payload = bytes(p[UDP].payload)
        if len(payload) < 240:
            continue
        # scapy binds BOOTP only to the client/server port pair (68/67); relay traffic is
        # 67 -> 67, so decode the header explicitly.
        p[UDP].remove_payload()
        p = p / BOOTP(payload)
        opts = dhcp_options(payload)
        kind = DHCP_NAMES.get(opts.get(53, b"\0")[0], "?")
        if p[IP].src == lab.relay_up.ip and p[IP].dst == lab.srv_relay.ip:
            upstream.append((kind, p, opts))
        elif p[IP].src == lab.srv_relay.ip:
            replies.append((kind, p, opts))
    kinds_up = [k for k, _, _ in upstream]
    kinds_down = [k for k, _, _ in replies]
    assert "DISCOVER" in kinds_up and "REQUEST" in kinds_up, f"{kinds_up}{ctx}"
    assert "OFFER" in kinds_down and "ACK" in kinds_down, f"{kinds_down}{ctx}"

    circuit = lab.relay_down.ifname.encode()
    sent82 = None
    for kind, p, opts in upstream:
        assert p[BOOTP].giaddr == lab.relay_down.ip, f"{kind} giaddr {p[BOOTP].giaddr}{ctx}"
        assert p[BOOTP].hops >= 1
        assert 82 in opts, f"relay sent {kind} without option 82{ctx}"
        assert sub_options(opts[82]).get(1) == circuit, f"{opts[82]!r}{ctx}"
        sent82 = opts[82]
    for kind, p, opts in replies:
        # RFC 2131 4.1: replies to a relay go to giaddr, server port 67; giaddr copied.
        assert p[IP].dst == lab.relay_down.ip, f"{kind} to {p[IP].dst}{ctx}"
        assert p[UDP].dport == 67, f"{kind} to port {p[UDP].dport}{ctx}"
        assert p[BOOTP].giaddr == lab.relay_down.ip, f"{kind}{ctx}"
        assert opts.get(82) == sent82, f"{kind} option 82 {opts.get(82)!r} != {sent82!r}{ctx}"
        assert p[BOOTP].yiaddr == bound.ip, f"{kind}{ctx}"

    lease = server.lease_for(bound.ip)
    if lease is not None and lease.relay_info:
        # The server keeps option 82 with the lease (fastdhcp's relay_info, Kea's extended
        # info): it must be what the relay sent.
        assert sent82 in (lease.relay_info, lease.relay_info[2:]), f"{lease}{ctx}"
