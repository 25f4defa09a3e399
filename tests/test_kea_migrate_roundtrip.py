"""The move from a real Kea 2.2 and back (issue 18), end to end on loopback.

1. Kea serves DORA to relayed clients (scapy, the independent oracle) on a config with a shared
   network of two subnets, several pools, a plain subnet chosen by option 118, reservations by
   hw-address and by circuit-id, and option-data at the global, shared-network, subnet and
   reservation levels; each client renews once, and Kea's renewal ACK is kept as the reference.
2. Kea stops; ``fastdhcp import-kea`` converts its config and imports its lease file
   (no unsupported key, exit 0), and ``check-config`` accepts the result as written.
3. ``fastdhcp serve`` starts on the result (on Kea's port, which Kea took on its command line):
   every client's renewal is ACKed with the address Kea gave it and the same options.
4. ``fastdhcp leases export --format kea-csv`` and ``fastdhcp export-kea`` write Kea's two files;
   ``kea-dhcp4 -t`` accepts the config, and a Kea started on them lists, with
   ``lease4-get-all``, the leases fastdhcp had.

Needs kea-dhcp4 and root (Kea answers a relay at port 67); a failure under CI without them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.control_helpers import unix_command
from tests.kea_helpers import HOOKS, KeaRelay, kea_check, kea_process, need_kea
from tests.service_helpers import RELAY_IP, ROOT, RelayClient, ServeProcess, dhcp_options, mac

pytestmark = pytest.mark.service

#: The options every client asks for: mask, routers, DNS, domain, NTP, tftp server (66), and
#: 252 (WPAD, given by code as hex).
PRL = [1, 3, 6, 15, 42, 66, 252]
#: Relayed clients of the shared network (circuit "port-1"); 8 of them, for 6 pool addresses in
#: subnet 10: the last ones overflow into subnet 11 as Kea's shared network does.
DYNAMIC = range(1, 9)
#: Clients that send option 61: one a MAC-form id, one an opaque one.
CLIENT_IDS = {2: b"\x01" + mac(2), 3: b"\x00customer-3"}
HW_RESERVED = 0x50  # mac(0x50) = 02:00:00:00:00:50 -> 198.18.10.50
CIRCUIT_RESERVED = 0x60  # circuit 'port-7' -> 198.18.10.60
PLAIN = range(0x70, 0x74)  # option 118 = 198.18.20.0: the plain subnet 20


def _client(n: int) -> dict[str, Any]:
    circuit = b"port-7" if n == CIRCUIT_RESERVED else b"port-1"
    opts: list[Any] = [("param_req_list", PRL)]
    if n in CLIENT_IDS:
        opts.append(("client_id", CLIENT_IDS[n]))
    if n in PLAIN:
        opts.append(("subnet-selection", "198.18.20.0"))
    return {"chaddr": mac(n), "circuit": circuit, "options": opts}


CLIENTS = [*DYNAMIC, HW_RESERVED, CIRCUIT_RESERVED, *PLAIN]


def kea_config(tmp: Path, sock: Path) -> dict[str, Any]:
    """The Kea deployment being moved."""
    return {"Dhcp4": {
        "interfaces-config": {"interfaces": ["lo"], "dhcp-socket-type": "udp"},
        "control-socket": {"socket-type": "unix", "socket-name": str(sock)},
        "lease-database": {"type": "memfile", "persist": True,
                           "name": str(tmp / "kea-leases4.csv"), "lfc-interval": 0},
        "multi-threading": {"enable-multi-threading": False},
        "hooks-libraries": [{"library": f"{HOOKS}/libdhcp_lease_cmds.so"}],
        "valid-lifetime": 3600, "renew-timer": 900, "rebind-timer": 1800,
        "option-data": [
            {"name": "domain-name-servers", "data": "198.18.0.53, 198.18.0.54"},
            {"name": "domain-name", "data": "isp.example"},
        ],
        "shared-networks": [{
            "name": "access",
            "relay": {"ip-addresses": [RELAY_IP]},
            "valid-lifetime": 7200,
            "option-data": [{"name": "ntp-servers", "data": "198.18.0.123"}],
            "subnet4": [
                {"id": 10, "subnet": "198.18.10.0/24",
                 "pools": [{"pool": "198.18.10.100 - 198.18.10.103"},
                           {"pool": "198.18.10.200/31"}],
                 "option-data": [{"name": "routers", "data": "198.18.10.1"}],
                 "reservations": [
                     {"hw-address": mac(HW_RESERVED).hex(":"), "ip-address": "198.18.10.50",
                      "option-data": [{"name": "domain-name", "data": "vip.isp.example"}]},
                     {"circuit-id": "'port-7'", "ip-address": "198.18.10.60"},
                 ]},
                {"id": 11, "subnet": "198.18.11.0/24",
                 "pools": [{"pool": "198.18.11.100 - 198.18.11.149"}],
                 "option-data": [{"name": "routers", "data": "198.18.11.1"},
                                 {"code": 252, "csv-format": False, "data": "68 74 74 70"}]},
            ]}],
        "subnet4": [
            {"id": 20, "subnet": "198.18.20.0/24",
             "pools": [{"pool": "198.18.20.100 - 198.18.20.149"},
                       {"pool": "198.18.20.200 - 198.18.20.210"}],
             "renew-timer": 600,
             "option-data": [{"name": "routers", "data": "198.18.20.1"},
                             {"name": "tftp-server-name", "data": "boot.isp.example"}]},
        ],
        "loggers": [{"name": "kea-dhcp4", "severity": "WARN",
                     "output_options": [{"output": str(tmp / "kea.log")}]}],
    }}


def _dora(c: RelayClient, n: int) -> Any:
    kw = _client(n)
    offer = c.exchange("discover", kw["chaddr"], 0x10000 + n, circuit=kw["circuit"],
                       options=kw["options"])
    ack = c.exchange("request", kw["chaddr"], 0x20000 + n, circuit=kw["circuit"], options=[
        ("server_id", dhcp_options(offer)["server_id"]), ("requested_addr", offer.yiaddr),
        *kw["options"]])
    assert dhcp_options(ack)["message-type"] == 5, f"client {n}: no ACK from Kea"
    return ack


def _renew(c: RelayClient, n: int, ip: str) -> Any:
    """A RENEWING REQUEST (RFC 2131 4.3.2: ciaddr set, no server id, no option 50)."""
    kw = _client(n)
    return c.exchange("request", kw["chaddr"], 0x30000 + n, circuit=kw["circuit"],
                      ciaddr=ip, options=kw["options"])


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastdhcp", *argv], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, check=False)


def _leases(sock: Path) -> dict[str, dict[str, Any]]:
    ans = unix_command(sock, "lease4-get-all")
    assert ans["result"] in (0, 3), ans  # 3: empty
    return {x["ip-address"]: x for x in ans.get("arguments", {}).get("leases", [])}


#: What a lease is, for the comparison across servers (cltt and valid-lft give its expiry).
_FIELDS = ("hw-address", "subnet-id", "state", "valid-lft", "cltt")


def _same(lease: dict[str, Any]) -> tuple[Any, ...]:
    cid = lease.get("client-id", "")
    hw = lease["hw-address"]
    if cid == "01:" + hw:
        cid = ""  # a MAC-form id goes back without client-id (docs/migrating-from-kea.md)
    return (*(lease[k] for k in _FIELDS), cid)


def test_kea_to_fastdhcp_and_back(tmp_path: Path) -> None:
    need_kea()
    kdir = tmp_path / "kea"
    kdir.mkdir()
    ksock = kdir / "kea4.sock"
    # 1. Kea serves, and its renewal ACKs are the reference
    kea_acks: dict[int, Any] = {}
    with kea_process(kdir, kea_config(kdir, ksock), ksock) as port, KeaRelay(port) as kc:
        for n in CLIENTS:
            ip = _dora(kc, n).yiaddr
            kea_acks[n] = _renew(kc, n, ip)
            assert kea_acks[n].yiaddr == ip
        kea_leases = _leases(ksock)
    assert kea_acks[HW_RESERVED].yiaddr == "198.18.10.50"
    assert kea_acks[CIRCUIT_RESERVED].yiaddr == "198.18.10.60"
    subnets = {kea_leases[a.yiaddr]["subnet-id"] for a in kea_acks.values()}
    assert subnets == {10, 11, 20}, "the config must put clients in every subnet"
    assert len(kea_leases) == len(CLIENTS)

    # 2. import, check
    toml = tmp_path / "fastdhcp.toml"
    db = tmp_path / "db"
    cp = _cli("import-kea", "--config", str(kdir / "kea-dhcp4.json"), "--leases",
              str(kdir / "kea-leases4.csv"), "--out", str(toml), "--db", str(db))
    assert cp.returncode == 0, cp.stderr
    assert "unsupported" not in cp.stderr, cp.stderr
    assert f"{len(CLIENTS)} leases imported" in cp.stdout, cp.stdout
    cp = _cli("check-config", "--config", str(toml))
    assert cp.returncode == 0, cp.stdout + cp.stderr

    # 3. fastdhcp on the result, on Kea's port; each renewal as Kea's
    doc = tomllib.loads(toml.read_text())
    doc["server"]["port"] = port
    run_toml = tmp_path / "fastdhcp-run.toml"
    run_toml.write_text(tomli_w.dumps(doc))
    fsock = Path(doc["control-sockets"][0]["socket-name"])
    assert fsock == ksock
    with ServeProcess(run_toml, tmp_path) as srv:
        assert srv.wait_notify(), srv.log()
        with RelayClient(port) as fc:
            for n in CLIENTS:
                kack = kea_acks[n]
                fack = _renew(fc, n, kack.yiaddr)
                want, got = dhcp_options(kack), dhcp_options(fack)
                # both echo option 118 (RFC 3011 3: an identical copy) to the clients that sent it
                assert want.get("subnet-selection") == ("198.18.20.0" if n in PLAIN else None)
                assert got["message-type"] == 5, f"client {n}: {got}"
                assert fack.yiaddr == kack.yiaddr, f"client {n}"
                # the server identifier is each server's own address: both 127.0.0.1 here
                assert got == want, f"client {n}: fastdhcp {got} != Kea {want}"
        fd_leases = _leases(ksock)
    assert set(fd_leases) == set(kea_leases)

    # 4. the way back: two files, Kea's check, Kea's lease4-get-all
    back = tmp_path / "back"
    back.mkdir()
    csv_path = back / "kea-leases4.csv"
    cp = _cli("leases", "--db", str(db), "export", "--format", "kea-csv")
    assert cp.returncode == 0, cp.stderr
    csv_path.write_text(cp.stdout)
    exported = back / "exported.json"
    cp = _cli("export-kea", "--config", str(toml), "--lease-file", str(csv_path),
              "--out", str(exported))
    assert cp.returncode == 0, cp.stderr
    check = kea_check(exported)
    assert check.returncode == 0, check.stdout + check.stderr
    kea_doc = json.loads(exported.read_text())
    # Kea's own log goes to the test dir rather than stderr
    kea_doc["Dhcp4"]["loggers"] = [{"name": "kea-dhcp4", "severity": "WARN",
                                    "output_options": [{"output": str(back / "kea.log")}]}]
    bsock = Path(kea_doc["Dhcp4"]["control-socket"]["socket-name"])
    with kea_process(back, kea_doc, bsock):
        back_leases = _leases(bsock)
    assert {ip: _same(x) for ip, x in back_leases.items()} == \
        {ip: _same(x) for ip, x in fd_leases.items()}
