"""Server commands over the Unix socket: status-get, dhcp-disable / dhcp-enable, shutdown
(reference: kea-control-api.md C2, C13, C15), checked against real DORAs (scapy relay client)
and, for shutdown's exit value, a real ``fastdhcp serve`` process."""

from __future__ import annotations

import os
import time

import pytest

from fastdhcp.dhcp_state import DhcpServiceState, Origin
from tests.control_helpers import control_config_text, control_server, unix_command
from tests.service_helpers import RelayClient, ServeProcess, free_port, in_pool, mac

pytestmark = pytest.mark.service

#: How long a test waits for an answer it expects not to come.
SILENCE = 0.7


def no_offer(port: int, n: int, xid: int) -> bool:
    """True if a DISCOVER gets no answer within SILENCE seconds."""
    with RelayClient(port, timeout=SILENCE) as c:
        try:
            c.exchange("discover", mac(n), xid)
        except TimeoutError:
            return True
    return False


def offered(port: int, n: int, xid: int) -> str:
    with RelayClient(port) as c:
        return str(c.exchange("discover", mac(n), xid).yiaddr)


# --------------------------------------------------------------------------- the state, alone


def test_state_origins_are_independent():
    st = DhcpServiceState()
    st.disable(Origin.USER, None, 0.0)
    st.disable(Origin.HA_PARTNER, None, 0.0)
    assert not st.enable(Origin.USER)  # the partner still holds it
    assert [h.origin for h in st.holds()] == [Origin.HA_PARTNER]
    assert st.enable(Origin.HA_PARTNER)
    assert st.enabled


def test_state_max_period_ends_only_its_origin_and_only_when_due():
    st = DhcpServiceState()
    st.disable(Origin.USER, 5, 100.0)
    st.disable(Origin.HA_PARTNER, None, 100.0)
    assert not st.expire(Origin.USER, 104.9)  # early: kept
    assert st.expire(Origin.USER, 105.0)
    assert not st.expire(Origin.HA_PARTNER, 1e9)  # no period: only enable ends it
    assert not st.enabled
    st.disable(Origin.USER, 5, 0.0)
    st.disable(Origin.USER, None, 1.0)  # a later disable without a period replaces the first
    assert not st.expire(Origin.USER, 100.0)
    assert st.deadline(Origin.USER) is None


# --------------------------------------------------------------------------------- status-get


def test_status_get_shape(tmp_path):
    with control_server(tmp_path) as (srv, sock, port):
        with RelayClient(port) as c:
            c.dora(mac(1), 0x100)  # one commit, so the latency has a sample
        ans = unix_command(sock, "status-get")
    assert ans["result"] == 0 and "text" not in ans  # as Kea: no text
    a = ans["arguments"]
    assert a["pid"] == os.getpid()  # in-process server
    assert a["multi-threading-enabled"] is False
    assert a["sockets"] == {"status": "ready"}
    assert isinstance(a["uptime"], int) and 0 <= a["uptime"] < 60
    assert isinstance(a["reload"], int) and 0 <= a["reload"] <= a["uptime"]
    assert a["dhcp-state"] == {"enabled": True, "disabled-by": [], "remaining": {}}
    db = a["lease-database"]
    assert db["path"] == str(tmp_path / "db")
    assert db["size"] == os.stat(tmp_path / "db" / "data.mdb").st_size > 0
    assert db["map-size"] >= 1 << 20
    assert db["sync"] is True
    lat = db["commit-latency"]
    assert lat["count"] >= 1 and 0 < lat["p50"] <= lat["p99"]
    assert a["control-sockets"] == [{"socket-type": "unix", "socket-name": str(sock)}]


def test_status_get_reload_counts_from_the_last_config(tmp_path):
    with control_server(tmp_path) as (srv, sock, _port):
        time.sleep(1.2)
        before = unix_command(sock, "status-get")["arguments"]
        got = unix_command(sock, "config-get")["arguments"]
        assert unix_command(sock, "config-set", got)["result"] == 0
        after = unix_command(sock, "status-get")["arguments"]
    assert before["reload"] >= 1
    assert after["reload"] == 0 and after["uptime"] >= 1


