"""Real DHCP clients against the server on a broadcast link (no relay).

For ISC dhclient, dhcpcd and busybox udhcpc, one test walks the whole client lifecycle:

1. INIT -> BOUND: DISCOVER/OFFER/REQUEST/ACK by broadcast (RFC 2131 3.1);
2. RENEWING: a unicast REQUEST with ciaddr at T1 (3.2; the server answers ciaddr directly);
3. INIT-REBOOT: the client restarts from its saved lease and asks for it again (3.2; udhcpc
   has no lease file and no INIT-REBOOT: it restarts with ``-r IP``, a DISCOVER with option 50);
4. DHCPRELEASE (3.1 step 6): the lease shows released in the server's table.

After every step the address and options the client's hook reports must equal the server's
lease record (``fastdhcp leases --json`` / Kea's lease file) and the configured option-data.
A capture on the client's link shows the server's side of each step on the wire.
"""

from __future__ import annotations

import time

import pytest

from .checks import assert_lease_matches, host_snapshot, wait_released
from .clients import Capture, ClientError, Dhclient, Dhcpcd, Udhcpc
from .wire import Dhcp, decode, replies_to

CLIENTS = {"dhclient": Dhclient, "dhcpcd": Dhcpcd, "udhcpc": Udhcpc}
DIRECT_SUBNET = 1


def check_wire(msgs: list[Dhcp], client_name: str, ip: str, server_ip: str, mac: str,
               lab_cfg) -> None:
    """The server's side of the lifecycle, as captured on the client's link."""
    ctx = "\n--- captured on the client link ---\n" + "\n".join(map(str, msgs))
    mine = [m for m in msgs if m.chaddr == mac]
    for m in mine:
        if m.op == 2:
            # Every OFFER/ACK names the server and carries the configured timers.
            assert m.opt_ip(54) == server_ip, f"{m}{ctx}"
            assert m.opt_u32(51) == lab_cfg.valid_lifetime, f"{m}{ctx}"
            if m.kind == "ACK" and 58 in m.options:
                assert m.opt_u32(58) == lab_cfg.renew_timer, f"{m}{ctx}"

    # RENEWING (RFC 2131 4.3.2, 4.1): a unicast REQUEST from ciaddr, answered by an ACK sent
    # to ciaddr (not broadcast). busybox udhcpc sometimes misses that ACK (it sends from a
    # short-lived socket bound to ciaddr:68 that can catch the reply just before closing) and
    # then broadcasts; the server's answer on the wire is what this test holds it to.
    renews = [m for m in mine if m.kind == "REQUEST" and m.ciaddr == ip and m.dst == server_ip]
    assert renews, f"no unicast renewal REQUEST from {ip}{ctx}"
    for req in renews:
        acks = replies_to(mine, req, "ACK")
        assert acks, f"renewal {req} not ACKed{ctx}"
        assert all(a.yiaddr == ip and a.dst == ip and a.dport == 68 for a in acks), ctx

    # INIT-REBOOT (4.3.2): REQUEST with option 50 and no server id, ciaddr 0; ACKed.
    if client_name == "udhcpc":
        asks = [m for m in mine if m.kind == "DISCOVER" and m.opt_ip(50) == ip]
        assert any(replies_to(mine, d, "OFFER") for d in asks), f"no OFFER for -r {ip}{ctx}"
    else:
        reboots = [m for m in mine if m.kind == "REQUEST" and m.opt_ip(50) == ip
                   and 54 not in m.options and m.ciaddr == "0.0.0.0"]
        assert reboots, f"no INIT-REBOOT REQUEST{ctx}"
        assert any(r.yiaddr == ip for q in reboots for r in replies_to(mine, q, "ACK")), ctx

    # DHCPRELEASE (4.4.6): unicast to the server, from ciaddr.
    assert any(m.kind == "RELEASE" and m.ciaddr == ip and m.dst == server_ip
               and m.opt_ip(54) == server_ip for m in mine), f"no RELEASE on the wire{ctx}"
    assert not [m for m in mine if m.kind == "NAK"], f"unexpected NAK{ctx}"


@pytest.mark.parametrize("client_name", list(CLIENTS))
def test_client_lifecycle(client_name, lab, lab_cfg, live_server, client_mac, tmp_path):
    server = live_server
    server_ip = lab.srv_cli.ip
    host_before = host_snapshot()
    capture = Capture(lab.cli, lab.cli_if.ifname, tmp_path / "client-link.pcap")
    capture.start()
    client = CLIENTS[client_name](lab.cli, lab.cli_if.ifname, tmp_path / client_name)
    try:
        assert client.mac == client_mac

        t0 = time.time()
        bound = client.obtain()
        first = assert_lease_matches(server, bound, lab_cfg, client_mac, DIRECT_SUBNET,
                                     not_before=t0)
        assert bound.ip in client.addresses(), client.report()

        t1 = time.time()
        renewed = client.renew()
        assert renewed.ip == bound.ip, client.report()
        second = assert_lease_matches(server, renewed, lab_cfg, client_mac, DIRECT_SUBNET,
                                      not_before=t1)
        assert second.expires >= first.expires

        t2 = time.time()
        rebooted = client.reboot()
        assert rebooted.ip == bound.ip, client.report()
        assert_lease_matches(server, rebooted, lab_cfg, client_mac, DIRECT_SUBNET,
                             not_before=t2)

        client.release_lease()
        released = wait_released(server, bound.ip)
        assert released.hw_address == client_mac
        assert bound.ip not in client.addresses(), client.report()
    except ClientError:
        raise
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{client.report()}") from None
    finally:
        client.close()
        packets = capture.stop()
    check_wire(decode(packets), client_name, bound.ip, server_ip, client_mac, lab_cfg)
    assert host_snapshot() == host_before, "a client changed the host's resolver or routes"
