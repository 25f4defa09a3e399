"""Vendor options: option 43 from sub-options (RFC 2132 8.4) named by a class's own
``option-def``, option 125 (RFC 3925 3: enterprise, data-len, sub-options) for one or more
enterprises, and 124/125 as class tests read them. The expected bytes are the ones a real
Kea 2.2 sent (../shared/reference/kea-client-classes.md, patterns P3 and P4) or are built
here with struct (tests/classify_packets.py), not with the encoder under test."""

from __future__ import annotations

import struct

import pytest
from config_builder import ENGINE_GLOBAL, ENGINE_SERVER, ENGINE_SUBNET, config_text
from dhcpsim import OFFER, SERVER_IP, Network, build_request, mac
from scapy.layers.dhcp import BOOTP, DHCP

from fastdhcp._codec import parse
from fastdhcp.config import ConfigError, loads
from fastdhcp.engine import Link
from tests.classify_packets import DST, IFACE, LENGTH, SRC, opt, packet, vivco, vivso

ACS = "https://acs.isp.example:7547/cwmp"
#: P3: what Kea 2.2 sent in option 43 for the TR-069 class (acs-url 1, acs-provcode 2).
P3_43 = bytes.fromhex("012168747470733a2f2f6163732e6973702e6578616d706c653a373534372f63776d70"
                      "0206504c414e2d41")
#: P4: what Kea 2.2 sent in option 125 (enterprise 3561, sub-option 11 = the ACS URL).
P4_125 = bytes.fromhex("00000de9230b2168747470733a2f2f6163732e6973702e6578616d706c653a373534"
                       "372f63776d70")


def _load(more: str, subnet_options: dict[str, object] | None = None):
    sub = ENGINE_SUBNET if subnet_options is None else {
        **ENGINE_SUBNET, "option-data": {**ENGINE_SUBNET["option-data"], **subnet_options}}
    return loads(config_text(ENGINE_SERVER, global_=ENGINE_GLOBAL, subnets=[sub], more=more))


