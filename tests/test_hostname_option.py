"""Option 12 (Host Name, RFC 2132 3.14) in OFFER and ACK without ``[ddns]``: as Kea 2.2 answers
with DNS updates off (shared/reference/kea-client-classes.md P8 and P11): a reservation's
hostname goes to its client, a client's own name comes back lower-cased and sanitised, and a
client without a name gets none. Driven through tests/dhcpsim.py; with ``[ddns]`` the rules
are tests/test_ddns_engine.py's."""

from __future__ import annotations

import pytest
from dhcpsim import ACK, OFFER, Client, Network, mac, make_network, opt

RES_MAC = "02:00:00:00:00:07"


def reserved(hostname: str) -> Network:
    return make_network(subnet_extra=f'[[subnet4.reservations]]\nhw-address = "{RES_MAC}"\n'
                        f'hostname = "{hostname}"\n')


def dora(net: Network, n: int = 1, *, extra: bytes = b"", hostname: bytes | None = None):
    c = Client(net, mac(n))
    o = c.discover(extra=extra, hostname=hostname)
    assert o is not None and o.mtype == OFFER
    a = c.select(o, extra=extra, hostname=hostname)
    assert a is not None and a.mtype == ACK
    return c, o, a


@pytest.mark.parametrize("name", [b"laptop", b"cam-0001", b"host1.example.net", b"a" * 63])
def test_a_plain_name_is_echoed(name: bytes) -> None:
    _, o, a = dora(make_network(), hostname=name)
    assert o.options[12] == name and a.options[12] == name


@pytest.mark.parametrize(("sent", "back"), [
    (b"Laptop", b"laptop"),                 # lower-cased
    (b"my_laptop", b"mylaptop"),            # Kea's default hostname-char-set drops '_'
    (b"laptop.", b"laptop"),                # no final dot
    (b"laptop\x00", b"laptop"),             # NUL-terminated (some clients)
    (b"Host1.Example.NET", b"host1.example.net"),
])
def test_a_name_needing_care_comes_back_as_kea_sends_it(sent: bytes, back: bytes) -> None:
    _, o, a = dora(make_network(), hostname=sent)
    assert o.options[12] == back and a.options[12] == back


@pytest.mark.parametrize("sent", [b"a..b", b"a" * 64, b"___"])
def test_an_unusable_name_gets_no_option_12(sent: bytes) -> None:
    _, o, a = dora(make_network(), hostname=sent)
    assert 12 not in o.options and 12 not in a.options


def test_a_client_without_a_name_gets_none() -> None:
    c, o, a = dora(make_network())
    assert 12 not in o.options and 12 not in a.options
    assert c.net.engine.ddns_pending == {}


def test_the_reservation_hostname_goes_to_its_client_and_wins() -> None:
    net = reserved("Cust-1001")
    c = Client(net, bytes.fromhex(RES_MAC.replace(":", "")))
    o = c.discover(hostname=b"laptop")
    assert o is not None and o.options[12] == b"cust-1001"  # lower-cased, as Kea sends it
    a = c.select(o, hostname=b"laptop")
    assert a is not None and a.mtype == ACK and a.options[12] == b"cust-1001"
    # another client of the subnet keeps its own name
    _, o2, _ = dora(net, 2, hostname=b"laptop")
    assert o2.options[12] == b"laptop"
    _, o3, _ = dora(net, 3)
    assert 12 not in o3.options


def test_the_lease_keeps_the_client_name_and_no_dns_is_owed() -> None:
    net = make_network()
    c, _, _ = dora(net, hostname=b"laptop")
    lease = net.store.get(c.address)
    assert lease.hostname == "laptop"
    assert (lease.fqdn_fwd, lease.fqdn_rev) == (False, False)
    assert net.engine.ddns_pending == {}


def wire(*labels: bytes, full: bool = True) -> bytes:
    return b"".join(bytes((len(x),)) + x for x in labels) + (b"\0" if full else b"")


@pytest.mark.parametrize(("sent", "back"), [
    # What Kea 2.2 sent with DDNS off (side by side, tests/interop/test_classify_kea.py P11):
    # S=0 N=1 (O=1 when the client asked S=1), the request's RCODEs, the name qualified
    # (no suffix: made absolute), lower-cased; the ASCII form with its final dot.
    (b"\x05\x00\x00" + wire(b"host1", full=False), b"\x0e\x00\x00" + wire(b"host1")),
    (b"\x08\x00\x00host2", b"\x08\x00\x00host2."),
    (b"\x04\x00\x00" + wire(b"host3", b"example", b"net"),
     b"\x0c\x00\x00" + wire(b"host3", b"example", b"net")),
    (b"\x05\x00\x00" + wire(b"HOST4", full=False), b"\x0e\x00\x00" + wire(b"host4")),
    (b"\x05\xff\xff" + wire(b"host5", full=False), b"\x0e\xff\xff" + wire(b"host5")),
])
def test_option_81_is_answered_as_kea_does_without_ddns(sent: bytes, back: bytes) -> None:
    net = make_network()
    c, o, a = dora(net, extra=opt(81, sent), hostname=b"other")
    assert o.options[81] == back and a.options[81] == back
    assert 12 not in o.options and 12 not in a.options  # option 81 wins (RFC 4702 3.1)
    assert net.engine.ddns_pending == {}
    lease = net.store.get(c.address)
    assert (lease.fqdn_fwd, lease.fqdn_rev) == (False, False)


@pytest.mark.parametrize(("sent", "back"), [
    (b"\x05\x00\x00" + wire(b"host1", full=False), b"\x0e\x00\x00" + wire(b"cust-1001")),
    (b"\x01\x00\x00host1", b"\x0a\x00\x00cust-1001."),  # ASCII: S=0 N=1 O=1
])
def test_the_reservation_hostname_replaces_option_81s_name(sent: bytes, back: bytes) -> None:
    """Kea 2.2 side by side (tests/interop/test_classify_kea.py P8, "registered, fqdn")."""
    net = reserved("Cust-1001")
    c = Client(net, bytes.fromhex(RES_MAC.replace(":", "")))
    o = c.discover(extra=opt(81, sent))
    assert o is not None and o.options[81] == back and 12 not in o.options
    a = c.select(o, extra=opt(81, sent))
    assert a is not None and a.options[81] == back


def test_a_malformed_option_81_falls_back_to_option_12() -> None:
    _, o, _ = dora(make_network(), extra=opt(81, b"\xf0\x00\x00x"), hostname=b"laptop")
    assert 81 not in o.options and o.options[12] == b"laptop"


def test_a_renewal_answers_the_reserved_name_but_echoes_only_what_was_sent() -> None:
    net = reserved("cust-1001")
    c = Client(net, bytes.fromhex(RES_MAC.replace(":", "")))
    o = c.discover()
    assert o is not None and c.select(o) is not None
    r = c.renew()  # no option 12 in a renewal
    assert r is not None and r.mtype == ACK and r.options[12] == b"cust-1001"
    other, _, _ = dora(net, 2, hostname=b"laptop")
    r2 = other.renew()
    assert r2 is not None and r2.mtype == ACK and 12 not in r2.options
