"""A bound client survives a server crash (RFC 2131 3.1 step 4, DESIGN.md "Durability").

dhclient gets a lease; the server is killed with SIGKILL (no clean shutdown, nothing flushed
beyond what it committed before ACKing) and started again on the same lease database; dhclient
restarts from its lease file and does INIT-REBOOT. The server must still know the binding: it
ACKs the same address (a server that lost it could NAK, or hand the address to someone else),
and its lease table shows the lease bound to the same client throughout.
"""

from __future__ import annotations

import time

from .checks import assert_lease_matches, bound_lease, wait_released
from .clients import Capture, Dhclient
from .wire import decode

DIRECT_SUBNET = 1


def test_binding_survives_server_kill(lab, lab_cfg, live_server, client_mac, tmp_path):
    server = live_server
    capture = Capture(lab.cli, lab.cli_if.ifname, tmp_path / "client-link.pcap")
    capture.start()
    client = Dhclient(lab.cli, lab.cli_if.ifname, tmp_path / "dhclient")
    try:
        t0 = time.time()
        bound = client.obtain()
        before = assert_lease_matches(server, bound, lab_cfg, client_mac, DIRECT_SUBNET,
                                      not_before=t0)
        client.stop_keep()

        server.kill()
        # The database as the crash left it: the ACKed binding is there.
        after_crash = bound_lease(server, bound.ip)
        assert after_crash.state == "bound" and after_crash.hw_address == client_mac
        assert after_crash.expires >= before.expires
        server.start()

        t1 = time.time()
        n = len(client.events())
        client.start()
        rebooted = client.wait_event({"REBOOT", "BOUND"}, after=n)
        assert rebooted.reason == "REBOOT", f"INIT-REBOOT not ACKed\n{client.report()}"
        assert rebooted.ip == bound.ip
        assert_lease_matches(server, rebooted, lab_cfg, client_mac, DIRECT_SUBNET,
                             not_before=t1)

        client.release_lease()
        wait_released(server, bound.ip)
    finally:
        client.close()
        if not server.alive():
            server.start()  # leave a running server for the tests that follow
        packets = capture.stop()
    naks = [m for m in decode(packets) if m.kind == "NAK"]
    assert not naks, "\n".join(map(str, naks))
