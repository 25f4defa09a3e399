"""The byte-code contract: the Python enums mirror ext/fastdhcp/_classify.pxd, and the
evaluator's verifier refuses every program that could read outside its buffers."""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path

import pytest

from fastdhcp._classify import Program
from fastdhcp.bytecode import AccessCode, EvalResult, Op, TextKind, compile_node, text_kind
from fastdhcp.expression import Kind, parse

PXD = Path(__file__).resolve().parent.parent / "ext" / "fastdhcp" / "_classify.pxd"


def _pxd() -> dict[str, int]:
    out: dict[str, int] = {}
    for m in re.finditer(r"^    ([A-Z][A-Z0-9_]*) = (\d+)", PXD.read_text(), re.M):
        assert m.group(1) not in out
        out[m.group(1)] = int(m.group(2))
    return out


@pytest.mark.parametrize(("enum", "prefix"), [(Op, "OP_"), (AccessCode, "ACC_"),
                                               (TextKind, "TEXT_"), (EvalResult, "EVAL_")])
def test_enums_mirror_the_pxd(enum: type[IntEnum], prefix: str) -> None:
    pxd = _pxd()
    for member in enum:
        assert pxd.get(prefix + member.name) == member.value, f"{enum.__name__}.{member.name}"
    assert {n for n in pxd if n.startswith(prefix)} == {prefix + m.name for m in enum}


def test_text_kinds_follow_keas_types() -> None:
    assert text_kind(60) is TextKind.RAW        # string
    assert text_kind(61) is TextKind.HEX        # binary
    assert text_kind(77) is TextKind.HEX        # user-class is binary in Kea 2.2
    assert text_kind(93) is TextKind.UINT16
    assert text_kind(55) is TextKind.UINT8
    assert text_kind(2) is TextKind.INT32
    assert text_kind(250) is TextKind.HEX       # undefined


def test_postfix_order_and_shared_constants() -> None:
    prog = compile_node(parse("'ab' == 'ab' or pkt4.htype == 1"))
    assert prog.ops == [Op.PUSH, 0, 2, Op.PUSH, 0, 2, Op.EQ, Op.PKT4, 2, Op.PUSH, 2, 4, Op.EQ,
                        Op.OR]
    assert prog.boolean
    assert not compile_node(parse("'a'", Kind.STRING)).boolean


def test_member_needs_class_ids() -> None:
    with pytest.raises(ValueError):
        compile_node(parse("member('A')"))
    assert compile_node(parse("member('A')"), {"A": 7}.__getitem__).ops == [Op.MEMBER, 7]


@pytest.mark.parametrize(("ops", "pool"), [
    ([], b""),                                   # leaves nothing
    ([Op.EQ], b""),                              # underflow
    ([Op.PUSH, 0, 3], b"ab"),                    # constant past the pool
    ([Op.PUSH, -1, 1], b"ab"),
    ([Op.PUSH, 0, 1, Op.PUSH, 0, 1], b"ab"),     # leaves two
    ([Op.OPT, 256, 0, 0], b""),                  # option code
    ([Op.OPT, 60, 3, 0], b""),                   # access
    ([Op.OPT, 60, 1, 8], b""),                   # text kind
    ([Op.SUB, 82, 300, 0], b""),
    ([Op.PKT4, 9], b""),
    ([Op.PKT, 4], b""),
    ([Op.PUSH, 0, 1, Op.TOTEXT, 3, 0], b"a"),    # width
    ([99], b""),                                 # unknown op
    ([Op.PUSH, 0], b"a"),                        # truncated operands
])
def test_verifier_refuses_bad_programs(ops: list[int], pool: bytes) -> None:
    with pytest.raises(ValueError):
        Program([int(x) for x in ops], pool, True)
