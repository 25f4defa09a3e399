"""The contract between :mod:`fastdhcp.config` and the parsers of its pluggable sections
(``[high-availability]`` in :mod:`fastdhcp.ha.config`, ``[ddns]`` in
:mod:`fastdhcp.ddns.config`): how a section reports a problem, how it refuses an unknown key,
and how it knows whether it may build its model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Bad", "CheckKeys", "ProblemCount"]

#: ``bad(path, value, reason)`` records one problem (fastdhcp.config's ``_Problems.bad``);
#: ``check_keys(table, path, allowed, where)`` refuses unknown keys with a "did you mean".
Bad = Callable[[str, object, str], object]
CheckKeys = Callable[[dict[str, Any], str, tuple[str, ...], str], None]


class ProblemCount:
    """Counts the problems recorded through ``bad`` (so the caller knows whether to build)."""

    def __init__(self, bad: Bad) -> None:
        self._bad = bad
        self.n = 0

    def bad(self, path: str, value: object, reason: str) -> None:
        """Record one problem (key path, the value at fault, why)."""
        self.n += 1
        self._bad(path, value, reason)
