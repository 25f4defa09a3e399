"""The expression parser: Kea 2.2's grammar limits and precedence, and errors that name the
column (../shared/reference/kea-client-classes.md section 1: what the 2.2 parser rejected)."""

from __future__ import annotations

import pytest

from fastdhcp.errors import ExpressionError
from fastdhcp.expression import (
    Access,
    Concat,
    Equal,
    Kind,
    Literal,
    Logic,
    Member,
    Not,
    Option,
    Substring,
    members,
    parse,
)


def test_not_binds_tighter_than_and_tighter_than_or() -> None:
    tree = parse("not 'a'=='b' and 'x'=='x' or 'p'=='q'")
    assert isinstance(tree, Logic) and tree.op == "or"
    assert isinstance(tree.left, Logic) and tree.left.op == "and"
    assert isinstance(tree.left.left, Not)
    tree = parse("'a'=='a' or 'b'=='b' and 'c'=='d'")
    assert isinstance(tree, Logic) and tree.op == "or"
    assert isinstance(tree.right, Logic) and tree.right.op == "and"


def test_plus_is_left_associative_and_below_equality() -> None:
    tree = parse("'a' + 'b' + 'c' == 'abc'")
    assert isinstance(tree, Equal)
    assert isinstance(tree.left, Concat) and isinstance(tree.left.left, Concat)


def test_literals() -> None:
    assert parse("0x123", Kind.STRING) == Literal(1, b"\x01\x23")
    assert parse("4294967295", Kind.STRING) == Literal(1, b"\xff\xff\xff\xff")
    assert parse("10.0.0.1", Kind.STRING) == Literal(1, b"\x0a\0\0\x01")
    assert parse("::1", Kind.STRING) == Literal(1, b"\0" * 15 + b"\x01")
    assert parse("''", Kind.STRING) == Literal(1, b"")


def test_option_by_name_and_code() -> None:
    assert parse("option[host-name].exists") == parse("option[12].exists")
    assert parse("substring(option[60].text,0,all) == ''") == Equal(
        1, Substring(1, Option(11, 60, Access.TEXT), 0, None), Literal(37, b""))

def test_members_lists_every_member_call_in_order() -> None:
    ms = members(parse("member('B') or not (member('A') and member('C'))"))
    assert [m.name for m in ms] == ["B", "A", "C"]
    assert ms[0] == Member(1, "B", 8)


@pytest.mark.parametrize(("text", "column", "reason"), [
    ("option[60].text", 16, "unexpected end of file, expecting == or +"),
    ("option[60].exists == 'true'", 19, "unexpected '=='"),
    ("'it''s' == 'a'", 5, "expecting == or +"),
    ("known", 1, "not in Kea 2.2"),
    ("unknown", 1, "not in Kea 2.2"),
    ("lcase('A') == 'a'", 1, "not in Kea 2.2"),
    ("'a' != 'b'", 5, "Invalid character: !"),
    ("'a' < 'b'", 5, "Invalid character: <"),
    ("'a' ~= 'b'", 5, "Invalid character: ~"),
    ("pkt4.hops == 1", 6, "expecting mac, hlen"),
    ("pkt6.msgtype == 1", 1, "not in Kea 2.2"),
    ("relay6[0].peeraddr == ::1", 1, "not in Kea 2.2"),
    ("substring(option[60].hex, pkt4.hlen, 2) == ''", 27, "expecting an integer"),
    ("substring('abc', 0, pkt4.hlen) == ''", 21, "expecting an integer or all"),
    ("split('a.b', '.', pkt4.hlen) == ''", 19, "expecting an integer"),
    ("concat('a', 'b', 'c') == 'abc'", 16, "expecting ')'"),
    ("option[256].hex == ''", 8, "out of range 0..255"),
    ("option[no-such-option].hex == ''", 8, "option name unknown"),
    ("4294967296 == 1", 1, "out of range"),
    ("-1 == 1", 1, "out of range"),
    ("vendor-class[3561].data[256] == ''", 25, "out of range 0..255"),
    ("vendor[4294967296].exists", 8, "out of range"),
    ("member(NOPE)", 8, "a class name in single quotes"),
    ("'abc", 1, "unterminated string"),
    ("\"abc\" == 'abc'", 1, "Invalid character: \""),
    ("", 1, "empty expression"),
    ("   ", 1, "empty expression"),
    ("'a' == 'a' 'b'", 12, "expecting and, or or end of file"),
    ("('a' == 'a'", 12, "expecting ')'"),
    ("'a' + option[1].exists == 'a'", 7, "a boolean"),
    ("ifelse('a', 'b', 'c') == 'b'", 11, "expecting == or +"),
    ("1.2.3.4.5 == 1", 8, "unexpected '.'"),
    ("(" * 70 + "'a'=='a'" + ")" * 70, 66, "nested deeper than 64"),
])
def test_errors_name_the_column(text: str, column: int, reason: str) -> None:
    with pytest.raises(ExpressionError) as e:
        parse(text)
    assert e.value.column == column, str(e.value)
    assert reason in e.value.reason
    assert str(e.value).startswith(f"column {column}: ")


def test_a_string_expression_is_not_a_test_and_a_test_is_not_a_value() -> None:
    with pytest.raises(ExpressionError):
        parse("'a'")
    with pytest.raises(ExpressionError):
        parse("'a' == 'a'", Kind.STRING)
    assert parse("'a'", Kind.STRING) == Literal(1, b"a")
