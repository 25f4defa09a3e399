"""Hostile input for the classifier (hypothesis): the parser only ever raises
ExpressionError, whatever the text; the evaluator, over random and mutated datagrams, keeps
the invariants of the ``classify`` fuzz target (fuzz/targets.py) and never crashes."""

from __future__ import annotations

import random
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fastdhcp.bytecode import compile_node  # noqa: E402
from fastdhcp.errors import ExpressionError  # noqa: E402
from fastdhcp.expression import Kind, parse  # noqa: E402
from fuzz.targets import CLASSIFY_TESTS, CLASSIFY_VALUES, classify_target, seeds  # noqa: E402
from tests.classify_packets import REFERENCE, REFERENCE_OPTIONS, packet  # noqa: E402
from tests.test_fuzz_smoke import mutate  # noqa: E402

# Tokens of the grammar, so that random sequences get past the lexer and deep into the parser.
WORDS = ["option", "[", "]", ".", "hex", "text", "exists", "option[60]", "relay4", "pkt4",
         "pkt", "mac", "giaddr", "iface", "len", "vendor", "vendor-class", "enterprise", "data",
         "*", "substring", "split", "concat", "ifelse", "hexstring", "addrtotext",
         "uint16totext", "int8totext", "member", "(", ")", ",", "==", "+", "not", "and", "or",
         "all", "'a'", "''", "0x0a", "0x", "12", "-3", "4294967296", "10.0.0.1", "::1",
         "host-name", "'ALL'", "'", " "]


def _parse_any(text: str) -> None:
    for kind in (Kind.BOOL, Kind.STRING):
        try:
            tree = parse(text, kind)
        except ExpressionError as e:
            assert 1 <= e.column <= len(text) + 1, (text, e.column)
            continue
        compile_node(tree, lambda name: 0)   # whatever parses also compiles and verifies


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_parser_never_crashes_on_random_text(text: str) -> None:
    _parse_any(text)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(WORDS), max_size=30))
def test_parser_never_crashes_on_random_token_sequences(words: list[str]) -> None:
    _parse_any(" ".join(words))
    _parse_any("".join(words))


def test_probe_expressions_parse() -> None:
    for text in CLASSIFY_VALUES:
        parse(text, Kind.STRING)
    for text in CLASSIFY_TESTS:
        parse(text)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.integers(0, len(REFERENCE_OPTIONS)))
def test_evaluator_on_random_options(tail: bytes, cut: int) -> None:
    classify_target(packet(REFERENCE_OPTIONS[:cut] + tail))
    classify_target(packet(tail))


def test_evaluator_on_mutated_seeds() -> None:
    # bounded by count: 20,000 mutants of the codec's seeds plus the reference packet
    rng = random.Random(16)
    pool = seeds("classify", found=False) + [REFERENCE]
    for _ in range(20_000):
        classify_target(mutate(rng, pool, rng.choice(pool)))
