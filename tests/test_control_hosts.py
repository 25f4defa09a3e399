"""Reservation commands (Kea's host_cmds) on a running server: what the next real DORA is
offered after reservation-add / -del (scapy relay client as the oracle), persistence across a
restart and a reload, the config's read-only reservations, refusals that change nothing, and
paging (docs/control-api.md, "Reservation commands")."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fastdhcp.config import loads
from tests.control_helpers import control_config_text, unix_command
from tests.service_helpers import InProcessServer, RelayClient, dhcp_options, free_port, mac

pytestmark = pytest.mark.service

#: A four-address pool, so that "no other client gets it" is checked exhaustively.
POOL4 = ("198.18.0.100", "198.18.0.103")
RESERVED = "198.18.0.101"
CONFIG_RES = """
[[subnet4.reservations]]
hw-address = "02:cc:00:00:00:01"
ip-address = "198.18.0.20"
hostname = "fixed.example.test"
option-data = { domain-name-servers = ["198.18.0.54"] }
"""


@contextmanager
def server(tmp_path: Path, *, extra: str = "", pools: tuple[str, str] = POOL4, port: int = 0):
    port = port or free_port()
    sock = tmp_path / "ctl" / "fastdhcp4.sock"
    cfg = loads(control_config_text(tmp_path / "db", port, sock, pools=pools) + extra)
    with InProcessServer(cfg) as srv:
        yield srv, sock, port


def add(sock: Path, **res: Any) -> dict[str, Any]:
    return unix_command(sock, "reservation-add", {"reservation": {"subnet-id": 1, **res}})


def offer_of(port: int, chaddr: bytes, xid: int, circuit: bytes = b"port-1") -> Any:
    with RelayClient(port, timeout=2.0) as rc:
        return rc.exchange("discover", chaddr, xid, circuit=circuit)


def test_add_then_dora_gets_the_reserved_address_and_options(tmp_path):
    with server(tmp_path) as (_srv, sock, port):
        ans = add(sock, **{"hw-address": "02:aa:00:00:00:01", "ip-address": RESERVED,
                           "hostname": "cpe-1.example.test",
                           "option-data": [{"name": "domain-name-servers",
                                            "data": "198.18.0.77, 198.18.0.78"}]})
        assert ans == {"result": 0, "text": "Host added."}
        with RelayClient(port) as rc:
            offer, ack = rc.dora(bytes.fromhex("02aa00000001"), 0x200)
        assert offer.yiaddr == RESERVED and ack.yiaddr == RESERVED
        assert dhcp_options(offer)["name_server"] == ("198.18.0.77", "198.18.0.78")
        assert dhcp_options(ack)["name_server"] == ("198.18.0.77", "198.18.0.78")
        # subnet options still there (host > subnet > global)
        assert dhcp_options(ack)["router"] == "198.18.0.1"
        got = unix_command(sock, "reservation-get", {"subnet-id": 1,
                                                     "identifier-type": "hw-address",
                                                     "identifier": "02:aa:00:00:00:01"})
        assert got["result"] == 0 and got["text"] == "Host found."
        h = got["arguments"]
        assert h["ip-address"] == RESERVED and h["hw-address"] == "02:aa:00:00:00:01"
        assert h["hostname"] == "cpe-1.example.test" and h["subnet-id"] == 1
        assert h["option-data"][0]["name"] == "domain-name-servers"
        assert h["next-server"] == "0.0.0.0" and h["boot-file-name"] == ""


def test_no_other_client_is_offered_the_reserved_address(tmp_path):
    with server(tmp_path) as (_srv, sock, port):
        assert add(sock, **{"hw-address": "02:aa:00:00:00:01",
                            "ip-address": RESERVED})["result"] == 0
        got = []
        with RelayClient(port) as rc:
            for k in range(3):
                offer, ack = rc.dora(mac(k + 1), 0x1000 + 16 * k)
                got.append(ack.yiaddr)
        assert sorted(got) == ["198.18.0.100", "198.18.0.102", "198.18.0.103"]
        # the pool is now full but for the reserved address: a fourth client gets nothing
        with pytest.raises(TimeoutError):
            offer_of(port, mac(9), 0x2000)
        # its owner still gets it
        assert offer_of(port, bytes.fromhex("02aa00000001"), 0x2100).yiaddr == RESERVED


def test_circuit_id_reservation_through_option_82(tmp_path):
    with server(tmp_path) as (_srv, sock, port):
        assert add(sock, **{"circuit-id": "'ge-0/0/7'", "ip-address": RESERVED})["result"] == 0
        # any MAC behind that circuit
        offer = offer_of(port, mac(0x77), 0x300, circuit=b"ge-0/0/7")
        assert offer.yiaddr == RESERVED
        other = offer_of(port, mac(0x78), 0x310, circuit=b"ge-0/0/8")
        assert other.yiaddr != RESERVED
        got = unix_command(sock, "reservation-get-by-id", {"identifier-type": "circuit-id",
                                                           "identifier": "67652d302f302f37"})
        assert got["result"] == 0 and got["text"] == "1 IPv4 host(s) found."
        assert got["arguments"]["hosts"][0]["circuit-id"] == b"ge-0/0/7".hex().upper()


def test_del_frees_the_address(tmp_path):
    with server(tmp_path) as (_srv, sock, port):
        assert add(sock, **{"hw-address": "02:aa:00:00:00:01",
                            "ip-address": RESERVED})["result"] == 0
        with RelayClient(port) as rc:
            for k in range(3):
                rc.dora(mac(k + 1), 0x1000 + 16 * k)
        ans = unix_command(sock, "reservation-del", {"subnet-id": 1, "ip-address": RESERVED})
        assert ans == {"result": 0, "text": "Host deleted."}
        # the one free address is the one that was reserved
        assert offer_of(port, mac(9), 0x2000).yiaddr == RESERVED
        again = unix_command(sock, "reservation-del", {"subnet-id": 1, "ip-address": RESERVED})
        assert again == {"result": 3, "text": "Host not deleted (not found)."}
        assert unix_command(sock, "reservation-get", {
            "subnet-id": 1, "ip-address": RESERVED}) == {"result": 3, "text": "Host not found."}


def test_del_keeps_an_address_a_lease_holds(tmp_path):
    with server(tmp_path) as (_srv, sock, port):
        assert add(sock, **{"hw-address": "02:aa:00:00:00:01",
                            "ip-address": RESERVED})["result"] == 0
        with RelayClient(port) as rc:
            _o, ack = rc.dora(bytes.fromhex("02aa00000001"), 0x500)
            assert ack.yiaddr == RESERVED
        ans = unix_command(sock, "reservation-del", {"subnet-id": 1, "identifier-type":
                                                     "hw-address",
                                                     "identifier": "02aa00000001"})
        assert ans["result"] == 0
        with RelayClient(port) as rc:
            got = {rc.dora(mac(k + 1), 0x1000 + 16 * k)[1].yiaddr for k in range(3)}
        assert RESERVED not in got  # still bound to its client


def _lmdb_host_keys(db: Path) -> list[str]:
    """The hosts table's keys, read by the lmdb module in a separate process."""
    code = (
        "import json, sys, lmdb\n"
        "env = lmdb.open(sys.argv[1], readonly=True, max_dbs=16, lock=True)\n"
        "db = env.open_db(b'hosts', create=False)\n"
        "with env.begin(db=db) as txn:\n"
        "    print(json.dumps([k.hex() for k, _ in txn.cursor()]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True,
                         timeout=60, check=True)
    return list(json.loads(out.stdout))


