"""A short fuzz run of both targets in fuzz/targets.py, so that CI catches a regression that
the long campaigns (``fuzz/run.py``, bench/RESULTS.md "Fuzzing") found or would find.

Two ways, both bounded by input count (never by time):

* in process: each target on 20,000 inputs made by a deterministic mutator from the seeds
  (byte flips, option-length edits, inserted/deleted runs, truncation, splices, oversize
  tails), failing on the first exception;
* under atheris: ``fuzz/run.py --fail-fast --native off --no-found-seeds -- -runs=N`` in a
  child process (the findings are replayed by tests/test_fuzz_vectors.py), which
  proves that the libFuzzer harness itself runs (the long campaigns use it) and that a
  coverage-guided run from the seed corpus finds nothing either.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from test_fuzz_vectors import OPEN  # noqa: E402

from fastdhcp._codec import parse  # noqa: E402
from fastdhcp.consts import Outcome  # noqa: E402
from fastdhcp.errors import MalformedPacket  # noqa: E402
from fuzz.targets import EngineTarget, parse_target, seeds  # noqa: E402

RUNS = 20_000


def mutate(rng: random.Random, pool: list[bytes], data: bytes, keep_prefix: int = 0) -> bytes:
    """One to four random edits of ``data`` (the first ``keep_prefix`` bytes may change too,
    but are never cut off)."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        n = len(b)
        if op == 0 and n:  # flip a byte
            b[rng.randrange(n)] = rng.randrange(256)
        elif op == 1 and n > 240:  # an option length byte somewhere past the cookie
            b[rng.randrange(240, n)] = rng.choice((0, 1, 2, 3, 4, 5, 255, rng.randrange(256)))
        elif op == 2:  # insert a run
            i = rng.randrange(n + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 3 and n > keep_prefix + 1:  # delete a run
            i = rng.randrange(keep_prefix, n)
            del b[i : i + rng.randint(1, 32)]
        elif op == 4 and n > keep_prefix + 1:  # truncate
            del b[rng.randrange(keep_prefix + 1, n + 1):]
        elif op == 5:  # splice another seed's tail
            other = rng.choice(pool)
            i = rng.randrange(keep_prefix, max(keep_prefix + 1, n))
            b[i:] = other[rng.randrange(len(other)) :]
        elif op == 6 and n > 240:  # a special option TLV inserted after the cookie
            code = rng.choice((50, 51, 52, 53, 54, 55, 57, 61, 82, 118, 255, 0))
            value = bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 2, 4, 6))))
            i = rng.randrange(240, n + 1)
            b[i:i] = bytes((code, len(value))) + value
        elif op == 7:  # oversize tail (up to the UDP maximum and one past it)
            b += bytes((rng.choice((0, 255)),)) * rng.choice((100, 1000, 65507 - n, 65508 - n))
        elif op == 8 and n > 20:  # header fields: op, htype, hlen, hops
            b[keep_prefix + rng.randrange(4)] = rng.choice((0, 1, 2, 6, 16, 17, 255))
    return bytes(b)


def _run(target: Callable[[bytes], None], corpus: list[bytes], seed: int,
         keep_prefix: int = 0) -> dict[str, int]:
    rng = random.Random(seed)
    accepted = rejected = 0
    for i in range(RUNS):
        data = corpus[i] if i < len(corpus) else mutate(rng, corpus, rng.choice(corpus),
                                                        keep_prefix)
        try:
            target(data)
        except Exception as exc:  # report the input that failed, as a vector could hold it
            raise AssertionError(f"input {i} ({len(data)} bytes) failed: {exc!r}\n"
                                 f"{data[:600].hex()}") from exc
        try:
            parse(data[keep_prefix:])
            accepted += 1
        except MalformedPacket:
            rejected += 1
    return {"accepted": accepted, "rejected": rejected}


def _seeds(target: str) -> list[bytes]:
    """The seeds minus the vectors of findings still open (tests/test_fuzz_vectors.py holds
    those as strict xfails; a fix makes them pass and they join the seeds here)."""
    return [s for s in seeds(target) if not any(o in s for o in OPEN.values())]


def test_parse_target_on_mutated_seeds() -> None:
    counts = _run(parse_target, _seeds("parse"), seed=7)
    # both sides of the parser were exercised, not just the reject paths
    assert counts["accepted"] > RUNS // 10 and counts["rejected"] > RUNS // 10, counts


def test_engine_target_on_mutated_seeds() -> None:
    target = EngineTarget(reset_every=2000)
    try:
        counts = _run(target, _seeds("engine"), seed=11, keep_prefix=1)
    finally:
        target.close()
    assert target.inputs == RUNS
    assert counts["accepted"] > RUNS // 10, counts
    # the engine made every kind of decision, so the invariants were checked on each
    assert set(Outcome) <= set(target.kinds), target.kinds
    assert target.kinds[Outcome.ACK] > 100 and target.kinds[Outcome.OFFER] > 100, target.kinds


@pytest.mark.parametrize("target,runs", [("parse", 5000), ("engine", 3000)])
def test_atheris_harness(tmp_path: Path, target: str, runs: int) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "fuzz" / "run.py"), "--target", target, "--seconds",
         "600", "--native", "off", "--fail-fast", "--no-found-seeds",
         "--corpus", str(tmp_path / "corpus"), "--", f"-runs={runs}", "-seed=1"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert f"Done {runs} runs" in out, out[-2000:]
    assert "CRASH" not in out and "Traceback" not in out, out[-4000:]
