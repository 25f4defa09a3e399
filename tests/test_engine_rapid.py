"""Rapid commit (RFC 4039) and the engine's side of ping-check, on the simulated network.

Requests are built and replies decoded by tests/dhcpsim.py (not by the codec under test), on a
fake clock against a MemoryLeaseStore whose pending batch shows what a DISCOVER staged.
"""

from __future__ import annotations

import pytest
from dhcpsim import (
    ACK,
    DISCOVER,
    OFFER,
    Client,
    build_request,
    decode_reply,
    ip,
    mac,
    make_network,
    opt,
)

from fastdhcp._codec import parse
from fastdhcp.consts import Outcome
from fastdhcp.leases import LeaseState

RAPID = opt(80, b"")
POOL = [ip("198.18.0.100") + i for i in range(4)]


def _discover(net, n: int, *, extra: bytes = RAPID, requested: int = 0, xid: int = 7):
    data = build_request(DISCOVER, xid=xid, chaddr=mac(n), prl=bytes((1, 3, 51, 54)),
                         requested_ip=requested, extra=extra)
    return net.engine.handle(parse(data), net.link, net.clock.now)


# ------------------------------------------------------------------------- rapid commit


def test_4039_discover_with_option_80_is_acked_with_option_80_and_a_staged_binding():
    net = make_network(subnet_extra="rapid-commit = true")
    d = _discover(net, 1)
    assert d.kind is Outcome.ACK and d.reason == "rapid-commit"
    r = decode_reply(d.reply)
    assert r.mtype == ACK and r.yiaddr in POOL
    assert r.options[80] == b""  # RFC 4039 4: the server's ACK carries the option, empty
    assert r.u32(51) == 3600 and r.server_id == ip("198.18.0.1")
    # The ACK waits for this binding: staged (pending the group commit), not yet written.
    assert d.binding is not None and d.binding.ip == r.yiaddr
    assert d.binding.state == LeaseState.DEFAULT
    assert d.binding.hw_address == mac(1) and d.binding.client_key == b"\x01" + mac(1)
    pending = net.store.take_pending()
    assert [lease.ip for lease in pending] == [r.yiaddr]
    assert net.engine.offered(d.binding.client_key) == 0  # no offer held
    c = net.engine.subnet_counters()[1]
    assert c.rapid_commits == 1 and c.assigned == 1


def test_4039_discover_without_option_80_still_gets_an_offer():
    net = make_network(subnet_extra="rapid-commit = true")
    d = _discover(net, 1, extra=b"")
    assert d.kind is Outcome.OFFER and d.binding is None
    assert 80 not in decode_reply(d.reply).options
    assert net.store.take_pending() == []
    assert net.engine.subnet_counters()[1].rapid_commits == 0


@pytest.mark.parametrize("where", ["", "rapid-commit = false"])
def test_4039_subnet_off_answers_option_80_with_a_plain_offer(where):
    # Off by default, and off in a subnet that says so under a [global] that turns it on.
    net = make_network(global_extra="rapid-commit = true" if where else "",
                       subnet_extra=where)
    d = _discover(net, 1)
    assert d.kind is Outcome.OFFER and d.binding is None
    assert 80 not in decode_reply(d.reply).options


def test_4039_global_rapid_commit_is_inherited():
    net = make_network(global_extra="rapid-commit = true")
    assert _discover(net, 1).kind is Outcome.ACK


def test_4039_rapid_binding_is_the_clients_for_renewal_and_a_second_discover():
    net = make_network(subnet_extra="rapid-commit = true")
    d = _discover(net, 1)
    net.commit()
    addr = d.binding.ip
    again = _discover(net, 1, xid=8)  # the client lost the ACK and asks again
    assert again.kind is Outcome.ACK and again.binding.ip == addr
    net.commit()
    assert net.engine.subnet_counters()[1].assigned == 1  # the same binding, not a new one
    c = Client(net, mac(1))
    c.address, c.server_id, c.state = addr, ip("198.18.0.1"), "BOUND"
    r = c.renew()
    assert r is not None and r.mtype == ACK and r.yiaddr == addr


def test_4039_rapid_commit_takes_an_offer_held_for_the_client():
    net = make_network(subnet_extra="rapid-commit = true")
    offered = _discover(net, 1, extra=b"")
    addr = decode_reply(offered.reply).yiaddr
    d = _discover(net, 1, xid=9)
    assert d.kind is Outcome.ACK and d.binding.ip == addr
    assert not net.engine.is_offered(addr)  # the offer became the binding


# ------------------------------------------------------------------------- ping-check


PING = "enable-ping-check = true"


def test_ping_check_marks_a_new_offer_for_probing_and_holds_it():
    net = make_network(subnet_extra=PING)
    d = _discover(net, 1, extra=b"")
    r = decode_reply(d.reply)
    assert d.kind is Outcome.OFFER and d.probe == r.yiaddr
    assert net.engine.is_offered(r.yiaddr)
    # A second client is not offered the address under probe.
    other = decode_reply(_discover(net, 2, extra=b"").reply)
    assert other.yiaddr != r.yiaddr


def test_ping_check_off_by_default():
    net = make_network()
    assert _discover(net, 1, extra=b"").probe == 0


def test_ping_result_free_lets_the_offer_stand_and_a_repeat_needs_no_probe():
    net = make_network(subnet_extra=PING)
    d = _discover(net, 1, extra=b"")
    key = b"\x01" + mac(1)
    # A repeat while the probe runs is marked too (the service joins it to the probe).
    assert _discover(net, 1, extra=b"", xid=8).probe == d.probe
    assert net.engine.ping_result(key, d.probe, False, net.clock.now) is True
    again = _discover(net, 1, extra=b"", xid=9)
    assert again.kind is Outcome.OFFER and again.probe == 0
    assert decode_reply(again.reply).yiaddr == d.probe