def test_persists_across_restart_and_reload(tmp_path):
    port = free_port()
    with server(tmp_path, port=port) as (srv, sock, _port):
        assert add(sock, **{"hw-address": "02:aa:00:00:00:01",
                            "ip-address": RESERVED})["result"] == 0
    # durable: another process sees the record in LMDB (a: address index, h: the host)
    keys = _lmdb_host_keys(tmp_path / "db")
    assert "61" + ipaddress.IPv4Address(RESERVED).packed.hex() in keys
    assert any(k.startswith("68" + "00000001" + "00") for k in keys)
    with server(tmp_path, port=port) as (srv, sock, _port):
        # the restarted server marks it used (a 3-client fill leaves it) and serves it
        with RelayClient(port) as rc:
            got = {rc.dora(mac(k + 1), 0x1000 + 16 * k)[1].yiaddr for k in range(3)}
        assert RESERVED not in got
        assert offer_of(port, bytes.fromhex("02aa00000001"), 0x2100).yiaddr == RESERVED
        srv.call_soon(srv.server.reload, srv.server.config)  # as SIGHUP / config-reload
        got = unix_command(sock, "reservation-get", {"subnet-id": 1, "ip-address": RESERVED})
        assert got["result"] == 0
        assert offer_of(port, bytes.fromhex("02aa00000001"), 0x2200).yiaddr == RESERVED


