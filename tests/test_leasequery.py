"""Leasequery without sockets (except the loopback TCP of bulk leasequery): the ``[leasequery]``
config checks, RFC 4388 queries and answers (fastdhcp.leasequery.udp), RFC 6926 queries, framing
and the bulk listener (fastdhcp.service.leasequery_tcp), and the packet path's route of
DHCPLEASEQUERY. Replies are read back with the codec and checked field by field against the
RFC's rules. Leases made by real DORA, queried from a relay's namespace: interop/."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import struct
import time
from typing import Any

import pytest
from dhcpsim import RELAY_IP, SERVER_IP, build_request, ip, mac, make_config, opt, relay_agent_info

from fastdhcp._codec import Message, parse
from fastdhcp._packetpath import PacketPath
from fastdhcp._sockio import DatagramIO
from fastdhcp.config import Config
from fastdhcp.consts import MessageType
from fastdhcp.engine import Engine, Link
from fastdhcp.errors import ConfigError
from fastdhcp.leasequery.config import BulkConfig, LeaseQueryConfig
from fastdhcp.leasequery.lookup import sends_client_id
from fastdhcp.leasequery.udp import UdpLeaseQuery
from fastdhcp.leasequery.wire import (
    FrameReader,
    QueryKind,
    Refusal,
    Status,
    bulk_query,
    frame,
    udp_query,
)
from fastdhcp.leases import Lease, LeaseState, MemoryLeaseStore
from fastdhcp.metrics import Metrics
from fastdhcp.pathreport import PathReport
from fastdhcp.service.leasequery_tcp import BulkLeaseQueryServer
from fastdhcp.statistics import Statistics

LQ = MessageType.LEASEQUERY
NOW = 1_000_000.0
OTHER_RELAY = ip("198.18.10.99")
LQ_TOML = f"""
[leasequery]
requesters = ["{'.'.join(str(b) for b in RELAY_IP.to_bytes(4, 'big'))}"]
"""


def _cfg(extra: str = LQ_TOML) -> Config:
    return make_config(more=extra)


def _lease(n: int, *, client_id: bytes | None = None, state: int = LeaseState.DEFAULT,
           issued: int = int(NOW) - 100, expires: int = int(NOW) + 3500,
           relay: bytes = b"", hw: bytes | None = None) -> Lease:
    hw = hw if hw is not None else mac(n)
    key = client_id if client_id is not None else b"\x01" + hw
    return Lease(ip("198.18.0.100") + n, key, hw, 1, state, issued, expires, "", relay)


def _store(*leases: Lease) -> MemoryLeaseStore:
    s = MemoryLeaseStore()
    for x in leases:
        s.stage(x)
    s.take_pending()
    return s


class _Ep:
    link = Link("eth0", SERVER_IP)
    closed = False

    def __init__(self) -> None:
        self.out: list[Any] = []


def _query(*, ciaddr: int = 0, chaddr: bytes = b"", client_id: bytes | None = None,
           giaddr: int = RELAY_IP, xid: int = 7, extra: bytes = b"") -> Message:
    return parse(build_request(LQ, xid=xid, chaddr=chaddr, ciaddr=ciaddr, giaddr=giaddr,
                               client_id=client_id, extra=extra))


def _handler(store: MemoryLeaseStore, cfg: Config | None = None,
             sent: list[Any] | None = None) -> tuple[UdpLeaseQuery, Metrics]:
    m = Metrics()
    h = UdpLeaseQuery(cfg or _cfg(), store, m,
                      lambda ep, item: (sent if sent is not None else []).append(item),
                      clock=lambda: NOW)
    return h, m


# ------------------------------------------------------------------------------ config

def test_config_reads_kea_names() -> None:
    cfg = _cfg(LQ_TOML + """
