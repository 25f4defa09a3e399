"""The DDNS side of a running server: the worker thread and the feed that fills it, made from
``[ddns]`` and changed with it on reload. The service holds one (or None without ``[ddns]``)
and calls three things: :meth:`DdnsRunner.committed` after each group commit,
:meth:`DdnsRunner.failed` after a failed one, :meth:`DdnsRunner.stop` at shutdown."""

from __future__ import annotations

from collections.abc import Iterable

from fastdhcp.ddns.config import DdnsConfig
from fastdhcp.ddns.feed import DdnsFeed
from fastdhcp.ddns.stats import DdnsStats
from fastdhcp.ddns.worker import DdnsWorker
from fastdhcp.leases import Lease

__all__ = ["DdnsRunner"]


class DdnsRunner:
    """A started :class:`~fastdhcp.ddns.worker.DdnsWorker` and its :class:`DdnsFeed`."""

    def __init__(self, cfg: DdnsConfig, pending: dict[int, tuple[Lease, Lease | None]],
                 stats: DdnsStats | None = None) -> None:
        self.worker = DdnsWorker(cfg, stats)
        self.feed = DdnsFeed(pending, self.worker)
        self.worker.start()

    @property
    def stats(self) -> DdnsStats:
        """The counters (kept across reloads)."""
        return self.worker.stats

    def committed(self, batch: Iterable[Lease]) -> None:
        """A batch is durable: queue what it owes DNS (never waits for DNS)."""
        self.feed.committed(batch)

    def failed(self, batch: Iterable[Lease]) -> None:
        """A batch was rolled back."""
        self.feed.failed(batch)

    def stop(self) -> None:
        """Stop the worker (changes still queued are dropped, as Kea's queue on shutdown)."""
        self.worker.stop()

    @classmethod
    def follow(cls, runner: DdnsRunner | None, cfg: DdnsConfig | None,
               pending: dict[int, tuple[Lease, Lease | None]]) -> DdnsRunner | None:
        """The runner for ``cfg`` after a (re)configuration: ``runner`` itself with the new
        settings (the worker reads them per change), a new one, or None (stopped)."""
        if cfg is None:
            if runner is not None:
                runner.stop()
            return None
        if runner is None:
            return cls(cfg, pending)
        runner.worker.cfg = cfg
        return runner
