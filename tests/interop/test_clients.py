"""Real DHCP clients against the server on a broadcast link (no relay).

For ISC dhclient, dhcpcd and busybox udhcpc, one test walks the whole client lifecycle:

1. INIT -> BOUND: DISCOVER/OFFER/REQUEST/ACK by broadcast (RFC 2131 3.1);
2. RENEWING: a unicast REQUEST with ciaddr at T1 (3.2; the server answers ciaddr directly);
3. INIT-REBOOT: the client restarts from its saved lease and asks for it again (3.2; udhcpc
   has no lease file and no INIT-REBOOT: it restarts with ``-r IP``, a DISCOVER with option 50);
4. DHCPRELEASE (3.1 step 6): the lease shows released in the server's table.

After every step the address and options the client's hook reports must equal the server's
lease record (``fastdhcp leases --json`` / Kea's lease file) and the configured option-data.
"""

from __future__ import annotations

import time

import pytest

from .checks import assert_lease_matches, host_snapshot, wait_released
from .clients import ClientError, Dhclient, Dhcpcd, Udhcpc

CLIENTS = {"dhclient": Dhclient, "dhcpcd": Dhcpcd, "udhcpc": Udhcpc}
DIRECT_SUBNET = 1


@pytest.mark.parametrize("client_name", list(CLIENTS))
def test_client_lifecycle(client_name, lab, lab_cfg, live_server, client_mac, tmp_path):
    server = live_server
    server_ip = lab.srv_cli.ip
    host_before = host_snapshot()
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
        assert client.renew_was_unicast(server_ip), \
            f"{client_name} did not renew by unicast to {server_ip}\n{client.report()}"

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
    assert host_snapshot() == host_before, "a client changed the host's resolver or routes"
