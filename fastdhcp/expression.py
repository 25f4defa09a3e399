"""Kea 2.2's client-class expression language (DHCPv4): lexer, parser and typed syntax tree.

A small hand-written recursive-descent parser (precedence climbing for ``or`` > ``and`` >
``not`` and ``+``), not lark: the grammar is ~40 productions with two types (boolean and string)
that must be checked while parsing (``option[60].text`` alone is an error, ``'a' == 'b'`` is a
boolean), Kea's own parser is a typed LALR grammar with exactly such rules, the errors must name
the column and say what was expected, and the config loader should not pull in a dependency to
parse a few dozen short expressions once at load. Nesting is bounded (:data:`MAX_DEPTH`) so
no input text can exhaust the Python stack.

What is accepted and what it means is ``../shared/reference/kea-client-classes.md`` section 1
(a real Kea 2.2's observations) and docs/classification.md: values are byte strings, integer
literals 4-byte big-endian, booleans are separate from strings, ``substring``/``split``
positions are integer literals only, ``concat`` takes exactly two arguments, strings are single
quoted without escapes. Not in 2.2 and rejected: ``known``/``unknown``, ``lcase``/``ucase``,
``!=``, ``<``, regexes, ``pkt4.hops``, ``relay6``/``pkt6``.

:func:`parse` returns the tree; :mod:`fastdhcp.bytecode` compiles it for the packet path.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass

from fastdhcp.errors import ExpressionError
from fastdhcp.options import option_def

__all__ = [
    "MAX_DEPTH",
    "Kind",
    "Node",
    "BoolNode",
    "Literal",
    "Option",
    "SubOption",
    "Relay4",
    "Pkt4",
    "Pkt",
    "Vendor",
    "VendorClass",
    "Substring",
    "Split",
    "Concat",
    "IfElse",
    "HexString",
    "ToText",
    "Equal",
    "Not",
    "Logic",
    "Member",
    "Access",
    "parse",
    "members",
]

MAX_DEPTH = 64
"""Deepest nesting of parentheses and function calls accepted (Kea's configs nest < 10)."""

U32_MAX = 0xFFFFFFFF


class Kind(enum.Enum):
    """The two types of Kea's grammar."""

    BOOL = "boolean"
    STRING = "string"


class Access(enum.Enum):
    """What is read from an option-like value: its bytes, its text, or whether it is there."""

    HEX = "hex"
    TEXT = "text"
    EXISTS = "exists"


# ---------------------------------------------------------------------------------- the tree


@dataclass(frozen=True, slots=True)
class Node:
    """Base of every tree node; ``column`` is where its text starts (1-based)."""

    column: int
    """1-based column of the node's first character in the expression."""

    @property
    def kind(self) -> Kind:
        """The node's type in Kea's grammar."""
        return Kind.STRING


@dataclass(frozen=True, slots=True)
class BoolNode(Node):
    """Base of the nodes whose value is a boolean (==, not, and/or, member)."""

    @property
    def kind(self) -> Kind:
        return Kind.BOOL


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """A constant: a quoted string, hex, integer (4 bytes) or IP address literal."""

    value: bytes
    """The bytes the literal stands for."""


@dataclass(frozen=True, slots=True)
class Option(Node):
    """``option[N].hex`` / ``.text`` / ``.exists``."""

    code: int
    """Option code 0..255."""
    access: Access
    """What is read."""

    @property
    def kind(self) -> Kind:
        return Kind.BOOL if self.access is Access.EXISTS else Kind.STRING


@dataclass(frozen=True, slots=True)
class SubOption(Node):
    """``option[N].option[M].hex`` / ``.text`` / ``.exists``."""

    code: int
    """Enclosing option code."""
    sub: int
    """Sub-option code 0..255."""
    access: Access
    """What is read."""

    @property
    def kind(self) -> Kind:
        return Kind.BOOL if self.access is Access.EXISTS else Kind.STRING


@dataclass(frozen=True, slots=True)
class Relay4(Node):
    """``relay4[M].hex`` / ``.text`` / ``.exists``: sub-option M of option 82."""

    sub: int
    """Sub-option code 0..255."""
    access: Access
    """What is read."""

    @property
    def kind(self) -> Kind:
        return Kind.BOOL if self.access is Access.EXISTS else Kind.STRING


PKT4_FIELDS = ("mac", "hlen", "htype", "ciaddr", "giaddr", "yiaddr", "siaddr", "msgtype",
               "transid")
"""The ``pkt4.`` fields of Kea 2.2, in the order the evaluator numbers them (OP_PKT4 operand)."""
PKT_FIELDS = ("iface", "src", "dst", "len")
"""The ``pkt.`` fields of Kea 2.2, in the order the evaluator numbers them (OP_PKT operand)."""


@dataclass(frozen=True, slots=True)
class Pkt4(Node):
    """``pkt4.FIELD``: a header field of the message."""

    field: str
    """One of :data:`PKT4_FIELDS`."""


@dataclass(frozen=True, slots=True)
class Pkt(Node):
    """``pkt.FIELD``: a property of the received datagram (interface, addresses, length)."""

    field: str
    """One of :data:`PKT_FIELDS`."""


@dataclass(frozen=True, slots=True)
class Vendor(Node):
    """Option 125 (vivso): ``vendor.enterprise``, ``vendor[E].exists``,
    ``vendor[E].option[M].hex/.text/.exists``."""

    enterprise: int | None
    """E (0 or ``*`` = any), None for ``vendor.enterprise``."""
    sub: int | None
    """M, or None when no sub-option is named."""
    access: Access | None
    """What is read of the sub-option or the option (EXISTS); None for ``.enterprise``."""

    @property
    def kind(self) -> Kind:
        return Kind.BOOL if self.access is Access.EXISTS else Kind.STRING


@dataclass(frozen=True, slots=True)
class VendorClass(Node):
    """Option 124 (vivco): ``vendor-class.enterprise``, ``vendor-class[E].exists``,
    ``vendor-class[E].data`` and ``.data[i]``."""

    enterprise: int | None
    """E (0 or ``*`` = any), None for ``vendor-class.enterprise``."""
    index: int | None
    """Data tuple index for ``.data`` (0 when not given); None for ``.exists``/``.enterprise``."""
    exists: bool
    """True for ``.exists``."""

    @property
    def kind(self) -> Kind:
        return Kind.BOOL if self.exists else Kind.STRING


@dataclass(frozen=True, slots=True)
class Substring(Node):
    """``substring(s, start, length)``; ``length`` None is ``all``."""

    arg: Node
    """The string."""
    start: int
    """Start position; negative counts from the end."""
    length: int | None
    """Length; negative = that many bytes before start; None = to the end."""


@dataclass(frozen=True, slots=True)
class Split(Node):
    """``split(s, delims, n)``: the n-th (1-based) field of s split on any byte of delims."""

    arg: Node
    """The string."""
    delims: Node
    """The delimiter set."""
    field: int
    """1-based field number."""


@dataclass(frozen=True, slots=True)
class Concat(Node):
    """``concat(a, b)`` or ``a + b``."""

    left: Node
    """First part."""
    right: Node
    """Second part."""


@dataclass(frozen=True, slots=True)
class IfElse(Node):
    """``ifelse(cond, a, b)``; both branches are evaluated (Kea's RPN machine)."""

    cond: Node
    """The boolean."""
    then: Node
    """Value if true."""
    other: Node
    """Value if false."""


@dataclass(frozen=True, slots=True)
class HexString(Node):
    """``hexstring(s, sep)``: lower-case hex pairs joined by sep."""

    arg: Node
    """The bytes."""
    sep: Node
    """The separator."""


TOTEXT = {"addrtotext": (0, False), "int8totext": (1, True), "int16totext": (2, True),
          "int32totext": (4, True), "uint8totext": (1, False), "uint16totext": (2, False),
          "uint32totext": (4, False)}
"""The ``*totext`` functions: name -> (input width in bytes, signed); width 0 = an address."""


@dataclass(frozen=True, slots=True)
class ToText(Node):
    """``addrtotext(s)`` and ``[u]intNtotext(s)``."""

    width: int
    """Input width in bytes (1, 2, 4), 0 for addrtotext (4 or 16 bytes)."""
    signed: bool
    """Signed decimal (intN) or unsigned (uintN)."""
    arg: Node
    """The bytes."""


@dataclass(frozen=True, slots=True)
class Equal(BoolNode):
    """``a == b``: byte-for-byte equality."""

    left: Node
    """First operand."""
    right: Node
    """Second operand."""


@dataclass(frozen=True, slots=True)
class Not(BoolNode):
    """``not b``."""

    arg: Node
    """The operand."""


@dataclass(frozen=True, slots=True)
class Logic(BoolNode):
    """``a and b`` / ``a or b``; both operands always evaluated (no short-circuit)."""

    op: str
    """``and`` or ``or``."""
    left: Node
    """First operand."""
    right: Node
    """Second operand."""


@dataclass(frozen=True, slots=True)
class Member(BoolNode):
    """``member('CLASS')``: the packet is already in CLASS."""

    name: str
    """The class name (case-sensitive)."""
    name_column: int
    """Column of the quoted name (where Kea's "Not defined client class" points)."""


# ---------------------------------------------------------------------------------- the lexer


class _T(enum.Enum):
    STRING = "a string"
    HEX = "a hex string"
    INT = "an integer"
    IP = "an IP address"
    NAME = "a name"
    PUNCT = "punctuation"
    EOF = "end of file"


@dataclass(frozen=True, slots=True)
class _Token:
    type: _T
    text: str
    column: int

    def describe(self) -> str:
        if self.type is _T.EOF:
            return "end of file"
        if self.type is _T.PUNCT or self.type is _T.NAME:
            return repr(self.text)
        return f"{self.type.value} {self.text}"


# Order matters: an address before an integer (10.0.0.1), hex before an integer (0x..),
# IPv6 (has a colon) before hex digits. Kea's lexer has the same token shapes.
_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<string>'[^'\n]*')
  | (?P<ip4>[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)
  | (?P<ip6>[0-9a-fA-F]*:[0-9a-fA-F]*:[0-9a-fA-F:.]*)
  | (?P<hex>0[xX][0-9a-fA-F]+)
  | (?P<int>-?[0-9]+)
  | (?P<name>[A-Za-z][A-Za-z0-9_-]*)
  | (?P<punct>==|[\[\]().,*+])
""", re.X)


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            if ch == "'":
                raise ExpressionError(pos + 1, "unterminated string (strings are single "
                                      "quoted, on one line, without escapes)")
            raise ExpressionError(pos + 1, f"Invalid character: {ch}")
        kind = m.lastgroup
        col = pos + 1
        pos = m.end()
        if kind == "ws":
            continue
        word = m.group()
        if kind == "string":
            tokens.append(_Token(_T.STRING, word, col))
        elif kind == "ip4" or kind == "ip6":
            tokens.append(_Token(_T.IP, word, col))
        elif kind == "hex":
            tokens.append(_Token(_T.HEX, word, col))
        elif kind == "int":
            tokens.append(_Token(_T.INT, word, col))
        elif kind == "name":
            tokens.append(_Token(_T.NAME, word, col))
        else:
            tokens.append(_Token(_T.PUNCT, word, col))
    tokens.append(_Token(_T.EOF, "", len(text) + 1))
    return tokens


# ---------------------------------------------------------------------------------- the parser

_STRING_FUNCS = ("substring", "split", "concat", "ifelse", "hexstring", *TOTEXT)


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _lex(text)
        self.i = 0
        self.depth = 0

    # -- token helpers
    @property
    def tok(self) -> _Token:
        return self.toks[self.i]

    def next(self) -> _Token:
        t = self.toks[self.i]
        if t.type is not _T.EOF:
            self.i += 1
        return t

    def at(self, text: str) -> bool:
        t = self.tok
        return t.type in (_T.PUNCT, _T.NAME) and t.text == text

    def fail(self, expecting: str, tok: _Token | None = None) -> ExpressionError:
        t = tok or self.tok
        return ExpressionError(t.column, f"syntax error, unexpected {t.describe()}, "
                                         f"expecting {expecting}")

    def expect(self, text: str) -> _Token:
        if not self.at(text):
            raise self.fail(repr(text))
        return self.next()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(self.tok.column, f"expression nested deeper than {MAX_DEPTH}")

    # -- numbers
    def integer(self, lo: int, hi: int, what: str) -> int:
        t = self.tok
        if t.type is not _T.INT:
            raise self.fail(what)
        self.next()
        v = int(t.text)
        if not lo <= v <= hi:
            raise ExpressionError(t.column, f"{what} {t.text} out of range {lo}..{hi}")
        return v

    def enterprise(self) -> int:
        if self.at("*"):
            self.next()
            return 0
        return self.integer(0, U32_MAX, "an enterprise id or *")

    def option_code(self) -> int:
        t = self.tok
        if t.type is _T.NAME:
            self.next()
            d = option_def(t.text)
            if d is None:
                raise ExpressionError(t.column, f"option name unknown: {t.text}")
            return d.code
        return self.integer(0, 255, "an option code or name")

    def access(self, allowed: tuple[Access, ...]) -> Access:
        self.expect(".")
        t = self.tok
        for a in allowed:
            if t.type is _T.NAME and t.text == a.value:
                self.next()
                return a
        raise self.fail(" or ".join(a.value for a in allowed))

    # -- booleans: or > and > not, left associative
    def boolean(self) -> Node:
        left = self.conjunction()
        while self.at("or"):
            col = self.next().column
            left = Logic(col, "or", left, self.conjunction())
        return left

    def conjunction(self) -> Node:
        left = self.negation()
        while self.at("and"):
            col = self.next().column
            left = Logic(col, "and", left, self.negation())
        return left

    def negation(self) -> Node:
        if self.at("not"):
            col = self.next().column
            self.enter()
            arg = self.negation()
            self.depth -= 1
            return Not(col, arg)
        return self.bool_atom()

    def bool_atom(self) -> Node:
        t = self.tok
        if self.at("("):
            self.next()
            self.enter()
            inner = self.boolean()
            self.depth -= 1
            self.expect(")")
            return inner
        left = self.string(allow_bool=True)
        if left.kind is Kind.BOOL:
            return left
        if not self.at("=="):
            raise self.fail("== or +")
        self.next()
        right = self.string()
        return Equal(t.column, left, right)

    # -- strings: '+' is the loosest string operator
    def string(self, allow_bool: bool = False) -> Node:
        left = self.primary(allow_bool)
        if left.kind is Kind.BOOL:
            return left
        while self.at("+"):
            col = self.next().column
            left = Concat(col, left, self.primary())
        return left

    def string_arg(self) -> Node:
        self.enter()
        node = self.string()
        self.depth -= 1
        return node

    def primary(self, allow_bool: bool = False) -> Node:
        t = self.tok
        node = self._primary()
        if node.kind is Kind.BOOL and not allow_bool:
            raise ExpressionError(t.column, f"syntax error, a boolean ({t.text}...) where a "
                                            "string is expected")
        return node

    def _primary(self) -> Node:
        t = self.next()
        col = t.column
        if t.type is _T.STRING:
            return Literal(col, t.text[1:-1].encode("utf-8"))
        if t.type is _T.HEX:
            digits = t.text[2:]
            if len(digits) % 2:
                digits = "0" + digits
            return Literal(col, bytes.fromhex(digits))
        if t.type is _T.INT:
            v = int(t.text)
            if not 0 <= v <= U32_MAX:
                raise ExpressionError(col, f"integer {t.text} out of range 0..{U32_MAX}")
            return Literal(col, v.to_bytes(4, "big"))
        if t.type is _T.IP:
            try:
                return Literal(col, ipaddress.ip_address(t.text).packed)
            except ValueError:
                raise ExpressionError(col, f"Failed to convert {t.text} to an IP address") \
                    from None
        if t.type is not _T.NAME:
            raise self.fail("an expression", t)
        w = t.text
        if w == "option":
            self.expect("[")
            code = self.option_code()
            self.expect("]")
            if self.at(".") and self.toks[self.i + 1].text == "option":
                self.next()
                self.next()
                self.expect("[")
                sub = self.integer(0, 255, "a sub-option code")
                self.expect("]")
                return SubOption(col, code, sub, self.access(tuple(Access)))
            return Option(col, code, self.access(tuple(Access)))
        if w == "relay4":
            self.expect("[")
            sub = self.integer(0, 255, "a sub-option code")
            self.expect("]")
            return Relay4(col, sub, self.access(tuple(Access)))
        if w == "pkt4" or w == "pkt":
            names = PKT4_FIELDS if w == "pkt4" else PKT_FIELDS
            self.expect(".")
            f = self.tok
            if f.type is not _T.NAME or f.text not in names:
                raise self.fail(", ".join(names))
            self.next()
            return Pkt4(col, f.text) if w == "pkt4" else Pkt(col, f.text)
        if w == "vendor":
            return self.vendor(col)
        if w == "vendor-class":
            return self.vendor_class(col)
        if w == "member":
            self.expect("(")
            s = self.tok
            if s.type is not _T.STRING:
                raise self.fail("a class name in single quotes")
            self.next()
            self.expect(")")
            return Member(col, s.text[1:-1], s.column)
        if w in _STRING_FUNCS:
            return self.function(col, w)
        if w in ("known", "unknown", "lcase", "ucase", "relay6", "pkt6"):
            raise ExpressionError(col, f"{w} is not in Kea 2.2's expression language")
        raise self.fail("an expression", t)

    def vendor(self, col: int) -> Node:
        if self.at("."):
            self.next()
            if not self.at("enterprise"):
                raise self.fail("enterprise")
            self.next()
            return Vendor(col, None, None, None)
        self.expect("[")
        ent = self.enterprise()
        self.expect("]")
        self.expect(".")
        if self.at("exists"):
            self.next()
            return Vendor(col, ent, None, Access.EXISTS)
        if not self.at("option"):
            raise self.fail("exists or option")
        self.next()
        self.expect("[")
        sub = self.integer(0, 255, "a sub-option code")
        self.expect("]")
        return Vendor(col, ent, sub, self.access(tuple(Access)))

    def vendor_class(self, col: int) -> Node:
        if self.at("."):
            self.next()
            if not self.at("enterprise"):
                raise self.fail("enterprise")
            self.next()
            return VendorClass(col, None, None, False)
        self.expect("[")
        ent = self.enterprise()
        self.expect("]")
        self.expect(".")
        if self.at("exists"):
            self.next()
            return VendorClass(col, ent, None, True)
        if not self.at("data"):
            raise self.fail("exists or data")
        self.next()
        index = 0
        if self.at("["):
            self.next()
            index = self.integer(0, 255, "a data index")
            self.expect("]")
        return VendorClass(col, ent, index, False)

    def function(self, col: int, name: str) -> Node:
        self.expect("(")
        node: Node
        if name == "substring":
            arg = self.string_arg()
            self.expect(",")
            start = self.integer(-(1 << 31), (1 << 31) - 1, "an integer")
            self.expect(",")
            length: int | None
            if self.at("all"):
                self.next()
                length = None
            else:
                length = self.integer(-(1 << 31), (1 << 31) - 1, "an integer or all")
            node = Substring(col, arg, start, length)
        elif name == "split":
            arg = self.string_arg()
            self.expect(",")
            delims = self.string_arg()
            self.expect(",")
            node = Split(col, arg, delims, self.integer(-(1 << 31), (1 << 31) - 1,
                                                        "an integer"))
        elif name == "concat":
            left = self.string_arg()
            self.expect(",")
            node = Concat(col, left, self.string_arg())
        elif name == "ifelse":
            self.enter()
            cond = self.boolean()
            self.depth -= 1
            self.expect(",")
            then = self.string_arg()
            self.expect(",")
            node = IfElse(col, cond, then, self.string_arg())
        elif name == "hexstring":
            arg = self.string_arg()
            self.expect(",")
            node = HexString(col, arg, self.string_arg())
        else:
            width, signed = TOTEXT[name]
            node = ToText(col, width, signed, self.string_arg())
        self.expect(")")
        return node


def parse(text: str, kind: Kind = Kind.BOOL) -> Node:
    """Parse one expression; ``kind`` is what it must be: BOOL for a class ``test``, STRING
    for a value (Kea's flex_option / flex_id use). Raises :class:`ExpressionError`."""
    p = _Parser(text)
    if not text.strip():
        raise ExpressionError(1, "empty expression")
    node = p.boolean() if kind is Kind.BOOL else p.string()
    if p.tok.type is not _T.EOF:
        raise p.fail("end of file" if kind is Kind.STRING else "and, or or end of file")
    return node


def members(node: Node) -> list[Member]:
    """Every ``member()`` in the tree, in text order."""
    out: list[Member] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Member):
            out.append(n)
        for name in n.__slots__:
            child = getattr(n, name)
            if isinstance(child, Node):
                stack.append(child)
    out.sort(key=lambda m: m.column)
    return out