def test_config_reservations_are_read_only(tmp_path):
    with server(tmp_path, extra=CONFIG_RES) as (_srv, sock, port):
        got = unix_command(sock, "reservation-get", {"subnet-id": 1,
                                                     "ip-address": "198.18.0.20"})
        assert got["result"] == 0
        h = got["arguments"]
        assert h["hw-address"] == "02:cc:00:00:00:01" and h["hostname"] == "fixed.example.test"
        assert [o["name"] for o in h["option-data"]] == ["domain-name-servers"]
        ans = unix_command(sock, "reservation-del", {"subnet-id": 1,
                                                     "ip-address": "198.18.0.20"})
        assert ans["result"] == 1 and "config file" in ans["text"]
        # still served
        assert offer_of(port, bytes.fromhex("02cc00000001"), 0x700).yiaddr == "198.18.0.20"
        # and the API may not shadow it
        dup_hw = add(sock, **{"hw-address": "02:cc:00:00:00:01", "ip-address": RESERVED})
        assert dup_hw["result"] == 1 and "hw-address" in dup_hw["text"]
        dup_ip = add(sock, **{"hw-address": "02:cc:00:00:00:02", "ip-address": "198.18.0.20"})
        assert dup_ip["result"] == 1 and "ip-address" in dup_ip["text"]
        allh = unix_command(sock, "reservation-get-all", {"subnet-id": 1})
        assert allh["text"] == "1 IPv4 host(s) found."


