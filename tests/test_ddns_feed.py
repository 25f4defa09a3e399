"""What the service hands the DDNS worker after each group commit (fastdhcp.ddns.feed), driven
by the engine over tests/dhcpsim.py: adds for new and renamed bindings, nothing for a renewal
under the same name, removals on RELEASE, DECLINE and expiry, nothing for a rolled-back batch;
and the worker's bounded queue: a full queue drops and counts, never waits."""

from __future__ import annotations

import dns.name
from dhcpsim import (
    REQUEST,
    SERVER_IP,
    Client,
    Network,
    build_request,
    mac,
    make_config,
    opt,
)

from fastdhcp._codec import parse
from fastdhcp.ddns.config import DdnsConfig
from fastdhcp.ddns.dhcid import IdentifierType
from fastdhcp.ddns.feed import DdnsFeed, identifier_of
from fastdhcp.ddns.names import FLAG_E, FLAG_S
from fastdhcp.ddns.updates import Change, NameChange
from fastdhcp.ddns.worker import DdnsWorker
from fastdhcp.engine import Link
from fastdhcp.leases import Lease

DDNS = '[ddns]\nddns-qualifying-suffix = "example.net."\n'


class Recorder(DdnsWorker):
    """A worker that is never started: it keeps what was submitted."""

    def __init__(self, cfg: DdnsConfig | None = None) -> None:
        super().__init__(cfg or DdnsConfig())
        self.got: list[NameChange] = []

    def submit(self, ncr: NameChange) -> bool:
        ok = super().submit(ncr)
        if ok:
            self.got.append(ncr)
        return ok


class FedNetwork(Network):
    """dhcpsim's network whose commit also feeds the DDNS feed (as the service's on_batch)."""

    feed: DdnsFeed

    def commit(self) -> None:
        batch = self.store.take_pending()
        if batch:
            self.store.write(batch)
            self.store.committed(batch)
            self.feed.committed(batch)


def network(extra: str = "") -> tuple[FedNetwork, Recorder]:
    net = FedNetwork(make_config(more=DDNS + extra), Link("eth0", SERVER_IP))
    rec = Recorder()
    net.feed = DdnsFeed(net.engine.ddns_pending, rec)
    return net, rec


def fqdn(label: str) -> bytes:
    return opt(81, bytes((FLAG_S | FLAG_E, 0, 0, len(label))) + label.encode())


def bind(net: Network, n: int, label: str) -> Client:
    c = Client(net, mac(n))
    c.discover(extra=fqdn(label))
    c.select(extra=fqdn(label))
    assert c.address
    return c


def test_a_new_binding_is_added_once_after_its_commit() -> None:
    net, rec = network()
    c = bind(net, 1, "host1")
    assert [(x.change, x.fqdn.to_text(), x.address, x.forward, x.reverse)
            for x in rec.got] == [(Change.ADD, "host1.example.net.", c.address, True, True)]
    assert rec.got[0].ttl == 3600 // 3  # RFC 4702 section 5: a third of the lease time
    assert net.engine.ddns_pending == {}
    c._send(3, ciaddr=c.address, extra=fqdn("host1"))  # a renewal, same name
    assert len(rec.got) == 1


def test_a_rename_removes_the_old_name_then_adds_the_new() -> None:
    net, rec = network()
    c = bind(net, 1, "host1")
    c._send(3, ciaddr=c.address, extra=fqdn("host2"))
    assert [(x.change, x.fqdn.to_text()) for x in rec.got[1:]] == [
        (Change.REMOVE, "host1.example.net."), (Change.ADD, "host2.example.net.")]


def test_release_decline_and_expiry_remove() -> None:
    net, rec = network()
    a, b, d = bind(net, 1, "a"), bind(net, 2, "b"), bind(net, 3, "d")
    addr_a, addr_b = a.address, b.address
    a.release()
    b.decline()
    net.advance(10 ** 6)  # d expires; b's probation ends too (a second removal, harmless)
    removed = [(x.fqdn.to_text(), x.address) for x in rec.got if x.change is Change.REMOVE]
    assert removed[:2] == [("a.example.net.", addr_a), ("b.example.net.", addr_b)]
    assert ("d.example.net.", d.address) in removed


def test_a_rolled_back_batch_owes_nothing() -> None:
    net, rec = network()
    c = Client(net, mac(5))
    c.discover(extra=fqdn("h"))
    # the REQUEST's binding is staged, then its commit fails
    off = c.last
    data = build_request(REQUEST, xid=1, chaddr=c.mac, requested_ip=off.yiaddr,
                         server_id=off.server_id, extra=fqdn("h"))
    net.engine.handle(parse(data), net.link, net.clock.now)
    batch = net.store.take_pending()
    net.store.failed(batch)
    net.engine.rollback(batch)
    net.feed.failed(batch)
    assert net.engine.ddns_pending == {}
    assert rec.got == []


def test_a_full_queue_drops_and_counts() -> None:
    net, _ = network()
    small = Recorder(DdnsConfig(max_queue_size=1))
    net.feed = DdnsFeed(net.engine.ddns_pending, small)
    bind(net, 1, "x")
    bind(net, 2, "y")
    assert len(small.got) == 1
    assert small.stats.values()["queue-mgr-queue-full"] == 1


def test_the_dhcid_identifier_follows_the_client_key() -> None:
    hw = bytes.fromhex("02aabbccddee")
    plain = Lease(1, b"\x01" + hw, hw, 1, 0, 0, 10, "h.")
    assert identifier_of(plain).kind is IdentifierType.HTYPE_CHADDR
    cid = Lease(1, b"\x00myid", hw, 1, 0, 0, 10, "h.")
    assert identifier_of(cid).kind is IdentifierType.CLIENT_ID
    assert dns.name.from_text("h.") == dns.name.from_text(plain.hostname)
