"""The name policy (fastdhcp.ddns.names) per RFC 4702 section and per Kea rule.

Option 81 values are written out by hand here (flags, RCODE1, RCODE2, name) so that the decoder
is checked against the RFC's layout, not against the encoder it ships with.
"""

from __future__ import annotations

import dataclasses

import dns.name
import pytest

from fastdhcp.ddns.config import DdnsConfig, ReplaceClientName
from fastdhcp.ddns.names import (
    FLAG_E,
    FLAG_N,
    FLAG_O,
    FLAG_S,
    NameSource,
    decide,
    parse_fqdn_option,
)

ADDR = (192 << 24) | (0 << 16) | (2 << 8) | 10  # 192.0.2.10
CFG = DdnsConfig(qualifying_suffix="example.net")


def wire(*labels: str, full: bool = True) -> bytes:
    """A name in RFC 1035 3.1 form, by hand."""
    out = b"".join(bytes((len(x),)) + x.encode() for x in labels)
    return out + (b"\x00" if full else b"")


def opt81(flags: int, name: bytes) -> bytes:
    return bytes((flags, 0, 0)) + name


def n(text: str) -> dns.name.Name:
    return dns.name.from_text(text)


# -- RFC 4702 section 2: the option's layout ----------------------------------------------------


def test_2_1_wire_full_and_partial_names():
    full = parse_fqdn_option(opt81(FLAG_E | FLAG_S, wire("host", "example", "com")))
    assert full is not None and full.labels == (b"host", b"example", b"com")
    assert not full.partial
    part = parse_fqdn_option(opt81(FLAG_E | FLAG_S, wire("host", full=False)))
    assert part is not None and part.labels == (b"host",) and part.partial


def test_2_1_mbz_bits_and_bad_labels_are_malformed():
    assert parse_fqdn_option(opt81(0x10 | FLAG_E, wire("host"))) is None
    assert parse_fqdn_option(b"\x05\x00") is None  # shorter than flags + 2 RCODEs
    assert parse_fqdn_option(opt81(FLAG_E, b"\xc0\x0c")) is None  # a compression pointer
    assert parse_fqdn_option(opt81(FLAG_E, b"\x09host")) is None  # label overruns
    assert parse_fqdn_option(opt81(FLAG_E, b"\x00\x04host")) is None  # root not last


def test_2_3_ascii_encoding_deprecated_but_understood():
    c = parse_fqdn_option(opt81(FLAG_S, b"host.example.com"))
    assert c is not None and c.labels == (b"host", b"example", b"com") and not c.partial
    c = parse_fqdn_option(opt81(FLAG_S, b"host"))
    assert c is not None and c.partial


def test_2_2_server_sets_both_rcodes_to_255():
    d = decide(opt81(FLAG_E | FLAG_S, wire("host", "example", "net")), None, ADDR, CFG)
    assert d.reply_fqdn is not None and d.reply_fqdn[1:3] == b"\xff\xff"


# -- RFC 4702 section 3 / 4 with Kea's overrides: who updates ------------------------------------


def flags_of(d) -> int:
    assert d.reply_fqdn is not None
    return d.reply_fqdn[0]


def test_s1_server_does_both():
    d = decide(opt81(FLAG_E | FLAG_S, wire("host", "example", "net")), None, ADDR, CFG)
    assert (d.forward, d.reverse) == (True, True)
    assert flags_of(d) == FLAG_E | FLAG_S  # no O: the S answered is the S asked for
    assert d.fqdn == n("host.example.net.") and d.source is NameSource.CLIENT_FQDN
    assert d.reply_hostname is None  # option 81 answered, not 12 (RFC 4702 3.1)


def test_s0_client_does_forward_server_does_reverse():
    d = decide(opt81(FLAG_E, wire("host", "example", "net")), None, ADDR, CFG)
    assert (d.forward, d.reverse) == (False, True)
    assert flags_of(d) == FLAG_E


def test_s0_with_override_client_update_sets_s_and_o():
    cfg = dataclasses.replace(CFG, override_client_update=True)
    d = decide(opt81(FLAG_E, wire("host", "example", "net")), None, ADDR, cfg)
    assert (d.forward, d.reverse) == (True, True)
    assert flags_of(d) == FLAG_E | FLAG_S | FLAG_O


def test_n1_no_update_unless_overridden():
    req = opt81(FLAG_E | FLAG_N, wire("host", "example", "net"))
    d = decide(req, None, ADDR, CFG)
    assert (d.forward, d.reverse) == (False, False) and flags_of(d) == FLAG_E | FLAG_N
    assert d.fqdn == n("host.example.net.")  # the name is still answered
    d = decide(req, None, ADDR, dataclasses.replace(CFG, override_no_update=True))
    assert (d.forward, d.reverse) == (True, True)
    assert flags_of(d) == FLAG_E | FLAG_S | FLAG_O


def test_s1_n1_forbidden_pair_read_as_no_update():
    d = decide(opt81(FLAG_E | FLAG_S | FLAG_N, wire("host", "example", "net")), None, ADDR, CFG)
    assert (d.forward, d.reverse) == (False, False)
    assert flags_of(d) == FLAG_E | FLAG_N | FLAG_O  # S answered 0 where the client said 1


@pytest.mark.parametrize("cfg", [dataclasses.replace(CFG, send_updates=False),
                                 dataclasses.replace(CFG, enable_updates=False)])
def test_updates_off_answers_n1(cfg):
    d = decide(opt81(FLAG_E | FLAG_S, wire("host", "example", "net")), None, ADDR, cfg)
    assert (d.forward, d.reverse) == (False, False)
    assert flags_of(d) == FLAG_E | FLAG_N | FLAG_O


