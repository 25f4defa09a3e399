"""The hosts table (fastdhcp.hosts) on a real LMDB store: scale (120k hosts), paging, deletes,
persistence, all-or-nothing writes; the engine serving its reservations (dhcpsim's independent
client as the oracle); GroupCommitter.run_in_writer."""

from __future__ import annotations

import asyncio
import threading

import pytest
from dhcpsim import ACK, SERVER_IP, Client, Network, ip, mac, make_config

from fastdhcp.commit import GroupCommitter
from fastdhcp.engine import Link
from fastdhcp.hosts import Host, HostConflict, HostTable, IdentifierType, Written
from fastdhcp.store import LmdbLeaseStore

HW = IdentifierType.HW_ADDRESS
N = 120_000
LINK = Link("eth0", SERVER_IP)


@pytest.fixture
def store(tmp_path):
    s = LmdbLeaseStore(tmp_path / "db", sync=False, create=True, map_size=1 << 24)
    yield s
    s.close()


def _host(k: int) -> Host:
    # two subnets, interleaved: subnet 1 holds the even k, subnet 2 the odd
    return Host(1 + (k & 1), HW, b"\x02\x00" + k.to_bytes(4, "big"), (10 << 24) + k + 1)


def _write(store: LmdbLeaseStore, table: HostTable, fn) -> Written:
    out = store.host_write(fn)
    table.written(out)
    return out


def test_table_at_scale(tmp_path, store):
    table = HostTable(store)
    assert len(table) == 0 and table.find(1, HW, b"\x02\x00\0\0\0\0") is None
    _write(store, table, table.add_many_fn([_host(k) for k in range(N)]))
    assert len(table) == table.count(HW) == N
    for k in range(0, N, 997):
        h = _host(k)
        raw = table.find(h.subnet_id, HW, h.identifier)
        assert raw is not None
        got = table.get(h.subnet_id, HW, h.identifier)
        assert got is not None and got.ip == h.ip and got.host_id == k + 1
        assert table.find(3 - h.subnet_id, HW, h.identifier) is None  # other subnet
        assert table.reserved(h.ip) and table.at(h.ip) == got
    assert not table.reserved((10 << 24) + N + 1)
    addrs = table.addresses()
    assert list(addrs) == [(10 << 24) + k + 1 for k in range(N)]
    # paging over all subnets, then one subnet: every host exactly once
    seen: list[int] = []
    after = 0
    while True:
        hosts, last = table.page(None, after, 7001)
        if not hosts:
            assert last == after
            break
        seen.extend(h.ip for h in hosts)
        after = last
    assert sorted(seen) == list(addrs) and len(set(seen)) == N
    two = table.in_subnet(2)
    assert len(two) == N // 2 and all(h.subnet_id == 2 for h in two)
    # deletes: the record, its address and its page entry go; counts follow
    for k in range(0, 2000, 2):
        h = _host(k)
        gone = _write(store, table, table.delete_fn(1, HW, h.identifier)).deleted
        assert gone is not None and gone.ip == h.ip
    assert len(table) == N - 1000
    assert not table.reserved(_host(0).ip) and table.get(1, HW, _host(0).identifier) is None
    assert len(table.in_subnet(1)) == N // 2 - 1000
    assert store.host_write(table.delete_fn(1, HW, _host(0).identifier)).deleted is None
    store.close()
    again = LmdbLeaseStore(tmp_path / "db", sync=False, map_size=1 << 24)
    try:
        t2 = HostTable(again)
        assert len(t2) == N - 1000 and t2.get(2, HW, _host(1).identifier) is not None
        assert len(t2.addresses()) == N - 1000
    finally:
        again.close()


def test_writes_are_all_or_nothing(store):
    table = HostTable(store)
    _write(store, table, table.add_fn(_host(1)))
    dup_id = Host(2, HW, _host(1).identifier, (10 << 24) + 999)
    with pytest.raises(HostConflict) as exc:
        store.host_write(table.add_many_fn([_host(3), _host(5), dup_id]))
    assert exc.value.key == "hw-address"
    dup_ip = Host(1, HW, b"\x02\x09\0\0\0\0", _host(1).ip)
    with pytest.raises(HostConflict) as exc:
        store.host_write(table.add_many_fn([_host(7), dup_ip]))
    assert exc.value.key == "ip-address"
    assert len(HostTable(store)) == 1  # counts as committed: nothing of the two batches
    assert table.get(2, HW, _host(3).identifier) is None and not table.reserved(_host(7).ip)


def test_engine_serves_api_reservations(store):
    """The pool holds 198.18.0.100-103; an API host reserves .101 with its own DNS option."""
    config = make_config()
    net = Network(config, LINK, store=store)
    table = HostTable(store)
    opts = {6: bytes([198, 18, 0, 77])}
    owner = mac(50)
    _write(store, table, table.add_fn(Host(1, HW, owner, ip("198.18.0.101"), "cpe-50",
                                           opts)))
    net.engine.attach_hosts(table)
    got = [Client(net, mac(k)).dora() for k in (1, 2, 3)]
    assert all(r is not None and r.mtype == ACK for r in got)
    assert sorted(r.yiaddr for r in got) == [ip("198.18.0.100"), ip("198.18.0.102"),
                                             ip("198.18.0.103")]
    assert Client(net, mac(4)).discover() is None  # only the reserved address is left
    ack = Client(net, owner).dora()
    assert ack is not None and ack.mtype == ACK and ack.yiaddr == ip("198.18.0.101")
    assert ack.options[6] == bytes([198, 18, 0, 77])
    assert ack.options[3] == bytes([198, 18, 0, 1])  # the subnet's routers still there
    assert store.get(ip("198.18.0.101")).hostname == "cpe-50"
    # a reload keeps it served and its bit used
    net.engine.reload(config)
    assert Client(net, mac(5)).discover() is None
    # deleting it while its client holds it: the lease keeps the address
    _write(store, table, table.delete_fn(1, HW, owner))
    net.engine.host_written(ip("198.18.0.101"))
    assert Client(net, mac(6)).discover() is None


