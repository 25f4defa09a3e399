"""The 16 ISP patterns of the reference (section 7): each class test, compiled and evaluated,
decides every client the way Kea 2.2 did (its DHCP4_CLASS_ASSIGNED lists)."""

from __future__ import annotations

import pytest

from fastdhcp._classify import ClassSet
from fastdhcp._codec import parse
from fastdhcp.bytecode import EvalResult, compile_node
from fastdhcp.config import BUILTIN_CLASSES
from fastdhcp.expression import parse as parse_expr
from tests.classify_packets import DST, IFACE, LENGTH, PATTERNS, SRC

IDS = {name: i for i, name in enumerate((*BUILTIN_CLASSES, "iPXE"))}

CASES = [(f"{pat}-{name}-{i}", test, data, member_of, verdict)
         for pat, name, test, clients in PATTERNS
         for i, (data, member_of, verdict) in enumerate(clients)]


def test_all_sixteen_patterns_are_covered() -> None:
    assert {p for p, *_ in PATTERNS} >= {f"P{i}" for i in range(1, 17)}


@pytest.mark.parametrize(("case", "test", "data", "member_of", "verdict"), CASES,
                         ids=[c[0] for c in CASES])
def test_pattern_decides_as_kea(case: str, test: str, data: bytes, member_of: tuple[str, ...],
                                verdict: bool) -> None:
    prog = compile_node(parse_expr(test), IDS.__getitem__)
    classes = ClassSet(len(IDS))
    for name in member_of:
        classes.add(IDS[name])
    got = prog.eval(parse(data), IFACE, SRC, DST, LENGTH, classes)
    assert got == (EvalResult.TRUE if verdict else EvalResult.FALSE)
