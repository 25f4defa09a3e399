"""The HA scope filter of the packet path (fastdhcp._hascope): it answers what the state
machine's ``serves`` answers, on Kea's 36 recorded clients and on random ones, in every state a
server passes through; and in the compiled packet path it drops the partner's queries before
the engine (no offer, no allocation), every query while DHCP is off, and keeps the missed
queries with their ``secs`` only while the partner is unreachable."""

from __future__ import annotations

import json
import random
import socket
import struct
from pathlib import Path

import pytest
from dhcpsim import DISCOVER, SERVER_IP, build_request, mac
from path_rig import Ep

from fastdhcp._codec import parse as parse_msg
from fastdhcp._hascope import ScopeFilter, lb_hash
from fastdhcp._packetpath import PacketPath
from fastdhcp.engine import Engine, Link
from fastdhcp.ha.hash import server_index
from fastdhcp.ha.state import HAState, HAStateMachine
from fastdhcp.leases import MemoryLeaseStore
from fastdhcp.metrics import Metrics
from fastdhcp.pathreport import PathReport
from tests.config_builder import ENGINE_GLOBAL, ENGINE_SERVER, ENGINE_SUBNET, load_config
from tests.test_ha_units import WALL, hb, machine, to_lb

S = HAState
VECTORS = Path(__file__).parent / "vectors" / "ha_lb_hash.json"


def _clients() -> list[tuple[bytes | None, bytes]]:
    """Kea's 36 recorded clients, then 300 random ones (a third with a client-id)."""
    out: list[tuple[bytes | None, bytes]] = []
    for c in json.loads(VECTORS.read_text())["clients"]:
        out.append((bytes.fromhex(c["client-id"]) if c["client-id"] else None,
                    bytes.fromhex(c["chaddr"])))
    rnd = random.Random(17)
    for i in range(300):
        hw = bytes(rnd.randrange(256) for _ in range(6))
        cid = (b"\x01" + hw if i % 3 == 0 else None)
        out.append((cid, hw))
    out.append((None, b""))  # nothing to hash
    return out


CLIENTS = _clients()


def _set(f: ScopeFilter, mm: HAStateMachine) -> None:
    f.set(mm.dhcp_enabled, mm.scope_count, mm.scope_mask(), False)


def _agree(mm: HAStateMachine) -> int:
    """The filter set from ``mm`` answers as ``mm.serves`` on every client; how many it
    serves."""
    f = ScopeFilter()
    _set(f, mm)
    served = 0
    for cid, hw in CLIENTS:
        want = mm.serves(cid, hw)
        assert f.answers(cid, hw) is want, (mm.state, cid, hw)
        served += want
    return served


def test_compiled_hash_is_the_one_kea_uses() -> None:
    for cid, hw in CLIENTS[:36]:
        key = cid or hw
        assert lb_hash(key) % 2 == server_index(cid, hw)


@pytest.mark.parametrize("this", ["server1", "server2"])
def test_filter_follows_the_machine_in_load_balancing(this: str) -> None:
    mm, clock = machine(this=this)
    assert mm.state is S.WAITING and _agree(mm) == 0  # DHCP off until synced
    if this == "server1":
        to_lb(mm, clock)
    else:
        mm.heartbeat_answered(clock(), WALL, hb(S.LOAD_BALANCING))
        mm.sync_finished(clock(), True)
        mm.heartbeat_answered(clock(), WALL, hb(S.LOAD_BALANCING))
    assert mm.state is S.LOAD_BALANCING
    half = _agree(mm)
    assert 0.35 * len(CLIENTS) < half < 0.65 * len(CLIENTS)
    mm.set_scopes(("server1", "server2"))  # ha-scopes: both
    assert _agree(mm) == len(CLIENTS)
    mm.set_scopes(())
    assert _agree(mm) == 0
    mm.set_scopes((this,))
    # the partner goes away: communication-recovery keeps the own scope only
    mm.heartbeat_failed(clock())
    assert mm.state is S.COMMUNICATION_RECOVERY and _agree(mm) == half
    clock.now += 7  # past max-response-delay; 3 unacked clients (max 2) -> partner-down
    mm.heartbeat_failed(clock())
    other = next(cid or hw for cid, hw in CLIENTS if not mm.serves(cid, hw) and (cid or hw))
    for k in (b"a", b"b", b"c"):
        mm.client_query(clock(), k + other, 10, True)
    mm.tick(clock())
    assert mm.state is S.PARTNER_DOWN and _agree(mm) == len(CLIENTS)


