"""Deliberately broken servers for the crash loop's self-test (``tests/crash_loop.py --mutant``).

The crash test is only worth something if it fails on a server that breaks the promise. Each
mutant patches the real ``fastdhcp serve`` in its own process (through a ``sitecustomize`` the
crash loop puts first on that child's ``PYTHONPATH``; nothing changes in the source tree):

- ``early-ack``: the committer hands a batch's ACKs back when the batch *starts* its write, not
  when the write returned (the bug RFC 2131 3.1 step 4 forbids). A kill during the fsync loses
  leases the clients hold: the checker must report losses (and, once the restarted server hands
  those addresses out again, double bindings).
- ``no-rebuild``: the store reports no active address at start-up, so the pool bitmaps start
  empty. The restarted server can offer bound addresses to new clients: the probe and the
  double-binding checks must report it, unless the engine checks the table before it offers.
"""

from __future__ import annotations

from array import array
from typing import Any

MUTANTS = ("early-ack", "no-rebuild")


def sitecustomize(kind: str, tests_dir: str) -> str:
    """Text of a ``sitecustomize.py`` that installs mutant ``kind`` in the child at start."""
    if kind not in MUTANTS:
        raise ValueError(f"unknown mutant {kind!r}: one of {', '.join(MUTANTS)}")
    return (f"import sys\nsys.path.insert(0, {tests_dir!r})\n"
            f"import crash_mutant\ncrash_mutant.install({kind!r})\n")


def install(kind: str) -> None:
    """Patch this process's fastdhcp with mutant ``kind``."""
    if kind == "early-ack":
        from fastdhcp.commit import GroupCommitter

        start = GroupCommitter._start

        def early_ack_start(self: Any) -> None:
            tokens, self._tokens = self._tokens, []
            if tokens:
                self._deliver(tokens)  # the ACKs leave before the write below
            start(self)

        GroupCommitter._start = early_ack_start  # type: ignore[method-assign]
    elif kind == "no-rebuild":
        from fastdhcp.store import LmdbLeaseStore

        def no_addresses(self: Any) -> array:
            return array("I")

        LmdbLeaseStore.active_addresses = no_addresses  # type: ignore[method-assign]
    else:
        raise ValueError(f"unknown mutant {kind!r}")