def _problems(more: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        _load(more)
    return e.value.problems


TR069 = f"""
[[client-classes]]
name = "TR069"
test = "option[60].text == 'dslforum.org'"
option-data = {{ vendor-encapsulated-options = {{ acs-url = "{ACS}", acs-provcode = "PLAN-A" }} }}
[[client-classes.option-def]]
name = "acs-url"
code = 1
space = "vendor-encapsulated-options-space"
type = "string"
[[client-classes.option-def]]
name = "acs-provcode"
code = 2
space = "vendor-encapsulated-options-space"
type = "string"
"""


def test_option_43_from_class_sub_option_definitions_is_keas_p3():
    cls = _load(TR069).client_classes[0]
    assert cls.options[43] == P3_43
    assert [d.name for d in cls.option_defs] == ["acs-url", "acs-provcode"]


def test_option_43_encapsulating_a_named_space_as_kea_writes_it():
    # Kea's P3 form: 43 redefined as empty + encapsulate, its sub-options in space "cwmp"
    cls = _load(f"""
[[client-classes]]
name = "TR069"
option-def = [
  {{ name = "vendor-encapsulated-options", code = 43, type = "empty", encapsulate = "cwmp" }},
  {{ name = "acs-url", code = 1, space = "cwmp", type = "string" }},
  {{ name = "acs-provcode", code = 2, space = "cwmp", type = "string" }},
]
option-data = {{ vendor-encapsulated-options = {{ acs-url = "{ACS}", 2 = "PLAN-A" }} }}
""").client_classes[0]
    assert cls.options[43] == P3_43


def test_option_43_sub_options_of_other_types_and_by_code():
    cls = _load("""
[[client-classes]]
name = "PXE"
[[client-classes.option-def]]
name = "mtftp-ip"
code = 1
space = "vendor-encapsulated-options-space"
type = "ipv4-address"
[[client-classes.option-def]]
name = "ports"
code = 2
space = "vendor-encapsulated-options-space"
type = "uint16"
array = true
[client-classes.option-data]
vendor-encapsulated-options = { mtftp-ip = "198.18.30.69", ports = [1758, 1759], 6 = "08" }
""").client_classes[0]
    assert cls.options[43] == (opt(1, bytes((198, 18, 30, 69))) + opt(2, struct.pack("!HH", 1758,
                               1759)) + opt(6, b"\x08"))


def test_class_local_private_option_is_encoded_by_its_type():
    cls = _load("""
[[client-classes]]
name = "P"
option-def = [{ name = "site-code", code = 224, type = "uint32" }]
option-data = { site-code = 7 }
""").client_classes[0]
    assert cls.options[224] == b"\x00\x00\x00\x07"


def test_option_125_is_keas_p4():
    cls = _load(f"""
[[client-classes]]
name = "TR069_VIVSO"
test = "vendor[3561].exists"
option-def = [{{ name = "acs-url", code = 11, space = "vendor-3561", type = "string" }}]
option-data = {{ vivso-suboptions = {{ 3561 = {{ acs-url = "{ACS}" }} }} }}
""").client_classes[0]
    assert cls.options[125] == P4_125


TWO = f"""
[[client-classes]]
name = "V"
option-def = [
  {{ name = "acs-url", code = 11, space = "vendor-3561", type = "string" }},
  {{ name = "tftp", code = 2, space = "vendor-4491", type = "ipv4-address", array = true }},
]
[client-classes.option-data.vivso-suboptions]
3561 = {{ acs-url = "{ACS}" }}
4491 = {{ tftp = ["198.18.20.69", "198.18.20.70"], 3 = "0102" }}
"""


def _blocks(data: bytes) -> list[tuple[int, dict[int, bytes]]]:
    """An independent RFC 3925 reader: [(enterprise, {sub-option: data})]."""
    out = []
    i = 0
    while i < len(data):
        ent, n = struct.unpack_from("!IB", data, i)
        block, subs, j = data[i + 5:i + 5 + n], {}, 0
        assert len(block) == n
        while j < n:
            subs[block[j]] = block[j + 2:j + 2 + block[j + 1]]
            j += 2 + block[j + 1]
        out.append((ent, subs))
        i += 5 + n
    return out


def test_option_125_with_two_enterprises():
    data = _load(TWO).client_classes[0].options[125]
    assert data == vivso(3561, {11: ACS.encode()}) + vivso(
        4491, {2: bytes((198, 18, 20, 69, 198, 18, 20, 70)), 3: b"\x01\x02"})
    assert _blocks(data) == [(3561, {11: ACS.encode()}),
                             (4491, {2: bytes((198, 18, 20, 69, 198, 18, 20, 70)),
                                     3: b"\x01\x02"})]


def test_subnet_125_reaches_the_reply_and_scapy_reads_it():
    # no class needed: sub-options by code (hex) at any level
    url = "http://acs.example.net:7547/"
    cfg = _load("", {"vivso-suboptions": {"3561": {"11": url.encode().hex()},
                                          "4491": {"2": "c6121445"}}})
    net = Network(cfg, Link("eth0", SERVER_IP))
    d, r = net.exchange(build_request(1, xid=3, chaddr=mac(3), prl=bytes((1, 3, 125))))
    assert r is not None and r.mtype == OFFER
    seen = {o[0]: o[1] for o in BOOTP(d.reply)[DHCP].options if isinstance(o, tuple)}
    raw = seen.get("vendor_specific_information", seen.get(125))
    assert raw is not None, seen
    data = raw if isinstance(raw, bytes) else bytes(raw)
    assert _blocks(data) == [(3561, {11: url.encode()}), (4491, {2: b"\xc6\x12\x14\x45"})]


def test_class_tests_read_options_124_and_125():
    cfg = _load(f"""
[[client-classes]]
name = "BBF"
test = "vendor[3561].option[11].hex == '{ACS}' and vendor.enterprise == 3561"
[[client-classes]]
name = "VIVCO"
test = "vendor-class[3561].exists and vendor-class.enterprise == 3561"
""")
    bbf, vc = cfg.client_classes
    sent = _load(TWO).client_classes[0].options[125]  # what a CPE would echo
    msg = parse(packet(opt(53, b"\x01") + opt(124, vivco(3561, [b"dslforum.org"]))
                       + opt(125, sent)))
    assert bbf.program.eval(msg, IFACE, SRC, DST, LENGTH, None) == 1
    assert vc.program.eval(msg, IFACE, SRC, DST, LENGTH, None) == 1
    bare = parse(packet(opt(53, b"\x01")))
    assert bbf.program.eval(bare, IFACE, SRC, DST, LENGTH, None) == 0
    assert vc.program.eval(bare, IFACE, SRC, DST, LENGTH, None) == 0


# ------------------------------------------------------------------ bad definitions refused

def _cls(defs: str, data: str = "") -> str:
    return f'\n[[client-classes]]\nname = "B"\noption-def = [{defs}]\n' + (
        f"option-data = {{ {data} }}\n" if data else "")


VES = 'space = "vendor-encapsulated-options-space"'


@pytest.mark.parametrize(("more", "needle"), [
    (_cls('{ name = "x", code = 60, type = "string" }'),
     "client-classes[0].option-def[0].code: value 60: a class may only define option 43"),
    (_cls(f'{{ name = "x", code = 0, {VES}, type = "string" }}'),
     "option-def[0].code: value 0: must be an integer 1 to 254"),
    (_cls(f'{{ name = "x", code = 1, {VES}, type = "text" }}'),
     "option-def[0].type: value 'text': 'text' is not one of"),
    (_cls(f'{{ name = "x", code = 1, {VES}, type = "string", array = true }}'),
     "option-def[0].array: value true: an array of string"),
    (_cls('{ name = "x", code = 1, space = "vendor-0", type = "string" }'),
     "option-def[0].space: value 'vendor-0'"),
    (_cls('{ name = "x", code = 224, type = "string", encapsulate = "s" }'),
     "option-def[0].encapsulate: value 's': only option 43"),
    (_cls('{ name = "routers", code = 224, type = "string" }'),
     "option-def[0].name: value 'routers': 'routers' is option 3's name"),
    (_cls(f'{{ name = "x", code = 1, {VES}, type = "string" }}, '
          f'{{ name = "y", code = 1, {VES}, type = "string" }}'),
     "option-def[1].code: value 1: also defined by client-classes[0].option-def[0]"),
    (_cls(f'{{ name = "x", code = 1, {VES}, type = "string", record-types = "uint8" }}'),
     "option-def[0].record-types"),
    (_cls(f'{{ name = "acs-url", code = 1, {VES}, type = "string" }}',
          'vendor-encapsulated-options = { acs-ulr = "x" }'),
     "sub-option 'acs-ulr' has no option-def in space 'vendor-encapsulated-options-space'; "
     "did you mean 'acs-url'?"),
    (_cls(f'{{ name = "ip", code = 1, {VES}, type = "ipv4-address" }}',
          'vendor-encapsulated-options = { ip = "not-an-ip" }'),
     "client-classes[0].option-data.vendor-encapsulated-options: value {ip = 'not-an-ip'}: "
     "vendor-encapsulated-options: sub-option ip = 'not-an-ip'"),
    (_cls(f'{{ name = "u", code = 1, {VES}, type = "uint8" }}',
          'vendor-encapsulated-options = { u = 300 }'),
     "sub-option u = 300: 300 is out of range 0 to 255"),
    (_cls(f'{{ name = "s", code = 1, {VES}, type = "string" }}',
          'vendor-encapsulated-options = { s = "' + "x" * 256 + '" }'),
     "sub-option s encodes to 256 bytes"),
    (_cls('{ name = "s", code = 1, space = "vendor-9", type = "binary" }',
          'vivso-suboptions = { 9 = { s = "' + "ab" * 254 + '" } }'),
     "vivso-suboptions.9: the enterprise's sub-options take 256 bytes"),
    (_cls('{ name = "s", code = 1, space = "vendor-9", type = "string" }',
          'vivso-suboptions = { acme = { s = "x" } }'),
     "'acme' is not an enterprise number"),
    (_cls('{ name = "e", code = 43, type = "empty" }',
          'vendor-encapsulated-options = "0102"'),
     "vendor-encapsulated-options: must be a table of sub-option"),
])
def test_bad_definitions_and_data_are_refused_with_key_and_value(more: str, needle: str):
    lines = _problems(more)
    assert any(needle in line for line in lines), lines


def _offer_options(cfg, extra: bytes, prl: bytes) -> dict[int, bytes]:
    net = Network(cfg, Link("eth0", SERVER_IP))
    d, r = net.exchange(build_request(1, xid=21, chaddr=mac(21), prl=prl, extra=extra))
    assert r is not None and r.mtype == OFFER
    return r.options


def test_tr069_cpe_gets_keas_option_43_through_the_engine():
    cfg = _load(TR069)
    got = _offer_options(cfg, opt(60, b"dslforum.org"), bytes((1, 3, 6, 43)))
    assert got[43] == P3_43
    other = _offer_options(cfg, opt(60, b"udhcp 1.30"), bytes((1, 3, 6, 43)))
    assert 43 not in other


def test_vivso_cpe_gets_keas_option_125_through_the_engine():
    cfg = _load(f"""
[[client-classes]]
name = "TR069_VIVSO"
test = "vendor[3561].exists"
option-def = [{{ name = "acs-url", code = 11, space = "vendor-3561", type = "string" }}]
option-data = {{ vivso-suboptions = {{ 3561 = {{ acs-url = "{ACS}" }} }} }}
""")
    cpe = opt(125, vivso(3561, {1: b"00D09E"}))
    assert _offer_options(cfg, cpe, bytes((1, 3, 125)))[125] == P4_125
    assert 125 not in _offer_options(cfg, b"", bytes((1, 3, 125)))
