"""The tests' fake clock: the engine, the HA state machine and the statistics take the time as
an argument (or a clock callable), so a test moves time by hand instead of sleeping."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Seconds since an arbitrary epoch; moves only when told. Call it for the time (a clock
    callable), or read and set ``now``."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
