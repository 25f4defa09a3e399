"""Kea's statistics over the control socket, against real DORAs (scapy relay client), RELEASE
and DECLINE built with scapy, malformed datagrams and the Prometheus endpoint scraped over
HTTP (reference: kea-control-api.md, C2, C4, C5; what the reference does not show was asked
of a Kea 2.2 on this machine and is noted where it is used)."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.control_helpers import control_server, unix_command
from tests.service_helpers import RelayClient, dhcp_options, free_port, mac

pytestmark = pytest.mark.service

SAMPLE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
POOL3 = ("198.18.0.100", "198.18.0.102")  # 3 addresses: exhaustion in a few DORAs
COLUMNS = ["subnet-id", "total-addresses", "cumulative-assigned-addresses",
           "assigned-addresses", "declined-addresses"]

#: What a Kea 2.2 (kea-dhcp4 2.2.0, Debian) showed in statistic-get-all right after start.
KEA_START_NAMES = {
    "cumulative-assigned-addresses", "declined-addresses", "pkt4-ack-received",
    "pkt4-ack-sent", "pkt4-decline-received", "pkt4-discover-received", "pkt4-inform-received",
    "pkt4-nak-received", "pkt4-nak-sent", "pkt4-offer-received", "pkt4-offer-sent",
    "pkt4-parse-failed", "pkt4-receive-drop", "pkt4-received", "pkt4-release-received",
    "pkt4-request-received", "pkt4-sent", "pkt4-unknown-received",
    "reclaimed-declined-addresses", "reclaimed-leases", "v4-allocation-fail",
    "v4-allocation-fail-classes", "v4-allocation-fail-no-pools",
    "v4-allocation-fail-shared-network", "v4-allocation-fail-subnet",
    "v4-reservation-conflicts",
    "subnet[1].assigned-addresses", "subnet[1].cumulative-assigned-addresses",
    "subnet[1].declined-addresses", "subnet[1].reclaimed-declined-addresses",
    "subnet[1].reclaimed-leases", "subnet[1].total-addresses",
    "subnet[1].v4-reservation-conflicts",
}


def values(sock: Path) -> dict[str, int]:
    """statistic-get-all as {name: value}, checking Kea's shape on the way."""
    ans = unix_command(sock, "statistic-get-all")
    assert ans["result"] == 0 and "text" not in ans
    out = {}
    for name, samples in ans["arguments"].items():
        assert isinstance(samples, list) and len(samples) == 1, (name, samples)
        value, at = samples[0]
        assert isinstance(value, int) and SAMPLE.match(at), (name, samples)
        out[name] = value
    return out


def stat(sock: Path, name: str) -> int | None:
    ans = unix_command(sock, "statistic-get", {"name": name})
    assert ans["result"] == 0 and "text" not in ans
    if not ans["arguments"]:
        return None
    [[value, at]] = ans["arguments"][name]
    assert SAMPLE.match(at)
    return int(value)


def wait_stat(sock: Path, name: str, want: int, timeout: float = 5.0) -> None:
    """A packet with no reply (RELEASE, DECLINE, a drop) is counted once the server has read
    it: poll until it is."""
    deadline = time.monotonic() + timeout
    while (got := stat(sock, name)) != want:
        assert time.monotonic() < deadline, f"{name} = {got}, expected {want}"
        time.sleep(0.02)


def release(c: RelayClient, chaddr: bytes, ip: str, sid: str, xid: int) -> None:
    c.send_raw(c.build("release", chaddr, xid, ciaddr=ip, options=[("server_id", sid)]))