def test_filter_follows_the_machine_in_hot_standby() -> None:
    prim, clock = machine(mode="hot-standby", roles=("primary", "standby"))
    prim.heartbeat_answered(clock(), WALL, hb(S.READY))
    prim.sync_finished(clock(), True)
    prim.heartbeat_answered(clock(), WALL, hb(S.READY))
    assert prim.state is S.HOT_STANDBY and _agree(prim) == len(CLIENTS)
    sby, clock = machine(mode="hot-standby", roles=("primary", "standby"), this="server2")
    sby.heartbeat_answered(clock(), WALL, hb(S.HOT_STANDBY))
    sby.sync_finished(clock(), True)
    sby.heartbeat_answered(clock(), WALL, hb(S.HOT_STANDBY))
    assert sby.state is S.HOT_STANDBY and sby.dhcp_enabled and _agree(sby) == 0
    clock.now += 7
    sby.heartbeat_failed(clock())
    for k in (b"1", b"2", b"3"):
        sby.client_query(clock(), k, 10, True)
    sby.tick(clock())
    assert sby.state is S.PARTNER_DOWN and _agree(sby) == len(CLIENTS)


def test_set_refuses_a_bad_scope_count() -> None:
    with pytest.raises(ValueError, match="servers must be 1 or 2"):
        ScopeFilter().set(True, 3, 7, False)


# ------------------------------------------------------------------ in the packet path




def _with_secs(data: bytes, secs: int) -> bytes:
    return data[:8] + struct.pack("!H", secs) + data[10:]


def _run(socks: tuple[socket.socket, socket.socket], f: ScopeFilter,
         datagrams: list[bytes]) -> tuple[Engine, Ep]:
    server, peer = socks
    # a pool larger than the clients, so every served client gets an offer
    subnet = {**ENGINE_SUBNET, "pools": ["198.18.0.100 - 198.18.0.199"]}
    engine = Engine(load_config(ENGINE_SERVER, global_=ENGINE_GLOBAL, subnets=[subnet]),
                    MemoryLeaseStore())
    path = PacketPath(engine, Metrics(), PathReport(), None, lambda held: None,
                      lambda ep, d: 0, False, ha=f)
    ep = Ep(server)
    for d in datagrams:
        peer.sendto(d, server.getsockname())
    path.read(ep, 1000, 1_800_000_000.0, 0.0)
    return engine, ep


def _discovers(n: int, secs: int = 0) -> tuple[list[bytes], list[bytes]]:
    macs = [mac(i) for i in range(n)]
    return macs, [_with_secs(build_request(DISCOVER, xid=i, chaddr=m, flags=0x8000), secs)
                  for i, m in enumerate(macs)]


def test_path_drops_the_partners_clients_before_the_engine(socks: tuple[socket.socket,
                                                                        socket.socket]) -> None:
    macs, data = _discovers(40)
    f = ScopeFilter()
    f.set(True, 2, 0b01, False)  # the primary's scope only
    _, ep = _run(socks, f, data)
    mine = [m for m in macs if lb_hash(m) % 2 == 0]
    assert 0 < len(mine) < 40
    offered = {bytes(o.data[28:34]) for o in ep.out}  # type: ignore[attr-defined]
    assert offered == set(mine)
    assert f.not_for_us == 40 - len(mine) and f.disabled == 0
    assert f.drain() == []  # not analyzing: nothing kept
    assert f.take_not_for_us() == 40 - len(mine) and f.not_for_us == 0


