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

from .checks import assert_lease_matches
from .clients import Capture, Dhcrelay, Udhcpc
from .wire import decode, sub_options

RELAYED_SUBNET = 2


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

    msgs = decode(packets)
    upstream = [m for m in msgs if m.src == lab.relay_up.ip and m.dst == lab.srv_relay.ip]
    replies = [m for m in msgs if m.src == lab.srv_relay.ip]
    ctx += "\n--- captured on the relay's server side ---\n" + "\n".join(map(str, msgs))
    assert {"DISCOVER", "REQUEST"} <= {m.kind for m in upstream}, ctx
    assert {"OFFER", "ACK"} <= {m.kind for m in replies}, ctx

    circuit = lab.relay_down.ifname.encode()
    sent82 = None
    for m in upstream:
        assert m.giaddr == lab.relay_down.ip and m.hops >= 1, f"{m}{ctx}"
        assert 82 in m.options, f"relay sent {m.kind} without option 82{ctx}"
        assert sub_options(m.options[82]).get(1) == circuit, f"{m.options[82]!r}{ctx}"
        sent82 = m.options[82]
    for m in replies:
        # RFC 2131 4.1: a reply to a relay goes to giaddr at the server port (67), giaddr kept.
        assert m.dst == lab.relay_down.ip and m.dport == 67, f"{m}{ctx}"
        assert m.giaddr == lab.relay_down.ip and m.yiaddr == bound.ip, f"{m}{ctx}"
        # RFC 3046 2.2: option 82 echoed verbatim.
        assert m.options.get(82) == sent82, f"{m.kind} option 82 {m.options.get(82)!r} != " \
            f"{sent82!r}{ctx}"

    lease = server.lease_for(bound.ip)
    assert lease is not None
    if server.name == "fastdhcp":
        # DESIGN.md: the lease record keeps option 82 as received.
        assert lease.relay_info, f"{lease}{ctx}"
    if lease.relay_info:
        # The server keeps option 82 with the lease (fastdhcp's relay_info, Kea's extended
        # info): it must be what the relay sent.
        assert sent82 in (lease.relay_info, lease.relay_info[2:]), f"{lease}{ctx}"
