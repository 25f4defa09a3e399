"""Option 81 (RFC 4702) and option 12 in the engine's OFFER and ACK, the lease's name and DNS
update flags, and what each commit owes DNS (``Engine.ddns_pending``), driven through
tests/dhcpsim.py (requests built byte by byte, replies decoded there)."""

from __future__ import annotations

import pytest
from dhcpsim import ACK, OFFER, Client, Network, ip, mac, make_network, opt

from fastdhcp.ddns.names import FLAG_E as E
from fastdhcp.ddns.names import FLAG_N as N
from fastdhcp.ddns.names import FLAG_O as OVR
from fastdhcp.ddns.names import FLAG_S as S
from fastdhcp.leases import LeaseState

SUFFIX = "example.net."


def ddns(extra: str = "") -> str:
    return f'[ddns]\nddns-qualifying-suffix = "{SUFFIX}"\n{extra}'


def wire(*labels: str, full: bool = False) -> bytes:
    return b"".join(bytes((len(x),)) + x.encode() for x in labels) + (b"\0" if full else b"")


def opt81(flags: int, name: bytes) -> bytes:
    return opt(81, bytes((flags, 0, 0)) + name)


def dora(net: Network, n: int = 1, *, extra: bytes = b"", hostname: bytes | None = None):
    c = Client(net, mac(n))
    o = c.discover(extra=extra, hostname=hostname)
    assert o is not None and o.mtype == OFFER
    a = c.select(o, extra=extra, hostname=hostname)
    assert a is not None and a.mtype == ACK
    return c, o, a


def test_without_ddns_option_81_is_answered_with_n_and_nothing_is_owed() -> None:
    """As Kea 2.2 with updates off (tests/test_hostname_option.py has the details)."""
    net = make_network()
    c, o, a = dora(net, extra=opt81(S | E, wire("host1")))
    assert o.options[81] == a.options[81] == bytes((N | OVR | E, 0, 0)) + wire("host1", full=True)
    lease = net.store.get(c.address)
    assert (lease.fqdn_fwd, lease.fqdn_rev) == (False, False)
    assert net.engine.ddns_pending == {}


def test_s1_partial_name_is_qualified_and_both_updates_are_owed() -> None:
    net = make_network(more=ddns())
    c, o, a = dora(net, extra=opt81(S | E, wire("host1")))
    want = bytes((S | E, 255, 255)) + wire("host1", "example", "net", full=True)
    assert o.options[81] == want  # RFC 4702 section 4: in the OFFER too
    assert a.options[81] == want
    lease = net.store.get(c.address)
    assert lease.hostname == "host1.example.net."
    assert (lease.fqdn_fwd, lease.fqdn_rev) == (True, True)
    pend = net.engine.ddns_pending[c.address]
    assert pend[0] == lease and pend[1] is None


def test_s0_client_updates_forward_server_reverse_only() -> None:
    net = make_network(more=ddns())
    c, _, a = dora(net, extra=opt81(E, wire("host1")))
    assert a.options[81][0] == E  # S=0 answered, O=0 (no change), N=0
    lease = net.store.get(c.address)
    assert (lease.fqdn_fwd, lease.fqdn_rev) == (False, True)


def test_override_client_update_sets_s_and_o() -> None:
    net = make_network(more=ddns("ddns-override-client-update = true\n"))
    c, _, a = dora(net, extra=opt81(E, wire("host1")))
    assert a.options[81][0] == S | OVR | E
    assert net.store.get(c.address).fqdn_fwd is True


def test_n1_means_no_update_unless_overridden() -> None:
    net = make_network(more=ddns())
    c, _, a = dora(net, extra=opt81(N | E, wire("host1")))
    assert a.options[81][0] == N | E
    lease = net.store.get(c.address)
    assert (lease.fqdn_fwd, lease.fqdn_rev) == (False, False)
    assert lease.hostname == "host1.example.net."  # the name is kept, nothing is owed
    assert net.engine.ddns_pending == {}
    net2 = make_network(more=ddns("ddns-override-no-update = true\n"))
    c2, _, a2 = dora(net2, extra=opt81(N | E, wire("host1")))
    assert a2.options[81][0] == S | OVR | E
    assert (net2.store.get(c2.address).fqdn_fwd, net2.store.get(c2.address).fqdn_rev) == (
        True, True)


def test_ascii_encoding_is_echoed() -> None:
    net = make_network(more=ddns())
    _, _, a = dora(net, extra=opt81(S, b"pc7"))
    assert a.options[81] == bytes((S, 255, 255)) + b"pc7.example.net"


def test_replace_client_name_always_on_option_81() -> None:
    net = make_network(more=ddns('ddns-replace-client-name = "always"\n'
                                 'ddns-generated-prefix = "dyn"\n'))
    c, _, a = dora(net, extra=opt81(S | E, wire("host1")))
    dashed = "-".join(str((c.address >> s) & 0xFF) for s in (24, 16, 8, 0))
    assert a.options[81][3:] == wire("dyn-" + dashed, "example", "net", full=True)
    assert net.store.get(c.address).hostname == f"dyn-{dashed}.{SUFFIX}"


def test_option_12_answered_qualified_and_both_updates_owed() -> None:
    net = make_network(more=ddns())
    c, o, a = dora(net, hostname=b"laptop")
    assert o.options[12] == a.options[12] == b"laptop.example.net"
    assert 81 not in a.options
    lease = net.store.get(c.address)
    assert (lease.hostname, lease.fqdn_fwd, lease.fqdn_rev) == ("laptop.example.net.", True,
                                                                True)