BAD = [
    ({}, "reservation"),
    ({"reservation": []}, "reservation"),
    ({"reservation": {"subnet-id": 1, "hw-address": "02:aa:00:00:00:09"}, "foo": 1}, "foo"),
    ({"reservation": {"hw-address": "02:aa:00:00:00:09"}}, "subnet-id"),
    ({"reservation": {"subnet-id": 7, "hw-address": "02:aa:00:00:00:09"}}, "subnet-id"),
    ({"reservation": {"subnet-id": 0, "hw-address": "02:aa:00:00:00:09"}}, "subnet-id"),
    ({"reservation": {"subnet-id": "1", "hw-address": "02:aa:00:00:00:09"}}, "subnet-id"),
    ({"reservation": {"subnet-id": 1, "hw-address": "02:aa:00:00:00:09", "colour": "red"}},
     "colour"),
    ({"reservation": {"subnet-id": 1, "ip-address": RESERVED}}, "hw-address"),
    ({"reservation": {"subnet-id": 1, "hw-address": "02:aa:00:00:00:09",
                      "client-id": "01:02"}}, "client-id"),
    ({"reservation": {"subnet-id": 1, "hw-address": "zz:aa"}}, "hexadecimal"),
    ({"reservation": {"subnet-id": 1, "client-id": "0102030"}}, "client-id"),
    ({"reservation": {"subnet-id": 1, "hw-address": "02:aa:00:00:00:09",
                      "ip-address": "10.0.0.1"}}, "ip-address"),
    ({"reservation": {"subnet-id": 1, "hw-address": "02:aa:00:00:00:09",
                      "ip-address": "198.18.0.0"}}, "ip-address"),
    ({"reservation": {"subnet-id": 1, "hw-address": "02:aa:00:00:00:09",
                      "ip-address": "198.18.0.300"}}, "ip-address"),
    ({"reservation": {"subnet-id": 1, "hw-address": "02:aa:00:00:00:01",
                      "ip-address": "198.18.0.102"}}, "hw-address"),   # duplicate identifier
    ({"reservation": {"subnet-id": 1, "hw-address": "02:aa:00:00:00:09",
                      "ip-address": RESERVED}}, "ip-address"),         # duplicate address
    ({"reservation": {"subnet-id": 1, "hw-address": "02:aa:00:00:00:09",
                      "option-data": [{"name": "no-such-option", "data": "1"}]}},
     "option-data[0].name"),
    ({"reservation": {"subnet-id": 1, "hw-address": "02:aa:00:00:00:09",
                      "option-data": [{"name": "routers", "data": "not-an-ip"}]}},
     "option-data[0].data"),
    ({"reservation": {"subnet-id": 1, "hw-address": "02:aa:00:00:00:09",
                      "option-data": {"routers": "198.18.0.1"}}}, "option-data"),
    ({"reservation": {"subnet-id": 1, "flex-id": "'abc'", "ip-address": "198.18.0.102"}},
     "flex-id"),
    ({"reservation": {"subnet-id": 1, "hw-address": "02:aa:00:00:00:09",
                      "hostname": "bad..name"}}, "hostname"),
    ({"reservation": {"subnet-id": 1, "hw-address": "02:aa:00:00:00:09",
                      "next-server": "x"}}, "next-server"),
    ({"reservation": {"subnet-id": 1, "duid": "01:02:03"}}, "duid"),
]


def test_bad_input_is_refused_and_changes_nothing(tmp_path):
    with server(tmp_path) as (_srv, sock, port):
        assert add(sock, **{"hw-address": "02:aa:00:00:00:01",
                            "ip-address": RESERVED})["result"] == 0
        for args, key in BAD:
            ans = unix_command(sock, "reservation-add", args)
            assert ans["result"] == 1, (args, ans)
            assert key in ans["text"], (args, ans)
        allh = unix_command(sock, "reservation-get-all", {"subnet-id": 1})
        assert allh["text"] == "1 IPv4 host(s) found."
        # refused adds claimed no address: three other clients fill exactly the other three
        with RelayClient(port) as rc:
            got = {rc.dora(mac(k + 1), 0x1000 + 16 * k)[1].yiaddr for k in range(3)}
        assert got == {"198.18.0.100", "198.18.0.102", "198.18.0.103"}
        for cmd, args in [
            ("reservation-get", {"subnet-id": 1}),
            ("reservation-get", {"subnet-id": 1, "identifier-type": "duid",
                                 "identifier": "01"}),
            ("reservation-get", {"subnet-id": 1, "ip-address": RESERVED, "x": 1}),
            ("reservation-get-all", {}),
            ("reservation-get-page", {"subnet-id": 1}),
            ("reservation-get-page", {"limit": 0}),
            ("reservation-get-by-id", {"subnet-id": 1, "identifier-type": "hw-address",
                                       "identifier": "02aa00000001"}),
            ("reservation-del", {"subnet-id": 1}),
            ("reservation-del", {"ip-address": RESERVED}),
        ]:
            ans = unix_command(sock, cmd, args)
            assert ans["result"] == 1, (cmd, args, ans)
        assert unix_command(sock, "reservation-get", {
            "subnet-id": 1, "ip-address": RESERVED})["result"] == 0


