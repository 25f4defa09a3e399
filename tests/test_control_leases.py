"""The lease commands change what the running server does, at once and durably: checked by the
next real DORA (scapy relay client), by a separate process reading LMDB, and by a restart after
SIGKILL. Shapes and texts of every command through kea-shell: test_kea_shell_commands.py."""

from __future__ import annotations

import ipaddress
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.control_helpers import control_config_text, control_server, unix_command
from tests.service_helpers import (
    RelayClient,
    ServeProcess,
    dhcp_options,
    free_port,
    lmdb_leases,
    mac,
)

POOL4 = ("198.18.0.100", "198.18.0.103")  # four addresses: a full pool is quick to reach


def hw(m: bytes) -> str:
    return ":".join(f"{b:02x}" for b in m)


def ans(sock: Path, command: str, arguments: Any = None) -> dict[str, Any]:
    return unix_command(sock, command, arguments)


def test_add_takes_the_address_from_the_pool(tmp_path: Path) -> None:
    """Fill a four-address pool with three DORAs and one lease4-add: the next client gets no
    OFFER, since the added address is held; after lease4-del it is offered again."""
    with control_server(tmp_path, pools=POOL4) as (_srv, sock, port), RelayClient(port) as c:
        got = {c.dora(mac(k), 0x100 * (k + 1))[1].yiaddr for k in range(3)}
        free = (set(str(ipaddress.IPv4Address(POOL4[0]) + i) for i in range(4)) - got).pop()
        a = ans(sock, "lease4-add", {"ip-address": free, "hw-address": "02:ee:00:00:00:01"})
        assert a == {"result": 0, "text": f"Lease for address {free}, subnet-id 1 added."}
        c.sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            c.exchange("discover", mac(9), 0x900)
        assert ans(sock, "lease4-del", {"ip-address": free})["result"] == 0
        c.sock.settimeout(5.0)
        offer = c.exchange("discover", mac(9), 0x910)
        assert offer.yiaddr == free


def test_add_withdraws_an_offer_of_that_address(tmp_path: Path) -> None:
    """A client offered an address that lease4-add then gives to another is not ACKed it."""
    with control_server(tmp_path) as (_srv, sock, port), RelayClient(port) as c:
        offer = c.exchange("discover", mac(1), 0x10)
        assert ans(sock, "lease4-add", {"ip-address": offer.yiaddr,
                                        "hw-address": "02:ee:00:00:00:02"})["result"] == 0
        reply = c.exchange("request", mac(1), 0x11, options=[
            ("server_id", dhcp_options(offer)["server_id"]), ("requested_addr", offer.yiaddr)])
        assert dhcp_options(reply)["message-type"] == 6  # NAK: the address is someone's now
        lease = ans(sock, "lease4-get", {"ip-address": offer.yiaddr})["arguments"]
        assert lease["hw-address"] == "02:ee:00:00:00:02"


def test_del_lets_the_client_bind_anew_and_counts_follow(tmp_path: Path) -> None:
    with control_server(tmp_path) as (_srv, sock, port), RelayClient(port) as c:
        _, ack = c.dora(mac(1), 0x10)
        before = ans(sock, "stat-lease4-get")["arguments"]["result-set"]["rows"][0]
        assert ans(sock, "lease4-del", {"identifier-type": "hw-address",
                                        "identifier": hw(mac(1)), "subnet-id": 1}) == {
            "result": 0, "text": "IPv4 lease deleted."}
        after = ans(sock, "stat-lease4-get")["arguments"]["result-set"]["rows"][0]
        assert after[3] == before[3] - 1  # assigned-addresses
        assert ans(sock, "lease4-get", {"ip-address": ack.yiaddr})["result"] == 3
        _, again = c.dora(mac(1), 0x20)
        assert dhcp_options(again)["message-type"] == 5


def test_extras_go_with_their_lease(tmp_path: Path) -> None:
    """user-context and the fqdn flags are the lease's: a delete removes them, and a lease
    added again without them has none."""
    with control_server(tmp_path) as (_srv, sock, _port):
        args = {"ip-address": "198.18.0.150", "hw-address": "02:ee:00:00:00:01"}
        assert ans(sock, "lease4-add", {**args, "user-context": {"a": 1}})["result"] == 0
        by_hw = ans(sock, "lease4-get-by-hw-address", {"hw-address": "02:ee:00:00:00:01"})
        assert by_hw["arguments"]["leases"][0]["user-context"] == {"a": 1}
        assert ans(sock, "lease4-del", args)["result"] == 0
        assert ans(sock, "lease4-add", args)["result"] == 0
        lease = ans(sock, "lease4-get", args)["arguments"]
        assert "user-context" not in lease and lease["fqdn-fwd"] is False


