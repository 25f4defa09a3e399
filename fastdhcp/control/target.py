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
    from fastdhcp.control.channel import ControlChannel
    from fastdhcp.control.table import CommandTable
    from fastdhcp.ddns.runner import DdnsRunner
    from fastdhcp.dhcp_state import DhcpServiceState, Origin
    from fastdhcp.engine import Engine
    from fastdhcp.ha.link import StateSink
    from fastdhcp.ha.service import HAHost, HAService
    from fastdhcp.hosts import HostTable
    from fastdhcp.metrics import Metrics
    from fastdhcp.service import ReloadResult
    from fastdhcp.statistics import Statistics
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

    @property
    def dhcp_state(self) -> DhcpServiceState:
        """Who holds the DHCP service disabled (read it; change it with the two below)."""

    def disable_dhcp(self, origin: Origin, max_period: int | None) -> None:
        """``origin`` disables the DHCP service, for ``max_period`` seconds or until it
        enables it; datagrams are then read and discarded."""

    def enable_dhcp(self, origin: Origin) -> None:
        """``origin`` enables the service; it serves once no other origin holds it off."""

    def request_shutdown(self, exit_value: int) -> None:
        """Stop as SIGTERM does once the running command's answer has left; the process
        then exits with ``exit_value``."""

    @property
    def started_at(self) -> float:
        """When the server started (``time.monotonic()``)."""

    @property
    def configured_at(self) -> float:
        """When the running configuration was applied (start or last reload, monotonic)."""

    @property
    def control(self) -> ControlChannel:
        """The control sockets being served."""

    # ------------------------------------------------------------------ config (cmd_config)

    @property
    def config_path(self) -> str | None:
        """The startup file (config-reload reads it, config-write writes it by default), or
        None when the server was not started from a file."""

    def check_config(self, config: Config) -> ReloadResult:
        """What applying ``config`` would refuse beyond the loader's checks (nothing is
        applied): ``ok`` when nothing would be."""

    def apply_config(self, config: Config) -> ReloadResult:
        """Apply ``config`` as SIGHUP does (leases, offers and unchanged sockets kept; the
        control sockets follow once the answer has left); a refused config changes nothing
        and its problems come back."""

    def reload_from_file(self) -> ReloadResult:
        """Load the startup file again and apply it (as SIGHUP), with the problems if not."""

    # ------------------------------------------------------------------ statistics (cmd_stats)

    @property
    def statistics(self) -> Statistics | None:
        """Kea's statistics over :attr:`metrics`, the engine's counters and the lease table
        (None until the server has started)."""

    async def exposition(self) -> str:
        """The Prometheus text exposition of the server's metrics (what its ``metrics``
        endpoint would serve; for ``metrics-get``)."""

    # ------------------------------------------------------------------ leases (cmd_leases)

    # ------------------------------------------------------------------ hosts (cmd_hosts)

    @property
    def hosts(self) -> HostTable:
        """The reservations added through the API (reads on the loop; changes through
        :meth:`run_in_writer`, then ``HostTable.written`` and ``Engine.host_written``)."""

    async def run_in_writer(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` in the store's one writer thread, between two lease batches; return
        what it returned (durable by then if it committed), or raise what it raised."""

    # ------------------------------------------------------------------ ddns (cmd_ddns)

    @property
    def ddns(self) -> DdnsRunner | None:
        """The DNS update worker and its feed (``[ddns]``), or None when not configured."""

    # ------------------------------------------------------------------ ha (cmd_ha)

    @property
    def ha(self) -> HAService | None:
        """The HA service (``[high-availability]``), or None when not configured."""

    @property
    def ha_host(self) -> HAHost:
        """How the partner's leases are stored (through the lease commands)."""

    @property
    def ha_link(self) -> StateSink | None:
        """A worker of a multi-worker HA server: its link to the supervisor's HA service
        (fastdhcp.ha.link); None in a single server or without HA."""
