"""The control front of a multi-worker server (docs/control-api.md, "Several workers"): three
real worker servers, each with its own lease database, DHCP port, slice of the pool and
private control socket, and the front before them on the configured Unix and HTTP sockets.
Every routing rule is checked through the front against what the workers hold, asked
directly; kea-shell (real, over the front's HTTP socket) and ``fastdhcp ctl`` (over its Unix
socket) are the clients.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fastdhcp import slices
from fastdhcp.config import loads
from fastdhcp.control import commands
from fastdhcp.control.fanout import ROUTES, Owners, Rule
from fastdhcp.service.worker_paths import worker_control_socket
from tests.control_helpers import unix_command, unix_raw
from tests.front_helpers import (
    FrontRunner,
    WorkersLab,
    free_tcp_port,
    front_config_text,
)
from tests.service_helpers import (
    POOL,
    ROOT,
    RelayClient,
    ServeProcess,
    config_text,
    free_port,
    mac,
)
from tests.test_control_http import BAD_HTTP, BAD_REQUEST, UNAUTHORIZED, _basic, post
from tests.test_control_unix import ENVELOPE_ERRORS

pytestmark = pytest.mark.service

KEA_SHELL = shutil.which("kea-shell") or "/usr/sbin/kea-shell"
N = 3


class Lab:
    """Three workers, the front, and the leases real DORA made in each worker."""

    def __init__(self, tmp: Path, workers: WorkersLab, front: FrontRunner, http_port: int,
                 metrics_port: int) -> None:
        self.tmp = tmp
        self.workers = workers
        self.front = front
        self.sock = tmp / "front.sock"
        self.http_port = http_port
        self.metrics_port = metrics_port
        self.shutdowns: list[int] = []

    def ask(self, command: str, arguments: Any = None) -> dict[str, Any]:
        """One command through the front's Unix socket."""
        return unix_command(self.sock, command, arguments, timeout=30)

    def each(self, command: str, arguments: Any = None) -> list[dict[str, Any]]:
        """The command straight to every worker."""
        return [self.workers.ask(k, command, arguments) for k in range(N)]

    def shell(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """kea-shell over the front's HTTP socket."""
        return kea_shell(self.http_port, command, arguments)


def kea_shell(port: int, command: str, arguments: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    """The real kea-shell to 127.0.0.1:``port`` (the arguments' map body on stdin, as it
    wants them); the one answer of the list it prints."""
    body = json.dumps(arguments)[1:-1] if arguments else ""
    run = subprocess.run([KEA_SHELL, "--host", "127.0.0.1", "--port", str(port),
                          "--service", "dhcp4", "--timeout", "30", command],
                         input=body, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, (run.stdout, run.stderr)
    answers = json.loads(run.stdout)
    assert isinstance(answers, list) and len(answers) == 1, run.stdout
    return dict(answers[0])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("front")
    http_port, metrics_port = free_tcp_port(), free_tcp_port()
    with WorkersLab(tmp, N) as workers:
        # k + 1 clients of worker k: every worker's counters differ
        for k in range(N):
            with RelayClient(workers.ports[k]) as client:
                for j in range(k + 1):
                    client.dora(mac(0x300 + 16 * k + j), 0x5000 + 16 * k + j)
        cfg = loads(front_config_text(tmp, http_port=http_port, metrics_port=metrics_port))
        shutdowns: list[int] = []
        with FrontRunner(cfg, workers.sockets, on_shutdown=shutdowns.append) as front:
            lab = Lab(tmp, workers, front, http_port, metrics_port)
            lab.shutdowns = shutdowns
            yield lab


def _newest(samples: list[list[Any]]) -> Any:
    return samples[0][0]


# ------------------------------------------------------------------ the table


def test_every_command_has_a_rule() -> None:
    assert set(ROUTES) == set(commands.build().names())


def test_list_commands_is_the_workers_union(lab: Lab) -> None:
    """The union of the workers' names, less the supervisor's private link to them (which
    the configured sockets refuse as unknown)."""
    names = lab.ask("list-commands")["arguments"]
    union = set().union(*(set(a["arguments"]) for a in lab.each("list-commands")))
    private = {c for c, r in ROUTES.items() if r is Rule.PRIVATE}
    assert private and private <= union
    assert names == sorted(union - private)
    assert "lease4-get-page" in names
    for c in sorted(private):
        a = lab.ask(c, {"rows": [], "deleted-rows": []})
        assert a["result"] == 2 and a["text"] == f"'{c}' command not supported.", a


def test_unknown_command_as_kea(lab: Lab) -> None:
    assert lab.ask("lease6-get-all") == {"result": 2,
                                         "text": "'lease6-get-all' command not supported."}


# ------------------------------------------------------------------ statistics


def test_statistic_get_all_is_the_sum_of_the_workers(lab: Lab) -> None:
    merged = lab.ask("statistic-get-all")
    per = lab.each("statistic-get-all")
    assert merged["result"] == 0
    names = set().union(*(set(a["arguments"]) for a in per))
    assert set(merged["arguments"]) == names
    for name in names:
        samples = merged["arguments"][name]
        assert len(samples) == 1, name  # one sample: the sum
        want = sum(_newest(a["arguments"][name]) for a in per if name in a["arguments"])
        assert samples[0][0] == want, name
        assert samples[0][1] == max(a["arguments"][name][0][1] for a in per
                                    if name in a["arguments"])
    # the DORAs: 1 + 2 + 3 ACKs
    assert merged["arguments"]["pkt4-ack-sent"][0][0] == 6


def test_statistic_get_one_name_summed_and_unknown_empty(lab: Lab) -> None:
    got = lab.ask("statistic-get", {"name": "pkt4-received"})
    per = [_newest(a["arguments"]["pkt4-received"])
           for a in lab.each("statistic-get", {"name": "pkt4-received"})]
    assert per == [2, 4, 6]  # DISCOVER + REQUEST per client
    assert got["arguments"]["pkt4-received"][0][0] == sum(per)
    assert lab.ask("statistic-get", {"name": "no-such-stat"}) == {"arguments": {},
                                                                  "result": 0}
    # a bad argument: the text one server gives
    assert lab.ask("statistic-get", {}) == {"result": 1,
                                            "text": "Missing mandatory 'name' parameter."}


def test_stat_lease4_get_rows_summed(lab: Lab) -> None:
    got = lab.ask("stat-lease4-get")
    per = [a["arguments"]["result-set"]["rows"] for a in lab.each("stat-lease4-get")]
    rows = got["arguments"]["result-set"]["rows"]
    assert [r[0] for r in rows] == [1]
    assert rows[0][1:] == [sum(p[0][i] for p in per) for i in range(1, 5)]
    first, last = (int(ipaddress.IPv4Address(a)) for a in POOL)
    assert rows[0][1] == last - first + 1  # the slices' sizes add up to the pool
    assert got["text"] == "stat-lease4-get[all subnets]: 1 rows found"


# ------------------------------------------------------------------ leases

# The pool 198.18.0.100-199 cut in three: 33, 33 and 34 addresses (docs/scaling.md).
OWNED = {"198.18.0.110": 0, "198.18.0.140": 1, "198.18.0.190": 2, "198.18.0.199": 2}
OUTSIDE = "198.18.0.20"  # in the subnet, outside the pool: owned by ip % N


def _ip(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def test_lease4_add_lands_on_the_owner_only(lab: Lab) -> None:
    cases = {**OWNED, OUTSIDE: _ip(OUTSIDE) % N}
    for n, (ip, owner) in enumerate(cases.items()):
        hw = f"0a:00:00:00:01:{n:02x}"
        added = lab.ask("lease4-add", {"ip-address": ip, "hw-address": hw})
        assert added == {"result": 0, "text": f"Lease for address {ip}, subnet-id 1 added."}
        held = [a["result"] for a in lab.each("lease4-get", {"ip-address": ip})]
        assert held == [0 if k == owner else 3 for k in range(N)], (ip, held)
        # read back through the front: from the owner
        got = lab.ask("lease4-get", {"ip-address": ip})
        assert got["result"] == 0 and got["arguments"]["hw-address"] == hw
        # by identifier: every worker asked, the one that has it answers
        by_id = lab.ask("lease4-get", {"identifier-type": "hw-address", "identifier": hw,
                                       "subnet-id": 1})
        assert by_id["result"] == 0 and by_id["arguments"]["ip-address"] == ip
    assert lab.ask("lease4-get", {"ip-address": "198.18.0.150"}) == {
        "result": 3, "text": "Lease not found."}
    # and errors are one server's
    assert lab.ask("lease4-add", {"hw-address": "0a:00:00:00:01:ff"}) == \
        lab.workers.ask(0, "lease4-add", {"hw-address": "0a:00:00:00:01:ff"})


def test_lease4_update_and_del_reach_the_owner(lab: Lab) -> None:
    ip = "198.18.0.141"
    assert lab.ask("lease4-add", {"ip-address": ip, "hw-address": "0a:00:00:00:02:01"}
                   )["result"] == 0
    upd = lab.ask("lease4-update", {"ip-address": ip, "hw-address": "0a:00:00:00:02:02",
                                    "hostname": "moved"})
    assert upd == {"result": 0, "text": "IPv4 lease updated."}
    assert lab.workers.ask(1, "lease4-get", {"ip-address": ip})["arguments"]["hostname"] \
        == "moved"
    assert lab.ask("lease4-del", {"ip-address": ip}) == {"result": 0,
                                                         "text": "IPv4 lease deleted."}
    assert [a["result"] for a in lab.each("lease4-get", {"ip-address": ip})] == [3, 3, 3]
    assert lab.ask("lease4-del", {"ip-address": ip}) == {"result": 3,
                                                         "text": "IPv4 lease not found."}


def _all_leases(lab: Lab) -> list[dict[str, Any]]:
    out = [x for a in lab.each("lease4-get-all") for x in a["arguments"]["leases"]]
    return sorted(out, key=lambda x: _ip(x["ip-address"]))


def test_lease4_get_all_merges_in_address_order(lab: Lab) -> None:
    want = _all_leases(lab)
    assert len(want) >= 6 + len(OWNED)  # the DORAs' and the added ones, in three workers
    got = lab.ask("lease4-get-all")
    assert got["result"] == 0
    assert got["text"] == f"{len(want)} IPv4 lease(s) found."
    assert got["arguments"]["leases"] == want
    subnets = lab.ask("lease4-get-all", {"subnets": [2]})
    assert subnets == {"arguments": {"leases": []}, "result": 3,
                       "text": "0 IPv4 lease(s) found."}


@pytest.mark.parametrize("limit", [1, 2, 5])
def test_lease4_get_page_walks_every_lease_once_in_order(lab: Lab, limit: int) -> None:
    want = [x["ip-address"] for x in _all_leases(lab)]
    seen: list[str] = []
    frm = "start"
    for _ in range(len(want) + 2):
        page = lab.ask("lease4-get-page", {"from": frm, "limit": limit})
        if page["result"] == 3:
            assert page["arguments"] == {"count": 0, "leases": []}
            break
        leases = page["arguments"]["leases"]
        assert page["arguments"]["count"] == len(leases) <= limit
        assert page["text"] == f"{len(leases)} IPv4 lease(s) found."
        seen += [x["ip-address"] for x in leases]
        frm = leases[-1]["ip-address"]
    assert seen == want


def test_lease4_get_by_hw_address_and_hostname(lab: Lab) -> None:
    hw = "0a:00:00:00:03:01"
    for ip in ("198.18.0.111", "198.18.0.191"):  # one client, two workers
        assert lab.ask("lease4-add", {"ip-address": ip, "hw-address": hw,
                                      "hostname": "twice.example"})["result"] == 0
    got = lab.ask("lease4-get-by-hw-address", {"hw-address": hw})
    assert [x["ip-address"] for x in got["arguments"]["leases"]] == ["198.18.0.111",
                                                                     "198.18.0.191"]
    assert got["text"] == "2 IPv4 lease(s) found."
    named = lab.ask("lease4-get-by-hostname", {"hostname": "TWICE.example"})
    assert len(named["arguments"]["leases"]) == 2
    assert lab.ask("lease4-get-by-hw-address", {}) == lab.workers.ask(
        0, "lease4-get-by-hw-address", {})


def test_kea_shell_over_the_front(lab: Lab) -> None:
    assert lab.shell("list-commands")["arguments"] == lab.ask("list-commands")["arguments"]
    stat = lab.shell("statistic-get", {"name": "pkt4-received"})
    assert stat["arguments"]["pkt4-received"][0][0] == 12
    added = lab.shell("lease4-add", {"ip-address": "198.18.0.160",
                                     "hw-address": "0a:00:00:00:04:01"})
    assert added["result"] == 0
    assert lab.workers.ask(1, "lease4-get", {"ip-address": "198.18.0.160"})["result"] == 0
    page = lab.shell("lease4-get-page", {"from": "198.18.0.159", "limit": 1})
    assert [x["ip-address"] for x in page["arguments"]["leases"]] == ["198.18.0.160"]
    assert lab.shell("lease6-get-all") == {"result": 2,
                                           "text": "'lease6-get-all' command not supported."}


def test_fastdhcp_ctl_over_the_front(lab: Lab) -> None:
    run = subprocess.run([sys.executable, "-m", "fastdhcp", "ctl", "--socket", str(lab.sock),
                          "statistic-get", '{"name": "pkt4-ack-sent"}'],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["arguments"]["pkt4-ack-sent"][0][0] == 6


# ------------------------------------------------------------------ every worker, one answer


def _dhcp_enabled(lab: Lab) -> list[bool]:
    return [a["arguments"]["dhcp-state"]["enabled"] for a in lab.each("status-get")]


def test_dhcp_disable_and_enable_reach_every_worker(lab: Lab) -> None:
    assert lab.ask("dhcp-disable") == {"result": 0, "text": "DHCPv4 service disabled"}
    assert _dhcp_enabled(lab) == [False] * N
    assert lab.ask("dhcp-enable") == {"result": 0, "text": "DHCP service successfully enabled"}
    assert _dhcp_enabled(lab) == [True] * N
    bad = lab.ask("dhcp-disable", {"max-period": 0})
    assert bad == lab.workers.ask(0, "dhcp-disable", {"max-period": 0})
    assert _dhcp_enabled(lab) == [True] * N


def test_reservations_written_once_and_told_to_the_others(lab: Lab) -> None:
    """The hosts table is the lease environment's, shared by the workers of one server:
    worker 0 writes it, the others are told (here each has a table of its own, so only
    worker 0's holds the host)."""
    host = {"subnet-id": 1, "hw-address": "0a:00:00:00:05:01", "ip-address": "198.18.0.30"}
    key = {"subnet-id": 1, "identifier-type": "hw-address", "identifier": host["hw-address"]}
    added = lab.ask("reservation-add", {"reservation": host})
    assert added == {"result": 0, "text": "Host added."}
    assert [a["result"] for a in lab.each("reservation-get", key)] == [0, 3, 3]
    assert lab.ask("reservation-get", key) == lab.workers.ask(0, "reservation-get", key)
    again = lab.ask("reservation-add", {"reservation": host})  # worker 0's refusal, as is
    assert again == {"result": 1, "text": "reservation.hw-address: a host with this "
                     "hw-address already exists"}
    assert lab.ask("reservation-del", key) == {"result": 0, "text": "Host deleted."}
    assert [a["result"] for a in lab.each("reservation-get", key)] == [3, 3, 3]
    assert lab.ask("reservation-del", key) == {"result": 3,
                                               "text": "Host not deleted (not found)."}


def test_statistic_reset_reaches_every_worker(lab: Lab) -> None:
    assert lab.ask("statistic-reset", {"name": "pkt4-offer-sent"}) == {
        "result": 0, "text": "Statistic 'pkt4-offer-sent' reset."}
    assert [_newest(a["arguments"]["pkt4-offer-sent"])
            for a in lab.each("statistic-get", {"name": "pkt4-offer-sent"})] == [0] * N


# ------------------------------------------------------------------ one worker, the front


def test_version_build_report_and_config_get(lab: Lab) -> None:
    assert lab.ask("version-get") == lab.workers.ask(0, "version-get")
    assert lab.ask("build-report") == lab.workers.ask(0, "build-report")
    doc = lab.ask("config-get")["arguments"]["Dhcp4"]
    sockets = doc["control-sockets"]
    assert [s["socket-type"] for s in sockets] == ["unix", "http"]
    assert sockets[0]["socket-name"] == str(lab.sock)
    assert sockets[1]["socket-port"] == lab.http_port
    assert doc["server"]["metrics"] == f"127.0.0.1:{lab.metrics_port}"


def test_status_get_merged(lab: Lab) -> None:
    got = lab.ask("status-get")
    assert got["result"] == 0 and "text" not in got
    st = got["arguments"]
    for key in ("multi-threading-enabled", "pid", "reload", "sockets", "uptime"):
        assert key in st
    assert st["pid"] == os.getpid()  # the front's process (here the test's)
    assert [w["worker"] for w in st["workers"]] == list(range(N))
    assert [w["lease-database"]["path"] for w in st["workers"]] == \
        [str(lab.tmp / f"db{k}") for k in range(N)]
    assert [s["socket-type"] for s in st["control-sockets"]] == ["unix", "http"]


def test_shutdown_goes_to_the_supervisor(lab: Lab) -> None:
    bad = lab.ask("shutdown", {"exit-value": "x"})
    assert bad == lab.workers.ask(0, "shutdown", {"exit-value": "x"})
    assert bad["result"] == 1 and lab.shutdowns == []
    assert lab.ask("shutdown", {"exit-value": 3}) == {"result": 0, "text": "Shutting down."}
    deadline = time.monotonic() + 10
    while not lab.shutdowns and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lab.shutdowns == [3]
    assert [a["result"] for a in lab.each("status-get")] == [0] * N  # still running


def test_metrics_endpoint_labels_each_worker(lab: Lab) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{lab.metrics_port}/metrics",
                                timeout=30) as resp:
        text = resp.read().decode()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert {s.labels["worker"]: s.value for s in fams["fastdhcp_worker_up"].samples} == \
        {str(k): 1.0 for k in range(N)}
    acks = {s.labels["worker"]: s.value for s in fams["fastdhcp_kea_statistic"].samples
            if s.labels["name"] == "pkt4-ack-sent"}
    per = [_newest(a["arguments"]["pkt4-ack-sent"])
           for a in lab.each("statistic-get", {"name": "pkt4-ack-sent"})]
    assert acks == {str(k): float(per[k]) for k in range(N)}
    for fam in fams.values():  # every series names its worker
        assert all("worker" in s.labels for s in fam.samples), fam.name


# ------------------------------------------------------------------ what the front refuses


@pytest.mark.parametrize(("body", "result", "text"), ENVELOPE_ERRORS)
def test_envelope_errors_as_one_server(lab: Lab, body: bytes, result: int,
                                       text: str) -> None:
    assert json.loads(unix_raw(lab.sock, body)) == {"result": result, "text": text}


def test_oversized_command_refused(lab: Lab) -> None:
    big = b'{"command": "list-commands", "arguments": {"x": "' + b"a" * (2 << 20) + b'"}}'
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(lab.sock))
        try:
            s.sendall(big)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while chunk := s.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    ans = json.loads(data)
    assert ans["result"] == 1 and "too large" in ans["text"]


@pytest.mark.parametrize(("method", "headers", "body"), BAD_HTTP)
def test_bad_http_requests_as_one_server(lab: Lab, method: str, headers: dict[str, str],
                                         body: bytes) -> None:
    status, _h, data = post(lab.http_port, body, method=method, headers=headers)
    assert (status, data) == (400, BAD_REQUEST)


def test_basic_auth_on_the_front(lab: Lab, tmp_path: Path,
                                 caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "admin.pw").write_text("s3cret\n")
    extra = (f'authentication = {{ type = "basic", realm = "fastdhcp-test", directory = '
             f'"{tmp_path}", clients = [ {{ user = "admin", password-file = "admin.pw" }} ] }}\n')
    hport = free_tcp_port()
    cfg = loads(front_config_text(tmp_path, http_port=hport, http_extra=extra))
    with FrontRunner(cfg, lab.workers.sockets):
        body = {"command": "statistic-get", "arguments": {"name": "pkt4-ack-sent"},
                "service": ["dhcp4"]}
        for headers in ({"Content-Type": "application/json"}, _basic("admin", "wrong")):
            status, hdrs, data = post(hport, body, headers=headers)
            assert (status, data) == (401, UNAUTHORIZED)
            assert hdrs["WWW-Authenticate"] == 'Basic realm="fastdhcp-test"'
        status, _h, data = post(hport, body, headers=_basic("admin", "s3cret"))
        assert status == 200
        assert json.loads(data)[0]["arguments"]["pkt4-ack-sent"][0][0] == 6
        # a mutating command is logged by the front with the user who sent it
        caplog.set_level(logging.INFO, logger="fastdhcp.control")
        reset = {"command": "statistic-reset", "arguments": {"name": "pkt4-nak-sent"},
                 "service": ["dhcp4"]}
        status, _h, data = post(hport, reset, headers=_basic("admin", "s3cret"))
        assert json.loads(data)[0]["result"] == 0
        assert any(r.getMessage().startswith("control: statistic-reset from admin@http:")
                   for r in caplog.records), [r.getMessage() for r in caplog.records]


# ------------------------------------------------------------------ lease4-wipe (last: it empties)


def test_lease4_wipe_sums_the_workers(lab: Lab) -> None:
    counts = [len(a["arguments"]["leases"]) for a in lab.each("lease4-get-all")]
    assert all(counts)
    got = lab.ask("lease4-wipe")
    assert got == {"result": 0, "text": f"Deleted {sum(counts)} IPv4 lease(s) from subnet(s) 1"}
    assert [a["result"] for a in lab.each("lease4-get-all")] == [3] * N
    assert lab.ask("lease4-wipe") == {"result": 3,
                                      "text": "Deleted 0 IPv4 lease(s) from subnet(s) 1"}


# ------------------------------------------------------------------ workers that do not answer


def test_a_hung_worker_is_named_within_the_timeout(lab: Lab, tmp_path: Path) -> None:
    """A socket that accepts and never answers stands in for worker 2."""
    hung_path = str(tmp_path / "hung.sock")
    hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hung.bind(hung_path)
    hung.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        hung.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(hung.accept()[0])
            except TimeoutError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    sockets = [*lab.workers.sockets[:2], hung_path]
    cfg = loads(front_config_text(tmp_path))
    try:
        with FrontRunner(cfg, sockets, timeout=1.0):
            t0 = time.monotonic()
            got = unix_command(tmp_path / "front.sock", "statistic-get-all", timeout=30)
            took = time.monotonic() - t0
            assert got == {"result": 1,
                           "text": f"worker 2: no answer within 1 s (socket {hung_path})"}
            assert took < 5
            # a reservation written by worker 0, which worker 2 is not told of
            host = {"subnet-id": 1, "hw-address": "0a:00:00:00:06:01"}
            got = unix_command(tmp_path / "front.sock", "reservation-add",
                               {"reservation": host}, timeout=30)
            assert got["result"] == 1
            assert got["text"].startswith("Host added. (worker 0), but the other workers did "
                                          "not all re-read it: worker 2: no answer within 1 s")
            assert unix_command(tmp_path / "front.sock", "reservation-del", {
                "subnet-id": 1, "identifier-type": "hw-address",
                "identifier": host["hw-address"]}, timeout=30)["result"] == 1
            # a command for worker 0 alone does not wait for worker 2
            assert unix_command(tmp_path / "front.sock", "lease4-get",
                                {"ip-address": "198.18.0.101"}, timeout=30)["result"] in (0, 3)
    finally:
        stop.set()
        t.join(5)
        for s in (*held, hung):
            s.close()


@pytest.fixture
def served_workers(tmp_path: Path) -> Iterator[list[ServeProcess]]:
    """Two ``fastdhcp serve`` processes, each on its private control socket."""
    procs: list[ServeProcess] = []
    try:
        for k in range(2):
            d = tmp_path / f"w{k}"
            d.mkdir()
            cfg = d / "fastdhcp.toml"
            cfg.write_text(config_text(d / "db", free_port()) + f"""
[[control-sockets]]
socket-type = "unix"
socket-name = "{d / 'ctl.sock'}"
""")
            proc = ServeProcess(cfg, d)
            procs.append(proc)
            assert proc.wait_notify(), proc.log()
        yield procs
    finally:
        for p in procs:
            p.close()


def test_a_killed_worker_is_named(served_workers: list[ServeProcess], tmp_path: Path) -> None:
    sockets = [str(tmp_path / f"w{k}" / "ctl.sock") for k in range(2)]
    cfg = loads(front_config_text(tmp_path))
    front_sock = tmp_path / "front.sock"
    with FrontRunner(cfg, sockets, timeout=5.0):
        assert unix_command(front_sock, "statistic-get-all")["result"] == 0
        served_workers[1].proc.send_signal(signal.SIGKILL)
        served_workers[1].proc.wait(30)
        t0 = time.monotonic()
        got = unix_command(front_sock, "lease4-get-all", timeout=30)
        assert time.monotonic() - t0 < 5
        assert got["result"] == 1
        assert got["text"].startswith("worker 1: not running (Connection refused)")
        status = unix_command(front_sock, "status-get")
        assert status["result"] == 1 and status["text"].startswith("worker 1: ")
        assert [("error" in w) for w in status["arguments"]["workers"]] == [False, True]
        # the worker that lives still answers what is its alone
        assert unix_command(front_sock, "lease4-get",
                            {"ip-address": "198.18.0.101"})["result"] == 3


# ------------------------------------------------------------------ ownership


def test_owner_of_a_reserved_address_is_its_client_s_worker(tmp_path: Path) -> None:
    """A config reservation by hw-address belongs to the worker its client is steered to
    (what the workers decide), not to the slice it lies in."""
    ip = "198.18.0.150"  # slice of worker 1 of 2
    hw = next(m for m in (mac(0x600 + i) for i in range(64)) if slices.steer(m, 2) == 0)
    text = config_text(tmp_path / "db", free_port()) + f"""
[[subnet4.reservations]]
hw-address = "{':'.join(f'{b:02x}' for b in hw)}"
ip-address = "{ip}"
"""
    owners = Owners(loads(text), 2)
    assert slices.owner(_ip(ip), loads(text).subnets[0].pools, 2) == 1
    assert owners.of(_ip(ip)) == 0
    assert owners.of(_ip("198.18.0.151")) == 1


# ------------------------------------------------------------------ fastdhcp serve, 2 workers


def _wait_front(sock: Path, proc: ServeProcess) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.proc.poll() is None, proc.log()
        try:
            got = unix_command(sock, "status-get")
            if got["result"] == 0:
                return got
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(proc.log())


def test_fastdhcp_serve_with_two_workers_answers_as_one(tmp_path: Path) -> None:
    port, http_port, metrics_port = free_port(), free_tcp_port(), free_tcp_port()
    sock = tmp_path / "ctl.sock"
    cfg_path = tmp_path / "fastdhcp.toml"
    cfg_path.write_text(config_text(tmp_path / "db", port, metrics=f"127.0.0.1:{metrics_port}",
                                    extra_server="workers = 2\n") + f"""
[[control-sockets]]
socket-type = "unix"
socket-name = "{sock}"

[[control-sockets]]
socket-type = "http"
socket-address = "127.0.0.1"
socket-port = {http_port}
""")
    config = loads(cfg_path.read_text())
    private = [worker_control_socket(config, k) for k in range(2)]
    with ServeProcess(cfg_path, tmp_path) as proc:
        assert proc.wait_notify(), proc.log()
        status = _wait_front(sock, proc)["arguments"]
        assert status["pid"] == proc.proc.pid  # the supervisor
        assert len({w["pid"] for w in status["workers"]}) == 2
        assert proc.proc.pid not in {w["pid"] for w in status["workers"]}
        macs = [mac(0x700 + i) for i in range(8)]
        assert {slices.steer(m, 2) for m in macs} == {0, 1}  # both workers get clients
        acked = []
        with RelayClient(port) as client:
            for i, m in enumerate(macs):
                acked.append(client.dora(m, 0x9000 + i)[1].yiaddr)
        acked.sort(key=_ip)
        # statistics: the sum of the workers'
        per = [_newest(unix_command(p, "statistic-get", {"name": "pkt4-ack-sent"})
                       ["arguments"]["pkt4-ack-sent"]) for p in private]
        assert 0 not in per and sum(per) == len(macs)
        got = unix_command(sock, "statistic-get", {"name": "pkt4-ack-sent"})
        assert got["arguments"]["pkt4-ack-sent"][0][0] == len(macs)
        # leases: each worker lists its own, the front all of them once, in order
        own = [[x["ip-address"] for x in unix_command(p, "lease4-get-all")["arguments"]
                ["leases"]] for p in private]
        assert sorted(own[0] + own[1], key=_ip) == acked and not set(own[0]) & set(own[1])
        assert [x["ip-address"] for x in unix_command(sock, "lease4-get-all")["arguments"]
                ["leases"]] == acked
        seen, frm = [], "start"
        while (page := unix_command(sock, "lease4-get-page", {"from": frm, "limit": 3}))[
                "result"] == 0:
            seen += [x["ip-address"] for x in page["arguments"]["leases"]]
            frm = seen[-1]
        assert seen == acked
        # a lease added for an address of worker 1's slice is worker 1's
        assert unix_command(sock, "lease4-add", {"ip-address": "198.18.0.180",
                                                 "hw-address": "0a:00:00:00:07:01"}
                            )["result"] == 0
        assert [unix_command(p, "lease4-get", {"ip-address": "198.18.0.180"})["result"]
                for p in private] == [3, 0]
        # sent to the wrong worker's private socket, a write is refused, not reported done
        for cmd in ("lease4-add", "lease4-update"):
            wrong = unix_command(private[0], cmd, {"ip-address": "198.18.0.181",
                                                   "hw-address": "0a:00:00:00:07:09"})
            assert wrong == {"result": 1, "text": "address 198.18.0.181 is another worker's: "
                             "send the command to the server's control socket"}, wrong
        assert [unix_command(p, "lease4-get", {"ip-address": "198.18.0.181"})["result"]
                for p in private] == [3, 3]
        # kea-shell over the front's HTTP socket, config-set of the running document
        doc = kea_shell(http_port, "config-get")["arguments"]
        assert [s["socket-type"] for s in doc["Dhcp4"]["control-sockets"]] == ["unix", "http"]
        assert kea_shell(http_port, "config-set", doc) == {"result": 0,
                                                "text": "Configuration successful."}
        assert [unix_command(p, "status-get")["result"] for p in private] == [0, 0]
        assert kea_shell(http_port, "status-get")["arguments"]["pid"] == proc.proc.pid
        # a pool changed by config-set slices anew: the front routes by the new slices
        # (198.18.0.160 was worker 1's in 100-199, is worker 0's in 100-239)
        wider = json.loads(json.dumps(doc))
        wider["Dhcp4"]["subnet4"][0]["pools"] = ["198.18.0.100 - 198.18.0.239"]
        assert unix_command(sock, "config-set", wider)["result"] == 0
        assert unix_command(sock, "lease4-add", {"ip-address": "198.18.0.160",
                                                 "hw-address": "0a:00:00:00:07:02"}
                            )["result"] == 0
        assert [unix_command(p, "lease4-get", {"ip-address": "198.18.0.160"})["result"]
                for p in private] == [0, 3]
        # and back by SIGHUP (the startup file): 198.18.0.161 is worker 1's again
        proc.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while (added := unix_command(sock, "lease4-add", {
                "ip-address": "198.18.0.161", "hw-address": "0a:00:00:00:07:03"}))[
                "result"] != 0 and time.monotonic() < deadline:
            time.sleep(0.2)  # until the workers reloaded and the front followed them
        assert added["result"] == 0, added
        assert [unix_command(p, "lease4-get", {"ip-address": "198.18.0.161"})["result"]
                for p in private] == [3, 0]
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                    timeout=30) as resp:
            fams = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
        acks = {s.labels["worker"]: s.value for s in fams["fastdhcp_kea_statistic"].samples
                if s.labels["name"] == "pkt4-ack-sent"}
        assert acks == {"0": float(per[0]), "1": float(per[1])}
        # a reservation added through the front is served by the worker its client reaches
        # (worker 1 here, not the writer): it re-read the shared hosts table when told
        hw = next(m for m in (mac(0x800 + i) for i in range(64)) if slices.steer(m, 2) == 1)
        hw_text = ":".join(f"{b:02x}" for b in hw)
        reserved = "198.18.0.31"  # outside the pool, odd: worker 1's (ip % 2)
        assert unix_command(sock, "reservation-add", {"reservation": {
            "subnet-id": 1, "hw-address": hw_text, "ip-address": reserved}}) == {
            "result": 0, "text": "Host added."}
        with RelayClient(port) as client:
            assert client.dora(hw, 0x9100)[1].yiaddr == reserved
        key = {"subnet-id": 1, "identifier-type": "hw-address", "identifier": hw_text}
        assert unix_command(sock, "reservation-get", key)["arguments"]["ip-address"] == reserved
        assert unix_command(sock, "reservation-del", key) == {"result": 0,
                                                              "text": "Host deleted."}
        assert unix_command(private[1], "reservation-get", key)["result"] == 3
        assert unix_command(sock, "lease4-wipe") == {
            "result": 0, "text": f"Deleted {len(macs) + 4} IPv4 lease(s) from subnet(s) 1"}
        assert unix_command(sock, "shutdown", {"exit-value": 3}) == {"result": 0,
                                                                     "text": "Shutting down."}
        assert proc.wait(60) == 3, proc.log()
        assert not sock.exists()
