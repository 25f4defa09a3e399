"""Every command of the management API, sent by the real kea-shell (Debian python3-kea-connector)
over HTTP to a real ``fastdhcp serve`` holding leases made by real DORA: Kea's result codes and
shapes (../shared/reference/kea-control-api.md), and each mutation checked by what the server
does next (the next DORA, the next read, its exit status).

One server for the whole module (the steps run in order and build on each other), so that the
module costs one start-up; each step is its own test so that a failure names the command.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service_helpers import (
    RelayClient,
    ServeProcess,
    config_text,
    dhcp_options,
    free_port,
    mac,
)

KEA_SHELL = shutil.which("kea-shell")
pytestmark = pytest.mark.skipif(KEA_SHELL is None and not os.environ.get("CI"),
                                reason="kea-shell not installed (Debian python3-kea-connector)")

MACS = [mac(0x100 + k) for k in range(3)]


def _hw(m: bytes) -> str:
    return ":".join(f"{b:02x}" for b in m)


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Lab:
    """The served process, its ports and the leases its clients got."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.http_port = _free_tcp_port()
        self.sock = tmp / "fastdhcp4.sock"
        self.config = tmp / "fastdhcp.toml"
        self.config.write_text(config_text(tmp / "db", self.port) + f"""
[[control-sockets]]
socket-type = "unix"
socket-name = "{self.sock}"

[[control-sockets]]
socket-type = "http"
socket-address = "127.0.0.1"
socket-port = {self.http_port}
""")
        self.proc = ServeProcess(self.config, tmp)
        self.leases: dict[str, str] = {}  # hw-address -> address ACKed by real DORA

    def shell(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """``kea-shell ... COMMAND`` with the arguments on stdin as it wants them (the body of
        the map, without braces); the one answer of the list it prints."""
        body = json.dumps(arguments)[1:-1] if arguments else ""
        proc = subprocess.run(
            [str(KEA_SHELL), "--host", "127.0.0.1", "--port", str(self.http_port),
             "--service", "dhcp4", "--timeout", "30", command],
            input=body, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, (proc.stdout, proc.stderr)
        answers = json.loads(proc.stdout)
        assert isinstance(answers, list) and len(answers) == 1, proc.stdout
        answer = answers[0]
        assert isinstance(answer, dict)
        return answer


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("keashell"))
    try:
        assert lab.proc.wait_notify(), lab.proc.log()
        with RelayClient(lab.port) as client:
            for k, m in enumerate(MACS):
                _, ack = client.dora(m, 0x1000 + 16 * k)
                lab.leases[_hw(m)] = ack.yiaddr
        yield lab
    finally:
        lab.proc.close()


def expect(answer: dict[str, Any], result: int, text: str | None = None) -> Any:
    assert answer["result"] == result, answer
    if text is not None:
        assert answer.get("text") == text, answer
    return answer.get("arguments")


# ------------------------------------------------------------------ server


ISSUE_COMMANDS = """list-commands version-get build-report status-get config-get config-test
config-set config-reload config-write dhcp-disable dhcp-enable leases-reclaim shutdown
statistic-get statistic-get-all statistic-reset statistic-reset-all statistic-remove
statistic-remove-all stat-lease4-get lease4-add lease4-update lease4-get lease4-get-all
lease4-get-page lease4-get-by-hw-address lease4-get-by-client-id lease4-get-by-hostname
lease4-del lease4-wipe reservation-add reservation-get reservation-get-all
reservation-get-page reservation-get-by-hw-address reservation-get-by-id
reservation-del""".split()


def test_list_commands(lab: Lab) -> None:
    names = expect(lab.shell("list-commands"), 0)
    assert names == sorted(names)
    assert set(ISSUE_COMMANDS) <= set(names), set(ISSUE_COMMANDS) - set(names)


def test_unknown_command(lab: Lab) -> None:
    answer = lab.shell("lease6-get-all")
    expect(answer, 2, "'lease6-get-all' command not supported.")


def test_version_get_and_build_report(lab: Lab) -> None:
    version = lab.shell("version-get")
    assert version["result"] == 0 and version["text"]
    assert "extended" in version["arguments"]
    report = lab.shell("build-report")
    assert report["result"] == 0 and report["text"]


def test_status_get(lab: Lab) -> None:
    status = expect(lab.shell("status-get"), 0)
    assert status["pid"] == lab.proc.proc.pid
    assert status["uptime"] >= 0 and status["reload"] >= 0
    assert "sockets" in status


# ------------------------------------------------------------------ statistics


def test_statistic_get_counts_the_real_doras(lab: Lab) -> None:
    stats = expect(lab.shell("statistic-get", {"name": "pkt4-ack-sent"}), 0)
    [[value, stamp]] = stats["pkt4-ack-sent"][:1]
    assert value == len(MACS)
    time.strptime(stamp.split(".")[0], "%Y-%m-%d %H:%M:%S")
    everything = expect(lab.shell("statistic-get-all"), 0)
    assert everything["pkt4-discover-received"][0][0] == len(MACS)
    assert everything["subnet[1].assigned-addresses"][0][0] == len(MACS)


def test_stat_lease4_get(lab: Lab) -> None:
    args = expect(lab.shell("stat-lease4-get"), 0)
    rs = args["result-set"]
    assert rs["columns"] == ["subnet-id", "total-addresses", "cumulative-assigned-addresses",
                             "assigned-addresses", "declined-addresses"]
    [row] = rs["rows"]
    assert row[0] == 1 and row[3] == len(MACS)


def test_statistic_reset_and_remove(lab: Lab) -> None:
    expect(lab.shell("statistic-reset", {"name": "pkt4-received"}), 0,
           "Statistic 'pkt4-received' reset.")
    after = expect(lab.shell("statistic-get", {"name": "pkt4-received"}), 0)
    assert after["pkt4-received"][0][0] == 0
    expect(lab.shell("statistic-remove", {"name": "pkt4-received"}), 0,
           "Statistic 'pkt4-received' removed.")
    expect(lab.shell("statistic-reset-all"), 0, "All statistics reset to neutral values.")
    expect(lab.shell("statistic-remove-all"), 0,
           "Warning: statistic-remove-all command is deprecated. All statistics removed.")
    assert expect(lab.shell("statistic-get", {"name": "pkt4-ack-sent"}), 0) == {}


# ------------------------------------------------------------------ leases (read)


def test_lease4_get_by_address_and_identifier(lab: Lab) -> None:
    hw, ip = next(iter(lab.leases.items()))
    lease = expect(lab.shell("lease4-get", {"ip-address": ip}), 0, "IPv4 lease found.")
    assert lease["hw-address"] == hw and lease["subnet-id"] == 1 and lease["state"] == 0
    assert {"cltt", "valid-lft", "fqdn-fwd", "fqdn-rev", "hostname"} <= set(lease)
    same = expect(lab.shell("lease4-get", {"identifier-type": "hw-address", "identifier": hw,
                                           "subnet-id": 1}), 0, "IPv4 lease found.")
    assert same == lease
    expect(lab.shell("lease4-get", {"ip-address": "198.18.0.250"}), 3, "Lease not found.")
    expect(lab.shell("lease4-get", {"ip-address": "198.18.0.300"}), 1)


def test_lease4_get_all_and_page(lab: Lab) -> None:
    leases = expect(lab.shell("lease4-get-all"), 0, f"{len(MACS)} IPv4 lease(s) found.")
    assert {x["ip-address"] for x in leases["leases"]} == set(lab.leases.values())
    page = expect(lab.shell("lease4-get-page", {"from": "start", "limit": 2}), 0,
                  "2 IPv4 lease(s) found.")
    assert page["count"] == 2
    rest = expect(lab.shell("lease4-get-page", {"from": page["leases"][-1]["ip-address"],
                                                "limit": 2}), 0, "1 IPv4 lease(s) found.")
    seen = [x["ip-address"] for x in page["leases"] + rest["leases"]]
    assert seen == sorted(lab.leases.values(), key=ipaddress.IPv4Address)
    end = lab.shell("lease4-get-page", {"from": rest["leases"][-1]["ip-address"], "limit": 2})
    assert expect(end, 3, "0 IPv4 lease(s) found.") == {"count": 0, "leases": []}
    expect(lab.shell("lease4-get-page", {"from": "start", "limit": 0}), 1,
           "page size of retrieved leases must not be 0")


def test_lease4_get_by_hw_address(lab: Lab) -> None:
    hw, ip = next(iter(lab.leases.items()))
    found = expect(lab.shell("lease4-get-by-hw-address", {"hw-address": hw}), 0,
                   "1 IPv4 lease(s) found.")
    assert [x["ip-address"] for x in found["leases"]] == [ip]
    expect(lab.shell("lease4-get-by-hw-address", {"hw-address": "02:ff:ff:ff:ff:ff"}), 3,
           "0 IPv4 lease(s) found.")


# ------------------------------------------------------------------ leases (write)

ADDED = "198.18.0.240"  # inside the subnet, outside the pool (Kea allows that)
ADDED_HW = "02:aa:bb:cc:dd:01"


def test_lease4_add_and_its_lookups(lab: Lab) -> None:
    expect(lab.shell("lease4-add", {"ip-address": ADDED, "hw-address": ADDED_HW,
                                    "client-id": "ff0102aabbccdd01",
                                    "hostname": "CPE-01.Example.NET",
                                    "user-context": {"customer": "C-1"}}), 0,
           f"Lease for address {ADDED}, subnet-id 1 added.")
    lease = expect(lab.shell("lease4-get", {"ip-address": ADDED}), 0)
    assert lease["client-id"] == "ff:01:02:aa:bb:cc:dd:01"
    assert lease["hostname"] == "cpe-01.example.net"
    assert lease["user-context"] == {"customer": "C-1"}
    by_cid = expect(lab.shell("lease4-get-by-client-id",
                              {"client-id": "ff:01:02:aa:bb:cc:dd:01"}), 0,
                    "1 IPv4 lease(s) found.")
    by_name = expect(lab.shell("lease4-get-by-hostname", {"hostname": "cpe-01.EXAMPLE.net"}),
                     0, "1 IPv4 lease(s) found.")
    assert by_cid["leases"] == by_name["leases"] == [lease]
    expect(lab.shell("lease4-add", {"ip-address": ADDED, "hw-address": ADDED_HW}), 1,
           "IPv4 lease already exists.")
    expect(lab.shell("lease4-add", {"ip-address": ADDED, "hw-address": "02aabbccdd01"}), 1,
           "invalid format of the decoded string '02aabbccdd01'")
    expect(lab.shell("lease4-add", {"ip-address": "198.18.0.242", "hw-address": ADDED_HW,
                                    "user-context": "x"}), 1,
           "Invalid user context '\"x\"' is not a JSON map.")
    expect(lab.shell("lease4-get", {"ip-address": "198.18.0.242"}), 3)


def test_lease4_update(lab: Lab) -> None:
    expect(lab.shell("lease4-update", {"ip-address": ADDED, "hw-address": ADDED_HW,
                                       "hostname": "cpe-01b.example.net", "valid-lft": 7200}),
           0, "IPv4 lease updated.")
    lease = expect(lab.shell("lease4-get", {"ip-address": ADDED}), 0)
    assert lease["hostname"] == "cpe-01b.example.net" and lease["valid-lft"] == 7200
    assert "user-context" not in lease  # replaced whole, as Kea: not re-sent, gone
    expect(lab.shell("lease4-update", {"ip-address": "198.18.0.241", "hw-address": ADDED_HW,
                                       "force-create": True}), 0, "IPv4 lease added.")


def test_lease4_del_frees_the_address_for_its_next_dora(lab: Lab) -> None:
    hw, ip = list(lab.leases.items())[1]
    expect(lab.shell("lease4-del", {"ip-address": ip}), 0, "IPv4 lease deleted.")
    expect(lab.shell("lease4-del", {"ip-address": ip}), 3, "IPv4 lease not found.")
    expect(lab.shell("lease4-get", {"ip-address": ip}), 3, "Lease not found.")
    expect(lab.shell("lease4-del", {"ip-address": "198.18.0.241"}), 0, "IPv4 lease deleted.")
    # The server saw the delete: the same client's next DORA binds again and is counted anew.
    with RelayClient(lab.port) as client:
        _, ack = client.dora(bytes.fromhex(hw.replace(":", "")), 0x2000)
    assert dhcp_options(ack)["message-type"] == 5
    lab.leases[hw] = ack.yiaddr
    assert expect(lab.shell("lease4-get", {"ip-address": ack.yiaddr}), 0)["hw-address"] == hw


def test_leases_reclaim(lab: Lab) -> None:
    expect(lab.shell("leases-reclaim", {"remove": False}), 0,
           "Reclamation of expired leases is complete.")
    expect(lab.shell("leases-reclaim"), 1)


# ------------------------------------------------------------------ reservations

RES_HW = "02:cc:00:00:00:01"
RES_IP = "198.18.0.230"


def test_reservation_commands(lab: Lab) -> None:
    expect(lab.shell("reservation-add", {"reservation": {
        "subnet-id": 1, "hw-address": RES_HW, "ip-address": RES_IP,
        "hostname": "reserved-1"}}), 0, "Host added.")
    host = expect(lab.shell("reservation-get", {"subnet-id": 1, "identifier-type": "hw-address",
                                                "identifier": RES_HW}), 0, "Host found.")
    assert host["ip-address"] == RES_IP and host["hw-address"] == RES_HW
    assert expect(lab.shell("reservation-get", {"subnet-id": 1, "ip-address": RES_IP}),
                  0) == host
    every = expect(lab.shell("reservation-get-all", {"subnet-id": 1}), 0,
                   "1 IPv4 host(s) found.")
    assert every["hosts"] == [host]
    page = expect(lab.shell("reservation-get-page", {"subnet-id": 1, "limit": 10}), 0)
    assert page["count"] == 1 and page["hosts"] == [host]
    by_hw = expect(lab.shell("reservation-get-by-hw-address", {"hw-address": RES_HW}), 0)
    by_id = expect(lab.shell("reservation-get-by-id", {"identifier-type": "hw-address",
                                                       "identifier": RES_HW}), 0)
    assert by_hw["hosts"] == by_id["hosts"] == [host]
    # The server uses it: the reserved client's DORA gets the reserved address.
    with RelayClient(lab.port) as client:
        _, ack = client.dora(bytes.fromhex(RES_HW.replace(":", "")), 0x3000)
    assert ack.yiaddr == RES_IP
    expect(lab.shell("reservation-del", {"subnet-id": 1, "identifier-type": "hw-address",
                                         "identifier": RES_HW}), 0, "Host deleted.")
    expect(lab.shell("reservation-get", {"subnet-id": 1, "identifier-type": "hw-address",
                                         "identifier": RES_HW}), 3, "Host not found.")


# ------------------------------------------------------------------ config


def test_config_get_test_set_write_reload(lab: Lab) -> None:
    running = expect(lab.shell("config-get"), 0)
    assert set(running) == {"Dhcp4"}
    assert running["Dhcp4"]["subnet4"][0]["id"] == 1
    expect(lab.shell("config-test", running), 0)
    expect(lab.shell("config-set", running), 0, "Configuration successful.")
    bad = json.loads(json.dumps(running))
    bad["Dhcp4"]["subnet4"][0]["subnet"] = "not-a-prefix"
    assert lab.shell("config-test", bad)["result"] == 1
    assert lab.shell("config-set", bad)["result"] == 1
    written = lab.tmp / "written.toml"
    out = expect(lab.shell("config-write", {"filename": str(written)}), 0)
    assert out["filename"] == str(written) and out["size"] == written.stat().st_size
    check = subprocess.run([os.environ.get("PYTHON", "python3"), "-m", "fastdhcp",
                            "check-config", "--config", str(written)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    expect(lab.shell("config-reload"), 0, "Configuration successful.")
    # Leases survive a reload: the lease added above is still there.
    assert expect(lab.shell("lease4-get", {"ip-address": ADDED}), 0)["hw-address"] == ADDED_HW


# ------------------------------------------------------------------ service state


def test_dhcp_disable_and_enable(lab: Lab) -> None:
    expect(lab.shell("dhcp-disable", {"max-period": 60}), 0,
           "DHCPv4 service disabled for 60 seconds")
    with RelayClient(lab.port, timeout=1.0) as client, pytest.raises(TimeoutError):
        client.dora(mac(0x900), 0x4000)
    expect(lab.shell("dhcp-enable"), 0, "DHCP service successfully enabled")
    with RelayClient(lab.port) as client:
        offer, ack = client.dora(mac(0x901), 0x4100)
    assert ack.yiaddr == offer.yiaddr


def test_lease4_wipe_frees_the_subnet(lab: Lab) -> None:
    held = expect(lab.shell("lease4-get-all"), 0)["leases"]
    expect(lab.shell("lease4-wipe", {"subnet-id": 1}), 0,
           f"Deleted {len(held)} IPv4 lease(s) from subnet(s) 1")
    expect(lab.shell("lease4-get-all"), 3, "0 IPv4 lease(s) found.")
    expect(lab.shell("lease4-wipe", {"subnet-id": 1}), 3)
    stat = expect(lab.shell("stat-lease4-get", {"subnet-id": 1}), 0)
    assert stat["result-set"]["rows"][0][3] == 0


def test_shutdown_with_exit_value(lab: Lab) -> None:
    expect(lab.shell("shutdown", {"exit-value": 3}), 0, "Shutting down.")
    assert lab.proc.wait(timeout=30) == 3
    assert not lab.sock.exists()