def test_generated_name_for_a_client_without_options() -> None:
    net = make_network(more=ddns('ddns-replace-client-name = "when-not-present"\n'))
    c, _, a = dora(net)
    dashed = "-".join(str((c.address >> s) & 0xFF) for s in (24, 16, 8, 0))
    assert a.options[12] == f"myhost-{dashed}.example.net".encode()


def test_a_client_without_names_gets_none_and_owes_nothing() -> None:
    net = make_network(more=ddns())
    c, o, a = dora(net)
    assert 12 not in a.options and 81 not in a.options and 81 not in o.options
    assert net.engine.ddns_pending == {}
    assert net.store.get(c.address).hostname == ""


def test_updates_off_answers_n() -> None:
    net = make_network(more=ddns("ddns-send-updates = false\n"))
    c, _, a = dora(net, extra=opt81(S | E, wire("host1")))
    assert a.options[81][0] == N | OVR | E
    assert net.engine.ddns_pending == {}


def test_renewal_under_the_same_name_owes_nothing_a_new_name_replaces_the_old() -> None:
    net = make_network(more=ddns())
    c, _, _ = dora(net, extra=opt81(S | E, wire("host1")))
    first = net.store.get(c.address)
    net.engine.ddns_pending.clear()  # what the service takes at the commit
    c._send(3, ciaddr=c.address, extra=opt81(S | E, wire("host1")))  # RENEWING
    assert c.last.mtype == ACK
    assert net.engine.ddns_pending == {}
    c._send(3, ciaddr=c.address, extra=opt81(S | E, wire("host2")))
    new, old = net.engine.ddns_pending[c.address]
    assert new.hostname == "host2.example.net." and old == first


def test_update_on_renew_owes_the_add_again() -> None:
    net = make_network(more=ddns("ddns-update-on-renew = true\n"))
    c, _, _ = dora(net, extra=opt81(S | E, wire("host1")))
    net.engine.ddns_pending.clear()
    c._send(3, ciaddr=c.address, extra=opt81(S | E, wire("host1")))
    new, old = net.engine.ddns_pending[c.address]
    assert new.hostname == "host1.example.net." and old is None


def test_losing_the_name_owes_the_removal() -> None:
    net = make_network(more=ddns())
    c, _, _ = dora(net, extra=opt81(S | E, wire("host1")))
    first = net.store.get(c.address)
    net.engine.ddns_pending.clear()
    c._send(3, ciaddr=c.address, extra=opt81(N | E, wire("host1")))
    new, old = net.engine.ddns_pending[c.address]
    assert (new.fqdn_fwd, new.fqdn_rev) == (False, False) and old == first


@pytest.mark.parametrize("how", ["release", "decline", "expire"])
def test_ended_bindings_keep_the_name_and_flags_for_the_removal(how: str) -> None:
    net = make_network(more=ddns())
    c, _, _ = dora(net, extra=opt81(S | E, wire("host1")))
    addr = c.address
    if how == "expire":
        net.advance(10 ** 6)
    else:
        getattr(c, how)()
    lease = net.store.get(addr)
    want = {"release": LeaseState.RELEASED, "decline": LeaseState.DECLINED,
            "expire": LeaseState.EXPIRED_RECLAIMED}[how]
    assert lease.state == want
    assert (lease.hostname, lease.fqdn_fwd, lease.fqdn_rev) == ("host1.example.net.", True,
                                                                True)


def test_address_is_the_leased_one() -> None:
    net = make_network(more=ddns('ddns-replace-client-name = "always"\n'))
    c, o, a = dora(net, hostname=b"x")
    assert o.yiaddr == a.yiaddr == c.address
    assert a.options[12].startswith(b"myhost-198-18-0-")
    assert ip("198.18.0.100") <= c.address <= ip("198.18.0.103")


def test_a_reload_answers_with_the_new_ddns_settings() -> None:
    from dhcpsim import make_config
    net = make_network(more=ddns())
    _, _, a = dora(net, 1, extra=opt81(S | E, wire("host1")))
    assert a.options[81][3:] == wire("host1", "example", "net", full=True)
    net.engine.reload(make_config(more='[ddns]\nddns-qualifying-suffix = "other.org."\n'))
    c = Client(net, mac(1))
    c._send(3, ciaddr=a.yiaddr, extra=opt81(S | E, wire("host1")))  # the same question
    assert c.last.options[81][3:] == wire("host1", "other", "org", full=True)
    net.engine.reload(make_config())
    c._send(3, ciaddr=a.yiaddr, extra=opt81(S | E, wire("host1")))
    # [ddns] gone: answered as Kea with updates off (N=1, no suffix), no old decision reused
    assert c.last.options[81] == bytes((N | OVR | E, 0, 0)) + wire("host1", full=True)


def test_a_rapid_commit_ack_carries_option_81_and_owes_the_add() -> None:
    from dhcpsim import DISCOVER, build_request, decode_reply

    from fastdhcp._codec import parse
    net = make_network(subnet_extra="rapid-commit = true", more=ddns())
    data = build_request(DISCOVER, xid=7, chaddr=mac(1), prl=bytes((1, 3, 51, 54)),
                         extra=opt(80, b"") + opt81(S | E, wire("fast")))
    d = net.engine.handle(parse(data), net.link, net.clock.now)
    r = decode_reply(d.reply)
    assert r.mtype == ACK and r.options[80] == b""
    assert r.options[81] == bytes((S | E, 255, 255)) + wire("fast", "example", "net", full=True)
    assert (d.binding.hostname, d.binding.fqdn_fwd, d.binding.fqdn_rev) == (
        "fast.example.net.", True, True)
    assert net.engine.ddns_pending[r.yiaddr][0] is d.binding
