"""Log lines at a bounded rate per key: the packet path's events can come at packet rate."""

from __future__ import annotations

import logging
import time
import traceback

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """At most ``burst`` log records per key per ``period`` seconds; counts the rest and says
    how many were suppressed the next time the key is allowed through."""

    def __init__(self, logger: logging.Logger, burst: int = 5, period: float = 10.0) -> None:
        self._log = logger
        self._burst = burst
        self._period = period
        self._state: dict[str, list[float]] = {}  # key -> [window start, count, suppressed]

    def __call__(self, level: int, key: str, msg: str, *args: object, exc: bool = False) -> None:
        now = time.monotonic()
        st = self._state.get(key)
        if st is None or now - st[0] >= self._period:
            suppressed = int(st[2]) if st is not None else 0
            st = [now, 0.0, 0.0]
            self._state[key] = st
            if suppressed:
                self._log.log(level, "(%d similar messages suppressed: %s)", suppressed, key)
        if st[1] >= self._burst:
            st[2] += 1
            return
        st[1] += 1
        if exc:
            msg = msg + "\n" + traceback.format_exc().rstrip()
        self._log.log(level, msg, *args)
