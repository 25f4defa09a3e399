"""Every operator and value of Kea 2.2's expression language, compiled and run by the Cython
evaluator over the reference packet, against the values a real Kea 2.2 gave
(../shared/reference/kea-client-classes.md section 1: the flex_option probes)."""

from __future__ import annotations

import pytest

from fastdhcp._classify import ClassifyError, ClassSet
from fastdhcp._codec import Message, parse
from fastdhcp.bytecode import EvalResult, compile_node
from fastdhcp.expression import Kind
from fastdhcp.expression import parse as parse_expr
from tests.classify_packets import BARE, DST, IFACE, LENGTH, REFERENCE, SRC, opt, packet

REF = parse(REFERENCE)


def value(text: str, msg: Message = REF) -> bytes:
    prog = compile_node(parse_expr(text, Kind.STRING))
    return prog.value(msg, IFACE, SRC, DST, LENGTH)


def test_bool(text: str, msg: Message = REF, classes: ClassSet | None = None,
              ids: dict[str, int] | None = None) -> EvalResult:
    prog = compile_node(parse_expr(text), (ids or {}).__getitem__)
    return EvalResult(prog.eval(msg, IFACE, SRC, DST, LENGTH, classes))


test_bool.__test__ = False  # type: ignore[attr-defined]


@pytest.mark.parametrize(("expr", "observed"), [
    # 1.1 literals
    ("'abc'", b"abc"),
    ("0x5a7d", b"Z}"),
    ("0x123", b"\x01\x23"),
    ("123", b"\x00\x00\x00\x7b"),
    ("10.0.0.1", b"\x0a\x00\x00\x01"),
    # options
    ("option[60].hex", b"docsis3.0:STB-X1"),
    ("option[vendor-class-identifier].hex", b"docsis3.0:STB-X1"),
    ("option[61].hex", bytes.fromhex("0102005e102030")),
    ("option[60].text", b"docsis3.0:STB-X1"),
    ("option[12].text", b"stb-0042"),
    ("option[61].text", b"type=061, len=007: 01:02:00:5e:10:20:30"),
    ("option[77].text", b"type=077, len=004: 69:50:58:45"),
    ("option[93].text", b"type=093, len=002: 7(uint16)"),
    ("option[55].text", b"type=055, len=009: 1(uint8) 3(uint8) 6(uint8) 15(uint8) 42(uint8) "
                        b"43(uint8) 66(uint8) 67(uint8) 125(uint8)"),
    ("option[66].hex", b""),
    ("option[82].option[2].hex", b"RID-ABC-0042"),
    ("relay4[1].hex", b"eth0/1/2:100"),
    ("relay4[2].hex", b"RID-ABC-0042"),
    ("relay4[5].hex", b""),
    ("relay4[1].text", b"type=001, len=012: 65:74:68:30:2f:31:2f:32:3a:31:30:30"),
    # header and datagram
    ("pkt4.mac", bytes.fromhex("02005e102030")),
    ("pkt4.hlen", b"\x00\x00\x00\x06"),
    ("pkt4.htype", b"\x00\x00\x00\x01"),
    ("pkt4.msgtype", b"\x00\x00\x00\x01"),
    ("pkt4.transid", b"\x5e\x00\x00\x01"),
    ("pkt4.giaddr", b"\xc6\x13\x50\x01"),
    ("pkt4.ciaddr", b"\0\0\0\0"),
    ("pkt4.yiaddr", b"\0\0\0\0"),
    ("pkt4.siaddr", b"\0\0\0\0"),
    ("pkt.iface", b"ctl-s0"),
    ("pkt.src", b"\xc6\x13\x50\x01"),
    ("pkt.dst", b"\xc6\x13\x4d\x01"),
    ("pkt.len", b"\x00\x00\x01\x98"),
    # vendor options
    ("vendor.enterprise", b"\x00\x00\x0d\xe9"),
    ("vendor[3561].option[2].hex", b"SERIAL-42"),
    ("vendor[*].option[1].hex", b"00D09E"),
    ("vendor[0].option[3].hex", b"ProductClassX"),
    ("vendor[4491].option[2].hex", b""),
    ("vendor-class.enterprise", b"\x00\x00\x0d\xe9"),
    ("vendor-class[3561].data", bytes.fromhex("0c64736c666f72756d2e6f7267067365636f6e64")),
    ("vendor-class[3561].data[0]", bytes.fromhex("0c64736c666f72756d2e6f7267067365636f6e64")),
    ("vendor-class[3561].data[1]", b""),
    ("vendor-class[4491].data", b""),
    # functions
    ("substring('foobar',-1,-3)", b"oba"),
    ("substring('foobar',4,-2)", b"ob"),
    ("substring('foobar',10,2)", b""),
    ("substring('foobar',0,all)", b"foobar"),
    ("substring('foobar',-7,2)", b""),
    ("substring('foobar',1,-5)", b"f"),
    ("substring('foobar',2,100)", b"obar"),
    ("substring(option[60].text,-5,all)", b"TB-X1"),
    ("split('one.two..four','.',3)", b""),
    ("split('one.two..four','.',4)", b"four"),
    ("split('one.two..four','.',5)", b""),
    ("split('a:b;c',':;',3)", b"c"),
    ("split('a:b;c','',1)", b"a:b;c"),
    ("split('a:b;c',':',0)", b""),
    ("'abc'+'def'+'ghi'", b"abcdefghi"),
    ("concat('ab', 'cd')", b"abcd"),
    ("ifelse(option[60].exists, 'y', 'n')", b"y"),
    ("ifelse(option[66].exists, 'y', 'n')", b"n"),
    ("hexstring(pkt4.mac,':')", b"02:00:5e:10:20:30"),
    ("hexstring(pkt4.mac,'')", b"02005e102030"),
    ("hexstring('','-')", b""),
    ("addrtotext(pkt4.giaddr)", b"198.19.80.1"),
    ("addrtotext(fe80::1)", b"fe80::1"),
    ("addrtotext('')", b""),
    ("int8totext(0xff)", b"-1"),
    ("uint8totext(0xff)", b"255"),
    ("int16totext(0xfffe)", b"-2"),
    ("uint16totext(option[93].hex)", b"7"),
    ("int32totext(0xffffffff)", b"-1"),
    ("uint32totext(pkt.len)", b"408"),
    ("uint32totext('')", b""),
])
def test_values_on_the_reference_packet(expr: str, observed: bytes) -> None:
    assert value(expr) == observed


