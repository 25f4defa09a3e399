"""The multi-worker server's parts without sockets: a worker's scope (fastdhcp.slices), its
engine (bitmaps of its slices only, statistics that add up), its store (an index of its records,
the commit check), the NAK that replaces a refused ACK, and the compiled broadcast filter
against fastdhcp.slices.steer."""

from __future__ import annotations

import os
import random

import pytest
from dhcpsim import ACK, NAK, Client, Network, mac

from fastdhcp._packetpath import steer_of
from fastdhcp.config import loads
from fastdhcp.engine import Engine, Link
from fastdhcp.leases import Lease, LeaseState
from fastdhcp.service.worker import WorkerRole, nak_from_ack, worker_config
from fastdhcp.service.worker_paths import worker_control_socket
from fastdhcp.slices import WorkerScope, owner, steer
from fastdhcp.store import LmdbLeaseStore

SERVER = "198.18.0.1"
LINK = Link("eth0", int.from_bytes(bytes([198, 18, 0, 1]), "big"))
CONFIG = """
[server]
interfaces = ["eth0"]
workers = 2

[lease-database]
path = "/nonexistent"

[global]
valid-lifetime = 3600

[[subnet4]]
id = 1
subnet = "198.18.0.0/24"
interface = "eth0"
pools = ["198.18.0.100 - 198.18.0.107", "198.18.0.200 - 198.18.0.202"]

[[subnet4.reservations]]
hw-address = "02:00:00:00:0a:01"
ip-address = "198.18.0.50"

[[subnet4]]
id = 2
subnet = "198.18.5.0/24"
pools = ["198.18.5.10 - 198.18.5.29"]
relay = ["198.18.5.1"]
"""


def _ip(text: str) -> int:
    return int.from_bytes(bytes(int(x) for x in text.split(".")), "big")


@pytest.fixture
def config():
    return loads(CONFIG)


def _store(path, scope=None) -> LmdbLeaseStore:
    return LmdbLeaseStore(path, sync=False, create=True, map_size=1 << 22, scope=scope)


def test_scope_owns_exactly_what_owner_and_the_reservations_say(config) -> None:
    scopes = [WorkerScope.of(config, k, 2) for k in range(2)]
    pools = [p for s in config.subnets for p in s.pools]
    res_ip = _ip("198.18.0.50")
    for ip in range(_ip("198.18.0.0"), _ip("198.18.6.0")):
        owners = [k for k, sc in enumerate(scopes) if sc.owns(ip)]
        assert len(owners) == 1, ip  # every address has exactly one writer
        if ip != res_ip:
            assert owners == [owner(ip, pools, 2)]
    # the hw-address reservation belongs to the worker its client is steered to
    want = steer(bytes.fromhex("02000000" "0a01"), 2)
    assert scopes[want].owns(res_ip) and not scopes[1 - want].owns(res_ip)
    for sc in scopes:
        ranges = sc.scan_ranges()
        assert ranges == sorted(ranges)
        assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:], strict=False))
        for ip in (x for x in range(_ip("198.18.0.0"), _ip("198.18.6.0")) if sc.owns(x)):
            assert any(f <= ip <= last for f, last in ranges), ip