def test_3_1_encoding_echoed_ascii_in_ascii_out():
    d = decide(opt81(FLAG_S, b"host"), None, ADDR, CFG)
    assert d.reply_fqdn == bytes((FLAG_S, 255, 255)) + b"host.example.net"
    d = decide(opt81(FLAG_E | FLAG_S, wire("host", full=False)), None, ADDR, CFG)
    assert d.reply_fqdn == bytes((FLAG_E | FLAG_S, 255, 255)) + wire("host", "example", "net")


def test_3_1_option_81_wins_over_option_12():
    d = decide(opt81(FLAG_E | FLAG_S, wire("fq", "example", "net")), b"other", ADDR, CFG)
    assert d.fqdn == n("fq.example.net.") and d.reply_hostname is None


def test_malformed_option_81_falls_back_to_option_12():
    d = decide(b"\xf0\x00\x00", b"laptop", ADDR, CFG)
    assert d.fqdn == n("laptop.example.net.") and d.reply_fqdn is None
    assert d.reply_hostname == b"laptop.example.net"


# -- Kea's ddns-replace-client-name ------------------------------------------------------------


def mode(m: ReplaceClientName) -> DdnsConfig:
    return dataclasses.replace(CFG, replace_client_name=m)


GEN = n("myhost-192-0-2-10.example.net.")


@pytest.mark.parametrize(("m", "sent", "expect"), [
    (ReplaceClientName.NEVER, True, n("host.example.net.")),
    (ReplaceClientName.NEVER, False, None),
    (ReplaceClientName.ALWAYS, True, GEN),
    (ReplaceClientName.ALWAYS, False, GEN),
    (ReplaceClientName.WHEN_PRESENT, True, GEN),
    (ReplaceClientName.WHEN_PRESENT, False, None),
    (ReplaceClientName.WHEN_NOT_PRESENT, True, n("host.example.net.")),
    (ReplaceClientName.WHEN_NOT_PRESENT, False, GEN),
])
def test_replace_client_name_on_option_81(m, sent, expect):
    name = wire("host", full=False) if sent else b""
    d = decide(opt81(FLAG_E | FLAG_S, name), None, ADDR, mode(m))
    assert d.fqdn == expect
    assert d.forward == d.reverse == (expect is not None)
    if expect is None:  # an empty name answered: nothing to update
        assert d.reply_fqdn == bytes((FLAG_E | FLAG_S, 255, 255))


@pytest.mark.parametrize(("m", "expect"), [
    (ReplaceClientName.NEVER, None), (ReplaceClientName.ALWAYS, GEN),
    (ReplaceClientName.WHEN_PRESENT, None), (ReplaceClientName.WHEN_NOT_PRESENT, GEN)])
def test_no_option_at_all_generates_only_where_kea_does(m, expect):
    d = decide(None, None, ADDR, mode(m))
    assert d.fqdn == expect
    if expect is not None:
        assert d.source is NameSource.GENERATED
        assert d.reply_hostname == b"myhost-192-0-2-10.example.net"
        assert d.forward and d.reverse
    else:
        assert d.source is NameSource.NONE and not d.updates


def test_generated_prefix_and_no_suffix():
    cfg = DdnsConfig(replace_client_name=ReplaceClientName.ALWAYS, generated_prefix="dyn")
    assert decide(None, None, ADDR, cfg).fqdn == n("dyn-192-0-2-10.")


# -- option 12, qualification and sanitising -------------------------------------------------------


def test_option_12_single_label_is_qualified_dotted_is_kept():
    d = decide(None, b"laptop", ADDR, CFG)
    assert d.fqdn == n("laptop.example.net.") and d.source is NameSource.CLIENT_HOSTNAME
    assert (d.forward, d.reverse) == (True, True)
    d = decide(None, b"pc.corp.example.", ADDR, CFG)
    assert d.fqdn == n("pc.corp.example.")
    d = decide(None, b"laptop\x00", ADDR, CFG)  # NUL-terminated (seen from some clients)
    assert d.fqdn == n("laptop.example.net.")


def test_partial_name_without_suffix_stays_as_is():
    d = decide(None, b"laptop", ADDR, DdnsConfig())
    assert d.fqdn == n("laptop.")


def test_hostname_char_set_sanitises_each_label():
    cfg = dataclasses.replace(CFG, hostname_char_replacement="x")
    d = decide(None, b"my_host!", ADDR, cfg)
    assert d.fqdn == n("myxhostx.example.net.")
    d = decide(None, b"my_host", ADDR, CFG)  # default replacement: removed
    assert d.fqdn == n("myhost.example.net.")
    d = decide(None, b"my_host", ADDR, dataclasses.replace(CFG, hostname_char_set=""))
    assert d.fqdn == n("my_host.example.net.")  # empty char set: no sanitising


def test_unusable_name_is_as_if_none_was_sent():
    assert decide(None, b"___", ADDR, CFG).fqdn is None  # a label left empty
    long = b"a" * 64
    assert decide(None, long, ADDR, CFG).fqdn is None  # a label over 63 octets
    gen = mode(ReplaceClientName.WHEN_NOT_PRESENT)
    assert decide(None, b"___", ADDR, gen).fqdn == GEN


def test_name_over_255_octets_is_unusable():
    labels = ".".join(["a" * 60] * 4)  # 244 octets + the suffix's 13 > 255
    assert decide(None, labels.encode(), ADDR, CFG).fqdn == n(labels + ".")
    cfg = dataclasses.replace(CFG, qualifying_suffix="x" * 20 + ".example.net")
    d = decide(opt81(FLAG_E | FLAG_S, wire(*(["a" * 60] * 4), full=False)), None, ADDR, cfg)
    assert d.fqdn is None and not d.updates
