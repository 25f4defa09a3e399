"""Every input the fuzzers found (``tests/vectors/fuzz/*.hex``, one per crash or hang, each with
a comment on what it was) replayed through both fuzz targets of ``fuzz/targets.py``:
``parse`` (only MalformedPacket escapes, getters work, a reply can be built) and ``engine``
(parse + Engine.handle against a pre-filled lease table; invariants after the input).

A finding whose fix has not landed yet is listed in ``OPEN`` and runs as a strict xfail: the
test turns red the moment the fix lands, so that the entry is removed and the vector becomes
an ordinary regression test (and a seed of tests/test_fuzz_smoke.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz.targets import EngineTarget, parse_target  # noqa: E402
from tests.vectors import load_hex  # noqa: E402

FOUND = ROOT / "tests" / "vectors" / "fuzz"
NAMES = sorted(p.stem for p in FOUND.glob("*.hex"))


def found(name: str) -> bytes:
    """The datagram of ``tests/vectors/fuzz/<name>.hex``."""
    return load_hex((FOUND / f"{name}.hex").read_text())


#: name -> datagram of findings not fixed yet (see each vector's comment for the proposal)
OPEN: dict[str, bytes] = {}

#: how each finding fails while it is open
_RAISES: dict[str, type[BaseException]] = {}


def _mark(name: str) -> pytest.MarkDecorator | tuple[()]:
    if name in OPEN:
        return pytest.mark.xfail(raises=_RAISES[name], strict=True,
                                 reason="open finding, see the vector's comment")
    return ()


def test_every_open_finding_has_a_vector() -> None:
    assert set(OPEN) <= set(NAMES)
    assert NAMES, "tests/vectors/fuzz holds no vector"


@pytest.mark.parametrize("name", NAMES)
def test_found_vector_through_parse_target(name: str) -> None:
    data = found(name)
    parse_target(data)  # raises on any invariant broken
    parse_target(data[:-1])
    parse_target(data + b"\0")


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=_mark(n)) for n in NAMES])
def test_found_vector_through_engine_target(name: str) -> None:
    target = EngineTarget()
    try:
        for ctrl in (0x00, 0x01, 0x30, 0xC0):  # both links, clock step + reclaim, failed commit
            target(bytes((ctrl,)) + found(name))
    finally:
        target.close()
    assert target.inputs == 4
