"""HA units: [high-availability] validation, the load-balancing hash, the state machine with a
fake clock (each transition kea-ha.md section 3 records), the peer messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakeclock import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from fastdhcp.config import loads
from fastdhcp.control.protocol import CommandError
from fastdhcp.errors import ConfigError
from fastdhcp.ha import messages as m
from fastdhcp.ha.config import HAConfig, HAMode, Role
from fastdhcp.ha.hash import PEARSON_TABLE, lb_hash, server_index
from fastdhcp.ha.state import (
    Action,
    HAState,
    HAStateMachine,
    HeartbeatReply,
    Refused,
    UpdatePolicy,
)
from fastdhcp.leases import LeaseState

S = HAState
VECTORS = Path(__file__).parent / "vectors" / "ha_lb_hash.json"

BASE = """
[lease-database]
path = "/tmp/x"
[[subnet4]]
id = 1
subnet = "198.18.0.0/24"
pools = ["198.18.0.100 - 198.18.0.199"]
"""


def ha_text(mode: str = "load-balancing", this: str = "server1", roles: tuple[str, str] =
            ("primary", "secondary"), extra: str = "", peer_extra: str = "") -> str:
    timers = {"heartbeat-delay": "2000", "max-response-delay": "6000",
              "max-ack-delay": "2000", "max-unacked-clients": "2"}
    for line in extra.splitlines():  # extra overrides the test timers
        k, _, v = line.partition("=")
        timers[k.strip()] = v.strip()
    body = "\n".join(f"{k} = {v}" for k, v in timers.items())
    return BASE + f"""
