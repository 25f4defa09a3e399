"""The multi-worker server's one Prometheus endpoint: every worker's series, gathered by the
control front over the workers' control sockets (``metrics-get``) and re-exposed with a
``worker="k"`` label (docs/operations.md, "Several workers").

No unlabelled total is added beside the per-worker series: a family holding both would make
every ``sum(...)`` over it count each event twice, and ``sum without (worker) (...)`` gives the
total in PromQL at query time, for counters, gauges and histogram buckets alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

__all__ = ["WORKER_LABEL", "WorkerExposition", "WorkersCollector", "relabel"]

#: The label naming the worker a series came from.
WORKER_LABEL = "worker"


@dataclass(frozen=True, slots=True)
class WorkerExposition:
    """One worker's Prometheus text, or None when it did not answer."""

    worker: int
    text: str | None


def relabel(pages: Sequence[WorkerExposition]) -> list[Metric]:
    """Every family of every worker's page, its samples labelled with the worker, families of
    the same name (the same in every worker) merged; plus ``fastdhcp_worker_up``."""
    families: dict[str, Metric] = {}
    up = GaugeMetricFamily("fastdhcp_worker_up", "1 when the worker answered the control "
                           "front's metrics-get, else 0", labels=[WORKER_LABEL])
    for page in pages:
        k = str(page.worker)
        up.add_metric([k], 0 if page.text is None else 1)
        if page.text is None:
            continue
        for fam in text_string_to_metric_families(page.text):
            out = families.get(fam.name)
            if out is None:
                out = families[fam.name] = Metric(fam.name, fam.documentation, fam.type,
                                                  fam.unit)
            for s in fam.samples:
                out.samples.append(Sample(s.name, {WORKER_LABEL: k, **s.labels}, s.value,
                                          s.timestamp, s.exemplar))
    return [up, *families.values()]


class WorkersCollector(Collector):
    """Collects :func:`relabel` of what ``gather`` returns, at each scrape (on the metrics
    endpoint's thread; ``gather`` asks the workers and waits, bounded in time)."""

    def __init__(self, gather: Callable[[], Sequence[WorkerExposition]]) -> None:
        self._gather = gather

    def describe(self) -> Iterable[Metric]:
        return []  # families depend on the workers' pages: nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        yield from relabel(self._gather())