def test_wipe_frees_the_whole_pool(tmp_path: Path) -> None:
    with control_server(tmp_path, pools=POOL4) as (_srv, sock, port), RelayClient(port) as c:
        for k in range(4):
            c.dora(mac(k), 0x100 * (k + 1))
        c.sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            c.exchange("discover", mac(7), 0x700)
        assert ans(sock, "lease4-wipe", {"subnet-id": 1}) == {
            "result": 0, "text": "Deleted 4 IPv4 lease(s) from subnet(s) 1"}
        c.sock.settimeout(5.0)
        got = {c.dora(mac(10 + k), 0x1000 * (k + 1))[1].yiaddr for k in range(4)}
        assert len(got) == 4
        assert ans(sock, "lease4-wipe") == {
            "result": 0, "text": "Deleted 4 IPv4 lease(s) from subnet(s) 1"}
        assert ans(sock, "lease4-wipe")["result"] == 3


def test_rejected_commands_change_nothing(tmp_path: Path) -> None:
    with control_server(tmp_path) as (_srv, sock, port), RelayClient(port) as c:
        _, ack = c.dora(mac(1), 0x10)
        cases = [
            ({"ip-address": "198.18.0.150", "hw-address": "zz:zz"},
             "'z' is not a valid hexadecimal digit in decoded string 'zz:zz'"),
            ({"ip-address": "198.18.0.150", "hw-address": "02:aa:bb:cc:dd:01", "state": 5},
             "Invalid state value: 5, supported values are: 0 (default), 1 (declined) and 2 "
             "(expired-reclaimed)"),
            ({"ip-address": "198.18.9.5", "hw-address": "02:aa:bb:cc:dd:01"},
             "subnet-id not specified and failed to find a subnet for address 198.18.9.5"),
            ({"ip-address": "198.18.0.150", "hw-address": "02:aa:bb:cc:dd:01",
              "subnet-id": 99},
             "Invalid subnet-id: No IPv4 subnet with subnet-id=99 currently configured."),
            ({"ip-address": "198.18.0.150", "hw-address": "02:aa:bb:cc:dd:01",
              "client-id": "cpe-04"}, "'cpe-04' is not a valid string of hexadecimal digits"),
            ({"ip-address": "2001:db8::1", "hw-address": "02:aa:bb:cc:dd:01"},
             "Non-IPv4 address specified: 2001:db8::1"),
            ({"hw-address": "02:aa:bb:cc:dd:01"}, "missing parameter 'ip-address'"),
            ({"ip-address": ack.yiaddr, "hw-address": "02:aa:bb:cc:dd:01"},
             "IPv4 lease already exists."),
            ({"ip-address": "198.18.0.150", "hw-address": "02:aa:bb:cc:dd:01",
              "valid-lft": 3600, "expire": 100},
             "expiration time must be greater than valid lifetime for address 198.18.0.150"),
        ]
        for arguments, text in cases:
            assert ans(sock, "lease4-add", arguments) == {"result": 1, "text": text}, arguments
        assert ans(sock, "lease4-add") == {
            "result": 1, "text": "no parameters specified for the command"}
        every = ans(sock, "lease4-get-all")
        assert [x["ip-address"] for x in every["arguments"]["leases"]] == [ack.yiaddr]
        assert ans(sock, "lease4-get", {"ip-address": ack.yiaddr})["arguments"][
            "hw-address"] == hw(mac(1))
        assert ans(sock, "leases-reclaim", {"remove": "yes"}) == {
            "result": 1, "text": "'remove' parameter expected to be a boolean."}
        assert ans(sock, "lease4-get-page", {"from": "bogus", "limit": 3}) == {
            "result": 1, "text": "'from' parameter value is neither 'start' keyword nor a "
                                 "valid IPv4 address"}


def test_reclaim_ends_expired_leases_and_remove_deletes_them(tmp_path: Path) -> None:
    with control_server(tmp_path) as (_srv, sock, _port):
        for k, ip in enumerate(("198.18.0.150", "198.18.0.151")):
            assert ans(sock, "lease4-add", {"ip-address": ip, "hw-address": f"02:ee:00:00:01:0{k}",
                                            "valid-lft": 100, "expire": 1_000_000})["result"] == 0
        assert ans(sock, "leases-reclaim", {"remove": False})["result"] == 0
        assert ans(sock, "lease4-get", {"ip-address": "198.18.0.150"})["arguments"]["state"] == 2
        assert ans(sock, "lease4-add", {"ip-address": "198.18.0.152",
                                        "hw-address": "02:ee:00:00:01:09",
                                        "valid-lft": 100, "expire": 1_000_000})["result"] == 0
        assert ans(sock, "leases-reclaim", {"remove": True})["result"] == 0
        assert ans(sock, "lease4-get", {"ip-address": "198.18.0.152"})["result"] == 3
        # already reclaimed before: kept, as Kea keeps it
        assert ans(sock, "lease4-get", {"ip-address": "198.18.0.150"})["arguments"]["state"] == 2
        stats = ans(sock, "statistic-get", {"name": "reclaimed-leases"})["arguments"]
        assert stats["reclaimed-leases"][0][0] == 3


