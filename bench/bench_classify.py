"""Micro-benchmarks of the client-class evaluator (fastdhcp._classify, pytest-benchmark).

Run: python3 -m pytest bench/bench_classify.py --benchmark-only
Measured 2026-12-07 (busy 2-core machine): a pass costs 25 ns per test at best (min), ~75
ns median under load; one test through Program.eval ~150 ns (the Python call).

What is timed: the class tests of the reference's 16 ISP patterns (tests/classify_packets.py,
PATTERNS: 21 tests), compiled once, evaluated over the reference packet as the engine's pass
over a class list will evaluate them (``evaluate_many``: from C, no Python call per test), and
one test through the Python-facing ``Program.eval`` for the call overhead; parse + compile of
all 21 for the config-load cost.
"""

from __future__ import annotations

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)

from fastdhcp._classify import ClassSet, evaluate_many
from fastdhcp._codec import parse
from fastdhcp.bytecode import compile_node
from fastdhcp.config import BUILTIN_CLASSES
from fastdhcp.expression import parse as parse_expr
from tests.classify_packets import DST, IFACE, LENGTH, PATTERNS, REFERENCE, SRC

ITERATIONS = 200
ROUNDS = 200
REPEAT = 10                      # passes over the 21 tests per timed call

IDS = {name: i for i, name in enumerate((*BUILTIN_CLASSES, "iPXE"))}
TESTS = [test for _, _, test, _ in PATTERNS]
PROGRAMS = [compile_node(parse_expr(t), IDS.__getitem__) for t in TESTS]
MSG = parse(REFERENCE)
CLASSES = ClassSet(len(IDS))
CLASSES.add(IDS["ALL"])
CLASSES.add(IDS["UNKNOWN"])


def test_pass_over_the_pattern_tests(benchmark) -> None:
    """One call = REPEAT passes over the 21 tests: divide the time by 210 per test."""
    hits = benchmark.pedantic(evaluate_many, args=(PROGRAMS, MSG, REPEAT, IFACE, SRC, DST,
                                                   LENGTH, CLASSES),
                              rounds=ROUNDS, iterations=ITERATIONS, warmup_rounds=5)
    # On the reference packet (option 60 'docsis3.0:STB-X1', 82, 93=7, 125/3561, 77 iPXE) in
    # ALL+UNKNOWN: NOT_CM (its option 60 is not exactly 'docsis3.0'), TR069_VIVSO, P5b iPXE,
    # PXE_UEFI64, BUSINESS_PORT, WALLED, VOICE_OPTS and HAS_RAI are true.
    assert hits == REPEAT * 8


def test_one_test_from_python(benchmark) -> None:
    prog = PROGRAMS[0]
    r = benchmark.pedantic(prog.eval, args=(MSG, IFACE, SRC, DST, LENGTH, CLASSES),
                           rounds=ROUNDS, iterations=ITERATIONS * 10, warmup_rounds=5)
    assert r == 0


def _compile_all() -> int:
    return len([compile_node(parse_expr(t), IDS.__getitem__) for t in TESTS])


def test_parse_and_compile_the_pattern_tests(benchmark) -> None:
    assert benchmark.pedantic(_compile_all, rounds=50, iterations=5, warmup_rounds=2) == 21