# ------------------------------------------------------------------- dhcp-disable / -enable


def test_disable_then_enable(tmp_path):
    with control_server(tmp_path) as (srv, sock, port):
        m = srv.server.metrics
        assert offered(port, 1, 0x200)
        dropped = dict(m.dropped)
        received = list(m.received)
        ans = unix_command(sock, "dhcp-disable")
        assert ans == {"result": 0, "text": "DHCPv4 service disabled"}
        assert no_offer(port, 2, 0x210)
        st = unix_command(sock, "status-get")["arguments"]["dhcp-state"]
        assert st == {"enabled": False, "disabled-by": ["user"], "remaining": {}}
        assert m.disabled_discards == 1
        assert m.dropped == dropped  # not a receive drop, as Kea's pkt4-receive-drop
        assert m.received == received  # read, not handled
        ans = unix_command(sock, "dhcp-enable")
        assert ans == {"result": 0, "text": "DHCP service successfully enabled"}
        assert in_pool(offered(port, 3, 0x220))
        # enabling an enabled service: the same answer (Kea)
        assert unix_command(sock, "dhcp-enable")["result"] == 0


def test_datagrams_queued_while_disabled_are_not_answered_later(tmp_path):
    with control_server(tmp_path) as (srv, sock, port):
        unix_command(sock, "dhcp-disable")
        with RelayClient(port, timeout=SILENCE) as c:
            c.send_raw(c.build("discover", mac(7), 0x300))
            time.sleep(0.2)  # the server drains it while disabled
            unix_command(sock, "dhcp-enable")
            with pytest.raises(TimeoutError):
                c.recv(0x300)
        assert srv.server.metrics.disabled_discards == 1


def test_two_origins(tmp_path):
    with control_server(tmp_path) as (_srv, sock, port):
        assert unix_command(sock, "dhcp-disable", {"origin": "user"})["result"] == 0
        assert unix_command(sock, "dhcp-disable", {"origin": "ha-partner"})["result"] == 0
        ans = unix_command(sock, "dhcp-enable", {"origin": "user"})
        assert ans == {"result": 0, "text": "DHCP service successfully enabled"}  # Kea's, still
        st = unix_command(sock, "status-get")["arguments"]["dhcp-state"]
        assert st["enabled"] is False and st["disabled-by"] == ["ha-partner"]
        assert no_offer(port, 1, 0x400)
        assert unix_command(sock, "dhcp-enable", {"origin": "ha-partner"})["result"] == 0
        assert in_pool(offered(port, 2, 0x410))


def test_max_period_enables_by_itself(tmp_path):
    with control_server(tmp_path) as (_srv, sock, port):
        ans = unix_command(sock, "dhcp-disable", {"max-period": 1})
        assert ans == {"result": 0, "text": "DHCPv4 service disabled for 1 seconds"}
        st = unix_command(sock, "status-get")["arguments"]["dhcp-state"]
        assert st["disabled-by"] == ["user"] and st["remaining"] == {"user": 1}
        assert no_offer(port, 1, 0x500)
        time.sleep(0.6)  # 1.3 s after the disable
        assert in_pool(offered(port, 2, 0x510))
        st = unix_command(sock, "status-get")["arguments"]["dhcp-state"]
        assert st == {"enabled": True, "disabled-by": [], "remaining": {}}


def test_max_period_of_one_origin_leaves_the_other(tmp_path):
    with control_server(tmp_path) as (_srv, sock, port):
        unix_command(sock, "dhcp-disable", {"origin": "ha-partner"})
        unix_command(sock, "dhcp-disable", {"max-period": 1})
        time.sleep(1.3)
        st = unix_command(sock, "status-get")["arguments"]["dhcp-state"]
        assert st["disabled-by"] == ["ha-partner"]
        assert no_offer(port, 1, 0x600)