def test_a_worker_allocates_only_from_its_slices_and_the_totals_add_up(tmp_path, config) -> None:
    seen: dict[int, int] = {}
    rows = []
    for k in range(2):
        scope = WorkerScope.of(config, k, 2)
        store = _store(tmp_path / f"db{k}", scope)
        try:
            net = Network(config, LINK, store=store)
            net.engine = Engine(config, store, scope)
            got = []
            for n in range(40):
                c = Client(net, mac(1000 * k + n))
                r = c.dora()
                if r is None:
                    break
                assert r.mtype == ACK
                got.append(c.address)
            assert got, "the worker allocated nothing"
            for ip in got:
                assert scope.owns(ip) and ip not in seen
                seen[ip] = k
            rows.append({(st.subnet_id, st.pool): (int(st.size), int(st.used))
                         for st in net.engine.pool_stats()})
        finally:
            store.close()
    # each worker ran its slices of eth0's subnet dry: together they gave each address once
    pools = config.subnets[0].pools
    assert sorted(seen) == sorted(ip for p in pools for ip in range(p.first, p.last + 1))
    assert set(seen.values()) == {0, 1}
    totals: dict[tuple[int, str], list[int]] = {}
    for r in rows:
        for key, (size, used) in r.items():
            t = totals.setdefault(key, [0, 0])
            t[0] += size
            t[1] += used
    for s in config.subnets:
        for p in s.pools:  # sizes add up to the pool; used too (the relayed subnet: none)
            assert totals[(s.id, p.text)] == [p.size, p.size if s.id == 1 else 0]


def test_the_store_indexes_only_the_records_of_its_scope(tmp_path, config) -> None:
    path = tmp_path / "db"
    pools = [p for s in config.subnets for p in s.pools]
    ips = [ip for p in pools for ip in range(p.first, p.last + 1)] + [_ip("198.18.0.50"),
                                                                     _ip("198.18.0.7")]
    with _store(path) as whole:
        whole.write([Lease(ip, b"\x01" + ip.to_bytes(6, "big"), ip.to_bytes(6, "big"), 1,
                           LeaseState.DEFAULT, 100, 200) for ip in ips])
    for k in range(2):
        scope = WorkerScope.of(config, k, 2)
        with _store(path, scope) as st:
            # workers share the environment: LMDB's lock file (lock.mdb), never MDB_NOLOCK
            assert st._env.flags()["lock"] is True and (path / "lock.mdb").exists()
            mine = sorted(ip for ip in ips if scope.owns(ip))
            assert list(st.active_addresses()) == mine
            assert [x.ip for x in st.expired(10_000, 1000)] == mine  # reclaim: its own only
            assert st.active_counts([(_ip("198.18.0.0"), _ip("198.18.0.255"))]) == [
                sum(1 for ip in mine if ip <= _ip("198.18.0.255"))]


def test_the_commit_check_refuses_foreign_and_stolen_bindings(tmp_path, config) -> None:
    path = tmp_path / "db"
    scope0 = WorkerScope.of(config, 0, 2)
    pools = [p for s in config.subnets for p in s.pools]
    mine = next(ip for p in pools for ip in range(p.first, p.last + 1) if scope0.owns(ip))
    other = next(ip for p in pools for ip in range(p.first, p.last + 1) if not scope0.owns(ip))
    taken = next(ip for p in pools for ip in range(p.first, p.last + 1)
                 if scope0.owns(ip) and ip != mine)

    def lease(ip: int, who: int, state: LeaseState = LeaseState.DEFAULT) -> Lease:
        return Lease(ip, bytes([1, who]), bytes([2, 0, 0, 0, 0, who]), 1, state, 100, 5000)

    with _store(path) as whole:  # another process bound `taken` for client 9
        whole.write([lease(taken, 9)])
    with _store(path, scope0) as st:
        good, foreign, stolen = lease(mine, 1), lease(other, 2), lease(taken, 3)
        reclaim, rebind = lease(taken, 9, LeaseState.EXPIRED_RECLAIMED), lease(taken, 4)
        for x in (good, foreign, stolen):
            st.stage(x)
        batch = st.take_pending()
        st.write(batch)
        st.committed(batch)  # as the group committer does
        assert st.take_rejected() == [foreign, stolen]
        assert st.rejected_total == 2
        assert st.get(mine) is not None and st.get(other) is None
        # a reclaim staged before a new binding of the same address is the record it checks
        st.stage(reclaim)
        st.stage(rebind)
        batch = st.take_pending()
        st.write(batch)
        st.committed(batch)
        assert st.take_rejected() == []
    with _store(path) as whole:
        assert whole.get(taken).client_key == bytes([1, 4])
        assert whole.get(other) is None