[leasequery.advanced]
bulk-query-enabled = true
active-query-enabled = false
lease-query-ip = "198.18.0.1"
lease-query-tcp-port = 6767
max-bulk-query-threads = 0
max-requester-connections = 3
max-concurrent-queries = 2
max-requester-idle-time = 30
max-leases-per-fetch = 50
""")
    lq = cfg.leasequery
    assert lq is not None and lq.requesters == frozenset({RELAY_IP})
    assert lq.bulk == BulkConfig(True, "198.18.0.1", 6767, 0, 3, 2, 30, 50)
    assert lq.bulk.concurrent_limit == 2
    # Kea's defaults
    assert _cfg().leasequery == LeaseQueryConfig(frozenset({RELAY_IP}), BulkConfig())
    assert BulkConfig().port == 67 and BulkConfig().max_connections == 10
    assert BulkConfig().idle_time == 300 and BulkConfig().page_size == 100
    assert make_config().leasequery is None


@pytest.mark.parametrize(("toml", "line"), [
    ("[leasequery]\n", "leasequery.requesters: value None: must list the relay addresses"),
    ('[leasequery]\nrequesters = ["198.18.10.300"]\n',
     "leasequery.requesters[0]: value '198.18.10.300': must be an IPv4 address"),
    ('[leasequery]\nrequesters = ["0.0.0.0"]\n',
     "leasequery.requesters[0]: value '0.0.0.0': must be a relay's unicast address"),
    ('[leasequery]\nrequesters = ["198.18.10.1"]\nrequestors = 1\n',
     "leasequery.requestors: value 1: unknown key; did you mean 'requesters'?"),
    ('[leasequery]\nrequesters = ["198.18.10.1"]\n[leasequery.advanced]\n'
     'active-query-enabled = true\n',
     "leasequery.advanced.active-query-enabled: value true: must be false"),
    ('[leasequery]\nrequesters = ["198.18.10.1"]\n[leasequery.advanced]\n'
     'lease-query-tcp-port = 0\n',
     "leasequery.advanced.lease-query-tcp-port: value 0: must be an integer from 1 to 65535"),
    ('[leasequery]\nrequesters = ["198.18.10.1"]\n[leasequery.advanced]\n'
     'bulk-query-enabled = true\n',
     "leasequery.advanced.lease-query-ip: value None: bulk-query-enabled needs the address"),
    ('[leasequery]\nrequesters = ["198.18.10.1"]\n[leasequery.advanced]\n'
     'max-requester-connections = 0\n',
     "leasequery.advanced.max-requester-connections: value 0: must be an integer from 1"),
    ('[leasequery]\nrequesters = ["198.18.10.1"]\n[leasequery.advanced]\n'
     'bulk-query-enabled = "yes"\n',
     "leasequery.advanced.bulk-query-enabled: value 'yes': must be true or false"),
])
def test_config_errors_name_key_and_value(toml: str, line: str) -> None:
    with pytest.raises(ConfigError) as err:
        _cfg(toml)
    assert any(x.startswith(line) for x in err.value.problems), err.value.problems


# ------------------------------------------------------------------------------ RFC 4388

def test_udp_query_kinds() -> None:
    q = udp_query(_query(ciaddr=ip("198.18.0.100"), chaddr=mac(1), client_id=b"\x00ab"))
    assert not isinstance(q, str) and q.kind == QueryKind.BY_IP and q.ip == ip("198.18.0.100")
    q = udp_query(_query(chaddr=mac(1), client_id=b"\x00ab"))
    assert not isinstance(q, str) and q.kind == QueryKind.BY_CLIENT_ID and q.key == b"\x00ab"
    q = udp_query(_query(chaddr=mac(1)))
    assert not isinstance(q, str) and (q.kind, q.key, q.htype) == (QueryKind.BY_MAC, mac(1), 1)
    assert udp_query(_query(chaddr=bytes(6))) == "leasequery-no-query"
    assert udp_query(_query(ciaddr=1, giaddr=0)) == "leasequery-no-giaddr"


def _opts(m: Message) -> dict[int, bytes]:
    return m.options


def test_by_ip_active_carries_the_rfc_options() -> None:
    rai = relay_agent_info(circuit_id=b"port7", remote_id=b"cpe7")
    lease = _lease(0, client_id=b"\xffclient-0", relay=rai)
    h, m = _handler(_store(lease))
    out = h(_Ep(), _query(ciaddr=lease.ip), RELAY_IP, NOW, 5.0)
    assert out is not None and out.dest_ip == RELAY_IP and out.dest_port == 67
    assert out.message_type == MessageType.LEASEACTIVE and out.received_at == 5.0
    r = parse(out.data)
    assert r.op == 2 and r.xid == 7 and r.message_type == MessageType.LEASEACTIVE
    assert r.ciaddr == lease.ip and r.chaddr[:6] == mac(0) and r.giaddr == RELAY_IP
    o = _opts(r)
    assert struct.unpack("!I", o[51])[0] == 3500  # the time left, not the lifetime
    assert struct.unpack("!I", o[91])[0] == 100  # seconds since the last transaction
    assert struct.unpack("!I", o[54])[0] == SERVER_IP
    assert o[61] == b"\xffclient-0" and o[82] == rai and 92 not in o
    assert r.codes[-1] == 82  # RFC 3046: 82 last
    assert m.dropped == {}


def test_by_ip_unassigned_and_unknown() -> None:
    released = _lease(1, state=LeaseState.RELEASED)
    expired = _lease(2, expires=int(NOW) - 1)
    h, _ = _handler(_store(released, expired))
    for addr in (released.ip, expired.ip, ip("198.18.0.103")):  # the last never leased
        out = h(_Ep(), _query(ciaddr=addr), RELAY_IP, NOW, 0.0)
        assert out is not None and out.message_type == MessageType.LEASEUNASSIGNED
        r = parse(out.data)
        # only what was asked comes back, and the server id
        assert r.ciaddr == addr and set(_opts(r)) == {53, 54}
    out = h(_Ep(), _query(ciaddr=ip("198.18.0.50")), RELAY_IP, NOW, 0.0)  # outside the pool
    assert out is not None and out.message_type == MessageType.LEASEUNKNOWN
    assert parse(out.data).ciaddr == ip("198.18.0.50")


def test_by_client_id() -> None:
    lease = _lease(3, client_id=b"\x00cid-3")
    h, _ = _handler(_store(lease))
    out = h(_Ep(), _query(client_id=b"\x00cid-3"), RELAY_IP, NOW, 0.0)
    assert out is not None and out.message_type == MessageType.LEASEACTIVE
    assert parse(out.data).ciaddr == lease.ip
    out = h(_Ep(), _query(client_id=b"\x00nobody"), RELAY_IP, NOW, 0.0)
    assert out is not None and out.message_type == MessageType.LEASEUNKNOWN
    assert _opts(parse(out.data))[61] == b"\x00nobody"


def test_by_mac_answers_the_newest_and_lists_the_others() -> None:
    hw = mac(9)
    old = _lease(4, client_id=b"\x00a", hw=hw, issued=int(NOW) - 500)
    new = _lease(5, client_id=b"\x00b", hw=hw, issued=int(NOW) - 10)
    gone = _lease(6, client_id=b"\x00c", hw=hw, state=LeaseState.RELEASED)
    sent: list[Any] = []
    h, _ = _handler(_store(old, new, gone, _lease(7)), sent=sent)

    async def run() -> None:
        assert h(_Ep(), _query(chaddr=hw), RELAY_IP, NOW, 0.0) is None  # answered after a scan
        await asyncio.sleep(0.05)
        await h.close()
    asyncio.run(run())
    assert len(sent) == 1 and sent[0].message_type == MessageType.LEASEACTIVE
    r = parse(sent[0].data)
    assert r.ciaddr == new.ip
    assert _opts(r)[92] == struct.pack("!I", old.ip)  # the released one is not bound


def test_by_mac_unknown() -> None:
    sent: list[Any] = []
    h, _ = _handler(_store(_lease(1)), sent=sent)

    async def run() -> None:
        h(_Ep(), _query(chaddr=mac(77)), RELAY_IP, NOW, 0.0)
        await asyncio.sleep(0.05)
    asyncio.run(run())
    assert [x.message_type for x in sent] == [MessageType.LEASEUNKNOWN]
    assert parse(sent[0].data).chaddr[:6] == mac(77)


def test_only_requesters_get_answers() -> None:
    lease = _lease(0)
    h, m = _handler(_store(lease))
    # giaddr of a stranger, then a requester's giaddr sent from a stranger's address
    assert h(_Ep(), _query(ciaddr=lease.ip, giaddr=OTHER_RELAY), OTHER_RELAY, NOW, 0.0) is None
    assert h(_Ep(), _query(ciaddr=lease.ip), OTHER_RELAY, NOW, 0.0) is None
    assert h(_Ep(), _query(ciaddr=lease.ip, giaddr=0), RELAY_IP, NOW, 0.0) is None  # a client
    assert m.dropped == {"leasequery-not-allowed": 2, "leasequery-no-giaddr": 1}


def test_client_id_of_the_mac_is_not_echoed() -> None:
    assert not sends_client_id(_lease(1))
    assert sends_client_id(_lease(1, client_id=b"\xff\x00\x01"))


# ------------------------------------------------------------------------------ the route

def test_packet_path_routes_leasequery_to_the_handler() -> None:
    cfg = _cfg()
    store = _store(_lease(0))
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        server.bind(("127.0.0.1", 0))
        server.setblocking(False)
        peer.bind(("127.0.0.1", 0))

        class Ep(_Ep):
            key = ("addr", "127.0.0.1", 0)
            io = DatagramIO(server)
        ep = Ep()
        m = Metrics()
        h = UdpLeaseQuery(cfg, store, m, lambda e, item: None, clock=lambda: NOW)
        calls: list[int] = []

        def handler(e: Any, msg: Message, src: int, now: float, t0: float) -> Any:
            calls.append(src)
            return h(e, msg, RELAY_IP, now, t0)  # loopback stands in for the relay's address
        path = PacketPath(Engine(cfg, store), m, PathReport(), None, None, lambda e, d: 0,
                          False, leasequery=handler)
        peer.sendto(build_request(LQ, xid=1, chaddr=b"", ciaddr=ip("198.18.0.100"),
                                  giaddr=RELAY_IP), server.getsockname())
        time.sleep(0.05)
        assert path.read(ep, 16, NOW, 1.0) == 1
        assert calls == [0x7F000001] and m.received[LQ] == 1
        assert [o.message_type for o in ep.out] == [MessageType.LEASEACTIVE]
        # without a handler the engine drops it, as before
        plain = PacketPath(Engine(cfg, store), m, PathReport(), None, None, lambda e, d: 0,
                           False)
        ep.out.clear()
        peer.sendto(build_request(LQ, xid=2, chaddr=mac(1), ciaddr=ip("198.18.0.100"),
                                  giaddr=RELAY_IP), server.getsockname())
        time.sleep(0.05)
        assert plain.read(ep, 16, NOW, 1.0) == 1
        assert ep.out == [] and m.dropped.get("unexpected-type") == 1
    finally:
        server.close()
        peer.close()


# ------------------------------------------------------------------------------ RFC 6926

def _bulk(*, xid: int = 9, chaddr: bytes = b"", client_id: bytes | None = None,
          relay: bytes | None = None, ciaddr: int = 0, extra: bytes = b"") -> bytes:
    return build_request(MessageType.BULKLEASEQUERY, xid=xid, chaddr=chaddr, ciaddr=ciaddr,
                         client_id=client_id, relay_info=relay, extra=extra)


def test_bulk_query_kinds_and_refusals() -> None:
    def kind(data: bytes) -> Any:
        q = bulk_query(parse(data))
        return q if isinstance(q, Refusal) else (q.kind, q.key)
    assert kind(_bulk(relay=bytes((12, 3)) + b"rid")) == (QueryKind.BY_RELAY_ID, b"rid")
    assert kind(_bulk(relay=relay_agent_info(remote_id=b"cpe"))) == (QueryKind.BY_REMOTE_ID,
                                                                     b"cpe")
    assert kind(_bulk()) == (QueryKind.ALL, b"")
    assert kind(_bulk(chaddr=mac(1))) == (QueryKind.BY_MAC, mac(1))
    assert kind(_bulk(client_id=b"\x00x")) == (QueryKind.BY_CLIENT_ID, b"\x00x")
    r = kind(_bulk(chaddr=mac(1), client_id=b"\x00x"))
    assert isinstance(r, Refusal) and r.status == Status.MALFORMED_QUERY
    r = kind(_bulk(ciaddr=1))
    assert isinstance(r, Refusal) and r.text == "ciaddr must be zero"
    r = kind(_bulk(relay=b"\x0c\x00"))
    assert isinstance(r, Refusal) and r.text == "empty relay-id sub-option"
    r = kind(_bulk(extra=opt(221, b"\x00vpn")))
    assert isinstance(r, Refusal) and r.status == Status.NOT_ALLOWED
    r = kind(_bulk(extra=opt(154, struct.pack("!I", 20)) + opt(155, struct.pack("!I", 10))))
    assert isinstance(r, Refusal) and r.status == Status.MALFORMED_QUERY
    q = bulk_query(parse(_bulk(extra=opt(154, struct.pack("!I", 5)))))
    assert not isinstance(q, Refusal) and q.start_time == 5


def test_framing() -> None:
    a, b = b"\x01" * 300, b"\x02" * 5
    stream = frame(a) + frame(b)
    r = FrameReader()
    got: list[bytes] = []
    for i in range(0, len(stream), 7):  # any split of the stream
        got += r.feed(stream[i:i + 7])
    assert got == [a, b] and r.pending == 0
    assert r.feed(b"\x00") == [] and r.pending == 1
    # a zero length: the frames before it are served, nothing after it
    assert r.feed(b"\x05" + b) == [b] and r.pending == 0
    assert r.feed(frame(b) + b"\x00\x00" + frame(a)) == [b] and r.error == "zero-length frame"
    assert r.feed(frame(a)) == []
    with pytest.raises(ValueError):
        frame(b"")
    with pytest.raises(ValueError):
        frame(bytes(0x10000))


def _bulk_cfg(**kw: Any) -> Config:
    cfg = _cfg()
    assert cfg.leasequery is not None
    bulk = BulkConfig(True, "127.0.0.1", 67, **kw)
    lq = LeaseQueryConfig(frozenset({0x7F000001}), bulk)
    cfg = dataclasses.replace(cfg, leasequery=lq)
    return cfg


async def _started(cfg: Config, store: MemoryLeaseStore,
                   m: Metrics) -> tuple[BulkLeaseQueryServer, int]:
    srv = BulkLeaseQueryServer(cfg, store, m, clock=lambda: NOW)
    # port 0 for the test: the config allows 1..65535, the listener any
    srv.bulk = dataclasses.replace(srv.bulk, port=0)
    await srv.start()
    name = srv.sockname
    assert name is not None
    return srv, name[1]


async def _closed(reader: asyncio.StreamReader) -> bool:
    """True once the server closed the connection without sending anything (a close with
    our data unread is a reset)."""
    try:
        return await asyncio.wait_for(reader.read(100), 5) == b""
    except ConnectionResetError:
        return True


async def _ask(port: int, *queries: bytes, expect_done: int = 1) -> list[Message]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"".join(frame(q) for q in queries))
    frames = FrameReader()
    out: list[Message] = []
    done = 0
    while done < expect_done:
        data = await asyncio.wait_for(reader.read(65536), 5)
        assert data, "connection closed before DHCPLEASEQUERYDONE"
        for f in frames.feed(data):
            msg = parse(f)
            out.append(msg)
            done += msg.message_type == MessageType.LEASEQUERYDONE
    writer.close()
    return out


def test_bulk_by_relay_id_remote_id_and_all() -> None:
    rai_a = relay_agent_info(circuit_id=b"p1", remote_id=b"cpe-a") + bytes((12, 2)) + b"R1"
    rai_b = relay_agent_info(circuit_id=b"p2", remote_id=b"cpe-b") + bytes((12, 2)) + b"R1"
    rai_c = relay_agent_info(circuit_id=b"p3", remote_id=b"cpe-c") + bytes((12, 2)) + b"R2"
    leases = [_lease(0, relay=rai_a), _lease(1, relay=rai_b), _lease(2, relay=rai_c),
              _lease(3, relay=rai_a, state=LeaseState.RELEASED)]
    store = _store(*leases)
    m = Metrics()

    async def run() -> None:
        srv, port = await _started(_bulk_cfg(page_size=2), store, m)
        try:
            got = await _ask(port, _bulk(xid=1, relay=bytes((12, 2)) + b"R1"))
            assert [x.message_type for x in got] == [13, 13, 15]
            assert [x.ciaddr for x in got[:2]] == [leases[0].ip, leases[1].ip]
            assert all(x.xid == 1 for x in got)
            assert 54 in got[0].options and 54 not in got[1].options  # first reply only
            assert all(152 in x.options for x in got[:2]) and got[0].options[82] == rai_a
            assert 151 not in got[2].options  # success: no status option
            got = await _ask(port, _bulk(xid=2, relay=relay_agent_info(remote_id=b"cpe-c")))
            assert [(x.message_type, x.ciaddr) for x in got] == [(13, leases[2].ip), (15, 0)]
            got = await _ask(port, _bulk(xid=3))
            assert [x.message_type for x in got] == [13, 13, 13, 11, 15]
            assert got[3].ciaddr == leases[3].ip and got[3].options[156] == b"\x04"  # RELEASED
            assert got[0].options[156] == b"\x02"  # ACTIVE
            # two queries on one connection: answered in order, each closed by its DONE
            got = await _ask(port, _bulk(xid=4, chaddr=mac(1)), _bulk(xid=5, ciaddr=1),
                             expect_done=2)
            assert [(x.xid, x.message_type) for x in got] == [(4, 13), (4, 15), (5, 15)]
            assert got[2].options[151][0] == Status.MALFORMED_QUERY
        finally:
            await srv.close()
    asyncio.run(run())
    assert m.bulk_connections == 4 and m.bulk_queries == 5 and m.bulk_open == 0


def test_bulk_refuses_strangers_and_extra_connections() -> None:
    store = _store(_lease(0))
    m = Metrics()

    async def run() -> None:
        cfg = _bulk_cfg(max_connections=1)
        assert cfg.leasequery is not None
        srv, port = await _started(cfg, store, m)
        try:
            r1, w1 = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.sleep(0.05)
            r2, w2 = await asyncio.open_connection("127.0.0.1", port)
            assert await _closed(r2)  # closed at once
            w1.close()
            w2.close()
            # a requester list without loopback: the connection is closed, nothing is sent
            srv.lq = LeaseQueryConfig(frozenset({RELAY_IP}), srv.bulk)
            r3, w3 = await asyncio.open_connection("127.0.0.1", port)
            w3.write(frame(_bulk(xid=1)))
            assert await _closed(r3)
            w3.close()
        finally:
            await srv.close()
    asyncio.run(run())
    assert m.bulk_refused == 2 and m.bulk_connections == 1


def test_bulk_idle_connection_is_closed() -> None:
    m = Metrics()

    async def run() -> None:
        srv, port = await _started(_bulk_cfg(idle_time=1), _store(), m)
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            assert await _closed(r)
            w.close()
        finally:
            await srv.close()
    asyncio.run(run())
    assert m.bulk_idle_closed == 1


def test_bulk_bad_frame_closes_the_connection() -> None:
    m = Metrics()

    async def run() -> None:
        srv, port = await _started(_bulk_cfg(), _store(_lease(0)), m)
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"\x00\x05hello")  # framed, but not DHCP
            assert await _closed(r)
            w.close()
        finally:
            await srv.close()
    asyncio.run(run())
    assert sum(m.malformed.values()) == 1


# ------------------------------------------------------------------------------ statistics

@dataclasses.dataclass
class _Source:
    config: Config
    engine: Engine
    store: MemoryLeaseStore
    metrics: Metrics


def test_kea_statistics_count_the_answers() -> None:
    store = _store(_lease(0))
    cfg = _cfg()
    h, m = _handler(store, cfg)
    for q in (_query(ciaddr=_lease(0).ip), _query(ciaddr=ip("198.18.0.101")),
              _query(ciaddr=ip("198.18.0.50")), _query(ciaddr=1, giaddr=OTHER_RELAY)):
        m.received[LQ] += 1  # as the packet path counts it
        out = h(_Ep(), q, RELAY_IP, NOW, 0.0)
        if out is not None:
            m.sent[out.message_type] += 1  # as the flush counts it
    v = Statistics(_Source(cfg, Engine(cfg, store), store, m)).raw_values()
    assert v["pkt4-lease-query-received"] == 4 and v["pkt4-unknown-received"] == 0
    assert (v["pkt4-lease-query-response-active-sent"],
            v["pkt4-lease-query-response-unassigned-sent"],
            v["pkt4-lease-query-response-unknown-sent"]) == (1, 1, 1)
    assert v["pkt4-receive-drop"] == 1  # the stranger's query
    plain = make_config()
    v = Statistics(_Source(plain, Engine(plain, store), store, m)).raw_values()
    assert "pkt4-lease-query-received" not in v and v["pkt4-unknown-received"] == 4


def test_docs_document_every_key() -> None:
    from pathlib import Path

    from fastdhcp.leasequery.config import ADVANCED_KEYS, LEASEQUERY_KEYS
    docs = Path(__file__).resolve().parent.parent / "docs"
    conf, page = (docs / "configuration.md").read_text(), (docs / "leasequery.md").read_text()
    for key in ADVANCED_KEYS + ("requesters",):
        assert f"`{key}`" in conf and f"| `{key}` |" in page, key
    assert "advanced" in LEASEQUERY_KEYS and "`[leasequery]`" in conf
    d = BulkConfig()
    for key, default in (("lease-query-tcp-port", d.port),
                         ("max-requester-connections", d.max_connections),
                         ("max-requester-idle-time", d.idle_time),
                         ("max-leases-per-fetch", d.page_size),
                         ("max-concurrent-queries", d.max_concurrent)):
        assert f"| `{key}` | `{default}` |" in page, key


def test_bulk_answers_what_was_asked_before_a_half_close_or_a_bad_frame() -> None:
    m = Metrics()

    async def run() -> None:
        srv, port = await _started(_bulk_cfg(), _store(_lease(0), _lease(1)), m)
        try:
            for tail in (b"", b"\x00\x00"):  # a half-close, then a zero-length frame
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(frame(_bulk(xid=1)) + tail)
                if not tail:
                    w.write_eof()
                frames, got = FrameReader(), []
                while True:
                    data = await asyncio.wait_for(r.read(65536), 5)
                    if not data:
                        break
                    got += [parse(f).message_type for f in frames.feed(data)]
                assert got == [13, 13, 15], tail
                w.close()
        finally:
            await srv.close()
    asyncio.run(run())
    assert sum(m.malformed.values()) == 1