def test_enable_cancels_max_period(tmp_path):
    # disable(max-period) / enable / disable: the first period must not end the second
    with control_server(tmp_path) as (_srv, sock, port):
        unix_command(sock, "dhcp-disable", {"max-period": 1})
        unix_command(sock, "dhcp-enable")
        unix_command(sock, "dhcp-disable")
        time.sleep(1.3)
        assert no_offer(port, 1, 0x700)


@pytest.mark.parametrize(("command", "arguments", "text"), [
    ("dhcp-disable", {"max-period": 0}, "'max-period' must be positive integer"),
    ("dhcp-disable", {"max-period": "5"}, "'max-period' argument must be a number"),
    ("dhcp-disable", {"origin": "foo"}, "invalid value used for 'origin' parameter: foo"),
    ("dhcp-disable", {"origin": ""},
     "invalid value used for 'origin' parameter: (empty string)"),
    ("dhcp-disable", {"origin": 1}, "'origin' argument must be a string"),
    ("dhcp-enable", {"origin": "foo"}, "invalid value used for 'origin' parameter: foo"),
    ("shutdown", {"exit-value": "x"}, "parameter 'exit-value' is not an integer"),
])
def test_errors_as_kea(tmp_path, command, arguments, text):
    with control_server(tmp_path) as (srv, sock, port):
        ans = unix_command(sock, command, arguments)
        assert ans == {"result": 1, "text": text}
        assert srv.server.dhcp_state.enabled  # nothing happened
        assert in_pool(offered(port, 1, 0x800))


def test_unknown_argument_refused_with_its_name(tmp_path):
    with control_server(tmp_path) as (srv, sock, _port):
        ans = unix_command(sock, "dhcp-disable", {"max-perod": 5})
        assert ans["result"] == 1 and "'max-perod'" in ans["text"]
        assert srv.server.dhcp_state.enabled
        # Kea 2.2 takes (and ignores) max-period in dhcp-enable: so does fastdhcp
        assert unix_command(sock, "dhcp-enable", {"max-period": 5})["result"] == 0


# ----------------------------------------------------------------------------------- shutdown


def test_shutdown_in_process_stops_gracefully(tmp_path):
    with control_server(tmp_path) as (srv, sock, port):
        with RelayClient(port) as c:
            _offer, ack = c.dora(mac(1), 0x900)
        ans = unix_command(sock, "shutdown")
        assert ans == {"result": 0, "text": "Shutting down."}
        srv.call(srv.server.wait_closed(), timeout=10)
        assert srv.server.exit_value == 0
        assert not sock.exists()  # the control socket is removed on exit
        assert no_offer(port, 2, 0x910)


def test_shutdown_exit_value_of_fastdhcp_serve(tmp_path):
    port = free_port()
    sock = tmp_path / "ctl.sock"
    cfg = tmp_path / "fastdhcp.toml"
    cfg.write_text(control_config_text(tmp_path / "db", port, sock))
    with ServeProcess(cfg, tmp_path) as proc:
        assert proc.wait_notify(), proc.log()
        with RelayClient(port) as c:
            _offer, ack = c.dora(mac(1), 0xA00)
        ans = unix_command(sock, "shutdown", {"exit-value": 3})
        assert ans == {"result": 0, "text": "Shutting down."}
        assert proc.wait(timeout=20) == 3, proc.log()
        assert not sock.exists()
        assert "stopped;" in proc.log()  # the graceful path (pending commits flushed)
    # the lease it granted is in the database a restart reads
    with ServeProcess(cfg, tmp_path) as proc:
        assert proc.wait_notify(), proc.log()
        with RelayClient(port) as c:
            again = c.exchange("discover", mac(1), 0xA10)
        assert again.yiaddr == ack.yiaddr