def test_pages_cover_every_lease_once_in_address_order(tmp_path: Path) -> None:
    with control_server(tmp_path) as (_srv, sock, port), RelayClient(port) as c:
        made = [c.dora(mac(k), 0x100 * (k + 1))[1].yiaddr for k in range(7)]
        assert ans(sock, "lease4-del", {"ip-address": made[3]})["result"] == 0
        seen: list[str] = []
        start = "start"
        while True:
            page = ans(sock, "lease4-get-page", {"from": start, "limit": 2})
            if page["result"] == 3:
                assert page["arguments"] == {"count": 0, "leases": []}
                break
            seen += [x["ip-address"] for x in page["arguments"]["leases"]]
            start = seen[-1]
        want = sorted(set(made) - {made[3]}, key=ipaddress.IPv4Address)
        assert seen == want


def test_changes_survive_sigkill_right_after_the_answer(tmp_path: Path) -> None:
    """A real `fastdhcp serve` (sync = true) is SIGKILLed as soon as lease4-add and lease4-del
    have answered: another process finds the change in LMDB, and the restarted server shows it
    and serves accordingly."""
    port = free_port()
    sock = tmp_path / "ctl" / "fastdhcp4.sock"
    cfg = tmp_path / "fastdhcp.toml"
    cfg.write_text(control_config_text(tmp_path / "db", port, sock, pools=POOL4))
    added = "198.18.0.150"
    with ServeProcess(cfg, tmp_path) as sp:
        assert sp.wait_notify(), sp.log()
        with RelayClient(port) as c:
            _, ack = c.dora(mac(1), 0x10)
        assert ans(sock, "lease4-add", {"ip-address": added, "hw-address": "02:ee:00:00:00:09",
                                        "hostname": "cpe-9.example.net", "fqdn-fwd": True,
                                        "user-context": {"plan": "1G"},
                                        "comment": "lab"})["result"] == 0
        assert ans(sock, "lease4-del", {"ip-address": ack.yiaddr})["result"] == 0
        sp.signal(signal.SIGKILL)
        sp.wait()
    raw = lmdb_leases(tmp_path / "db")
    assert added in raw and ack.yiaddr not in raw
    with ServeProcess(cfg, tmp_path) as sp:
        assert sp.wait_notify(), sp.log()
        assert ans(sock, "lease4-get", {"ip-address": ack.yiaddr})["result"] == 3
        lease = ans(sock, "lease4-get", {"ip-address": added})["arguments"]
        assert lease["hw-address"] == "02:ee:00:00:00:09"
        assert lease["user-context"] == {"plan": "1G", "comment": "lab"}
        assert (lease["fqdn-fwd"], lease["fqdn-rev"]) == (True, False)
        with RelayClient(port) as c:
            # the deleted address is free again: the four-address pool still has four
            got = {c.dora(mac(20 + k), 0x100 * (k + 1))[1].yiaddr for k in range(4)}
        assert ack.yiaddr in got and len(got) == 4


# ------------------------------------------------------------ `fastdhcp leases` beside a server


def _leases_cli(*argv: str) -> tuple[int, str, str]:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "fastdhcp", "leases", *argv],
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def test_leases_delete_goes_through_the_running_server(tmp_path: Path) -> None:
    """With the server running, `fastdhcp leases --config F delete IP` is the server's
    lease4-del: the server frees the address at once (a full pool has room again); with it
    stopped, the same command deletes in LMDB directly; no verb lists."""
    port = free_port()
    sock = tmp_path / "ctl" / "fastdhcp4.sock"
    cfg = tmp_path / "fastdhcp.toml"
    cfg.write_text(control_config_text(tmp_path / "db", port, sock, pools=POOL4))
    with ServeProcess(cfg, tmp_path) as sp:
        assert sp.wait_notify(), sp.log()
        with RelayClient(port) as c:
            acks = [c.dora(mac(k), 0x100 * (k + 1))[1].yiaddr for k in range(4)]
            status, out, err = _leases_cli("--config", str(cfg), "delete", acks[0])
            assert status == 0, err
            assert out == f"deleted {acks[0]} (through the running server)\n"
            assert ans(sock, "lease4-get", {"ip-address": acks[0]})["result"] == 3
            offer = c.exchange("discover", mac(9), 0x900)  # the pool has room at once
            assert offer.yiaddr == acks[0]
        status, _, err = _leases_cli("--config", str(cfg), "delete", acks[0])
        assert status == 1 and "no lease for" in err
        status, out, _ = _leases_cli("--db", str(tmp_path / "db"))  # no verb: list
        assert status == 0 and acks[1] in out and acks[0] not in out
    status, out, err = _leases_cli("--config", str(cfg), "delete", acks[1])
    assert status == 0, err
    assert out == f"deleted {acks[1]}\n"  # stopped: LMDB directly
    assert acks[1] not in lmdb_leases(tmp_path / "db")