_FOREIGN_WRITE = """
import sys
from fastdhcp.leases import Lease, LeaseState
from fastdhcp.store import LmdbLeaseStore
with LmdbLeaseStore(sys.argv[1], sync=False, map_size=1 << 22) as st:
    st.write([Lease(int(sys.argv[2]), b"\\x01zz", b"zzzzzz", 1, LeaseState.DEFAULT, 100, 9000)])
"""


def test_a_binding_refused_in_the_commit_becomes_a_nak(tmp_path, config) -> None:
    """Another process binds the address this worker offered, behind its back: the engine
    ACKs, the commit check (authoritative, inside the write txn) refuses, the token's ACK
    becomes a NAK, and the engine then sees the other process's record."""
    import subprocess
    import sys

    from fastdhcp._packetpath import HeldAck
    from fastdhcp._sockio import Outgoing

    scope0 = WorkerScope.of(config, 0, 2)
    path = tmp_path / "db"
    with _store(path, scope0) as st:
        net = Network(config, LINK, store=st)
        net.engine = Engine(config, st, scope0)
        c = Client(net, mac(77))
        offer = c.discover()
        assert offer is not None and scope0.owns(offer.yiaddr)
        subprocess.run([sys.executable, "-c", _FOREIGN_WRITE, str(path), str(offer.yiaddr)],
                       check=True, timeout=60, env={**os.environ})
        r = c.select(offer)
        assert r is not None and r.mtype == ACK  # what the engine decided
        d = net.decisions[-1]
        refused = st.take_rejected()
        assert refused == [d.binding] and st.rejected_total == 1
        net.engine.rollback(refused)
        token = HeldAck(None, Outgoing(d.reply, d.dest_ip, d.dest_port, 5, 0.0), 0.0,
                        d.binding)
        bystander = HeldAck(None, Outgoing(d.reply, d.dest_ip, d.dest_port, 5, 0.0), 0.0,
                            None)
        out = WorkerRole(0, 2, {}).refuse([bystander, token], refused, 68)
        assert out[0] is bystander and out[1].out.message_type == 6
        from dhcpsim import decode_reply

        assert decode_reply(out[1].out.data).mtype == NAK
        # the other process's binding is in this worker's view now: never offered again
        assert st.get(offer.yiaddr).client_key == b"\x01zz"
        for n in range(20):
            o = Client(net, mac(500 + n)).discover()
            assert o is None or o.yiaddr != offer.yiaddr


def test_nak_from_ack_keeps_what_a_nak_may_carry() -> None:
    from dhcpsim import build_request, decode_reply

    ack = bytearray(build_request(5, chaddr=mac(5), xid=0x1234, giaddr=_ip("198.18.5.1"),
                                  requested_ip=_ip("198.18.5.12"),
                                  server_id=_ip(SERVER), client_id=b"\x01cid"))
    ack[0] = 2  # a BOOTREPLY
    ack[16:20] = _ip("198.18.5.12").to_bytes(4, "big")  # yiaddr
    made = nak_from_ack(bytes(ack), 68)
    assert made is not None
    data, dest, port = made
    assert (dest, port) == (_ip("198.18.5.1"), 67)  # through the relay
    r = decode_reply(data)
    assert r.mtype == NAK and r.yiaddr == 0 and r.xid == 0x1234
    assert r.server_id == _ip(SERVER) and r.options[61] == b"\x01cid"
    assert 50 not in r.options and 51 not in r.options
    assert data[10] & 0x80  # broadcast bit, for the relay (RFC 2131 4.1)
    ack[24:28] = bytes(4)  # not relayed: broadcast to the client port
    assert nak_from_ack(bytes(ack), 68)[1:] == (0xFFFFFFFF, 68)  # type: ignore[index]
    assert nak_from_ack(b"\x02" * 100, 68) is None


