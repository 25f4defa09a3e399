"""The periodic one-line summary (``server.stats-interval``): rates since the last line, drops,
latency quantiles and pool use, from the counters in :class:`fastdhcp.metrics.Metrics`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fastdhcp.metrics import Metrics, type_name

__all__ = ["PoolRow", "Snapshot", "StatsLine"]

#: (subnet id, subnet, pool, size, used)
PoolRow = tuple[int, str, str, int, int]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The counters a summary line compares, copied at one instant."""

    at: float  #: time.monotonic()
    received: list[int]  #: by message type
    sent: list[int]
    dropped: dict[str, int]  #: by reason
    malformed: dict[str, int]
    offer_counts: list[int]  #: latency histogram buckets
    ack_counts: list[int]

    @classmethod
    def of(cls, m: Metrics) -> Snapshot:
        return cls(time.monotonic(), list(m.received), list(m.sent), dict(m.dropped),
                   dict(m.malformed), list(m.offer_latency.counts), list(m.ack_latency.counts))


def _rates(a: list[int], b: list[int], dt: float) -> str:
    parts = [f"{type_name(i)} {(b[i] - a[i]) / dt:.0f}/s" for i in range(256) if b[i] != a[i]]
    return ", ".join(parts) or "none"


def _deltas(a: dict[str, int], b: dict[str, int]) -> str:
    parts = [f"{k} {v - a.get(k, 0)}" for k, v in sorted(b.items()) if v != a.get(k, 0)]
    return ", ".join(parts) or "none"


class StatsLine:
    """Each :meth:`line` covers the time since the previous one (or since :meth:`restart`)."""

    def __init__(self, metrics: Metrics, pool_rows: Callable[[], Iterable[PoolRow]]) -> None:
        self._metrics = metrics
        self._pool_rows = pool_rows
        self._prev: Snapshot | None = None

    def restart(self) -> None:
        """The next line counts from now."""
        self._prev = Snapshot.of(self._metrics)

    def line(self) -> str:
        """The summary since the last line."""
        m = self._metrics
        cur = Snapshot.of(m)
        prev = self._prev or cur
        self._prev = cur
        dt = max(cur.at - prev.at, 1e-9)
        lat = []
        for name, h, before, after in (("offer", m.offer_latency, prev.offer_counts,
                                        cur.offer_counts),
                                       ("ack", m.ack_latency, prev.ack_counts, cur.ack_counts)):
            diff = [y - x for x, y in zip(before, after, strict=True)]
            if any(diff):
                lat.append(f"{name} p50<={h.quantile(0.5, diff) * 1e3:g}ms "
                           f"p99<={h.quantile(0.99, diff) * 1e3:g}ms")
        pools = []
        try:
            for sid, _subnet, pool, size, used in self._pool_rows():
                pct = 100.0 * used / size if size else 0.0
                pools.append(f"{sid}:{pool} {used}/{size} ({pct:.1f}%)")
        except Exception:  # the summary must not stop the timer that writes it
            pools.append("?")
        return (f"stats: in [{_rates(prev.received, cur.received, dt)}] "
                f"out [{_rates(prev.sent, cur.sent, dt)}] "
                f"drops [{_deltas(prev.dropped, cur.dropped)}] "
                f"malformed [{_deltas(prev.malformed, cur.malformed)}] "
                f"latency [{'; '.join(lat) or 'none'}] pools [{', '.join(pools) or 'none'}]")
