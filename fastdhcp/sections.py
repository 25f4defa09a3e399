"""The contract between :mod:`fastdhcp.config` and the parsers of its pluggable sections
(``[high-availability]`` in :mod:`fastdhcp.ha.config`, ``[ddns]`` in
:mod:`fastdhcp.ddns.config`, ``[leasequery]`` in :mod:`fastdhcp.leasequery.config`): how a
section reports a problem, how it refuses an unknown key, and how it knows whether it may build
its model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Bad", "CheckKeys", "ProblemCount", "open_table", "take_bools", "take_ints"]

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


def open_table(raw: object, path: str, keys: tuple[str, ...], where: str, bad: Bad,
               check_keys: CheckKeys) -> tuple[dict[str, Any], ProblemCount] | None:
    """The start of every section's parse: ``raw`` must be a table (else one problem and
    None), its unknown keys are refused; the table and the count its problems go through."""
    if not isinstance(raw, dict):
        bad(path, raw, "must be a table")
        return None
    count = ProblemCount(bad)
    check_keys(raw, path, keys, where)
    return raw, count


def take_ints(raw: dict[str, Any], path: str, keys: dict[str, tuple[str, int, int]],
              count: ProblemCount, kw: dict[str, Any]) -> None:
    """For each ``key -> (attribute, lowest, highest)`` present in ``raw``: an integer in range
    goes into ``kw[attribute]``, anything else (a bool included) is a problem at its path."""
    for key, (attr, lo, hi) in keys.items():
        if key in raw:
            v = raw[key]
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                count.bad(f"{path}.{key}", v, f"must be an integer from {lo} to {hi}")
            else:
                kw[attr] = v


def take_bools(raw: dict[str, Any], path: str, keys: dict[str, str], count: ProblemCount,
               kw: dict[str, Any]) -> None:
    """For each ``key -> attribute`` present in ``raw``: true or false into ``kw[attribute]``,
    anything else a problem at its path."""
    for key, attr in keys.items():
        if key in raw:
            if isinstance(raw[key], bool):
                kw[attr] = raw[key]
            else:
                count.bad(f"{path}.{key}", raw[key], "must be true or false")
