"""DDNS counters, under Kea D2's statistic names, and their Prometheus families.

Kea D2's names (``kea-dhcp-ddns``, statistic-get-all) for what fastdhcp does the same way:
``ncr-received``, ``queue-mgr-queue-full``, ``update-sent``, ``update-signed``,
``update-unsigned``, ``update-success`` (an answer came back and verified, whatever its RCODE,
as D2 counts it), ``update-timeout``, ``update-error`` (could not send, or the answer did not
parse or verify: a wrong TSIG key lands here); and per key ``key[<name>].update-sent``,
``-success``, ``-timeout``, ``-error``.

fastdhcp's own, where Kea has none: what became of each name change request (NCR):
``ncr-success``, ``ncr-conflict`` (RFC 4703: the name is another client's), ``ncr-refused``
(REFUSED or NOTAUTH, or the answer's TSIG refused our key), ``ncr-failed`` (an error RCODE, or
retries used up), ``ncr-no-zone`` (no configured zone holds the names), and the gauge
``queue-depth``.

As fastdhcp.metrics: plain ints, read by a collector at scrape time. Each counter has one
writer thread (``ncr-received`` and ``queue-mgr-queue-full`` the submitter, the rest the worker),
so a single int store under the GIL is enough.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["DdnsCollector", "DdnsStats", "GLOBAL_NAMES", "KEY_NAMES"]

#: Global counters, Kea's names first.
GLOBAL_NAMES = (
    "ncr-received", "queue-mgr-queue-full", "update-sent", "update-signed", "update-unsigned",
    "update-success", "update-timeout", "update-error",
    "ncr-success", "ncr-conflict", "ncr-refused", "ncr-failed", "ncr-no-zone",
)
#: Per-key counters (Kea D2's ``key[<name>].<stat>``).
KEY_NAMES = ("update-sent", "update-success", "update-timeout", "update-error")


class DdnsStats:
    """Every DDNS counter, as plain ints."""

    def __init__(self, key_names: Iterable[str] = ()) -> None:
        self.counts: dict[str, int] = dict.fromkeys(GLOBAL_NAMES, 0)
        #: key name -> per-key counters
        self.keys: dict[str, dict[str, int]] = {k: dict.fromkeys(KEY_NAMES, 0)
                                                for k in key_names}
        #: NCRs waiting (queued or waiting for a retry); set by the worker
        self.queue_depth = 0

    def bump(self, name: str, key: str | None = None) -> None:
        """Add one to ``name`` (and to the key's own counter of that name, if it has one)."""
        self.counts[name] += 1
        if key is not None and name in KEY_NAMES:
            self.keys.setdefault(key, dict.fromkeys(KEY_NAMES, 0))[name] += 1

    def values(self) -> dict[str, int]:
        """All counters by Kea's full names (``key[k].update-sent`` for the per-key ones)."""
        out = dict(self.counts)
        for key, counts in list(self.keys.items()):
            for name, n in counts.items():
                out[f"key[{key}].{name}"] = n
        return out


class DdnsCollector(Collector):
    """Exposes a :class:`DdnsStats` as Prometheus families (register it beside
    fastdhcp.metrics.ServerCollector in the server's own registry)."""

    def __init__(self, stats: Callable[[], DdnsStats | None]) -> None:
        self._stats = stats  # a callable: the worker (and its stats) change on reload

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        s = self._stats()
        if s is None:
            return
        fam = CounterMetricFamily("fastdhcp_ddns_statistic", "DNS update counters, by Kea "
                                  "D2's statistic name where D2 has one", labels=["name"])
        for name, n in dict(s.counts).items():
            fam.add_metric([name], n)
        yield fam
        keyed = CounterMetricFamily("fastdhcp_ddns_key_statistic", "DNS update counters per "
                                    "TSIG key (D2's key[<name>].<stat>)", labels=["key", "name"])
        for key, counts in list(s.keys.items()):
            for name, n in counts.items():
                keyed.add_metric([key, name], n)
        yield keyed
        yield GaugeMetricFamily("fastdhcp_ddns_queue_depth", "Name changes waiting to be sent "
                                "(queued or waiting for a retry)", value=s.queue_depth)