def test_get_page_covers_every_host_once(tmp_path):
    pools = ("198.18.0.100", "198.18.0.199")
    with server(tmp_path, extra=CONFIG_RES, pools=pools) as (_srv, sock, _port):
        want = {"02:cc:00:00:00:01"}
        for k in range(23):
            hw = f"02:bb:00:00:00:{k:02x}"
            want.add(hw)
            assert add(sock, **{"hw-address": hw,
                                "ip-address": f"198.18.0.{30 + k}"})["result"] == 0
        seen: list[str] = []
        args: dict[str, Any] = {"subnet-id": 1, "limit": 4}
        for _ in range(20):
            ans = unix_command(sock, "reservation-get-page", args)
            if ans["result"] == 3:
                assert ans["arguments"] == {"count": 0, "hosts": []}
                assert ans["text"] == "0 IPv4 host(s) found."
                break
            assert ans["result"] == 0
            a = ans["arguments"]
            assert a["count"] == len(a["hosts"]) <= 4
            assert ans["text"] == f"{a['count']} IPv4 host(s) found."
            seen.extend(h["hw-address"] for h in a["hosts"])
            args = {"subnet-id": 1, "limit": 4, **a["next"]}
        else:
            pytest.fail("paging did not end")
        assert len(seen) == len(set(seen)) == 24
        assert set(seen) == want
        by_hw = unix_command(sock, "reservation-get-by-hw-address",
                             {"hw-address": "02:bb:00:00:00:05"})
        assert by_hw["text"] == "1 IPv4 host(s) found."
        by_ip = unix_command(sock, "reservation-get-by-address", {"ip-address": "198.18.0.35"})
        assert by_ip["arguments"]["hosts"][0]["hw-address"] == "02:bb:00:00:00:05"


def test_client_id_reservation(tmp_path):
    with server(tmp_path) as (_srv, sock, port):
        assert add(sock, **{"client-id": "01:02:aa:00:00:00:42",
                            "ip-address": RESERVED})["result"] == 0
        with RelayClient(port) as rc:
            cid = [("client_id", bytes.fromhex("0102aa00000042"))]
            offer = rc.exchange("discover", mac(0x42), 0x900, options=cid)
            assert offer.yiaddr == RESERVED
            other = rc.exchange("discover", mac(0x42), 0x910)  # same MAC, no client-id
            assert other.yiaddr != RESERVED
        got = unix_command(sock, "reservation-get", {"subnet-id": 1, "identifier-type":
                                                     "client-id", "identifier": "0102aa00000042"})
        assert got["arguments"]["client-id"] == "0102AA00000042"


def test_survives_sigkill_right_after_the_answer(tmp_path):
    """A real `fastdhcp serve` child (sync = true): SIGKILL as soon as reservation-add has
    answered; another process then finds the host in LMDB, and a restarted server serves it."""
    import signal

    from tests.service_helpers import ServeProcess

    port = free_port()
    sock = tmp_path / "ctl" / "fastdhcp4.sock"
    cfg = tmp_path / "fastdhcp.toml"
    cfg.write_text(control_config_text(tmp_path / "db", port, sock, pools=POOL4))
    with ServeProcess(cfg, tmp_path) as sp:
        assert sp.wait_notify(), sp.log()
        assert add(sock, **{"hw-address": "02:aa:00:00:00:01",
                            "ip-address": RESERVED})["result"] == 0
        sp.signal(signal.SIGKILL)
        sp.wait()
    keys = _lmdb_host_keys(tmp_path / "db")
    assert "61" + ipaddress.IPv4Address(RESERVED).packed.hex() in keys
    with ServeProcess(cfg, tmp_path) as sp:
        assert sp.wait_notify(), sp.log()
        assert offer_of(port, bytes.fromhex("02aa00000001"), 0x3000).yiaddr == RESERVED
