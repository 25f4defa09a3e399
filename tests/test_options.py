"""fastdhcp.options against independent oracles.

- scapy's DHCP option encoders (``scapy.layers.dhcp.DHCPOptions`` fields) for the simple types;
- scapy's DNS name decoder (``dns_get_str``, which follows compression pointers) and the worked
  example of RFC 3397 section 4 for option 119;
- scapy's ``ClasslessFieldListField`` and the examples of RFC 3442 section 2 for option 121.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.fields import SignedIntField
from scapy.layers.dhcp import DHCP, DHCPOptions
from scapy.layers.dns import dns_get_str

from fastdhcp.errors import ConfigError
from fastdhcp.options import (
    OPTION_DEFS,
    SERVER_CONTROLLED,
    decode_option,
    encode_domain_list,
    encode_option,
    encode_option_data,
    ipv4,
    option_def,
    option_name,
)

# -- oracles -------------------------------------------------------------------------------------


def scapy_option(code: int, *values: object) -> bytes:
    """The payload scapy writes for option ``code`` given ``values`` (its own field encoder)."""
    spec = DHCPOptions[code]
    name = spec if isinstance(spec, str) else spec.name
    raw = bytes(DHCP(options=[(name, *values), "end"]))
    assert raw[0] == code, raw.hex()
    return raw[2 : 2 + raw[1]]


def decode_names(payload: bytes) -> list[str]:
    """Every name of an RFC 1035 name list, decoded by scapy (pointers relative to the start)."""
    names = []
    rest = payload
    while rest:
        # scapy 2.8 returns (name, bytes left after the name)
        name, left = dns_get_str(rest, full=payload)
        assert len(left) < len(rest)
        rest = left
        names.append(name.decode("ascii").rstrip("."))
    return names


ipv4_text = st.integers(0, 0xFFFFFFFF).map(lambda i: str(ipaddress.IPv4Address(i)))

# -- simple types against scapy ------------------------------------------------------------------

IP_ARRAYS = [d for d in OPTION_DEFS if d.type == "ipv4-address" and d.array and not d.pairs
             and d.code in DHCPOptions and d.code not in SERVER_CONTROLLED]


@pytest.mark.parametrize("d", IP_ARRAYS, ids=lambda d: d.name)
@settings(max_examples=15, deadline=None)
@given(addrs=st.lists(ipv4_text, min_size=1, max_size=8))
def test_ipv4_arrays_match_scapy(d, addrs):
    code, payload = encode_option(d.name, addrs)
    assert code == d.code
    assert payload == scapy_option(d.code, *addrs)
    assert decode_option(code, payload) == addrs


@pytest.mark.parametrize("name", ["subnet-mask", "broadcast-address", "swap-server",
                                  "router-solicitation-address", "subnet-selection"])
@given(addr=ipv4_text)
@settings(max_examples=50, deadline=None)
def test_single_ipv4_matches_scapy(name, addr):
    code, payload = encode_option(name, addr)
    assert payload == scapy_option(code, addr)


def test_csv_string_form_equals_list_form():
    assert encode_option("routers", "192.0.2.1, 192.0.2.2") == encode_option(
        "routers", ["192.0.2.1", "192.0.2.2"])
    assert encode_option("domain-name-servers", "192.0.2.53")[1] == bytes([192, 0, 2, 53])


INT_CASES = [
    # (name, scapy value range) for scapy ByteField/ShortField/IntField options
    ("default-ip-ttl", 1, 255),
    ("default-tcp-ttl", 1, 255),
    ("boot-size", 0, 65535),
    ("max-dgram-reassembly", 576, 65535),
    ("interface-mtu", 68, 65535),
    ("path-mtu-aging-timeout", 0, 2**32 - 1),
    ("arp-cache-timeout", 0, 2**32 - 1),
    ("tcp-keepalive-interval", 0, 2**32 - 1),
    ("client-last-transaction-time", 0, 2**32 - 1),
    ("v6-only-preferred", 0, 2**32 - 1),
]


@pytest.mark.parametrize("name,lo,hi", INT_CASES)
@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_unsigned_ints_match_scapy(name, lo, hi, data):
    value = data.draw(st.integers(lo, hi))
    code, payload = encode_option(name, value)
    assert payload == scapy_option(code, value)
    assert decode_option(code, payload) == value
    # decimal text is accepted as well (Kea writes option data as strings)
    assert encode_option(name, str(value)) == (code, payload)


@given(values=st.lists(st.integers(68, 65535), min_size=1, max_size=10))
@settings(max_examples=50, deadline=None)
def test_uint16_array_matches_scapy(values):
    code, payload = encode_option("path-mtu-plateau-table", values)
    assert code == 25
    assert payload == scapy_option(25, *values)


@given(value=st.integers(-(2**31), 2**31 - 1))
@settings(max_examples=100, deadline=None)
def test_time_offset_is_signed_int32(value):
    # scapy's DHCP field for option 2 is unsigned; its SignedIntField is the int32 oracle
    code, payload = encode_option("time-offset", value)
    assert code == 2
    assert payload == SignedIntField("x", 0).addfield(None, b"", value)
    assert decode_option(2, payload) == value


@pytest.mark.parametrize("name", ["ip-forwarding", "non-local-source-routing",
                                  "all-subnets-local", "perform-mask-discovery",
                                  "mask-supplier", "router-discovery", "trailer-encapsulation",
                                  "ieee802-3-encapsulation", "tcp-keepalive-garbage"])
@pytest.mark.parametrize("value", [True, False])
def test_booleans_match_scapy(name, value):
    code, payload = encode_option(name, value)
    assert payload == scapy_option(code, int(value))
    assert decode_option(code, payload) is value


@pytest.mark.parametrize("name", ["host-name", "domain-name", "root-path", "extensions-path",
                                  "nis-domain", "tftp-server-name", "boot-file-name",
                                  "netbios-scope", "vendor-class-identifier", "merit-dump"])
def test_strings_match_scapy(name):
    value = "boot.example.net"
    code, payload = encode_option(name, value)
    assert payload == scapy_option(code, value.encode())
    assert decode_option(code, payload) == value


def test_tftp_and_bootfile_codes():
    assert encode_option("tftp-server-name", "192.0.2.5") == (66, b"192.0.2.5")
    assert encode_option("boot-file-name", "pxelinux.0") == (67, b"pxelinux.0")


def test_netbios_node_type_matches_scapy_and_rfc_choices():
    for v in (1, 2, 4, 8):
        assert encode_option("netbios-node-type", v)[1] == scapy_option(46, v)
    with pytest.raises(ConfigError, match=r"must be one of 1, 2, 4, 8"):
        encode_option("netbios-node-type", 3)


def test_static_routes_pairs():
    code, payload = encode_option("static-routes", ["10.0.0.0 - 192.0.2.1", "10.1.0.0",
                                                    "192.0.2.2"])
    assert code == 33
    assert payload == scapy_option(33, "10.0.0.0", "192.0.2.1", "10.1.0.0", "192.0.2.2")
    with pytest.raises(ConfigError, match="pairs"):
        encode_option("static-routes", ["10.0.0.0"])
    with pytest.raises(ConfigError, match="0.0.0.0 is not a valid static-routes destination"):
        encode_option("static-routes", ["0.0.0.0 - 192.0.2.1"])


# -- codes and hex -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["224", 224, " 224 "])
def test_option_by_code_takes_hex(key):
    assert encode_option(key, "0a:0b 0C") == (224, b"\x0a\x0b\x0c")
    assert encode_option(key, "0x0a0b0c") == (224, b"\x0a\x0b\x0c")


def test_known_code_given_by_number_is_hex_too():
    assert encode_option("3", "c0000201") == (3, bytes([192, 0, 2, 1]))


def test_binary_named_option_takes_hex():
    assert encode_option("vendor-encapsulated-options", "01:04:c0:00:02:01") == (
        43, bytes.fromhex("0104c0000201"))


def test_lookup_helpers():
    assert option_name(119) == "domain-search"
    assert option_name(224) == "224"
    d = option_def("classless-static-route")
    assert d is not None and d.code == 121
    assert option_def(121) is d and option_def("121") is d
    assert len({d.code for d in OPTION_DEFS}) == len(OPTION_DEFS)
    assert len({d.name for d in OPTION_DEFS}) == len(OPTION_DEFS)


# -- option 119: RFC 3397 ------------------------------------------------------------------------


def test_domain_search_rfc3397_example():
    # RFC 3397 section 4: "eng.apple.com." and "marketing.apple.com." -> 27 bytes, the second
    # name ending in a pointer to offset 4 ("apple.com").
    expected = (b"\x03eng\x05apple\x03com\x00"
                b"\x09marketing\xc0\x04")
    code, payload = encode_option("domain-search", ["eng.apple.com.", "marketing.apple.com."])
    assert code == 119
    assert len(payload) == 27
    assert payload == expected
    assert decode_names(payload) == ["eng.apple.com", "marketing.apple.com"]


label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
domain = st.lists(st.sampled_from(["example", "com", "net", "corp", "a", "b"]) | label,
                  min_size=1, max_size=5).map(".".join)


@given(names=st.lists(domain, min_size=1, max_size=12))
@settings(max_examples=200, deadline=None)
def test_domain_search_decodes_with_scapy(names):
    try:
        code, payload = encode_option("domain-search", names)
    except ConfigError as exc:
        # only the size cap may refuse a list of valid names
        assert "bytes, more than" in str(exc)
        return
    assert decode_names(payload) == names
    assert decode_option(code, payload) == names
    plain = encode_domain_list(names, compress=False)
    assert decode_names(plain) == names
    assert len(payload) <= len(plain)
    # compression is total: no name suffix is written out twice
    if len(set(names)) < len(names):
        assert len(payload) < len(plain)


def test_domain_search_compresses_repeated_suffixes():
    _, payload = encode_option("domain-search", ["example.com", "corp.example.com",
                                                 "example.com"])
    # second: 4corp + pointer; third: just a pointer to offset 0
    assert payload == b"\x07example\x03com\x00\x04corp\xc0\x00\xc0\x00"


@pytest.mark.parametrize("bad,reason", [
    (["a..b"], "empty label"),
    (["-bad.example"], "starts/ends with '-'"),
    (["x" * 64 + ".com"], "longer than 63"),
    (["bad name.com"], "characters other than"),
    ([""], "needs at least one value"),
])
def test_domain_search_rejects(bad, reason):
    with pytest.raises(ConfigError) as ei:
        encode_option("domain-search", bad)
    assert ei.value.problems[0].startswith("option-data.domain-search: value ")
    assert reason in ei.value.problems[0]


# -- option 121: RFC 3442 ------------------------------------------------------------------------


@pytest.mark.parametrize("route,encoded", [
    # RFC 3442 section 2, the table of destination encodings, each with router 192.0.2.1
    ("0.0.0.0/0", "00"),
    ("10.0.0.0/8", "08 0a"),
    ("10.17.0.0/16", "10 0a 11"),
    ("10.27.129.0/24", "18 0a 1b 81"),
    ("10.229.0.128/25", "19 0a e5 00 80"),
    ("10.198.122.47/32", "20 0a c6 7a 2f"),
])
def test_classless_routes_rfc3442_examples(route, encoded):
    code, payload = encode_option("classless-static-route", f"{route} - 192.0.2.1")
    assert code == 121
    assert payload == bytes.fromhex(encoded) + bytes([192, 0, 2, 1])
    assert decode_option(121, payload) == [f"{route} - 192.0.2.1"]


@given(routes=st.lists(st.tuples(st.integers(0, 0xFFFFFFFF), st.integers(0, 32), ipv4_text),
                       min_size=1, max_size=10))
@settings(max_examples=300, deadline=None)
def test_classless_routes_match_scapy(routes):
    texts, scapy_values = [], []
    for dest, width, router in routes:
        net = ipaddress.IPv4Network((dest, width), strict=False)
        texts.append(f"{net} - {router}")
        scapy_values.append(f"{net}:{router}")
    code, payload = encode_option("classless-static-route", texts)
    assert payload == scapy_option(121, *scapy_values)
    assert decode_option(121, payload) == texts


def test_classless_route_errors():
    with pytest.raises(ConfigError, match="host bits set"):
        encode_option("classless-static-route", ["10.1.0.0/8 - 192.0.2.1"])
    with pytest.raises(ConfigError, match="must be 'network/length - router'"):
        encode_option("classless-static-route", ["10.0.0.0/8"])
    with pytest.raises(ConfigError, match="not an IPv4 address"):
        encode_option("classless-static-route", ["10.0.0.0/8 - gw"])


# -- rejections ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [50, 51, 52, 53, 54, 55, 58, 59, 61, 82])
def test_server_controlled_options_rejected_by_code_and_name(code):
    with pytest.raises(ConfigError) as ei:
        encode_option(code, "00")
    line = ei.value.problems[0]
    assert line.startswith(f"option-data.{code}: value '00': option {code} cannot be set")
    assert SERVER_CONTROLLED[code] in line
    name = option_name(code)
    assert name != str(code)
    with pytest.raises(ConfigError, match=f"option {code} cannot be set in option-data"):
        encode_option(name, "00")


@pytest.mark.parametrize("key,value,reason", [
    ("routerz", "192.0.2.1", "unknown option name; did you mean 'routers'?"),
    ("routers", ["192.0.2.300"], "'192.0.2.300' is not an IPv4 address"),
    ("routers", [], "needs at least one value"),
    ("subnet-mask", ["255.0.0.0"], "takes one IPv4 address, not a list"),
    ("interface-mtu", 67, "67 is out of range 68 to 65535"),
    ("interface-mtu", True, "must be an integer (uint16)"),
    ("interface-mtu", "big", "must be an integer (uint16)"),
    ("default-ip-ttl", 256, "out of range 1 to 255"),
    ("time-offset", 2**31, "out of range"),
    ("ip-forwarding", 1, "must be true or false"),
    ("host-name", "", "must not be empty"),
    ("domain-name", "bad_dom ain", "characters other than"),
    ("boot-file-name", "caf\u00e9", "printable ASCII"),
    ("root-path", 5, "must be a string"),
    ("224", "abc", "odd number of digits"),
    ("224", "zz", "not hex text"),
    ("224", 5, "must be hex text"),
    ("300", "00", "option code must be 1 to 254"),
    ("0", "00", "pad is not an option"),
    ("255", "00", "end is not an option"),
    ("root-path", "a" * 256, "encodes to 256 bytes, more than the 255"),
])
def test_rejections_name_option_value_and_reason(key, value, reason):
    with pytest.raises(ConfigError) as ei:
        encode_option(key, value)
    (line,) = ei.value.problems
    assert line.startswith(f"option-data.{key}: value ")
    assert reason in line


def test_encode_option_data_collects_every_problem_and_sorts():
    with pytest.raises(ConfigError) as ei:
        encode_option_data(
            {"routers": "x", "dns": "1.2.3.4", "53": "01", "ntp-servers": ["1.2.3.4"]},
            "subnet4[0].option-data",
        )
    problems = ei.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("subnet4[0].option-data.routers: value 'x'")
    assert problems[1].startswith("subnet4[0].option-data.dns: value '1.2.3.4': unknown option")
    assert problems[2].startswith("subnet4[0].option-data.53: value '01': option 53 cannot")

    ok = encode_option_data({"ntp-servers": ["192.0.2.123"], "routers": ["192.0.2.1"]})
    assert list(ok) == [3, 42]
    assert ok[42] == struct.pack(">I", int(ipaddress.IPv4Address("192.0.2.123")))


def test_same_option_by_name_and_code_is_a_problem():
    with pytest.raises(ConfigError, match="option 3 is also given as 'routers'"):
        encode_option_data({"routers": ["192.0.2.1"], "3": "c0000202"})


def test_decode_option_never_raises():
    assert decode_option(3, b"\x01\x02\x03") == "010203"
    assert decode_option(119, b"\x05ab") == "0561" + "62"
    assert decode_option(121, b"\x21\x00") == "2100"
    assert decode_option(250, b"\x01") == "01"


def _ipaddress_or_none(text: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        return None


@given(text=st.text(alphabet="0123456789.+- a\u0664", max_size=18)
       | st.lists(st.integers(0, 300).map(str), min_size=3, max_size=5).map(".".join))
@settings(max_examples=500, deadline=None)
def test_fast_ipv4_parser_agrees_with_ipaddress(text):
    try:
        ours: int | None = ipv4(text)
    except ValueError:
        ours = None
    assert ours == _ipaddress_or_none(text)
