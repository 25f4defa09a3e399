"""Compile a client-class expression tree (:mod:`fastdhcp.expression`) to the byte-code that
the compiled evaluator (:mod:`fastdhcp._classify`) runs per packet.

The program is a flat list of ints in postfix (RPN) order, Kea's own evaluation order: each
op code is followed by its literal operands; string constants live in one ``bytes`` pool and
are named by (offset, length). :class:`Op` and the other enums mirror the ``cdef enum`` of
``ext/fastdhcp/_classify.pxd`` (tests/test_classify_bytecode.py checks them value for value).

``member('X')`` compiles to a class-id test against the packet's :class:`~fastdhcp._classify.
ClassSet`; the caller supplies the ids. ``member('VENDOR_CLASS_x')`` compiles to "option 60 is
present and is ``x``": that class is assigned from option 60 before any test runs (Kea's order,
step 2), so the answer is the same and needs no id.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from fastdhcp._classify import Program
from fastdhcp.expression import (
    PKT4_FIELDS,
    PKT_FIELDS,
    Access,
    Concat,
    Equal,
    HexString,
    IfElse,
    Kind,
    Literal,
    Logic,
    Member,
    Node,
    Not,
    Option,
    Pkt,
    Pkt4,
    Relay4,
    Split,
    SubOption,
    Substring,
    ToText,
    Vendor,
    VendorClass,
)
from fastdhcp.options import option_def

__all__ = ["Op", "AccessCode", "TextKind", "EvalResult", "VENDOR_CLASS_PREFIX", "text_kind",
           "compile_node"]

VENDOR_CLASS_PREFIX = "VENDOR_CLASS_"
"""Kea's built-in class of the option 60 content (``VENDOR_CLASS_docsis3.0``)."""


class Op(enum.IntEnum):
    """Op codes (``OP_*`` in _classify.pxd)."""

    PUSH = 1
    OPT = 2
    SUB = 3
    PKT4 = 4
    PKT = 5
    VENDOR_ENT = 6
    VENDOR_EXISTS = 7
    VENDOR_SUB = 8
    VCLASS_ENT = 9
    VCLASS_EXISTS = 10
    VCLASS_DATA = 11
    SUBSTRING = 12
    SPLIT = 13
    CONCAT = 14
    IFELSE = 15
    HEXSTRING = 16
    TOTEXT = 17
    EQ = 18
    NOT = 19
    AND = 20
    OR = 21
    MEMBER = 22
    VENDOR_CLASS = 23


class AccessCode(enum.IntEnum):
    """``ACC_*``: .hex, .text, .exists."""

    HEX = 0
    TEXT = 1
    EXISTS = 2


class TextKind(enum.IntEnum):
    """``TEXT_*``: how ``.text`` renders an option, by its Kea type."""

    RAW = 0
    HEX = 1
    UINT8 = 2
    UINT16 = 3
    UINT32 = 4
    INT8 = 5
    INT16 = 6
    INT32 = 7


class EvalResult(enum.IntEnum):
    """``EVAL_*``: what one evaluation of a class test gave."""

    FALSE = 0
    TRUE = 1
    ERROR = 2


_ACCESS = {Access.HEX: AccessCode.HEX, Access.TEXT: AccessCode.TEXT,
           Access.EXISTS: AccessCode.EXISTS}
_INT_TEXT = {"uint8": TextKind.UINT8, "uint16": TextKind.UINT16, "uint32": TextKind.UINT32,
             "int8": TextKind.INT8, "int16": TextKind.INT16, "int32": TextKind.INT32}


def text_kind(code: int) -> TextKind:
    """How Kea 2.2 renders ``option[code].text``: the bytes for string options, typed integers
    as ``7(uint16)``, everything else as hex pairs (reference section 1.1)."""
    d = option_def(code)
    if d is None:
        return TextKind.HEX
    if d.type == "string":
        return TextKind.RAW
    return _INT_TEXT.get(d.type, TextKind.HEX)