def test_worker_config_serves_only_its_private_control_socket(config) -> None:
    w = worker_config(config, 1)
    assert [c.socket_name for c in w.control_sockets] == [worker_control_socket(config, 1)]
    assert w.server.metrics is None and w.subnets == config.subnets
    role = WorkerRole(1, 2, {})
    assert role.scope(config).worker == 1 and role.adapt(config) == w


def test_the_compiled_filter_agrees_with_steer_on_many_macs() -> None:
    rng = random.Random(7)
    for i in range(50_000):
        chaddr = rng.randbytes(6) if i % 2 else (0x02005E000000 + i).to_bytes(6, "big")
        n = 1 + i % 9
        datagram = bytes(28) + chaddr + bytes(10) + os.urandom(200)
        assert steer_of(datagram, n) == steer(chaddr, n)
    assert steer_of(bytes(20), 4) == 0  # too short to hold chaddr: worker 0, as the kernel


def test_the_forwarder_hands_requests_for_other_workers_addresses_to_their_owner(
        config) -> None:
    import socket

    from dhcpsim import build_request

    from fastdhcp._codec import parse
    from fastdhcp.service.worker import Forwarder

    cfg = loads(CONFIG.replace('''[[subnet4]]
id = 2''', '''[[subnet4.reservations]]
client-id = "01:aa:bb"
ip-address = "198.18.0.61"

[[subnet4]]
id = 2'''))
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        fwd = Forwarder(0, pairs[0][1], [None, pairs[1][0]])
        scope = WorkerScope.of(cfg, 0, 2)
        key = ("if", "eth0", 67)
        fwd.configure(cfg, scope, [key])

        class Ep:
            pass

        ep = Ep()
        ep.key = key  # type: ignore[attr-defined]
        pools = [p for s in cfg.subnets for p in s.pools]
        mine = next(ip for p in pools for ip in range(p.first, p.last + 1) if scope.owns(ip))
        theirs = next(ip for p in pools for ip in range(p.first, p.last + 1)
                      if not scope.owns(ip))
        res_owner = scope.owner_of(_ip("198.18.0.61"))
        assert res_owner == 1  # (odd: outside the pools, owned ip % 2)
        cases = [  # (request, forwarded?)
            (build_request(3, xid=1, chaddr=mac(1), ciaddr=theirs), True),  # renewal
            (build_request(3, xid=2, chaddr=mac(1), requested_ip=theirs), True),  # INIT-REBOOT
            (build_request(7, xid=3, chaddr=mac(1), ciaddr=theirs), True),  # RELEASE
            (build_request(4, xid=4, chaddr=mac(1), requested_ip=theirs,
                           server_id=1), True),  # DECLINE
            (build_request(3, xid=5, chaddr=mac(1), ciaddr=mine), False),
            (build_request(1, xid=6, chaddr=mac(1), requested_ip=theirs), False),  # DISCOVER
            # a client-id reservation the steering cannot place: its DISCOVER goes to the
            # owner of the reserved address
            (build_request(1, xid=7, chaddr=mac(1), client_id=b"\x01\xaa\xbb"),
             res_owner != 0),
        ]
        assert fwd.forward_all == (res_owner != 0)
        for data, want in cases:
            assert fwd(ep, parse(data), data, 0x0A000001, 68) is want, data[4:8].hex()
        pairs[1][1].setblocking(False)
        got = []
        while True:
            try:
                got.append(pairs[1][1].recv(4096))
            except BlockingIOError:
                break
        assert len(got) == sum(w for _, w in cases) == fwd.sent
        assert got[0][:8] == bytes([0, 0, 10, 0, 0, 1, 0, 68])  # endpoint 0, source address
        assert got[0][8:] == cases[0][0]
    finally:
        for a, b in pairs:
            a.close()
            b.close()
