#!/usr/bin/env python3
"""Two builds' ``bench_engine.py`` figures, interleaved on one machine: before, after, before, ...

Each tree must be built in place (``python3 setup.py build_ext --inplace``); each run is a
subprocess in that tree with ``PYTHONPATH`` set to it, so its own ``fastdhcp`` is imported. On
this shared 2-core machine a neighbour's load moves a whole run by up to 2x (see
``bench_engine.py``), so the figure compared is each benchmark's lowest per-DORA median over the
rounds, with the range beside it.

Usage: python3 bench/ab_engine.py --before /work/wt-before --after . [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)

_MEDIAN = re.compile(r"^(test_\w+): median ([\d.]+) us per (?:DORA|renewal)", re.M)


def run_once(tree: str) -> dict[str, float]:
    """One ``bench_engine.py`` run in ``tree``: benchmark name -> median us per DORA (renewal)."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "bench/bench_engine.py", "--benchmark-only", "-q", "-s",
         "-p", "no:cacheprovider"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=600, check=True).stdout
    found = {name: float(us) for name, us in _MEDIAN.findall(out)}
    if not found:
        raise RuntimeError(f"no medians in the output of {tree}:\n{out}")
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    runs: dict[str, dict[str, list[float]]] = {"before": defaultdict(list),
                                               "after": defaultdict(list)}
    for _ in range(args.rounds):
        for side in ("before", "after"):
            for name, us in run_once(getattr(args, side)).items():
                runs[side][name].append(us)
    print(f"{'us per DORA (renewal), lowest median (range)':52} {'before':>18} {'after':>18}"
          "  after/before")
    for name in sorted(runs["before"]):
        b, a = runs["before"][name], runs["after"].get(name)
        if not a:
            print(f"{name:52} {min(b):7.2f} (only before)")
            continue
        print(f"{name:52} {min(b):6.2f} ({min(b):.2f}-{max(b):.2f}) "
              f"{min(a):6.2f} ({min(a):.2f}-{max(a):.2f})  {min(a) / min(b):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
