"""A bounded run of the ``leasequery`` fuzz target (fuzz/leasequery_target.py: RFC 6926 TCP
framing, leasequery queries and answers) on mutated seeds, as tests/test_fuzz_smoke.py runs the
others: by input count, never by time."""

from __future__ import annotations

import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from test_fuzz_smoke import mutate  # noqa: E402

from fuzz.leasequery_target import LeaseQueryTarget, _frames  # noqa: E402
from fuzz.targets import seeds  # noqa: E402

RUNS = 2_000


def test_leasequery_target_on_mutated_streams() -> None:
    target = LeaseQueryTarget()
    corpus = seeds("leasequery", found=False)
    rng = random.Random(4388)
    framed = 0
    for i in range(RUNS):
        data = corpus[i] if i < len(corpus) else mutate(rng, corpus, rng.choice(corpus), 1)
        target(data)
        framed += len(_frames(data[1:])[0]) > 0
    assert framed > RUNS // 4  # the mutations keep enough streams framed to reach the parsers


def test_oracle_split() -> None:
    assert _frames(b"\x00\x01a\x00\x02bc\x00") == ([b"a", b"bc"], False)
    assert _frames(b"\x00\x01a\x00\x00\x00\x01b") == ([b"a"], True)