def test_path_drops_everything_while_disabled(socks: tuple[socket.socket,
                                                           socket.socket]) -> None:
    _, data = _discovers(10)
    f = ScopeFilter()  # a new filter: DHCP off (an HA server starts in waiting)
    _, ep = _run(socks, f, data)
    assert ep.out == [] and f.disabled == 10 and f.take_disabled() == 10 and f.disabled == 0


def test_path_keeps_missed_queries_with_secs_while_analyzing(
        socks: tuple[socket.socket, socket.socket]) -> None:
    macs, data = _discovers(20, secs=7)
    f = ScopeFilter()
    f.set(True, 2, 0b10, True)  # the secondary's scope, communication interrupted
    _, ep = _run(socks, f, data)
    missed = f.drain()
    partner = [m for m in macs if lb_hash(m) % 2 == 0]
    assert [q.chaddr for q in missed] == partner
    assert all(q.secs == 7 and q.client_id is None for q in missed)
    assert len(ep.out) == 20 - len(partner) and f.drain() == []
    f.set(True, 2, 0b10, False)
    assert f.drain() == []


def test_standby_keeps_every_query_while_analyzing(
        socks: tuple[socket.socket, socket.socket]) -> None:
    # a hot-standby standby serves no scope: every query is the primary's, and with the
    # primary unreachable every one counts for the failure detection
    macs, data = _discovers(6, secs=3)
    f = ScopeFilter()
    f.set(True, 1, 0, True)
    _, ep = _run(socks, f, data)
    assert ep.out == [] and [q.chaddr for q in f.drain()] == macs


# ------------------------------------------------------------------ allocation shares


def test_allocation_share_keeps_new_addresses_in_this_servers_half() -> None:
    """With share i of 2, every new address is ``ip % 2 == i`` (offers, requested addresses
    refused across the line), a lease of the other half is still renewed, and the shares of
    two peers never meet: together they hand out the whole pool, each address once."""
    from dhcpsim import REQUEST, ip

    link = Link("eth0", SERVER_IP)
    subnet = {**ENGINE_SUBNET, "pools": ["198.18.0.100 - 198.18.0.119"]}
    got: dict[int, list[int]] = {}
    for share in (0, 1):
        engine = Engine(load_config(ENGINE_SERVER, global_=ENGINE_GLOBAL, subnets=[subnet]),
                        MemoryLeaseStore())
        engine.set_ha_share(share, 2)
        got[share] = []
        for i in range(12):
            d = engine.handle(parse_msg(build_request(DISCOVER, xid=i, chaddr=mac(i))), link,
                              1_800_000_000.0)
            if d.reply is None:
                break
            got[share].append(int.from_bytes(d.reply[16:20], "big"))
        # a client asking for an address of the other half is offered one of ours
        other = ip("198.18.0.101") if share == 0 else ip("198.18.0.100")
        d = engine.handle(parse_msg(build_request(DISCOVER, xid=99, chaddr=mac(99),
                                                  requested_ip=other)), link, 1.8e9)
        assert d.reply is None or int.from_bytes(d.reply[16:20], "big") % 2 == share
        # a SELECTING REQUEST for it (which binds a free address without a share) is NAKed
        d = engine.handle(parse_msg(build_request(REQUEST, xid=98, chaddr=mac(98),
                                                  requested_ip=other, server_id=SERVER_IP)),
                          link, 1.8e9)
        assert d.binding is None and d.reason == "address-unavailable"
    assert all(a % 2 == 0 for a in got[0]) and all(a % 2 == 1 for a in got[1])
    assert len(got[0]) == len(got[1]) == 10  # each half of the 20-address pool, then dry
    assert not set(got[0]) & set(got[1])
    # a lease bound in the other half (by the partner, or before a change) is renewed as is
    engine.set_ha_share(0, 2)
    bound = got[1][0]
    d = engine.handle(parse_msg(build_request(REQUEST, xid=7, chaddr=mac(0), ciaddr=bound)),
                      link, 1.8e9 + 60)
    assert int.from_bytes(d.reply[16:20], "big") == bound and d.binding is not None
    with pytest.raises(ValueError, match="HA share 2 of 2"):
        engine.set_ha_share(2, 2)