@pytest.mark.parametrize(("expr", "result"), [
    ("option[93].hex == 7", False),               # 2 bytes against 4: no coercion
    ("option[93].hex == 0x0007", True),
    ("0x61 == 'a'", True),
    ("pkt4.htype == 1", True),
    ("pkt4.giaddr == 198.19.80.1", True),
    ("'abc' == 'ABC'", False),
    ("option[60].exists", True),
    ("option[66].exists", False),
    ("option[82].option[1].exists", True),
    ("option[43].option[1].exists", False),       # received 43 is unpacked after classification
    ("relay4[2].exists", True),
    ("relay4[9].exists", False),
    ("vendor[*].exists", True),
    ("vendor[3561].exists", True),
    ("vendor[4491].exists", False),
    ("vendor[3561].option[3].exists", True),
    ("vendor[3561].option[4].exists", False),
    ("vendor-class[*].exists", True),
    ("vendor-class[3561].exists", True),
    ("vendor-class[1].exists", False),
    ("not 'a'=='b' and 'x'=='x' or 'p'=='q'", True),
    ("'a'=='a' or 'b'=='b' and 'c'=='d'", True),
    ("not ('a'=='a' or 'b'=='b')", False),
    ("'a'=='a' and not 'b'=='b'", False),
    ("option[61].text == 'type=061, len=007: 01:02:00:5e:10:20:30'", True),
    ("option[77].text == 'iPXE'", False),         # P5: user-class is binary in Kea 2.2
    ("substring(option[60].text,0,9) == 'docsis3.0'", True),
    ("member('VENDOR_CLASS_docsis3.0:STB-X1')", True),
    ("member('VENDOR_CLASS_docsis3.0')", False),
])
def test_booleans_on_the_reference_packet(expr: str, result: bool) -> None:
    assert test_bool(expr) is (EvalResult.TRUE if result else EvalResult.FALSE)


def test_values_on_a_bare_packet() -> None:
    bare = parse(BARE)
    assert value("option[60].hex", bare) == b""
    assert value("option[60].text", bare) == b""
    assert value("relay4[1].hex", bare) == b""
    assert value("vendor.enterprise", bare) == b""
    assert value("vendor-class.enterprise", bare) == b""
    assert value("vendor-class[*].data", bare) == b""
    assert value("pkt4.giaddr", bare) == b"\0\0\0\0"
    assert test_bool("vendor[*].exists", bare) is EvalResult.FALSE
    assert test_bool("member('VENDOR_CLASS_')", bare) is EvalResult.FALSE
    empty60 = parse(packet(opt(53, b"\x01") + opt(60, b"")))
    assert test_bool("member('VENDOR_CLASS_')", empty60) is EvalResult.TRUE
    assert test_bool("option[60].exists", empty60) is EvalResult.TRUE


def test_repeated_option_is_joined_rfc3396() -> None:
    msg = parse(packet(opt(53, b"\x01") + opt(60, b"docsis") + opt(60, b"3.0")))
    assert value("option[60].hex", msg) == b"docsis3.0"
    assert test_bool("member('VENDOR_CLASS_docsis3.0')", msg) is EvalResult.TRUE


def test_member_reads_the_class_set() -> None:
    ids = {"ALL": 0, "STB": 5}
    classes = ClassSet(8)
    classes.add(0)
    assert test_bool("member('ALL') and not member('STB')", REF, classes, ids) is EvalResult.TRUE
    classes.add(5)
    assert test_bool("member('ALL') and not member('STB')", REF, classes, ids) is EvalResult.FALSE
    assert test_bool("member('STB')", REF, None, ids) is EvalResult.FALSE


@pytest.mark.parametrize("expr", [
    "addrtotext(option[12].hex) == 'x'",          # 8 bytes: not an address
    "uint16totext(0x010203) == '1'",             # 3 bytes
    "int8totext(0x0102) == '1'",
    "uint32totext(0x01) == '1'",
    # no short-circuit: the true left side does not spare the failing right side
    "'a'=='a' or addrtotext('abc') == ''",
    "not 'a'=='a' and uint8totext('ab') == ''",
    "ifelse('a'=='a', 'x', addrtotext('abc')) == 'x'",
])
def test_runtime_errors_are_counted_and_leave_the_class_unassigned(expr: str) -> None:
    prog = compile_node(parse_expr(expr))
    assert prog.eval(REF) == EvalResult.ERROR
    assert prog.eval(REF) == EvalResult.ERROR
    assert prog.errors == 2
    with pytest.raises(ClassifyError):
        prog.value(REF)


def test_a_result_larger_than_the_arena_is_an_error_not_an_overrun() -> None:
    big = "+".join(["hexstring(option[55].text, 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx')"] * 64)
    prog = compile_node(parse_expr(f"{big} == ''"))
    assert prog.eval(REF) == EvalResult.ERROR
    assert prog.errors == 1