def test_hold_claims_the_address_before_the_commit(store):
    net = Network(make_config(), LINK, store=store)
    table = HostTable(store)
    net.engine.attach_hosts(table)
    c = Client(net, mac(1))
    offer = c.discover()
    assert offer is not None
    held = offer.yiaddr
    net.engine.hold_host_address(held)  # a reservation-add of that address is on its way
    assert not net.engine.is_offered(held)
    others = [Client(net, mac(k)).discover() for k in (2, 3, 4, 5)]
    assert held not in {o.yiaddr for o in others if o is not None}
    # the write failed: the address goes back to the pool
    net.engine.host_written(held, held=True)
    assert Client(net, mac(9)).discover().yiaddr == held


def test_racing_adds_of_one_address_keep_it_claimed(store):
    """Two reservation-adds of one address in flight: the first one failing must not free
    the address while the second's commit is on its way."""
    net = Network(make_config(), LINK, store=store)
    table = HostTable(store)
    net.engine.attach_hosts(table)
    a = ip("198.18.0.102")
    net.engine.hold_host_address(a)
    net.engine.hold_host_address(a)
    net.engine.host_written(a, held=True)  # the first failed
    offers = {Client(net, mac(k)).discover().yiaddr for k in (1, 2, 3)}
    assert a not in offers and len(offers) == 3
    # a reservation-del of another host with that address does not end the claim either
    net.engine.host_written(a)
    assert Client(net, mac(4)).discover() is None
    net.engine.host_written(a, held=True)  # the second failed too
    assert Client(net, mac(5)).discover().yiaddr == a


def test_run_in_writer(store):
    async def main() -> None:
        loop = asyncio.get_running_loop()
        gc = GroupCommitter(store, loop, lambda tokens: None, lambda *a: None)
        try:
            where = await gc.run_in_writer(lambda: threading.current_thread().name)
            assert where == "fastdhcp-writer"
            table = HostTable(store)
            done = await gc.run_in_writer(lambda: store.host_write(table.add_fn(_host(1))))
            table.written(done)
            assert table.get(2, HW, _host(1).identifier) is not None

            def boom() -> None:
                raise ValueError("no")
            with pytest.raises(ValueError, match="no"):
                await gc.run_in_writer(boom)
        finally:
            await gc.close()
        with pytest.raises(RuntimeError):
            gc.run_in_writer(lambda: None)

    asyncio.run(main())


def test_config_says_why_flex_id_is_refused():
    from fastdhcp.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        make_config(subnet_extra="", more='''
[[subnet4.reservations]]
flex-id = "'abc'"
ip-address = "198.18.0.10"
''')
    assert "flex-id" in str(exc.value) and "no flex_id hook" in str(exc.value)


def test_filter_never_misses_and_rarely_lies():
    from fastdhcp._hostfilter import HostFilter
    from fastdhcp.hosts import _hkey

    f = HostFilter(100_000)
    assert f.size_bytes == (1 << 21) // 8  # 16 bits a key, rounded up to a power of two
    idents = [b"\x02" + ((k * 0x9E3779B97F) % (1 << 40)).to_bytes(5, "big")
              for k in range(100_000)]
    for i, ident in enumerate(idents):
        f.add_key(_hkey(1 + (i & 1), int(HW), ident))  # the table's key, as it writes it
    # the engine asks by parts: every key added is found (no false negative)...
    assert all(f.may_contain(1 + (i & 1), int(HW), ident) for i, ident in enumerate(idents))
    # ...and other subnets, types and identifiers are rarely taken for one
    others = [b"\x06" + k.to_bytes(5, "big") for k in range(100_000)]
    fp = sum(f.may_contain(1, int(HW), x) for x in others)
    assert fp < 1000  # < 1% (expected ~0.1% at 16 bits a key)
    assert sum(f.may_contain(2 - (i & 1), int(HW), ident)
               for i, ident in enumerate(idents[:10_000])) < 100
    assert sum(f.may_contain(1, int(IdentifierType.CLIENT_ID), ident)
               for ident in idents[:10_000:2]) < 50


def test_table_fills_its_filter_at_open(tmp_path, store):
    table = HostTable(store)
    _write(store, table, table.add_many_fn([_host(k) for k in range(1000)]))
    assert all(table.filter.may_contain(_host(k).subnet_id, int(HW), _host(k).identifier)
               for k in range(1000))
    store.close()
    again = LmdbLeaseStore(tmp_path / "db", sync=False, map_size=1 << 24)
    try:
        t2 = HostTable(again)
        assert t2.filter.added == 1000
        assert all(t2.filter.may_contain(_host(k).subnet_id, int(HW), _host(k).identifier)
                   for k in range(1000))
    finally:
        again.close()
