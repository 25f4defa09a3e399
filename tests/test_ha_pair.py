"""Two in-process fastdhcp servers as an HA pair: each one's HA service heartbeats the other over
HTTP (tests/ha_helpers.Listener in front of each server's command table, until fastdhcp's HTTP
control socket is on main), both reach the mode's normal state, status-get (over the Unix
control socket) shows Kea's high-availability section, and when one stops the other goes to
partner-down and takes every scope.

``sync-leases = false`` here: the start-up sync stores the partner's leases through the lease
commands (lease4-get-page, lease4-update), which another branch is building; the sync itself is
tested in test_ha_service.py against a partner that has them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from fastdhcp.config import loads
from fastdhcp.ha.state import HAState
from tests.control_helpers import control_config_text, unix_command
from tests.ha_helpers import Listener, ha_toml, table_dispatch
from tests.service_helpers import InProcessServer, free_port, free_tcp_port

pytestmark = pytest.mark.service

ROLES = {"load-balancing": ("primary", "secondary"), "hot-standby": ("primary", "standby")}


@contextmanager
def pair(tmp: Path, mode: str) -> Iterator[list[tuple[InProcessServer, Listener, Path]]]:
    http = [free_tcp_port(), free_tcp_port()]
    peers = [(f"server{i + 1}", f"http://127.0.0.1:{http[i]}/", ROLES[mode][i])
             for i in range(2)]
    out = []
    with ExitStack() as stack:
        for i in range(2):
            sock = tmp / f"s{i}" / "ctl.sock"
            text = control_config_text(tmp / f"db{i}", free_port(), sock) + ha_toml(
                f"server{i + 1}", mode, peers, heartbeat_delay=200, max_response_delay=1000,
                max_ack_delay=1000, max_unacked_clients=0, sync_leases=False)
            srv = stack.enter_context(InProcessServer(loads(text)))
            lst = Listener(table_dispatch(srv.server), "127.0.0.1", http[i])
            srv.call(lst.start())
            stack.callback(lambda s=srv, ls=lst: s.call(ls.stop()))
            out.append((srv, lst, sock))
        yield out


def state(srv: InProcessServer) -> HAState:
    ha = srv.server.ha
    assert ha is not None
    return ha.state


def wait_state(srv: InProcessServer, want: HAState, timeout: float = 6.0) -> None:
    async def poll() -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while state(srv) is not want:
            assert loop.time() < end, f"{state(srv)} instead of {want}"
            await asyncio.sleep(0.02)
    srv.call(poll(), timeout + 5)


@pytest.mark.parametrize("mode", ["load-balancing", "hot-standby"])
def test_pair_reaches_normal_state_then_partner_down(tmp_path: Path, mode: str) -> None:
    normal = HAState(mode)
    with pair(tmp_path, mode) as ((a, la, sock_a), (b, lb, sock_b)):
        wait_state(a, normal)
        wait_state(b, normal)
        time.sleep(0.5)  # two more heartbeats: each has seen the other in the normal state
        st: Any = unix_command(sock_a, "status-get")["arguments"]["high-availability"]
        assert st[0]["ha-mode"] == mode
        local, remote = st[0]["ha-servers"]["local"], st[0]["ha-servers"]["remote"]
        assert local == {"role": "primary", "scopes": ["server1"], "state": mode}
        assert remote["last-state"] == mode and remote["in-touch"] is True
        assert remote["communication-interrupted"] is False and remote["age"] <= 1
        sb: Any = unix_command(sock_b, "status-get")["arguments"]["high-availability"]
        want_b = ["server2"] if mode == "load-balancing" else []
        assert sb[0]["ha-servers"]["local"]["scopes"] == want_b
        hb: Any = unix_command(sock_b, "ha-heartbeat")
        assert hb["result"] == 0 and hb["arguments"]["state"] == mode
        assert "GMT" in hb["arguments"]["date-time"]
        # each heard the other over its own listener
        assert "ha-heartbeat" in la.commands() and "ha-heartbeat" in lb.commands()
        b.call(lb.stop())
        b.stop()  # server2 goes away
        wait_state(a, HAState.PARTNER_DOWN)
        st = unix_command(sock_a, "status-get")["arguments"]["high-availability"]
        everyone = ["server1", "server2"] if mode == "load-balancing" else ["server1"]
        assert st[0]["ha-servers"]["local"]["scopes"] == everyone
        assert st[0]["ha-servers"]["remote"]["last-state"] == "unavailable"
        ha = a.server.ha
        assert ha is not None
        seen = [t.new for t in ha.transitions]
        assert seen[-1] is HAState.PARTNER_DOWN
        if mode == "load-balancing":  # communication-recovery came first (kea-ha.md exp3)
            assert seen[-2] is HAState.COMMUNICATION_RECOVERY


def test_maintenance_over_the_pair(tmp_path: Path) -> None:
    with pair(tmp_path, "load-balancing") as ((a, la, sock_a), (b, lb, sock_b)):
        wait_state(a, HAState.LOAD_BALANCING)
        wait_state(b, HAState.LOAD_BALANCING)
        ans = unix_command(sock_a, "ha-maintenance-start")
        assert ans["result"] == 0, ans
        assert state(a) is HAState.PARTNER_IN_MAINTENANCE
        assert state(b) is HAState.IN_MAINTENANCE
        assert unix_command(sock_a, "ha-maintenance-start")["result"] == 1
        ans = unix_command(sock_a, "ha-maintenance-cancel")
        assert ans == {"result": 0, "text": "Server maintenance successfully canceled."}
        assert state(a) is HAState.LOAD_BALANCING and state(b) is HAState.LOAD_BALANCING
        ans = unix_command(sock_b, "ha-reset")
        assert ans == {"result": 0, "text": "HA state machine reset."}
        wait_state(b, HAState.LOAD_BALANCING)  # waiting -> ready -> load-balancing again
        assert unix_command(sock_a, "ha-scopes", {"scopes": ["nobody"]})["result"] == 1
        assert unix_command(sock_a, "ha-scopes", {"scopes": ["server1", "server2"]}) == {
            "result": 0, "text": "New HA scopes configured."}
        assert unix_command(sock_a, "ha-continue")["result"] == 0


def test_without_ha_the_commands_are_not_supported(tmp_path: Path) -> None:
    port = free_port()
    sock = tmp_path / "ctl.sock"
    with InProcessServer(loads(control_config_text(tmp_path / "db", port, sock))):
        for name in ("ha-heartbeat", "ha-sync", "ha-reset", "ha-maintenance-notify"):
            assert unix_command(sock, name) == {
                "result": 2, "text": f"'{name}' command not supported."}
        assert "high-availability" not in unix_command(sock, "status-get")["arguments"]
