"""The one way benchmarks reach shared code: ``import _common`` first, then import as usual.

A bench file runs as a script (``python3 bench/compare.py``: bench/ is ``sys.path[0]``) or
under pytest (``python3 -m pytest bench/bench_codec.py``: pytest puts bench/ first, as it has
no ``__init__.py``); either way ``_common`` is importable, and importing it puts on the path:

- the repository root, for the in-place build of ``fastdhcp`` (``setup.py build_ext
  --inplace``) and ``tests.vectors``;
- ``tests/``, for the helpers the suites own (``dhcpsim``, ``service_helpers``, the
  ``interop`` package).

Modules of bench/ itself (``wholeserver``, ``bench_engine``) need nothing: bench/ is already
on the path.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["BENCH", "ROOT", "TESTS"]

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
TESTS = ROOT / "tests"

for _path in (TESTS, ROOT):  # ROOT ends up first: the worktree's fastdhcp before any installed
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