class _Emitter:
    def __init__(self, class_id: Callable[[str], int]) -> None:
        self.ops: list[int] = []
        self.pool = bytearray()
        self.consts: dict[bytes, int] = {}
        self.class_id = class_id

    def const(self, value: bytes) -> tuple[int, int]:
        off = self.consts.get(value)
        if off is None:
            off = self.consts[value] = len(self.pool)
            self.pool += value
        return off, len(value)

    def emit(self, n: Node) -> None:
        o = self.ops
        if isinstance(n, Literal):
            o += [Op.PUSH, *self.const(n.value)]
        elif isinstance(n, Option):
            o += [Op.OPT, n.code, _ACCESS[n.access], text_kind(n.code)]
        elif isinstance(n, SubOption):
            o += [Op.SUB, n.code, n.sub, _ACCESS[n.access]]
        elif isinstance(n, Relay4):
            o += [Op.SUB, 82, n.sub, _ACCESS[n.access]]
        elif isinstance(n, Pkt4):
            o += [Op.PKT4, PKT4_FIELDS.index(n.field)]
        elif isinstance(n, Pkt):
            o += [Op.PKT, PKT_FIELDS.index(n.field)]
        elif isinstance(n, Vendor):
            if n.enterprise is None:
                o += [Op.VENDOR_ENT]
            elif n.sub is None:
                o += [Op.VENDOR_EXISTS, n.enterprise]
            else:
                assert n.access is not None
                o += [Op.VENDOR_SUB, n.enterprise, n.sub, _ACCESS[n.access]]
        elif isinstance(n, VendorClass):
            if n.enterprise is None:
                o += [Op.VCLASS_ENT]
            elif n.exists:
                o += [Op.VCLASS_EXISTS, n.enterprise]
            else:
                o += [Op.VCLASS_DATA, n.enterprise, n.index or 0]
        elif isinstance(n, Substring):
            self.emit(n.arg)
            o += [Op.SUBSTRING, n.start, n.length or 0, 1 if n.length is None else 0]
        elif isinstance(n, Split):
            self.emit(n.arg)
            self.emit(n.delims)
            o += [Op.SPLIT, n.field]
        elif isinstance(n, Concat):
            self.emit(n.left)
            self.emit(n.right)
            o.append(Op.CONCAT)
        elif isinstance(n, IfElse):
            self.emit(n.cond)
            self.emit(n.then)
            self.emit(n.other)
            o.append(Op.IFELSE)
        elif isinstance(n, HexString):
            self.emit(n.arg)
            self.emit(n.sep)
            o.append(Op.HEXSTRING)
        elif isinstance(n, ToText):
            self.emit(n.arg)
            o += [Op.TOTEXT, n.width, int(n.signed)]
        elif isinstance(n, Equal):
            self.emit(n.left)
            self.emit(n.right)
            o.append(Op.EQ)
        elif isinstance(n, Not):
            self.emit(n.arg)
            o.append(Op.NOT)
        elif isinstance(n, Logic):
            self.emit(n.left)
            self.emit(n.right)
            o.append(Op.AND if n.op == "and" else Op.OR)
        elif isinstance(n, Member):
            if n.name.startswith(VENDOR_CLASS_PREFIX):
                o += [Op.VENDOR_CLASS,
                      *self.const(n.name[len(VENDOR_CLASS_PREFIX):].encode("utf-8"))]
            else:
                o += [Op.MEMBER, self.class_id(n.name)]
        else:  # pragma: no cover - every node type is handled above
            raise TypeError(f"cannot compile {type(n).__name__}")


def compile_node(node: Node, class_id: Callable[[str], int] | None = None) -> Program:
    """Compile a parsed expression. ``class_id`` maps a ``member()`` name to its id in the
    engine's class set (the config checks the names first); without it ``member()`` is
    refused."""

    def refuse(name: str) -> int:
        raise ValueError(f"member('{name}') needs class ids")

    e = _Emitter(class_id or refuse)
    e.emit(node)
    return Program([int(x) for x in e.ops], bytes(e.pool), node.kind is Kind.BOOL)