def decline(c: RelayClient, chaddr: bytes, ip: str, sid: str, xid: int) -> None:
    c.send_raw(c.build("decline", chaddr, xid, options=[("server_id", sid),
                                                        ("requested_addr", ip)]))


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def prom(text: str, family: str, name: str) -> float | None:
    m = re.search(rf'^{re.escape(family)}{{name="{re.escape(name)}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else None


# ------------------------------------------------------------------ statistic-get-all


def test_counts_after_doras_and_exhaustion(tmp_path: Path) -> None:
    with control_server(tmp_path, pools=POOL3) as (_srv, sock, port), RelayClient(port) as c:
        start = values(sock)
        assert set(start) == KEA_START_NAMES
        assert start["subnet[1].total-addresses"] == 3
        assert all(v == 0 for k, v in start.items() if k != "subnet[1].total-addresses")
        for i in range(3):
            c.dora(mac(i + 1), 0x100 + 2 * i)
        v = values(sock)
        assert v["pkt4-received"] == 6
        assert v["pkt4-discover-received"] == 3 and v["pkt4-request-received"] == 3
        assert v["pkt4-offer-sent"] == 3 and v["pkt4-ack-sent"] == 3 and v["pkt4-sent"] == 6
        assert v["cumulative-assigned-addresses"] == 3
        assert v["subnet[1].cumulative-assigned-addresses"] == 3
        assert v["subnet[1].assigned-addresses"] == 3
        assert v["pkt4-receive-drop"] == 0 and v["v4-allocation-fail"] == 0
        assert "subnet[1].v4-allocation-fail" not in v  # Kea makes it at its first event

        # The pool is full: the next DISCOVER gets no OFFER (Kea: counted as an allocation
        # failure, not a drop; -subnet and -classes too, as a Kea 2.2 counted it).
        c.send_raw(c.build("discover", mac(9), 0x900))
        wait_stat(sock, "v4-allocation-fail", 1)
        v = values(sock)
        assert v["v4-allocation-fail-subnet"] == 1 and v["v4-allocation-fail-classes"] == 1
        assert v["v4-allocation-fail-shared-network"] == 0
        assert v["v4-allocation-fail-no-pools"] == 0
        assert v["subnet[1].v4-allocation-fail"] == 1
        assert v["subnet[1].v4-allocation-fail-subnet"] == 1
        assert "subnet[1].v4-allocation-fail-no-pools" not in v
        assert v["pkt4-receive-drop"] == 0 and v["pkt4-discover-received"] == 4

        # A renewal is not a new assignment (Kea counts cumulative-assigned at allocation).
        offer, ack = c.dora(mac(1), 0x110)
        assert dhcp_options(ack)["message-type"] == 5
        assert stat(sock, "cumulative-assigned-addresses") == 3


def test_release_and_decline_are_not_receive_drops(tmp_path: Path) -> None:
    with control_server(tmp_path) as (_srv, sock, port), RelayClient(port) as c:
        offer, ack = c.dora(mac(1), 0x10)
        sid = dhcp_options(ack)["server_id"]
        offer2, ack2 = c.dora(mac(2), 0x20)
        before = values(sock)
        assert before["subnet[1].assigned-addresses"] == 2
        release(c, mac(1), ack.yiaddr, sid, 0x30)
        wait_stat(sock, "pkt4-release-received", 1)
        v = values(sock)
        assert v["pkt4-receive-drop"] == before["pkt4-receive-drop"] == 0
        assert v["pkt4-received"] == before["pkt4-received"] + 1
        assert v["subnet[1].assigned-addresses"] == 1
        # A RELEASE of nothing: processed (counted as received), still not a drop.
        release(c, mac(7), "198.18.0.150", sid, 0x31)
        wait_stat(sock, "pkt4-release-received", 2)
        assert stat(sock, "pkt4-receive-drop") == 0

        decline(c, mac(2), ack2.yiaddr, sid, 0x40)
        wait_stat(sock, "pkt4-decline-received", 1)
        wait_stat(sock, "declined-addresses", 1)
        v = values(sock)
        assert v["subnet[1].declined-addresses"] == 1
        assert v["pkt4-receive-drop"] == 0
        # Kea's assigned-addresses counts a declined lease too; stat-lease4-get's column
        # counts leases in state default only (both as a Kea 2.2 showed them).
        assert v["subnet[1].assigned-addresses"] == 1
        rows = unix_command(sock, "stat-lease4-get")["arguments"]["result-set"]["rows"]
        assert rows == [[1, 100, 2, 0, 1]]


def test_malformed_and_bootreply(tmp_path: Path) -> None:
    with control_server(tmp_path) as (_srv, sock, port), RelayClient(port) as c:
        good = c.build("discover", mac(3), 0x33)
        bad = bytearray(good)
        bad[236:240] = b"\0\0\0\0"  # no magic cookie
        c.send_raw(bytes(bad))
        wait_stat(sock, "pkt4-parse-failed", 1)
        v = values(sock)
        assert v["pkt4-received"] == 1 and v["pkt4-receive-drop"] == 1
        reply = bytearray(c.build("offer", mac(3), 0x34))
        reply[0] = 2  # a BOOTREPLY (another server's OFFER) sent to us
        c.send_raw(bytes(reply))
        wait_stat(sock, "pkt4-offer-received", 1)
        v = values(sock)
        # as a Kea 2.2 counted it: received, by type, and dropped
        assert v["pkt4-received"] == 2 and v["pkt4-receive-drop"] == 2
        assert v["pkt4-parse-failed"] == 1
        c.dora(mac(4), 0x40)  # and it serves on
        assert stat(sock, "pkt4-ack-sent") == 1


def test_foreign_server_id_is_a_receive_drop(tmp_path: Path) -> None:
    with control_server(tmp_path) as (_srv, sock, port), RelayClient(port) as c:
        c.send_raw(c.build("request", mac(5), 0x50, options=[
            ("server_id", "192.0.2.99"), ("requested_addr", "198.18.0.120")]))
        wait_stat(sock, "pkt4-receive-drop", 1)
        assert stat(sock, "pkt4-request-received") == 1


# ------------------------------------------------------------------ reset and remove


def test_reset_and_remove_as_kea(tmp_path: Path) -> None:
    mport = free_port()
    with control_server(tmp_path, metrics=f"127.0.0.1:{mport}") as (_srv, sock, port), \
            RelayClient(port) as c:
        c.dora(mac(1), 0x10)
        assert unix_command(sock, "statistic-reset", {"name": "pkt4-received"}) == {
            "result": 0, "text": "Statistic 'pkt4-received' reset."}
        assert stat(sock, "pkt4-received") == 0
        c.dora(mac(2), 0x20)
        assert stat(sock, "pkt4-received") == 2
        # Prometheus' counter did not go back: it still counts all four
        assert prom(scrape(mport), "fastdhcp_kea_statistic_total", "pkt4-received") == 4

        assert unix_command(sock, "statistic-remove", {"name": "pkt4-ack-sent"}) == {
            "result": 0, "text": "Statistic 'pkt4-ack-sent' removed."}
        assert unix_command(sock, "statistic-get", {"name": "pkt4-ack-sent"}) == {
            "arguments": {}, "result": 0}
        assert "pkt4-ack-sent" not in values(sock)
        # removed: gone for reset and remove (Kea 2.2's texts)
        for cmd in ("statistic-reset", "statistic-remove"):
            assert unix_command(sock, cmd, {"name": "pkt4-ack-sent"}) == {
                "result": 1, "text": "No 'pkt4-ack-sent' statistic found"}
        c.dora(mac(3), 0x30)  # ... until it changes: back from 0 + the change
        assert stat(sock, "pkt4-ack-sent") == 1

        assert unix_command(sock, "statistic-reset-all") == {
            "result": 0, "text": "All statistics reset to neutral values."}
        v = values(sock)
        assert set(v.values()) == {0}
        assert v["subnet[1].total-addresses"] == 0  # as Kea: the sizes too
        rows = unix_command(sock, "stat-lease4-get")["arguments"]["result-set"]["rows"]
        assert rows == [[1, 0, 0, 3, 0]]  # assigned is counted in the lease table

        assert unix_command(sock, "statistic-remove-all") == {
            "result": 0, "text": "Warning: statistic-remove-all command is deprecated. All "
                                 "statistics removed."}
        assert unix_command(sock, "statistic-get-all") == {"arguments": {}, "result": 0}
        c.dora(mac(4), 0x40)
        v = values(sock)
        assert v["pkt4-received"] == 2 and v["pkt4-ack-sent"] == 1
        assert v["subnet[1].assigned-addresses"] == 1
        assert "subnet[1].total-addresses" not in v and "pkt4-nak-sent" not in v


def test_reload_sets_subnet_sizes_again(tmp_path: Path) -> None:
    with control_server(tmp_path) as (srv, sock, _port):
        unix_command(sock, "statistic-reset", {"name": "subnet[1].total-addresses"})
        assert stat(sock, "subnet[1].total-addresses") == 0
        srv.call_soon(srv.server.reload, srv.server.config)
        assert stat(sock, "subnet[1].total-addresses") == 100


# ------------------------------------------------------------------ argument errors


@pytest.mark.parametrize(("command", "arguments", "text"), [
    ("statistic-get", {}, "Missing mandatory 'name' parameter."),
    ("statistic-get", None, "Missing mandatory 'name' parameter."),
    ("statistic-get", {"name": 5}, "'name' parameter expected to be a string."),
    ("statistic-reset", {"name": "no-such-stat"}, "No 'no-such-stat' statistic found"),
    ("statistic-reset", None, "Missing mandatory 'name' parameter."),
    ("statistic-remove", {"name": "no-such"}, "No 'no-such' statistic found"),
    ("statistic-remove", {"name": 5}, "'name' parameter expected to be a string."),
    ("statistic-sample-count-set", {"name": "no-such", "max-samples": 5},
     "No 'no-such' statistic found"),
    ("statistic-sample-count-set", {"name": "pkt4-received"},
     "Missing mandatory 'max-samples' parameter."),
    ("statistic-sample-count-set", {"name": "pkt4-received", "max-samples": "5"},
     "'max-samples' parameter expected to be an integer."),
    ("statistic-sample-count-set", {"max-samples": 3}, "Missing mandatory 'name' parameter."),
    ("statistic-sample-age-set", {"name": "pkt4-received"},
     "Missing mandatory 'duration' parameter."),
    ("statistic-sample-count-set-all", {}, "Missing mandatory 'max-samples' parameter."),
    ("statistic-sample-count-set-all", {"max-samples": 0},
     "'max-samples' parameter must not be zero"),
    ("statistic-sample-age-set-all", None, "Missing mandatory 'duration' parameter."),
])
def test_statistic_errors_as_kea(tmp_path: Path, command: str, arguments: Any,
                                 text: str) -> None:
    with control_server(tmp_path) as (_srv, sock, _port):
        assert unix_command(sock, command, arguments) == {"result": 1, "text": text}


def test_sample_limits_accepted_as_kea(tmp_path: Path) -> None:
    with control_server(tmp_path) as (_srv, sock, _port):
        for command, arguments, text in [
            ("statistic-sample-count-set", {"name": "pkt4-received", "max-samples": 5},
             "Statistic 'pkt4-received' count limit is set."),
            ("statistic-sample-age-set", {"name": "pkt4-received", "duration": 1245},
             "Statistic 'pkt4-received' duration limit is set."),
            ("statistic-sample-count-set-all", {"max-samples": 3},
             "All statistics count limit are set."),
            ("statistic-sample-age-set-all", {"duration": 100},
             "All statistics duration limit are set."),
        ]:
            assert unix_command(sock, command, arguments) == {"result": 0, "text": text}
        assert stat(sock, "pkt4-received") == 0  # one sample, still there


# ------------------------------------------------------------------ stat-lease4-get


def test_stat_lease4_get_rows_and_texts(tmp_path: Path) -> None:
    with control_server(tmp_path, pools=POOL3) as (_srv, sock, port), RelayClient(port) as c:
        c.dora(mac(1), 0x10)
        c.dora(mac(2), 0x20)
        for arguments, text in [
            (None, "stat-lease4-get[all subnets]: 1 rows found"),
            ({"foo": 1}, "stat-lease4-get[all subnets]: 1 rows found"),
            ({"subnet-id": 1}, "stat-lease4-get[subnet-id=1]: 1 rows found"),
            ({"subnet-range": {"first-subnet-id": 1, "last-subnet-id": 2}},
             "stat-lease4-get[subnets 1 through 2]: 1 rows found"),
        ]:
            ans = unix_command(sock, "stat-lease4-get", arguments)
            assert ans["result"] == 0 and ans["text"] == text
            rs = ans["arguments"]["result-set"]
            assert rs["columns"] == COLUMNS
            assert rs["rows"] == [[1, 3, 2, 2, 0]]
            assert SAMPLE.match(rs["timestamp"])


@pytest.mark.parametrize(("arguments", "result", "text"), [
    ({"subnet-range": {"first-subnet-id": 2}}, 1,
     "'last-subnet-id' parameter missing or not an integer"),
    ({"subnet-id": 99}, 3,
     "stat-lease4-get[subnet-id=99]: no matching data, subnet-id: 99 does not exist"),
    ({"subnet-id": 0}, 1, "'subnet-id' parameter must be > 0"),
    ({"subnet-id": "1"}, 1, "'subnet-id' parameter is not integer"),
    ({"subnet-id": 1, "subnet-range": {"first-subnet-id": 1}}, 1,
     "cannot specify both subnet-id and subnet-range"),
    ({"subnet-range": {"first-subnet-id": 50, "last-subnet-id": 60}}, 3,
     "stat-lease4-get[subnets 50 through 60]: no matching data, selected ID range: 50 through "
     "60 includes no known subnets"),
    ({"subnet-range": {"first-subnet-id": 3, "last-subnet-id": 1}}, 1,
     "'last-subnet-id' must be greater than 'first-subnet-id'"),
    # asked of a Kea 2.2 here (not in the reference's table)
    ({"subnet-range": {"first-subnet-id": "1", "last-subnet-id": 2}}, 1,
     "'first-subnet-id' parameter missing or not an integer"),
    ({"subnet-range": {"first-subnet-id": 0, "last-subnet-id": 1}}, 1,
     "'first-subnet-id' parameter must be > 0"),
    ({"subnet-range": 5}, 1, "subnet-range parameter is not a map"),
    ([1], 1, "'arguments' parameter is not a map"),
])
def test_stat_lease4_get_errors_as_kea(tmp_path: Path, arguments: Any, result: int,
                                       text: str) -> None:
    with control_server(tmp_path) as (_srv, sock, _port):
        assert unix_command(sock, "stat-lease4-get", arguments) == {"result": result,
                                                                     "text": text}


# ------------------------------------------------------------------ Prometheus


def test_prometheus_and_statistic_get_agree(tmp_path: Path) -> None:
    mport = free_port()
    with control_server(tmp_path, metrics=f"127.0.0.1:{mport}", pools=POOL3) as (
            _srv, sock, port), RelayClient(port) as c:
        for i in range(2):
            c.dora(mac(i + 1), 0x100 + 2 * i)
        c.send_raw(b"\x01" * 300)  # bad cookie: parse failure
        wait_stat(sock, "pkt4-parse-failed", 1)
        text = scrape(mport)
        v = values(sock)
        for name in ("pkt4-received", "pkt4-ack-sent", "pkt4-receive-drop",
                     "cumulative-assigned-addresses", "subnet[1].cumulative-assigned-addresses"):
            assert prom(text, "fastdhcp_kea_statistic_total", name) == v[name], name
        for name in ("subnet[1].total-addresses", "subnet[1].assigned-addresses",
                     "declined-addresses"):
            assert prom(text, "fastdhcp_kea_gauge", name) == v[name], name
        # and the Kea view is the existing families' counts, not a second bookkeeping
        acks = re.search(r'^fastdhcp_packets_sent_total\{type="ack"\} (\S+)$', text, re.M)
        assert acks is not None and float(acks.group(1)) == v["pkt4-ack-sent"] == 2
        size = re.search(r'^fastdhcp_subnet_size\{subnet="198.18.0.0/24",subnet_id="1"\} '
                         r'(\S+)$', text, re.M)
        assert size is not None and float(size.group(1)) == v["subnet[1].total-addresses"]


# ------------------------------------------------------------------ version-get, build-report


def test_version_get_and_build_report(tmp_path: Path) -> None:
    import importlib.metadata

    import lmdb
    import msgpack
    import uvloop

    # The Cython that built the modules (pip builds in an isolated environment, so it need not
    # be the one installed): the generated C says, independently of the module's ABI name.
    c_head = (Path(__file__).resolve().parent.parent / "ext" / "fastdhcp" / "_codec.c"
              ).read_text(errors="replace").split("\n", 1)[0]
    built_with = re.fullmatch(r"/\* Generated by Cython (\S+) \*/", c_head)
    assert built_with is not None, c_head
    cython_version = built_with.group(1)
    with control_server(tmp_path) as (_srv, sock, _port):
        ans = unix_command(sock, "version-get")
        report = unix_command(sock, "build-report")
    assert ans["result"] == 0 and ans["text"] == importlib.metadata.version("fastdhcp")
    ext = ans["arguments"]["extended"]
    lines = ext.split("\n")
    assert lines[0] == ans["text"] and "linked with:" in lines
    assert f"uvloop {uvloop.__version__}" in lines
    assert f"msgpack {'.'.join(map(str, msgpack.version))}" in lines
    assert any(line.startswith(f"lmdb {lmdb.__version__}") for line in lines)
    assert f"Cython {cython_version} (compiled modules)" in lines
    assert set(report) == {"result", "text"} and report["result"] == 0
    text = report["text"]
    import fastdhcp._engine

    assert fastdhcp._engine.__file__ in text  # the module actually loaded
    for mod in ("_bitmap", "_codec", "_engine", "_leaseindex", "_packetpath", "_sockio"):
        assert f"fastdhcp.{mod}\n" in text
    assert f"Cython:    {cython_version}" in text
    assert "debug:     no" in text  # the test build is an -O2 one