def test_ping_result_in_use_declines_the_address_and_the_next_discover_moves_on():
    net = make_network(subnet_extra=PING)
    d = _discover(net, 1, extra=b"")
    key = b"\x01" + mac(1)
    bad = d.probe
    assert net.engine.ping_result(key, bad, True, net.clock.now) is True
    assert not net.engine.is_offered(bad)
    net.commit()
    lease = net.store.get(bad)
    assert lease is not None and lease.state == LeaseState.DECLINED
    assert lease.client_key == b""  # no client declined it
    assert lease.expires == int(net.clock.now) + 86400  # decline-probation-period
    c = net.engine.subnet_counters()[1]
    assert c.declined == 1 and c.ping_conflicts == 1
    retry = _discover(net, 1, extra=b"", xid=8)
    assert retry.kind is Outcome.OFFER and retry.probe not in (0, bad)
    # The declined address stays out of every offer until probation ends.
    seen = {decode_reply(_discover(net, n, extra=b"").reply).yiaddr for n in (2, 3)}
    assert bad not in seen
    net.advance(86401)
    assert net.store.get(bad).state == LeaseState.EXPIRED_RECLAIMED


def test_ping_result_for_a_gone_offer_changes_nothing():
    net = make_network(subnet_extra=PING)
    d = _discover(net, 1, extra=b"")
    assert net.engine.ping_result(b"\x01" + mac(9), d.probe, False, net.clock.now) is False
    assert net.engine.is_offered(d.probe)


def test_ping_check_skips_reservations_and_the_clients_own_binding():
    net = make_network(subnet_extra=PING + """
[[subnet4.reservations]]
hw-address = "02:00:00:00:00:05"
ip-address = "198.18.0.50"
""")
    assert _discover(net, 5, extra=b"").probe == 0
    c = Client(net, mac(1))
    d = _discover(net, 1, extra=b"")
    net.engine.ping_result(b"\x01" + mac(1), d.probe, False, net.clock.now)
    assert c.select(decode_reply(d.reply)).mtype == ACK
    assert _discover(net, 1, extra=b"", xid=11).probe == 0  # its binding: no probe


def test_ping_cltt_secs_skips_the_previous_owner_seen_recently_only():
    net = make_network(subnet_extra=PING + "\nping-cltt-secs = 600")
    c = Client(net, mac(1))
    d = _discover(net, 1, extra=b"")
    net.engine.ping_result(b"\x01" + mac(1), d.probe, False, net.clock.now)
    assert c.select(decode_reply(d.reply)).mtype == ACK
    addr = c.address
    c.release()
    net.clock.advance(60)
    again = _discover(net, 1, extra=b"", requested=addr, xid=12)
    assert decode_reply(again.reply).yiaddr == addr and again.probe == 0
    net.engine.ping_result(b"\x01" + mac(1), addr, False, net.clock.now)
    assert c.select(decode_reply(again.reply)).mtype == ACK
    c.release()
    net.clock.advance(601)  # CLTT too old now: probed again
    assert _discover(net, 1, extra=b"", requested=addr, xid=13).probe == addr
    # Another client asking for it is probed whatever the CLTT.
    net2 = make_network(subnet_extra=PING + "\nping-cltt-secs = 600")
    c2 = Client(net2, mac(1))
    d2 = _discover(net2, 1, extra=b"")
    net2.engine.ping_result(b"\x01" + mac(1), d2.probe, False, net2.clock.now)
    c2.select(decode_reply(d2.reply))
    addr2 = c2.address
    c2.release()
    assert _discover(net2, 2, extra=b"", requested=addr2).probe == addr2


def test_rapid_commit_with_a_probe_due_falls_back_to_a_probed_offer():
    net = make_network(subnet_extra="rapid-commit = true\n" + PING)
    d = _discover(net, 1)
    assert d.kind is Outcome.OFFER and d.probe != 0 and d.binding is None
    assert 80 not in decode_reply(d.reply).options
    net.engine.ping_result(b"\x01" + mac(1), d.probe, False, net.clock.now)
    # The address is probed and held: a rapid DISCOVER now commits it at once.
    ack = _discover(net, 1, xid=20)
    assert ack.kind is Outcome.ACK and ack.binding.ip == d.probe
    assert ack.binding.state == LeaseState.DEFAULT


def test_offer_message_type_is_unchanged_for_probed_offers():
    net = make_network(subnet_extra=PING)
    assert decode_reply(_discover(net, 1, extra=b"").reply).mtype == OFFER


def test_ping_declines_stay_within_decline_max_fraction():
    # Four addresses, at most half on probation: a host answering for all of them cannot
    # empty the pool.
    net = make_network(global_extra="decline-max-fraction = 0.5", subnet_extra=PING)
    now = net.clock.now
    for n in range(1, 5):
        d = _discover(net, n, extra=b"")
        assert net.engine.ping_result(b"\x01" + mac(n), d.probe, True, now) is True
        assert not net.engine.is_offered(d.probe)  # withdrawn in every case
    net.commit()
    declined = [a for a in POOL if (le := net.store.get(a)) is not None
                and le.state == LeaseState.DECLINED]
    assert len(declined) == 2
    c = net.engine.subnet_counters()[1]
    assert (c.ping_conflicts, c.declined) == (4, 2)