[high-availability]
this-server-name = "{this}"
mode = "{mode}"
{body}
[[high-availability.peers]]
name = "server1"
url = "http://198.18.0.1:8000/"
role = "{roles[0]}"
{peer_extra}
[[high-availability.peers]]
name = "server2"
url = "http://198.18.0.2:8000/"
role = "{roles[1]}"
"""


def ha_config(**kw: Any) -> HAConfig:
    conf = loads(ha_text(**kw)).high_availability
    assert conf is not None
    return conf


def problems(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        loads(text)
    return str(exc.value)


# ------------------------------------------------------------------------------ config


def test_config_kea_names_and_defaults() -> None:
    c = ha_config()
    assert c.mode is HAMode.LOAD_BALANCING and c.this_server_name == "server1"
    assert (c.heartbeat_delay, c.max_response_delay, c.max_ack_delay,
            c.max_unacked_clients) == (2000, 6000, 2000, 2)
    # Kea's defaults for what the file leaves out
    assert (c.max_rejected_lease_updates, c.delayed_updates_limit, c.sync_leases,
            c.sync_timeout, c.sync_page_limit, c.send_lease_updates, c.wait_backup_ack) == \
        (10, 100, True, 60000, 10000, True, False)
    assert c.this_peer.role is Role.PRIMARY and c.partner is not None
    assert c.partner.name == "server2" and c.partner.host == "198.18.0.2"
    assert c.this_peer.auto_failover is True
    assert loads(BASE).high_availability is None


def test_config_hot_standby() -> None:
    c = ha_config(mode="hot-standby", roles=("primary", "standby"), this="server2")
    assert c.mode is HAMode.HOT_STANDBY and c.this_peer.role is Role.STANDBY
    assert [p.name for p in c.active_peers] == ["server1", "server2"]


@pytest.mark.parametrize("kw,key,words", [
    ({"this": "server9"}, "high-availability.this-server-name", "no peer has this name"),
    ({"roles": ("primary", "primary")}, "high-availability.peers[1].role", "two primaries"),
    ({"roles": ("primary", "standby")}, "high-availability.peers[1].role",
     "no place in load-balancing"),
    ({"mode": "hot-standby"}, "high-availability.peers[1].role", "no place in hot-standby"),
    ({"mode": "failover"}, "high-availability.mode", "'load-balancing' or 'hot-standby'"),
    ({"roles": ("primary", "boss")}, "high-availability.peers[1].role", "must be one of"),
    ({"extra": "max-response-delay = 1000"}, "high-availability.max-response-delay",
     "greater than heartbeat-delay"),
    ({"extra": "heartbeat-delay = -5"}, "high-availability.heartbeat-delay", "integer"),
    ({"extra": "sync-leases = 1"}, "high-availability.sync-leases", "true or false"),
    ({"extra": "hearbeat-delay = 5"}, "high-availability.hearbeat-delay",
     "did you mean 'heartbeat-delay'"),
    ({"peer_extra": 'basic-auth-user = "ha"\nbasic-auth-password-file = "/nonexistent/pw"'},
     "high-availability.peers[0].basic-auth-password-file", "cannot be read"),
    ({"peer_extra": 'basic-auth-password = "secret"'},
     "high-availability.peers[0].basic-auth-password", "in clear"),
    ({"peer_extra": 'trust-anchor = "/etc/hostname"'}, "high-availability.peers[0].trust-anchor",
     "https://"),
])
def test_config_refusals_name_key_and_value(kw: dict[str, Any], key: str, words: str) -> None:
    out = problems(ha_text(**kw))
    line = next((x for x in out.splitlines() if key in x), None)
    assert line is not None, out
    assert words in line, line
    assert "secret" not in out  # a clear password is never echoed


@pytest.mark.parametrize("url,why", [
    ("ftp://198.18.0.2:8000/", "http:// or https://"),
    ("http://198.18.0.2/", "must give the port"),
    ("http://198.18.0.2:99999/", "port"),
    ("http://198.18.0.2:8000/api", "no path"),
    ("http://u:p@198.18.0.2:8000/", "credentials"),
])
def test_config_bad_urls(url: str, why: str) -> None:
    out = problems(ha_text().replace("http://198.18.0.2:8000/", url))
    assert "high-availability.peers[1].url" in out and why in out, out


def test_config_password_file_read(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    c = ha_config(peer_extra=f'basic-auth-user = "ha"\nbasic-auth-password-file = "{pw}"')
    assert c.peers[0].basic_auth_user == "ha"
    assert c.peers[0].basic_auth_password_file == str(pw)


# ------------------------------------------------------------------------------ hash


def test_pearson_table_is_rfc3074s() -> None:
    assert sorted(PEARSON_TABLE) == list(range(256))  # a permutation of 0..255
    assert list(PEARSON_TABLE[:10]) == [251, 175, 119, 215, 81, 14, 79, 191, 103, 49]
    assert list(PEARSON_TABLE[-5:]) == [68, 6, 169, 234, 151]


def test_hash_by_hand() -> None:
    # one byte 0x00: h = len 1 -> T[1 ^ 0] = T[1] = 175
    assert lb_hash(b"\x00") == 175
    # two bytes taken last first: h = 2; T[2 ^ 0x01] = T[3] = 215; T[215 ^ 0x02] = T[213]
    assert lb_hash(b"\x02\x01") == PEARSON_TABLE[PEARSON_TABLE[2 ^ 1] ^ 2]
    assert lb_hash(b"") == 0


def test_hash_key_choice() -> None:
    mac = bytes.fromhex("020000000004")
    cid = b"\x01" + mac
    assert server_index(cid, mac) == lb_hash(cid) % 2  # the client-id wins, type byte incl.
    assert server_index(None, mac) == lb_hash(mac) % 2  # else chaddr, no htype
    assert server_index(b"", b"") is None


def test_hash_against_kea_36_clients() -> None:
    """The 36 clients a real Kea 2.2 placed (recorded by test_ha_kea.py from Kea's answers:
    which DISCOVERs the Kea primary answered in load-balancing)."""
    data = json.loads(VECTORS.read_text())
    clients = data["clients"]
    assert len(clients) == 36
    assert sum(1 for c in clients if c["client-id"]) == 12
    for c in clients:
        cid = bytes.fromhex(c["client-id"]) if c["client-id"] else None
        idx = server_index(cid, bytes.fromhex(c["chaddr"]))
        assert idx == (0 if c["kea-primary-answered"] else 1), c


# ------------------------------------------------------------------------------ state


WALL = 1_800_000_000.0


def hb(state: HAState, unsent: int | None = 0, skew: float = 0.0,
       scopes: tuple[str, ...] | None = ()) -> HeartbeatReply:
    return HeartbeatReply(state, WALL + skew, scopes, unsent)


def machine(**kw: Any) -> tuple[HAStateMachine, FakeClock]:
    clock = FakeClock(1000.0)
    return HAStateMachine(ha_config(**kw), clock()), clock


def to_lb(mm: HAStateMachine, clock: FakeClock) -> None:
    step = mm.heartbeat_answered(clock(), WALL, hb(S.READY))
    assert step.actions == (Action.SYNC,) and mm.state is S.SYNCING
    mm.sync_finished(clock(), True)
    assert mm.state is S.READY
    mm.heartbeat_answered(clock(), WALL, hb(S.READY))
    assert mm.state is S.LOAD_BALANCING


@pytest.mark.parametrize("partner,after", [
    # kea-ha.md exp1_B: a fresh primary, each partner state, the state it ends in
    (S.WAITING, S.READY), (S.SYNCING, S.WAITING), (S.READY, S.LOAD_BALANCING),
    (S.LOAD_BALANCING, S.LOAD_BALANCING), (S.HOT_STANDBY, S.WAITING),
    (S.PARTNER_DOWN, S.READY), (S.COMMUNICATION_RECOVERY, S.LOAD_BALANCING),
    (S.IN_MAINTENANCE, S.PARTNER_IN_MAINTENANCE), (S.PARTNER_IN_MAINTENANCE, S.IN_MAINTENANCE),
    (S.TERMINATED, S.WAITING), (S.BACKUP, S.WAITING),
])
def test_startup_per_partner_state(partner: HAState, after: HAState) -> None:
    mm, clock = machine()
    assert mm.state is S.WAITING and mm.scopes() == () and not mm.dhcp_enabled
    for _ in range(3):  # heartbeats 2 s apart, the sync succeeding when asked
        step = mm.heartbeat_answered(clock(), WALL, hb(partner))
        if Action.SYNC in step.actions:
            assert mm.state is S.SYNCING
            mm.sync_finished(clock(), True)
        clock.now += 2
    assert mm.state is after


def test_secondary_waits_for_the_primary_to_sync_first() -> None:
    mm, clock = machine(this="server2")
    step = mm.heartbeat_answered(clock(), WALL, hb(S.WAITING))
    assert mm.state is S.WAITING and step.actions == ()
    step = mm.heartbeat_answered(clock(), WALL, hb(S.READY))
    assert step.actions == (Action.SYNC,)


def test_bogus_partner_is_partner_down_after_max_response_delay() -> None:
    mm, clock = machine()
    for t in (0, 2, 4, 6):  # at 6 s the age is not above max-response-delay yet
        clock.now = 1000 + t
        mm.heartbeat_failed(clock())
        mm.tick(clock())
        assert mm.state is S.WAITING, t
    clock.now = 1008
    step = mm.heartbeat_failed(clock())
    assert mm.state is S.PARTNER_DOWN and step.transitions[-1].old is S.WAITING
    assert mm.scopes() == ("server1", "server2")
    st = mm.status(clock())["ha-servers"]["remote"]  # type: ignore[index]
    assert st["communication-interrupted"] is True and st["age"] == 8
    assert st["last-state"] == "unavailable" and st["unacked-clients"] == 0


def test_lb_reactions_to_partner_changes() -> None:
    for partner, after in ((S.WAITING, S.LOAD_BALANCING), (S.SYNCING, S.LOAD_BALANCING),
                           (S.READY, S.LOAD_BALANCING), (S.TERMINATED, S.TERMINATED),
                           (S.PARTNER_DOWN, S.WAITING)):
        mm, clock = machine()
        to_lb(mm, clock)
        mm.heartbeat_answered(clock(), WALL, hb(partner))
        assert mm.state is after, partner
    # terminated keeps its own scope (kea-ha.md exp1_C)
    assert mm.state is S.WAITING
    mm, clock = machine()
    to_lb(mm, clock)
    mm.heartbeat_answered(clock(), WALL, hb(S.TERMINATED))
    assert mm.scopes() == ("server1",) and not mm.heartbeats_enabled


def test_partner_down_then_full_resync_then_lb() -> None:
    mm, clock = machine()
    to_lb(mm, clock)
    step = mm.heartbeat_answered(clock(), WALL, hb(S.PARTNER_DOWN, scopes=("server2",)))
    assert mm.state is S.WAITING and mm.partner_scopes == ("server2",)
    step = mm.heartbeat_answered(clock(), WALL, hb(S.PARTNER_DOWN))
    assert step.actions == (Action.SYNC,)
    mm.sync_finished(clock(), True)
    mm.heartbeat_answered(clock(), WALL, hb(S.PARTNER_DOWN))
    assert mm.state is S.READY  # waits for the partner to leave partner-down
    mm.heartbeat_answered(clock(), WALL, hb(S.READY))
    assert mm.state is S.LOAD_BALANCING


def test_failed_sync_goes_back_to_waiting() -> None:
    mm, clock = machine()
    mm.heartbeat_answered(clock(), WALL, hb(S.READY))
    mm.sync_finished(clock(), False)
    assert mm.state is S.WAITING


def test_no_sync_leases_skips_syncing() -> None:
    mm, clock = machine(extra="sync-leases = false")
    step = mm.heartbeat_answered(clock(), WALL, hb(S.WAITING))
    assert mm.state is S.READY and step.actions == ()


def comm_loss(mm: HAStateMachine, clock: FakeClock) -> None:
    to_lb(mm, clock)
    step = mm.heartbeat_failed(clock())
    assert mm.state is S.COMMUNICATION_RECOVERY and step.transitions[0].partner is \
        S.UNAVAILABLE
    assert "partner state is UNDEFINED" in step.transitions[0].log_line()
    assert mm.scopes() == ("server1",)
    assert mm.update_policy() is UpdatePolicy.QUEUE


def test_communication_recovery_short_outage_flushes_backlog() -> None:
    mm, clock = machine()
    comm_loss(mm, clock)
    assert mm.lease_changes(2) is UpdatePolicy.QUEUE and mm.backlog_size == 2
    step = mm.heartbeat_answered(clock(), WALL, hb(S.LOAD_BALANCING))
    assert step.actions == (Action.SEND_BACKLOG,) and mm.state is S.COMMUNICATION_RECOVERY
    mm.backlog_sent(clock(), True)
    assert mm.state is S.LOAD_BALANCING and mm.backlog_size == 0
    assert mm.unsent_update_count == 0


def test_backlog_overflow_means_resync() -> None:
    mm, clock = machine(extra="delayed-updates-limit = 3")
    comm_loss(mm, clock)
    mm.lease_changes(2)
    mm.lease_changes(2)  # one over the limit
    assert mm.backlog_overflowed and mm.unsent_update_count == 1
    mm.heartbeat_answered(clock(), WALL, hb(S.LOAD_BALANCING))
    assert mm.state is S.WAITING


def test_unacked_clients_over_max_is_partner_down() -> None:
    mm, clock = machine()
    comm_loss(mm, clock)
    clock.now += 4
    mm.heartbeat_failed(clock())
    mm.client_query(clock(), b"c1", 5, True)  # not yet interrupted (age 4 <= 6): ignored
    st = mm.status(clock())["ha-servers"]["remote"]  # type: ignore[index]
    assert st["communication-interrupted"] is False and st["analyzed-packets"] == 0
    clock.now += 5
    mm.heartbeat_failed(clock())
    assert mm.communication_interrupted(clock())
    mm.client_query(clock(), b"c0", 0, True)  # secs 0: connecting, not unacked
    mm.client_query(clock(), b"c1", 5, True)  # 5 s > max-ack-delay 2 s
    mm.client_query(clock(), b"c1", 6, True)  # the same client again: still one
    mm.client_query(clock(), b"c2", 3, True)
    mm.client_query(clock(), b"c9", 9, False)  # our own scope: not analyzed
    st = mm.status(clock())["ha-servers"]["remote"]  # type: ignore[index]
    assert (st["unacked-clients"], st["unacked-clients-left"], st["connecting-clients"]) == \
        (2, 1, 1)
    mm.tick(clock())
    assert mm.state is S.COMMUNICATION_RECOVERY  # 2 = max-unacked-clients: not more
    mm.client_query(clock(), b"c3", 3, True)  # max-unacked-clients + 1
    step = mm.tick(clock())
    assert mm.state is S.PARTNER_DOWN and step.transitions[0].old is \
        S.COMMUNICATION_RECOVERY
    assert mm.scopes() == ("server1", "server2")
    assert mm.update_policy() is UpdatePolicy.UNSENT
    assert mm.serves(None, bytes(6)) is True


def test_auto_failover_false_never_takes_over() -> None:
    mm, clock = machine(peer_extra="auto-failover = false")
    clock.now += 100
    mm.heartbeat_failed(clock())
    mm.tick(clock())
    assert mm.state is S.WAITING


def test_partner_down_return_same_or_changed_unsent_count() -> None:
    for unsent, after in ((0, S.LOAD_BALANCING), (5, S.WAITING)):
        mm, clock = machine()
        to_lb(mm, clock)
        mm.heartbeat_failed(clock())
        clock.now += 10
        mm.heartbeat_failed(clock())
        mm.client_query(clock(), b"a", 9, True)
        mm.client_query(clock(), b"b", 9, True)
        mm.client_query(clock(), b"c", 9, True)
        mm.tick(clock())
        assert mm.state is S.PARTNER_DOWN
        assert mm.lease_changes(1) is UpdatePolicy.UNSENT and mm.unsent_update_count == 1
        mm.heartbeat_answered(clock(), WALL, hb(S.WAITING, unsent))
        assert mm.state is S.PARTNER_DOWN  # the partner is expected to sync from us
        mm.heartbeat_answered(clock(), WALL, hb(S.READY, unsent))
        assert mm.state is after, unsent


def test_clock_skew() -> None:
    mm, clock = machine()
    to_lb(mm, clock)
    step = mm.heartbeat_answered(clock(), WALL, hb(S.LOAD_BALANCING, skew=40))
    assert mm.state is S.LOAD_BALANCING and "HA_HIGH_CLOCK_SKEW" in step.warnings[0]
    step = mm.heartbeat_answered(clock(), WALL, hb(S.LOAD_BALANCING, skew=-70))
    assert mm.state is S.TERMINATED
    assert "HA_HIGH_CLOCK_SKEW_CAUSES_TERMINATION" in step.warnings[0]


def test_lease_update_failure_and_rejections() -> None:
    mm, clock = machine()
    to_lb(mm, clock)
    mm.lease_update_failed(clock())
    assert mm.state is S.COMMUNICATION_RECOVERY
    mm, clock = machine(extra="max-rejected-lease-updates = 1")
    to_lb(mm, clock)
    mm.lease_update_failed(clock(), b"a", rejected=True)
    mm.heartbeat_answered(clock(), WALL, hb(S.LOAD_BALANCING))
    mm.backlog_sent(clock(), True)
    assert mm.state is S.LOAD_BALANCING
    mm.lease_update_failed(clock(), b"b", rejected=True)  # the second distinct client
    assert mm.state is S.TERMINATED


def test_hot_standby_roles() -> None:
    prim, clock = machine(mode="hot-standby", roles=("primary", "standby"))
    to_hs = hb(S.READY)
    prim.heartbeat_answered(clock(), WALL, to_hs)
    prim.sync_finished(clock(), True)
    prim.heartbeat_answered(clock(), WALL, to_hs)
    assert prim.state is S.HOT_STANDBY and prim.scopes() == ("server1",)
    assert prim.serves(None, bytes.fromhex("020000000001"))
    # LB's normal state from a hot-standby partner is invalid: a warning, no change
    step = prim.heartbeat_answered(clock(), WALL, hb(S.LOAD_BALANCING))
    assert "HA_INVALID_PARTNER_STATE" in step.warnings[0] and prim.state is S.HOT_STANDBY
    # the primary takes over when communication is interrupted (nothing to analyze)
    prim.heartbeat_failed(clock())
    assert prim.state is S.HOT_STANDBY  # no communication-recovery in hot-standby
    clock.now += 7
    prim.heartbeat_failed(clock())
    assert prim.state is S.PARTNER_DOWN

    sby, clock = machine(mode="hot-standby", roles=("primary", "standby"), this="server2")
    sby.heartbeat_answered(clock(), WALL, hb(S.HOT_STANDBY))
    sby.sync_finished(clock(), True)
    sby.heartbeat_answered(clock(), WALL, hb(S.HOT_STANDBY))
    assert sby.state is S.HOT_STANDBY and sby.scopes() == ()
    assert sby.dhcp_enabled and not sby.serves(None, bytes(6))
    clock.now += 7
    sby.heartbeat_failed(clock())
    for k in (b"1", b"2", b"3"):
        sby.client_query(clock(), k, 10, True)
    sby.tick(clock())
    assert sby.state is S.PARTNER_DOWN and sby.serves(None, bytes(6))
    assert sby.scopes() == ("server1",)  # hot-standby's one scope (real Kea's, too)


def test_scopes_follow_the_hash() -> None:
    mm, clock = machine()
    to_lb(mm, clock)
    macs = [bytes([2, 0, 0, 0, 0, n]) for n in range(40)]
    mine = [mac for mac in macs if mm.serves(None, mac)]
    assert mine and len(mine) < 40
    assert all(lb_hash(mac) % 2 == 0 for mac in mine)
    mm.set_scopes(("server1", "server2"))
    assert all(mm.serves(None, mac) for mac in macs)
    with pytest.raises(Refused):
        mm.set_scopes(("nobody",))


def test_maintenance_flow() -> None:
    a, clock = machine()
    b, _ = machine(this="server2")
    to_lb(a, clock)
    b.heartbeat_answered(clock(), WALL, hb(S.READY))
    b.sync_finished(clock(), True)
    b.heartbeat_answered(clock(), WALL, hb(S.LOAD_BALANCING))
    a.check_maintenance_start()
    _, text = b.maintenance_notify(False)
    assert b.state is S.IN_MAINTENANCE and b.scopes() == () and text
    _, text = a.maintenance_started(True)
    assert a.state is S.PARTNER_IN_MAINTENANCE and a.scopes() == ("server1", "server2")
    assert "partner-in-maintenance" in text
    with pytest.raises(Refused):
        a.check_maintenance_start()
    a.check_maintenance_cancel()
    assert b.maintenance_notify(True)[1] == "Server maintenance canceled."  # Kea 2.2's
    a.maintenance_canceled()
    assert a.state is S.LOAD_BALANCING and b.state is S.LOAD_BALANCING
    with pytest.raises(Refused) as exc:
        b.maintenance_notify(True)  # not in maintenance
    assert exc.value.text == ("Unable to cancel the maintenance for the server not in the "
                              "in-maintenance state.")  # Kea 2.2's text, asked of it
    with pytest.raises(Refused) as exc:
        a.check_maintenance_cancel()
    assert exc.value.text == ("Unable to cancel maintenance request because the server is "
                              "not in the partner-in-maintenance state.")
    # the partner shut down for maintenance: partner-down at its first failed heartbeat
    b.maintenance_notify(False)
    a.maintenance_started(True)
    a.heartbeat_failed(clock())
    assert a.state is S.PARTNER_DOWN
    # unreachable when maintenance starts: partner-down at once
    c, clock = machine()
    to_lb(c, clock)
    c.maintenance_started(False)
    assert c.state is S.PARTNER_DOWN


def test_reset() -> None:
    mm, clock = machine()
    _, text = mm.reset()
    assert text == "HA state machine already in WAITING state."
    to_lb(mm, clock)
    _, text = mm.reset()
    assert mm.state is S.WAITING and text == "HA state machine reset."


# ------------------------------------------------------------------------------ messages


LEASE_JSON = {"client-id": "01:02:00:00:00:00:04", "expire": 1796535596, "force-create": True,
              "fqdn-fwd": False, "fqdn-rev": False, "hostname": "host-b",
              "hw-address": "02:00:00:00:00:04", "ip-address": "198.18.0.102", "state": 0,
              "subnet-id": 1, "valid-lft": 3600}


def test_lease_update_body_is_keas() -> None:
    lease = m.lease_from_json(LEASE_JSON)
    assert lease.cltt == 1796535596 - 3600 and lease.client_id == bytes.fromhex("0102000000" +
                                                                                "0004")
    req = m.lease_update_request(lease)
    # exactly the body Kea sent (kea-ha.md §4), keys alphabetical
    want = ('{"arguments":' + json.dumps(LEASE_JSON, separators=(",", ":")) +
            ',"command":"lease4-update","service":["dhcp4"]}')
    assert json.dumps(req, separators=(",", ":")) == want
    d = m.lease_del_request(lease)
    assert d["command"] == "lease4-del" and "force-create" not in d["arguments"]
    page = lease.page_json()
    assert page["cltt"] == lease.cltt and "expire" not in page
    assert m.lease_from_json(page) == lease


def test_lease_without_client_id_and_declined() -> None:
    d = dict(LEASE_JSON, **{"hw-address": "", "state": 1, "hostname": "", "valid-lft": 86400})
    del d["client-id"]
    lease = m.lease_from_json(d)
    assert lease.state is LeaseState.DECLINED and lease.client_id is None
    assert "client-id" not in lease.update_arguments()


@pytest.mark.parametrize("change,words", [
    ({"ip-address": "198.18.0"}, "Failed to convert string to address"),
    ({"hw-address": None}, "missing parameter 'hw-address'"),
    ({"hw-address": "zz:00"}, "not hexadecimal"),
    ({"valid-lft": "3600"}, "'valid-lft' is not an integer"),
    ({"expire": None}, "missing parameter 'expire'"),
    ({"state": 7}, "invalid state 7"),
    ({"fqdn-fwd": "no"}, "'fqdn-fwd' is not a boolean"),
    ({"user-context": [1]}, "'user-context' must be a map"),
])
def test_bad_lease_bodies(change: dict[str, Any], words: str) -> None:
    d = dict(LEASE_JSON)
    for k, v in change.items():
        if v is None:
            del d[k]
        else:
            d[k] = v
    with pytest.raises(CommandError) as exc:
        m.lease_from_json(d)
    assert words in exc.value.text


def test_heartbeat_round_trip_and_keas_failures() -> None:
    ans = m.heartbeat_answer(S.LOAD_BALANCING, 1796532654.0, ("server1",), 3).to_json()
    assert ans == {"arguments": {"date-time": "Sun, 06 Dec 2026 04:50:54 GMT",
                                 "scopes": ["server1"], "state": "load-balancing",
                                 "unsent-update-count": 3},
                   "result": 0, "text": "HA peer status returned."}
    reply = m.parse_heartbeat_answer(m.parse_answer([ans]))
    assert reply == HeartbeatReply(S.LOAD_BALANCING, 1796532654.0, ("server1",), 3)
    assert json.dumps(m.heartbeat_request(), separators=(",", ":")) == \
        '{"command":"ha-heartbeat","service":["dhcp4"]}'
    args = ans["arguments"]
    # scopes and unsent-update-count may be missing (Kea tolerated it)
    lean = {k: v for k, v in args.items() if k in ("date-time", "state")}
    assert m.parse_heartbeat_answer(m.PeerAnswer(0, "", lean)).scopes is None
    for bad, words in (({**args, "date-time": None}, "date-time not returned"),
                       ({**args, "state": None}, "server state not returned"),
                       ({**args, "state": "bogus-state"},
                        "unsupported HA partner state returned bogus-state"),
                       ({**args, "state": "unavailable"}, "unsupported HA partner state"),
                       ({**args, "date-time": "yesterday"}, "not an RFC 1123 date")):
        bad = {k: v for k, v in bad.items() if v is not None}
        with pytest.raises(m.PeerError) as exc:
            m.parse_heartbeat_answer(m.PeerAnswer(0, "", bad))
        assert words in str(exc.value)
    with pytest.raises(m.PeerError) as exc:
        m.parse_heartbeat_answer(m.PeerAnswer(1, "forced error"))
    assert "forced error, error code 1" in str(exc.value)


def test_sync_messages() -> None:
    assert m.dhcp_disable_request(10) == {"arguments": {"max-period": 10,
                                                        "origin": "ha-partner"},
                                          "command": "dhcp-disable", "service": ["dhcp4"]}
    assert m.get_page_request(None, 3)["arguments"] == {"from": "start", "limit": 3}
    assert m.get_page_request(0xC6120078, 3)["arguments"]["from"] == "198.18.0.120"
    empty = m.parse_answer([{"arguments": {"count": 0, "leases": []}, "result": 3,
                             "text": "0 IPv4 lease(s) found."}])
    assert m.parse_page_answer(empty) == []
    page = {"count": 2, "leases": [dict(LEASE_JSON, **{"ip-address": ip}) for ip in
                                   ("198.18.0.5", "198.18.0.4")]}
    with pytest.raises(m.PeerError):  # descending: paging would never end
        m.parse_page_answer(m.PeerAnswer(0, "", page))
    with pytest.raises(m.PeerError):
        m.parse_answer([{"result": 0}, {"result": 0}])
    assert m.parse_answer({"result": 400, "text": "Bad Request"}).result == 400


def test_batch_round_trip_and_refusal() -> None:
    a = m.lease_from_json(LEASE_JSON)
    b = m.lease_from_json(dict(LEASE_JSON, **{"ip-address": "198.18.0.103"}))
    req = m.batch_request([a], [b])
    assert req["command"] == m.BATCH_COMMAND
    assert m.parse_batch_args(req["arguments"]) == ([a], [b])
    bad = {"leases": [LEASE_JSON, {"ip-address": "1.2.3.4"}]}
    with pytest.raises(CommandError) as exc:
        m.parse_batch_args(bad)
    assert exc.value.text.startswith("leases[1]: missing parameter 'hw-address'")
    res = m.parse_batch_result(m.PeerAnswer(0, "", {"failed-leases": [
        {"ip-address": "198.18.0.103", "result": 1, "error-message": "no subnet"}]}))
    assert res == [m.BatchResult(0xC6120067, 1, "no subnet")]


def test_batch_rows_are_compact_and_the_old_maps_still_parse() -> None:
    """A batch carries each lease as a row of ROW_COLUMNS (no per-lease map); a batch in Kea's
    lease maps (what the first fastdhcp release sent) still parses to the same leases."""
    a = m.lease_from_json(LEASE_JSON)
    b = m.HALease(0xC6120067, b"", 3600, 1796531996, 1, state=LeaseState.DECLINED,
                  user_context={"k": [1]})
    args = m.batch_request([a, b], [a])["arguments"]
    assert args["rows"][0] == [0xC6120066, "020000000004", "01020000000004", 3600, 1796531996,
                               1, "host-b", False, False, 0]
    assert args["rows"][1][-1] == {"k": [1]} and len(args["rows"][1]) == len(m.ROW_COLUMNS)
    assert m.parse_batch_args(json.loads(json.dumps(args))) == ([a, b], [a])
    assert m.parse_batch_args({"leases": [LEASE_JSON], "deleted-leases": []}) == ([a], [])


@pytest.mark.parametrize(("row", "text"), [
    ([1, "00"], "rows[0]: a row must be a list of 10 or 11 values"),
    ([True, "00", None, 1, 1, 1, "", False, False, 0], "rows[0]: 'ip' is not an integer"),
    ([2**32, "00", None, 1, 1, 1, "", False, False, 0], "rows[0]: 'ip' is not an integer"),
    ([1, "0g", None, 1, 1, 1, "", False, False, 0], "rows[0]: invalid 'hw-address' value"),
    ([1, "00" * 17, None, 1, 1, 1, "", False, False, 0], "rows[0]: 'hw-address' is longer"),
    ([1, "00", "01", 1, 1, 1, "", False, False, 0], "rows[0]: 'client-id' is shorter"),
    ([1, "00", None, -1, 1, 1, "", False, False, 0], "rows[0]: 'valid-lft' is not an integer"),
    ([1, "00", None, 1, 1, 0, "", False, False, 0], "rows[0]: 'subnet-id' is not a positive"),
    ([1, "00", None, 1, 1, 1, 5, False, False, 0], "rows[0]: 'hostname' is not a string"),
    ([1, "00", None, 1, 1, 1, "", 1, False, 0], "rows[0]: 'fqdn-fwd' and 'fqdn-rev' must be"),
    ([1, "00", None, 1, 1, 1, "", False, False, 3], "rows[0]: invalid state 3"),
    ([1, "00", None, 1, 1, 1, "", False, False, 0, []], "rows[0]: 'user-context' must be a map"),
])
def test_a_malformed_row_names_its_column(row: list[Any], text: str) -> None:
    with pytest.raises(CommandError) as exc:
        m.parse_batch_args({"rows": [row]})
    assert exc.value.text.startswith(text), exc.value.text


def test_a_malformed_batch_is_refused_whole() -> None:
    for args, text in (([], "Parameters missing"), ({"rows": {}}, "'rows' must be a list"),
                       ({"rows": [], "x": 1}, "unknown parameter 'x'")):
        with pytest.raises(CommandError) as exc:
            m.parse_batch_args(args)
        assert exc.value.text.startswith(text), exc.value.text


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2, 2**33) | st.text(max_size=6)
                     | st.sampled_from(["00", "0102", "aabbccddeeff", "01aabbccddeeff"]),
                     lambda kids: st.lists(kids, max_size=12)
                     | st.dictionaries(st.text(max_size=4), kids, max_size=3), max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["rows", "deleted-rows", "leases", "x"]),
                       st.lists(_JSON, max_size=3), max_size=3))
def test_fuzz_the_batch_decoder(args: dict[str, Any]) -> None:
    """Whatever a partner sends, the decoder answers leases or a CommandError, and a lease it
    accepts encodes back to a row that decodes to the same lease."""
    try:
        updated, deleted = m.parse_batch_args(args)
    except CommandError:
        return
    for x in (*updated, *deleted):
        assert m.row_lease(m.lease_row(x)) == x


@settings(max_examples=200, deadline=None)
@given(st.builds(m.HALease, st.integers(0, 2**32 - 1), st.binary(max_size=16),
                 st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                 st.none() | st.integers(1, 2**32 - 1),
                 st.none() | st.binary(min_size=2, max_size=20),
                 st.text(max_size=10), st.booleans(), st.booleans(),
                 st.sampled_from([LeaseState.DEFAULT, LeaseState.DECLINED,
                                  LeaseState.EXPIRED_RECLAIMED]),
                 st.none() | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
def test_every_lease_survives_its_row(x: m.HALease) -> None:
    row = json.loads(json.dumps(m.lease_row(x)))
    assert m.row_lease(row) == x


def test_command_arguments() -> None:
    assert m.parse_maintenance_notify({"cancel": True}) is True
    with pytest.raises(CommandError):
        m.parse_maintenance_notify({})
    assert m.parse_scopes({"scopes": ["server1"]}) == ("server1",)
    with pytest.raises(CommandError):
        m.parse_scopes({"scopes": "server1"})
    assert m.parse_sync_args({"server-name": "server2", "max-period": 5}) == ("server2", 5)
    with pytest.raises(CommandError) as exc:
        m.parse_sync_args({"max-period": 0})
    assert exc.value.text == "'server-name' is mandatory for the 'ha-sync' command"


def test_kea_vectors_rule_out_the_near_variants() -> None:
    """The recorded clients tell the variants apart (kea-ha.md §5 lists the same ones)."""
    data = json.loads(VECTORS.read_text())["clients"]

    def wrong(index: Any) -> int:
        return sum(1 for c in data if index(c) != (0 if c["kea-primary-answered"] else 1))

    def forward(key: bytes) -> int:
        h = len(key) & 0xFF
        for b in key:
            h = PEARSON_TABLE[h ^ b]
        return h

    def key(c: dict[str, str]) -> bytes:
        return bytes.fromhex(c["client-id"] or c["chaddr"])

    assert wrong(lambda c: lb_hash(key(c)) % 2) == 0
    assert wrong(lambda c: forward(key(c)) % 2) > 0  # forward byte order
    assert wrong(lambda c: lb_hash(bytes.fromhex(c["chaddr"])) % 2) > 0  # MAC only
    assert wrong(lambda c: lb_hash(key(c)[1:] if c["client-id"] else key(c)) % 2) > 0
    assert wrong(lambda c: lb_hash(b"\x01" + key(c) if not c["client-id"] else key(c))
                 % 2) > 0  # htype before the MAC
