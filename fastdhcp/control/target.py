"""What the command handlers may ask of the running server: a typed boundary, so that the
handlers never reach into the service's internals (``fastdhcp.service.Server`` implements it,
and mypy checks that it does where the channel is built).

Each group of commands adds what it needs in its own section below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from fastdhcp.config import Config
    from fastdhcp.control.table import CommandTable
    from fastdhcp.engine import Engine
    from fastdhcp.hosts import HostTable
    from fastdhcp.metrics import Metrics
    from fastdhcp.store import LmdbLeaseStore

__all__ = ["ControlTarget"]

_T = TypeVar("_T")


class ControlTarget(Protocol):
    """The running server, as the control channel sees it. Every method runs on the loop."""

    # ------------------------------------------------------------------ core

    @property
    def config(self) -> Config:
        """The running configuration."""

    @property
    def engine(self) -> Engine:
        """The engine: every lease change goes through it (it keeps the pool bitmaps, the
        offers and the defences' counts in step with the store)."""

    @property
    def store(self) -> LmdbLeaseStore:
        """The lease table (reads; changes only through the engine)."""

    @property
    def metrics(self) -> Metrics:
        """The one set of counters behind both the statistics commands and Prometheus."""

    @property
    def commands(self) -> CommandTable:
        """The command table (for ``list-commands``)."""

    async def durable(self) -> None:
        """Return once everything staged so far is committed (fsynced when ``sync``); raise
        ``StoreError`` if that commit failed (its changes are then rolled back)."""

    # ------------------------------------------------------------------ server (cmd_server)

    # ------------------------------------------------------------------ config (cmd_config)

    # ------------------------------------------------------------------ statistics (cmd_stats)

    # ------------------------------------------------------------------ leases (cmd_leases)

    # ------------------------------------------------------------------ hosts (cmd_hosts)

    @property
    def hosts(self) -> HostTable:
        """The reservations added through the API (reads on the loop; changes through
        :meth:`run_in_writer`, then ``HostTable.written`` and ``Engine.host_written``)."""

    async def run_in_writer(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` in the store's one writer thread, between two lease batches; return
        what it returned (durable by then if it committed), or raise what it raised."""
