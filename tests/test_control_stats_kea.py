"""Kea's statistics, differential: the same datagrams (scapy-built, relayed) sent to a real Kea
2.2 and to fastdhcp on loopback, and ``statistic-get-all`` of both compared after each step.
The reference is the running Kea binary itself: what each statistic counts for each kind of
packet (a RELEASE is no drop, a foreign server id is, a full pool is an allocation failure...).

Needs kea-dhcp4 (Debian kea-dhcp4-server) and root (Kea answers a relay at port 67). Skipped
without them, except under CI, where that is a failure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.control_helpers import control_server, unix_command
from tests.kea_helpers import HOOKS, KeaRelay, kea_process
from tests.kea_helpers import need_kea as _need_kea
from tests.service_helpers import RELAY_IP, RelayClient, dhcp_options, mac

pytestmark = pytest.mark.service

POOL = ("198.18.0.100", "198.18.0.101")


@pytest.fixture
def need_kea() -> None:
    _need_kea()


@contextmanager
def kea_server(tmp: Path) -> Iterator[tuple[Path, int]]:
    """kea-dhcp4 on lo (UDP, loopback only), one relayed subnet as the fastdhcp test config:
    (control socket, port)."""
    sock = tmp / "kea4.sock"
    cfg = {"Dhcp4": {
        "interfaces-config": {"interfaces": ["lo"], "dhcp-socket-type": "udp"},
        "control-socket": {"socket-type": "unix", "socket-name": str(sock)},
        "lease-database": {"type": "memfile", "persist": False},
        "valid-lifetime": 3600,
        "multi-threading": {"enable-multi-threading": False},
        "hooks-libraries": [{"library": f"{HOOKS}/libdhcp_stat_cmds.so"}],
        "subnet4": [{"id": 1, "subnet": "198.18.0.0/24",
                     "pools": [{"pool": f"{POOL[0]} - {POOL[1]}"}],
                     "relay": {"ip-addresses": [RELAY_IP]}}],
        "loggers": [{"name": "kea-dhcp4", "severity": "WARN",
                     "output_options": [{"output": str(tmp / "kea.log")}]}],
    }}
    with kea_process(tmp, cfg, sock) as port:
        yield sock, port


def values(sock: Path) -> dict[str, int]:
    ans = unix_command(sock, "statistic-get-all")
    assert ans["result"] == 0
    return {k: int(v[0][0]) for k, v in ans["arguments"].items()}


def settle(sock: Path, received: int) -> dict[str, int]:
    """statistic-get-all once the server has read ``received`` datagrams (a RELEASE or a
    drop has no reply to wait for)."""
    deadline = time.monotonic() + 5
    while True:
        v = values(sock)
        if v.get("pkt4-received", 0) >= received:
            time.sleep(0.05)  # what follows the read (replies, counts) is done by now
            return values(sock)
        assert time.monotonic() < deadline, f"pkt4-received {v.get('pkt4-received')}"
        time.sleep(0.02)


Step = Callable[[RelayClient, dict[str, Any]], int]


def _dora(n: int) -> Step:
    def step(c: RelayClient, state: dict[str, Any]) -> int:
        offer, ack = c.dora(mac(n), 0x1000 * n)
        assert dhcp_options(ack)["message-type"] == 5
        state[n] = (ack.yiaddr, dhcp_options(ack)["server_id"])
        return 2
    return step


def _send(kind: str, n: int, **kw: Any) -> Step:
    def step(c: RelayClient, state: dict[str, Any]) -> int:
        opts = [(k, v(state) if callable(v) else v) for k, v in kw.get("options", [])]
        ciaddr = kw.get("ciaddr", "0.0.0.0")
        c.send_raw(c.build(kind, mac(n), 0x77000 + n,
                           ciaddr=ciaddr(state) if callable(ciaddr) else ciaddr, options=opts))
        return 1
    return step


def _raw(make: Callable[[RelayClient], bytes]) -> Step:
    def step(c: RelayClient, state: dict[str, Any]) -> int:
        c.send_raw(make(c))
        return 1
    return step


def _bad_cookie(c: RelayClient) -> bytes:
    b = bytearray(c.build("discover", mac(20), 0x2020))
    b[236:240] = b"\0\0\0\0"
    return bytes(b)


def _bootreply(c: RelayClient) -> bytes:
    b = bytearray(c.build("offer", mac(21), 0x2121))
    b[0] = 2
    return bytes(b)


def _no_type(c: RelayClient) -> bytes:  # BOOTP: no option 53
    from scapy.layers.dhcp import BOOTP, DHCP

    return bytes(BOOTP(op=1, htype=1, hlen=6, hops=1, xid=0x2222, giaddr=RELAY_IP,
                       chaddr=mac(22) + b"\0" * 10) / DHCP(options=["end"]))


def _no_subnet(c: RelayClient) -> bytes:  # relayed by an agent no subnet knows
    from scapy.layers.dhcp import BOOTP, DHCP

    return bytes(BOOTP(op=1, htype=1, hlen=6, hops=1, xid=0x2323, giaddr="10.9.9.9",
                       chaddr=mac(23) + b"\0" * 10) / DHCP(options=[
                           ("message-type", "discover"), "end"]))


def _no_chaddr(c: RelayClient) -> bytes:  # hlen 0 and no client identifier
    b = bytearray(c.build("discover", mac(24), 0x2424))
    b[2] = 0
    return bytes(b)


def _type(code: int) -> Callable[[RelayClient], bytes]:
    def make(c: RelayClient) -> bytes:
        b = bytearray(c.build("discover", mac(25), 0x2500 + code))
        assert b[240:243] == bytes((53, 1, 1))
        b[242] = code
        return bytes(b)
    return make


def _sid(n: int) -> Callable[[dict[str, Any]], str]:
    return lambda state: state[n][1]


def _ip(n: int) -> Callable[[dict[str, Any]], str]:
    return lambda state: state[n][0]


#: (what, step): each step's datagrams go to both servers, then both views are compared.
STEPS: list[tuple[str, Step]] = [
    ("two DORAs", lambda c, s: _dora(1)(c, s) + _dora(2)(c, s)),
    ("a DISCOVER on a full pool", _send("discover", 3)),
    ("a RELEASE", _send("release", 1, ciaddr=_ip(1), options=[("server_id", _sid(1))])),
    ("a RELEASE of nothing", _send("release", 9, ciaddr="198.18.0.150",
                                   options=[("server_id", _sid(1))])),
    ("a DECLINE", _send("decline", 2, options=[("server_id", _sid(1)),
                                               ("requested_addr", _ip(2))])),
    ("a DECLINE of nothing", _send("decline", 8, options=[("server_id", _sid(1)),
                                                         ("requested_addr", "198.18.0.160")])),
    ("a datagram with no magic cookie", _raw(_bad_cookie)),
    ("a BOOTREPLY", _raw(_bootreply)),
    ("a REQUEST for another server", _send("request", 4, options=[
        ("server_id", "192.0.2.99"), ("requested_addr", "198.18.0.120")])),
    ("an INIT-REBOOT REQUEST of an unknown client", _send("request", 5, options=[
        ("requested_addr", "198.18.0.77")])),
    ("a BOOTP request", _raw(_no_type)),
    ("a DISCOVER from a relay no subnet knows", _raw(_no_subnet)),
    ("a DISCOVER with no chaddr and no client id", _raw(_no_chaddr)),
    ("a DHCPLEASEQUERY (type 10)", _raw(_type(10))),
    ("a DHCPOFFER as BOOTREQUEST", _raw(_type(2))),
    # (Not here: a REQUEST with neither ciaddr nor option 50. Kea 2.2 ACKs it with a new
    # lease, fastdhcp drops it; both count it as received and neither as a receive drop.)
    ("an INFORM", _send("inform", 7, ciaddr="198.18.0.50")),
    ("a DORA after the RELEASE", _dora(1)),
    ("the same client's DORA again", _dora(1)),
]


def test_statistics_match_a_real_kea(tmp_path: Path, need_kea: None) -> None:
    (tmp_path / "kea").mkdir()
    with kea_server(tmp_path / "kea") as (ksock, kport), KeaRelay(kport) as kc, \
            control_server(tmp_path / "fd", pools=POOL) as (_srv, fsock, fport), \
            RelayClient(fport) as fc:
        sent = 0
        kstate: dict[str, Any] = {}
        fstate: dict[str, Any] = {}

        def compare(what: str, received: int) -> None:
            kv, fv = settle(ksock, received), settle(fsock, received)
            diff = {k: (kv.get(k), fv.get(k)) for k in kv.keys() | fv.keys()
                    if kv.get(k) != fv.get(k)}
            assert not diff, f"after {what}: (kea, fastdhcp) {diff}"
            krows = unix_command(ksock, "stat-lease4-get")["arguments"]["result-set"]["rows"]
            frows = unix_command(fsock, "stat-lease4-get")["arguments"]["result-set"]["rows"]
            assert krows == frows, f"stat-lease4-get after {what}"

        def both(command: str, arguments: Any = None) -> None:
            ka = unix_command(ksock, command, arguments)
            assert unix_command(fsock, command, arguments) == ka
            compare(f"{command} {arguments or ''}", 0)

        compare("the start", 0)
        for what, step in STEPS:
            n = step(kc, kstate)
            assert step(fc, fstate) == n
            sent += n
            compare(what, sent)

        # Kea's reset and remove, on top of fastdhcp's counters that never go back
        both("statistic-reset", {"name": "pkt4-received"})
        both("statistic-remove", {"name": "pkt4-ack-sent"})
        both("statistic-remove", {"name": "subnet[1].assigned-addresses"})
        for c, state in ((kc, kstate), (fc, fstate)):
            _dora(1)(c, state)  # a renewal: ack-sent is back, assigned is not
        compare("a DORA after the removals", 2)  # pkt4-received: 0 at the reset
        both("statistic-reset-all")
        for c, state in ((kc, kstate), (fc, fstate)):
            _send("discover", 30)(c, state)  # the pool is full (one bound, one declined)
        compare("a DISCOVER after statistic-reset-all", 1)
        both("statistic-remove-all")
        for c, state in ((kc, kstate), (fc, fstate)):
            _dora(1)(c, state)
        compare("a DORA after statistic-remove-all", 2)
