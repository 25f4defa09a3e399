"""The :class:`Server`: lifecycle (start, stop, signals, reload), the read loop over the
endpoints, the group-commit callbacks, timers, and what the control channel and HA ask of it.

The theory of operation is in :mod:`fastdhcp.service`; the parts it uses are beside this
module: :mod:`.endpoints` (sockets, read pacing, layer-2 unicast), :mod:`.report_log` (the
packet path's report into the log), :mod:`.stats_line` (the periodic summary),
:mod:`.notify` (systemd) and :mod:`.ratelog`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastdhcp import netio
from fastdhcp._packetpath import PacketPath
from fastdhcp._sockio import Outgoing
from fastdhcp.config import Config
from fastdhcp.config import load as load_config
from fastdhcp.control import commands as control_commands
from fastdhcp.control.channel import ControlChannel
from fastdhcp.control.common import target_dispatch
from fastdhcp.control.table import CommandTable
from fastdhcp.ddns.runner import DdnsRunner
from fastdhcp.ddns.stats import DdnsCollector
from fastdhcp.dhcp_state import DhcpServiceState, Origin
from fastdhcp.engine import Decision, Engine, Link
from fastdhcp.errors import ConfigError, StoreError
from fastdhcp.ha.service import HAService
from fastdhcp.ha.table_host import CommandTableHost
from fastdhcp.hosts import HostTable
from fastdhcp.leasequery.udp import UdpLeaseQuery
from fastdhcp.limits import EdgeGuard
from fastdhcp.metrics import Metrics, MetricsServer, ServerCollector, registry_of
from fastdhcp.pathreport import Event, PathEvent, PathReport
from fastdhcp.pathtypes import PathEndpoint
from fastdhcp.service import endpoints
from fastdhcp.service.endpoints import (
    Endpoint,
    EndpointKey,
    endpoint_keys,
    l2_destination,
    open_endpoint,
    pace_for,
)
from fastdhcp.service.ha_gate import GatedHA, HAGate
from fastdhcp.service.ha_gate import gauges as ha_gauges
from fastdhcp.service.leasequery_tcp import BulkLeaseQueryServer
from fastdhcp.service.notify import sd_notify
from fastdhcp.service.pingcheck import PingChecker
from fastdhcp.service.ratelog import RateLimitedLog
from fastdhcp.service.report_log import ReportLog
from fastdhcp.service.stats_line import PoolRow, StatsLine
from fastdhcp.service.worker_ha import WorkerHA
from fastdhcp.service.worker_paths import worker_ha_socket
from fastdhcp.statistics import Statistics
from fastdhcp.store import GroupCommitter, LmdbLeaseStore

if TYPE_CHECKING:
    from fastdhcp.service.worker import WorkerRole

__all__ = ["ANSWER_GRACE", "GC_FREEZE_INTERVAL", "RECLAIM_MAX_DELAY", "RECLAIM_MIN_DELAY",
           "SWITCH_INTERVAL", "ReloadResult", "Server", "StartupError"]

log = logging.getLogger("fastdhcp")

#: ``sys.setswitchinterval`` while the server runs (the default 5 ms is what the loop or the
#: writer thread could wait for the GIL, and so what an ACK or OFFER could wait for nothing).
SWITCH_INTERVAL = 0.0005
#: Seconds between two ``gc.freeze()`` while serving (see the module docstring); 0 = never.
GC_FREEZE_INTERVAL = 0.25
#: Bounds on the delay between two reclaim passes (seconds).
RECLAIM_MIN_DELAY = 0.05
RECLAIM_MAX_DELAY = 60.0

#: Longest wait (seconds) for a command's answer to leave before what the command asked for
#: after its answer happens anyway (shutdown, a control socket the config removed): a slow or
#: keep-alive client does not hold them up for longer.
ANSWER_GRACE = 2.0


class StartupError(Exception):
    """The server could not start; the message is one line for the operator."""


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What applying (or checking) a configuration came to: ``ok``, or not and why
    (``problems``, one line each, as ``check-config`` prints them). A configuration that is
    not applied changed nothing: the running one keeps serving."""

    ok: bool
    problems: tuple[str, ...] = ()


def _startup_file(config: Config) -> str | None:
    """The file ``config`` was loaded from, or None ("<string>", "<config-set>"...)."""
    source = getattr(config, "source", None)
    return source if isinstance(source, str) and source and not source.startswith("<") else None


class Server:
    """A fastdhcp server built from a :class:`fastdhcp.config.Config`.

    ``await start()`` opens the store, builds the engine, opens the sockets and starts serving;
    ``await stop()`` stops intake, flushes pending commits (sending their ACKs) and closes
    everything; ``reload(config)`` applies a new configuration. :meth:`serve_forever` adds the
    signal handlers and sd_notify and runs until SIGTERM/SIGINT.

    ``start`` either completes or raises with nothing left open: :class:`StartupError` (sockets,
    metrics endpoint), ``StoreError`` (database).
    """

    def __init__(self, config: Config, *, config_path: str | None = None,
                 log_level_pinned: bool = False, worker: WorkerRole | None = None) -> None:
        self.config = config
        #: worker k of n under the supervisor (service.worker), or None: one process
        self._worker = worker
        #: the startup file: what SIGHUP and config-reload read, config-write writes by default
        self.config_path: str | None = (config_path if config_path is not None
                                        else _startup_file(config))
        #: True when --log-level overrides server.log-level (a reload then leaves it alone)
        self._log_level_pinned = log_level_pinned
        self.metrics = Metrics()
        #: open between start and stop (``store`` and ``engine`` raise outside that)
        self._store: LmdbLeaseStore | None = None
        self._engine: Engine | None = None
        self.committer: GroupCommitter | None = None
        self.metrics_server: MetricsServer | None = None
        #: the collectors behind the endpoint and ``metrics-get`` (made at start)
        self.metrics_registry = registry_of()
        self.endpoints: dict[EndpointKey, Endpoint] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ratelog = RateLimitedLog(log)
        #: the packet path's report (filled by it) and its way into the log
        self._report_log = ReportLog(PathReport(), self._ratelog)
        self._stats = StatsLine(self.metrics, self._pool_rows)
        #: relay trust and rate limits before the engine (None when none are configured)
        self._guard: EdgeGuard | None = EdgeGuard.from_config(config.server)
        self.metrics.limiters = self._limiter_rows
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._started = False
        self._closing = False
        self._closed: asyncio.Event | None = None
        self._debug = False
        self._stop_task: asyncio.Task[None] | None = None
        self._switch_prev: float | None = None
        #: the compiled per-datagram path (fastdhcp._packetpath), rebuilt when its inputs change
        self._path: PacketPath | None = None
        #: Kea's management API: the command table and the sockets that answer it
        self.commands: CommandTable = control_commands.build()
        self.control = ControlChannel(target_dispatch(self))
        # config and server commands (cmd_config, cmd_server)
        #: who holds the DHCP service disabled (dhcp-disable / dhcp-enable)
        self.dhcp_state = DhcpServiceState()
        #: True while the service is disabled: sockets are drained by _discard, not the path
        #: (a copy of ``not dhcp_state.enabled`` kept by _service_changed, read once a burst)
        self._discarding = False
        #: monotonic times of the start and of the last configuration applied (status-get)
        self.started_at = 0.0
        self.configured_at = 0.0
        #: the exit status ``fastdhcp serve`` ends with (shutdown's exit-value)
        self.exit_value = 0
        self._control_task: asyncio.Task[None] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None
        #: Kea's statistics over the counters (made at start, once engine and store are open)
        self.statistics: Statistics | None = None
        #: the HA service, when [high-availability] is configured (ha, cmd_ha); None in a
        #: worker, whose supervisor runs it (service.front_ha)
        self._ha: HAService | None = None
        #: what the packet path and the ACK gate ask: the HA service, or a worker's link to
        #: the supervisor's (service.worker_ha)
        self._ha_side: GatedHA | None = None
        self._ha_link: WorkerHA | None = None
        #: ping-check's prober, made when a subnet first enables it (kept across reloads)
        self._ping: PingChecker | None = None
        #: the HA share, burst counts and ACK gate (service.ha_gate)
        self._ha_gate = HAGate(self.metrics, self._deliver)
        #: client names and DNS updates, when [ddns] is configured (fastdhcp.ddns.runner)
        self.ddns: DdnsRunner | None = None
        #: leasequery (docs/leasequery.md): the DHCPLEASEQUERY handler the path calls, and the
        #: bulk leasequery TCP listener, when [leasequery] configures them
        self._lq_udp: UdpLeaseQuery | None = None
        self._lq_bulk: BulkLeaseQueryServer | None = None

    @property
    def engine(self) -> Engine:
        """The engine (``StoreError`` when the server is not running)."""
        if self._engine is None:
            raise StoreError("the server is not running")
        return self._engine

    @property
    def store(self) -> LmdbLeaseStore:
        """The lease database (``StoreError`` when the server is not running)."""
        if self._store is None:
            raise StoreError("the server is not running")
        return self._store

    # ----------------------------------------------------------------- start / stop

    async def start(self) -> None:
        """Open store, engine, sockets, committer and metrics, then serve. All or nothing."""
        if self._started:
            raise RuntimeError("server already started")
        self._loop = asyncio.get_running_loop()
        self._closed = asyncio.Event()
        cfg = self.config
        db = cfg.lease_database
        try:
            # create=True: a server makes its lease directory, as Kea makes its lease file
            kwargs: dict[str, Any] = {"sync": db.sync, "create": True}
            if getattr(db, "map_size", None):
                kwargs["map_size"] = db.map_size
            scope = self._worker.scope(cfg) if self._worker is not None else None
            self._store = LmdbLeaseStore(str(db.path), scope=scope, **kwargs)
            engine = self._engine = Engine(cfg, self._store, scope)
            self.statistics = Statistics(self)
            self._hosts = HostTable(self._store)  # hosts (cmd_hosts)
            engine.attach_hosts(self._hosts)
            self.ddns = DdnsRunner.follow(None, cfg.ddns, engine.ddns_pending)
            try:
                for key in endpoint_keys(cfg):
                    sock = self._worker.sockets[key] if self._worker is not None else None
                    ep = open_endpoint(key, sock)
                    self.endpoints[key] = ep
            except OSError as exc:
                raise StartupError(f"cannot open sockets: {exc.strerror or exc}") from exc
            if not self.endpoints:
                raise StartupError("nothing to listen on: server.interfaces and "
                                   "server.listen-addresses are both empty")
            self.committer = GroupCommitter(
                self._store,
                self._loop,
                self._on_committed,
                self._on_failed,
                batch_size=db.batch_size,
                max_wait=db.max_wait_ms / 1000.0,
                on_batch=self._on_batch,
            )
            self.metrics_registry = registry_of(
                ServerCollector(
                    self.metrics,
                    lambda: self._on_loop(self._pool_rows) or [],
                    lambda: self._on_loop(self._lease_count),
                    lambda: self._on_loop(self._kea_values),
                    (lambda: self._on_loop(lambda: ha_gauges(self._ha)))
                    if cfg.high_availability is not None else None,
                ),
                DdnsCollector(lambda: self.ddns.stats if self.ddns is not None else None),
            )
            if cfg.server.metrics:
                try:
                    self.metrics_server = MetricsServer(self.metrics_registry,
                                                        cfg.server.metrics)
                except (OSError, ValueError) as exc:
                    why = getattr(exc, "strerror", None) or exc
                    raise StartupError(f"metrics endpoint {cfg.server.metrics}: {why}") from exc
            try:
                await self.control.start(cfg.control_sockets)
            except OSError as exc:
                raise StartupError(f"control socket: {exc.strerror or exc}") from exc
            await self._start_ha()  # ha (cmd_ha)
            await self._start_leasequery()
        except BaseException:
            await self._abort_start()
            raise
        self._debug = log.isEnabledFor(logging.DEBUG)
        self._path = self._make_path()
        self.started_at = self.configured_at = time.monotonic()
        if SWITCH_INTERVAL and self._switch_prev is None:
            self._switch_prev = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL)
        for ep in self.endpoints.values():
            self._loop.add_reader(ep.fd, self._on_readable, ep)
        if self._worker is not None and self._worker.forwarder is not None:
            self._worker.forwarder.start(self, self._loop)
        self._started = True
        self._schedule("reclaim", 0.0, self._reclaim)
        self._stats.restart()
        self._schedule_stats()
        if GC_FREEZE_INTERVAL > 0:
            gc.collect()  # what start-up left as garbage, then the rest is out of every scan
            self._gc_freeze()
        self._log_startup()

    async def _abort_start(self) -> None:
        await self._stop_leasequery()
        await self._stop_ha()  # ha (cmd_ha)
        await self.control.close()
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None
        if self.committer is not None:
            try:
                await self.committer.close()
            except Exception:
                log.exception("closing the committer after a failed start")
            self.committer = None
        if self.ddns is not None:
            self.ddns.stop()
            self.ddns = None
        for ep in self.endpoints.values():
            ep.close()
        self.endpoints.clear()
        self._engine = None
        if self._store is not None:
            self._close_store()

    def _close_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except Exception:
                log.exception("closing the lease database")

    async def stop(self) -> None:
        """Stop intake, flush pending commits (their ACKs are sent), close sockets and store."""
        assert self._closed is not None
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        loop = self._loop
        assert loop is not None
        for task in (self._control_task, self._shutdown_task):
            # a control-socket change, or a shutdown, still waiting for a command's answer to
            # leave: moot now (shutdown's task only starts this stop, in _stop_task)
            if task is not None and not task.done() and task is not asyncio.current_task():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._stop_leasequery()
        await self._stop_ha()  # ha (cmd_ha): no more heartbeats nor updates to the partner
        await self.control.close()  # no command starts while the commits are flushed
        if self._worker is not None and self._worker.forwarder is not None:
            self._worker.forwarder.stop(loop)
        for ep in self.endpoints.values():
            self._unwatch(ep)
        if self._ping is not None:
            self._ping.close()
            self._ping = None
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        try:
            if self.committer is not None:
                await self.committer.close()  # runs on_committed: the held ACKs leave now
        except Exception:
            log.exception("flushing pending commits at shutdown")
        finally:
            self.committer = None
            if self.ddns is not None:
                self.ddns.stop()  # after the flush: its removals and adds were queued
                self.ddns = None
            for ep in self.endpoints.values():
                ep.close()
            if self.metrics_server is not None:
                self.metrics_server.close()
                self.metrics_server = None
            n = self._lease_count()
            self._close_store()
            self._log_stats(final=True)
            log.info("stopped; %s lease records in the database", n if n is not None else "?")
            if self._switch_prev is not None:
                sys.setswitchinterval(self._switch_prev)
                self._switch_prev = None
            if GC_FREEZE_INTERVAL > 0:
                gc.unfreeze()  # what this server froze can be collected again (in-process use)
            self._closed.set()

    async def wait_closed(self) -> None:
        """Wait until :meth:`stop` has finished."""
        assert self._closed is not None
        await self._closed.wait()

    async def serve_forever(self) -> None:
        """Start, install SIGTERM/SIGINT/SIGHUP handlers, tell systemd READY=1, and run until a
        stop signal has been handled."""
        await self.start()
        loop = self._loop
        assert loop is not None
        loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self._on_stop_signal, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        sd_notify(f"READY=1\nMAINPID={os.getpid()}\nSTATUS=serving")
        try:
            await self.wait_closed()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    def _on_stop_signal(self, name: str) -> None:
        if self._stop_task is None:
            log.info("%s: stopping (flushing pending commits)", name)
            sd_notify("STOPPING=1")
            assert self._loop is not None
            self._stop_task = self._loop.create_task(self.stop())

    def _on_hup(self) -> None:
        # MONOTONIC_USEC lets Type=notify-reload units (systemd 253+) match this reload.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        sd_notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")
        try:
            self.reload_from_file()
        finally:
            sd_notify("READY=1")

    # ----------------------------------------------------------------- reload

    def reload_from_file(self) -> ReloadResult:
        """Load the startup file again and apply it (SIGHUP, config-reload); on any problem log
        it, keep the running configuration and return the problems."""
        path = self.config_path
        if not path:
            self.metrics.reload_failures += 1
            log.error("reload: no configuration file to load")
            return ReloadResult(False, ("no configuration file to load: the server was not "
                                        "started from one",))
        try:
            config = load_config(path)
        except ConfigError as exc:
            self.metrics.reload_failures += 1
            log.error("reload: %s does not load; still serving the previous configuration", path)
            for line in exc.problems:
                log.error("reload: %s", line)
            return ReloadResult(False, tuple(exc.problems))
        except OSError as exc:
            self.metrics.reload_failures += 1
            why = f"cannot read {path}: {exc.strerror or exc}"
            log.error("reload: %s; still serving the previous configuration", why)
            return ReloadResult(False, (why,))
        return self.apply_config(config)

    def apply_config(self, config: Config) -> ReloadResult:
        """:meth:`reload` ``config``, turning a refusal into its problem lines (logged; the
        running configuration keeps serving). SIGHUP, config-reload and config-set use it."""
        try:
            self.reload(config if self._worker is None else self._worker.adapt(config))
        except Exception as exc:  # whatever it is, the running configuration keeps serving
            self.metrics.reload_failures += 1
            if isinstance(exc, (ConfigError, StartupError, StoreError, OSError)):
                lines = tuple(getattr(exc, "problems", None) or [str(exc)])
                for line in lines:
                    log.error("reload: %s", line)
            else:
                lines = (f"{type(exc).__name__}: {exc}",)
                log.error("reload: %s: %s", type(exc).__name__, exc, exc_info=True)
            log.error("reload: still serving the previous configuration")
            return ReloadResult(False, lines)
        return ReloadResult(True)

    def reload(self, config: Config) -> None:
        """Apply ``config`` to the running server without losing a lease.

        The engine is reloaded in place if it offers ``reload(config)`` (held offers survive),
        else a new Engine is built over the same store. Sockets are opened/closed only for the
        interfaces and addresses that changed. The lease database, commit tuning and metrics
        endpoint need a restart: a change there is logged and ignored. Raises (and changes
        nothing) if a new socket cannot be opened or the engine refuses the config.

        The control sockets follow the new configuration once the command that asked for the
        reload (if any) has sent its answer (:meth:`_reconfigure_control`); unchanged ones stay
        open.
        """
        if not self._started or self._closing:
            raise StartupError("reload: server is not running")
        old = self.config
        loop = self._loop
        assert loop is not None
        if old.lease_database != config.lease_database:
            log.warning("reload: [lease-database] changes take effect at the next restart")
        if old.server.metrics != config.server.metrics:
            log.warning("reload: server.metrics changes take effect at the next restart")
        if old.high_availability != config.high_availability:  # ha (cmd_ha)
            log.warning("reload: [high-availability] changes take effect at the next restart")
        if old.leasequery != config.leasequery:
            log.warning("reload: [leasequery] changes take effect at the next restart")

        want = endpoint_keys(config)
        if self._worker is not None and set(want) != set(self.endpoints):
            # the supervisor made this worker's sockets (a reuseport group per key)
            log.warning("reload: server.interfaces / listen-addresses / port changes take "
                        "effect at the next restart with workers")
            want = list(self.endpoints)
        refused = self.check_config(config)
        if not refused.ok:
            raise StartupError(refused.problems[0])
        new_eps: dict[EndpointKey, Endpoint] = {}
        try:
            for key in want:
                if key not in self.endpoints:
                    new_eps[key] = open_endpoint(key)
        except OSError as exc:
            for ep in new_eps.values():
                ep.close()
            raise StartupError(f"cannot open sockets: {exc.strerror or exc}") from exc

        try:
            assert self._engine is not None
            self._engine.reload(config)
        except BaseException:
            for ep in new_eps.values():
                ep.close()
            raise

        # Commit point: nothing below can fail for a reason the operator caused.
        for key in [k for k in self.endpoints if k not in want]:
            ep = self.endpoints.pop(key)
            self._unwatch(ep)
            ep.close()  # a held ACK for this socket is counted as "socket-closed"
        self._poll_committer()  # the socket that polled it may be gone
        for key, ep in new_eps.items():
            self.endpoints[key] = ep
            loop.add_reader(ep.fd, self._on_readable, ep)
        for ep in self.endpoints.values():
            if ep.ifname and ep.key not in new_eps:
                try:  # the interface may have been renumbered
                    addr = netio.interface_ipv4(ep.ifname)
                    if addr != ep.link.address:
                        ep.link = Link(ep.ifname, addr)
                except OSError as exc:
                    log.warning("reload: %s", exc)
        self.config = config
        if self._worker is not None:  # the commit check follows the new pools' slices
            self.store.scope = self._worker.scope(config)
        self.ddns = DdnsRunner.follow(self.ddns, config.ddns, self._engine.ddns_pending)
        self._guard = EdgeGuard.from_config(config.server, self._guard)
        if old.server.log_level != config.server.log_level and not self._log_level_pinned:
            logging.getLogger().setLevel(config.server.log_level.upper())
            self._debug = log.isEnabledFor(logging.DEBUG)
        for lq in (self._lq_udp, self._lq_bulk):
            if lq is not None:
                lq.reconfigure(config)  # new subnets and pools; the requesters stay
        self._path = self._make_path()  # the engine, the guard or the log level may be new
        self.configured_at = time.monotonic()
        self._reconfigure_control(config.control_sockets)
        if old.server.stats_interval != config.server.stats_interval:
            self._schedule_stats()
        self._schedule("reclaim", 0.0, self._reclaim)
        if self.statistics is not None:
            self.statistics.config_changed()
        self.metrics.reloads += 1
        log.info("reload: applied %s (%d subnets, %d sockets)",
                 getattr(config, "source", "config"), len(config.subnets), len(self.endpoints))

    # ----------------------------------------------------------------- packet path

    def _make_path(self) -> PacketPath:
        if self._ha_side is not None:  # the engine may be a new one (reload)
            self._ha_gate.apply_share(self._ha_side, self.engine)
        committer = self.committer
        path = PacketPath(self.engine, self.metrics, self._report_log.report, self._guard,
                          committer.hold_many if committer is not None else None, self._l2_dest,
                          self._debug, probe=self._ping_sink(),
                          ha=self._ha_side.filter if self._ha_side is not None else None,
                          leasequery=self._lq_udp,
                          **(self._worker.path_kwargs(self.config, list(self.endpoints))
                             if self._worker is not None else {}))
        if self._ping is not None:
            self._ping.attach(path, self.config.subnets)
        return path

    def _ping_sink(self) -> Callable[[list[Any]], None] | None:
        """The packet path's ``probe`` sink: the PingChecker (made at the first configuration
        that enables ping-check), or None while no subnet has it on."""
        if not any(s.ping_check.enabled for s in self.config.subnets):
            return None
        if self._ping is None:
            assert self._loop is not None
            self._ping = PingChecker(self._loop, self.metrics, self.engine, self._kick_commit)
        return self._ping.submit

    def _kick_commit(self) -> None:
        if self.committer is not None:
            self.committer.kick()

    def _l2_dest(self, ep: PathEndpoint, d: Decision) -> int:
        # the path hands back the endpoint it read from: always one of ours
        assert isinstance(ep, Endpoint)
        return l2_destination(ep, d, self._ratelog)

    def _on_readable(self, ep: Endpoint) -> None:
        path = self._path
        assert path is not None
        t0 = time.perf_counter()
        if self._discarding:  # dhcp-disable: one test a burst, nothing more when enabled
            n = self._discard(ep, endpoints.READ_BATCH)
        else:
            n = path.read(ep, endpoints.READ_BATCH, time.time(), t0)
            if self._ha_side is not None:
                self._ha_gate.after_burst(self._ha_side, self.engine)
        ms = self.config.server.read_pace_ms
        longest = endpoints.READ_PACE if ms is None else ms / 1000.0
        loop = self._loop
        assert loop is not None
        paced = bool(n and longest > 0)
        if paced and ep.paced:
            # a paced read: these datagrams arrived since the last one
            rate = n / max(t0 - ep.last_read, 1e-4)
            ep.rate += endpoints.PACE_RATE_WEIGHT * (rate - ep.rate) if ep.rate else rate
        elif paced:  # busy: leave epoll, read again by timer
            ep.paced = True
            ep.rate = 0.0  # unknown yet: the first pace is the longest
            loop.remove_reader(ep.fd)
            loop.add_reader(ep.timer.fd, self._on_pace_timer, ep)
        elif ep.paced:  # quiet again (or pacing turned off by a reload)
            ep.paced = False
            loop.remove_reader(ep.timer.fd)
            loop.add_reader(ep.fd, self._on_readable, ep)
        committer = self.committer
        if committer is not None:
            if n:
                committer.kick()  # before the flush, so the writer can start as the OFFERs leave
            self._poll_committer()  # committed ACKs join this flush
        if ep.out:
            path.flush(ep)
        self._report_log.drain()
        if paced:
            ep.last_read = t0
            if n >= endpoints.READ_BATCH:  # more may be waiting: after the other ready callbacks
                ep.pace = loop.call_soon(self._on_pace, ep)
            else:
                ep.timer.arm(pace_for(ep.rate, longest))

    def inject(self, ep: Endpoint, data: bytes, src_ip: int, src_port: int, now: float,
               t0: float) -> None:
        """Handle a datagram another worker forwarded as if ``ep`` had read it (its reply
        leaves from ``ep``); nothing while the service is disabled or stopping."""
        path = self._path
        if path is None or self._discarding or self._closing or ep.closed:
            return
        path.inject(ep, data, src_ip, src_port, now, t0)
        if self.committer is not None:
            self.committer.kick()
        self._report_log.drain()

    def _poll_committer(self) -> None:
        """Tell the committer whether a paced read will poll it again within a tick, and poll
        it now (fastdhcp.commit: the writer then wakes the loop only when nothing will)."""
        committer = self.committer
        if committer is not None:
            committer.polled = any(e.paced for e in self.endpoints.values())
            committer.poll()

    def _unwatch(self, ep: Endpoint) -> None:
        """The loop stops watching ``ep`` (its socket or its pace timer) and any tick is off."""
        loop = self._loop
        assert loop is not None
        loop.remove_reader(ep.fd)
        loop.remove_reader(ep.timer.fd)
        ep.unpace()

    def _on_pace_timer(self, ep: Endpoint) -> None:
        timer = ep.timer
        # A readiness whose expiry a re-arm already reset (the timer then fires later) is
        # skipped; a paced socket with no tick to come is read now rather than never.
        if timer.clear() or (ep.paced and not timer.armed and ep.pace is None):
            self._on_pace(ep)

    def _on_pace(self, ep: Endpoint) -> None:
        ep.pace = None
        if ep.closed or self._closing:
            return
        self._on_readable(ep)

    def _recv_failed(self, ep: Endpoint, exc: OSError) -> None:
        """A failed receive outside the packet path (the disabled service's discard): counted
        and reported as the path does, logged by the same drain."""
        self.metrics.drop("recv-error")
        self._report_log.report.add(PathEvent(Event.RECV_FAILED, ep.key[1], error=exc))

    def _limiter_rows(self) -> list[tuple[str, int, int]]:
        """(limit, keys tracked, evictions) of each configured rate limiter (for metrics)."""
        guard = self._guard
        rows = []
        if guard is not None:
            for name, lim in (("client", guard.clients), ("relay", guard.relays)):
                if lim is not None:
                    rows.append((name, len(lim), lim.evictions))
        return rows

    # ----------------------------------------------------------------- commit callbacks

    async def exposition(self) -> str:
        """The Prometheus text of :attr:`metrics_registry` (``metrics-get``)."""
        from prometheus_client import generate_latest

        # rendered off the loop: the collectors ask the loop for their values (_on_loop)
        data = await asyncio.to_thread(generate_latest, self.metrics_registry)
        return data.decode()

    async def durable(self) -> None:
        """Return once everything staged so far is committed (the control channel's mutations
        answer after this, as an ACK leaves after its binding's commit). Raises ``StoreError``
        if the commit failed (the engine has then rolled the changes back)."""
        committer = self.committer
        if committer is None or self._closing:
            raise StoreError("the server is stopping")
        try:
            await committer.durable()
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"commit failed: {exc}") from exc

    def _on_committed(self, tokens: list[Any]) -> None:
        m = self.metrics
        m.commits += 1
        if self._worker is not None:  # (also a batch of control commands' leases alone:
            tokens = self._refuse(tokens)  # the engine must follow the store back)
        if not tokens:
            return
        m.commit_batch.observe(len(tokens))
        m.commit_latency.observe(time.perf_counter() - tokens[0].held_at)
        if self.config.high_availability is not None:  # ha (cmd_ha): the partner first
            self._ha_gate.committed(self._ha_side, tokens)
            return
        self._deliver(tokens)

    def _refuse(self, tokens: list[Any]) -> list[Any]:
        """A worker's commit check refused some bindings of the batch (service.worker): the
        engine follows the store back, and their ACKs become NAKs."""
        assert self._worker is not None
        refused = self.store.take_rejected()
        if not refused:
            return tokens
        self._ratelog(logging.WARNING, "refused", "commit check refused %d bindings (address "
                      "not this worker's, or active for another client): NAKed", len(refused))
        self.engine.rollback(refused)
        return self._worker.refuse(tokens, refused, self.config.server.client_port)

    def _deliver(self, tokens: list[Any]) -> None:
        # the ACKs of durable bindings leave (after the partner's word, with HA)
        path = self._path
        if path is None:
            return
        path.deliver(tokens)
        self._report_log.drain()

    def _on_batch(self, batch: list[Any]) -> None:
        # after the ACKs of a durable batch: what it owes DNS is queued, never waited for
        if self.ddns is not None:
            self.ddns.committed(batch)

    def _on_failed(self, leases: list[Any], tokens: list[Any], exc: BaseException) -> None:
        if self.ddns is not None:
            self.ddns.failed(leases)
        m = self.metrics
        m.commit_failures += 1
        acks = sum(1 for t in tokens if t.out is not None)  # (ha: a RELEASE holds no reply)
        m.acks_lost += acks
        m.drop("commit-failed", acks)
        self._ratelog(logging.ERROR, "commit", "group commit of %d leases failed: %s; "
                      "%d ACKs not sent (clients will retry)", len(leases), exc, acks)
        try:
            if self._engine is not None:
                self._engine.rollback(leases)
        except Exception as exc2:
            m.internal_errors += 1
            self._ratelog(logging.ERROR, "rollback", "rollback after a failed commit: %r", exc2,
                          exc=True)

    # ----------------------------------------------------------------- timers

    def _schedule(self, name: str, delay: float, fn: Callable[[], None]) -> None:
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()
        if self._closing:
            return
        assert self._loop is not None
        self._timers[name] = self._loop.call_later(delay, fn)

    def _reclaim(self) -> None:
        delay = RECLAIM_MAX_DELAY
        try:
            now = time.time()
            nxt = self.engine.reclaim(now)
            if self.committer is not None:
                self.committer.kick()
            if nxt is not None:
                delay = float(nxt) - now
        except Exception as exc:
            self.metrics.internal_errors += 1
            delay = 1.0
            self._ratelog(logging.ERROR, "reclaim", "lease reclaim failed: %r", exc, exc=True)
        delay = min(max(delay, RECLAIM_MIN_DELAY), RECLAIM_MAX_DELAY)
        self._schedule("reclaim", delay, self._reclaim)

    def _gc_freeze(self) -> None:
        gc.freeze()
        self._schedule("gc", GC_FREEZE_INTERVAL, self._gc_freeze)

    def _stats_tick(self) -> None:
        try:
            self._log_stats()
        except Exception as exc:
            self._ratelog(logging.ERROR, "stats", "stats: %r", exc, exc=True)
        self._schedule_stats()

    def _schedule_stats(self) -> None:
        interval = float(self.config.server.stats_interval)
        if interval > 0:
            self._schedule("stats", interval, self._stats_tick)
        else:  # stats-interval = 0: no periodic line
            old = self._timers.pop("stats", None)
            if old is not None:
                old.cancel()

    # ----------------------------------------------------------------- reporting

    def pool_stats(self) -> list[PoolRow]:
        """(subnet id, subnet, pool, size, used) for every pool, from ``engine.pool_stats()``."""
        return list(self._pool_rows())

    def _pool_rows(self) -> Iterable[PoolRow]:
        engine = self._engine
        if engine is None:
            return []
        subnets = {s.id: str(s.network) for s in self.config.subnets}
        rows = []
        for st in engine.pool_stats():
            sid = int(getattr(st, "subnet_id", 0))
            subnet = str(getattr(st, "subnet", "") or subnets.get(sid, ""))
            pool = getattr(st, "pool", None)
            if pool is None or not isinstance(pool, str):
                pool = getattr(pool, "text", None) or getattr(st, "text", None) or str(pool)
            rows.append((sid, subnet, pool, int(st.size), int(st.used)))
        return rows

    def _on_loop(self, fn: Callable[[], Any], timeout: float = 2.0) -> Any:
        """Run ``fn`` on the event loop from another thread (the metrics scrape) and return its
        result: engine and store are loop-thread objects. None if the loop is gone or busy."""
        loop = self._loop
        if loop is None or loop.is_closed() or self._closing:
            return None

        async def call() -> Any:
            return fn()

        try:
            return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)
        except Exception:
            return None

    # ----------------------------------------------------------------- hosts (cmd_hosts)

    @property
    def hosts(self) -> HostTable:
        """The hosts table of the lease database (reservations added through the API)."""
        hosts: HostTable | None = getattr(self, "_hosts", None)
        if hosts is None:
            raise StoreError("the server is not running")
        return hosts

    async def run_in_writer(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in the group commit's writer thread (see ControlTarget)."""
        committer = self.committer
        if committer is None or self._closing:
            raise StoreError("the server is stopping")
        return await committer.run_in_writer(fn)

    def _lease_count(self) -> int | None:
        store = self._store
        if store is None:
            return None
        try:
            return len(store)
        except Exception:
            return None

    def _log_startup(self) -> None:
        cfg = self.config
        for ep in self.endpoints.values():
            kind, name, port = ep.key
            what = f"interface {name}" if kind == "if" else f"address {name}"
            log.info("listening: %s port %d (link %r, server address %s)", what, port,
                     ep.link.name, netio.ip_to_str(ep.link.address))
        rows = self._pool_rows()
        by_subnet: dict[int, list[PoolRow]] = {}
        for r in rows:
            by_subnet.setdefault(r[0], []).append(r)
        for s in cfg.subnets:
            pools = by_subnet.get(s.id, [])
            pools_text = ", ".join(f"{p[2]} ({p[4]}/{p[3]} used)" for p in pools) or "no pools"
            log.info("subnet4 %d %s: %s", s.id, s.network, pools_text)
        db = cfg.lease_database
        log.info("lease database %s: %s lease records, sync=%s (%s)", db.path,
                 self._lease_count(), db.sync,
                 "fsync before every ACK batch" if db.sync
                 else "no fsync: survives a crash, not a power loss")
        if self.metrics_server is not None:
            host, port = self.metrics_server.address
            log.info("metrics on http://%s:%d/metrics", host, port)
        log.info("fastdhcp serving: %d sockets, %d subnets, client port %d",
                 len(self.endpoints), len(cfg.subnets), cfg.server.client_port)

    def stats_line(self) -> str:
        """The periodic summary (rates since the last line, drops, pool use, latencies)."""
        return self._stats.line()

    def _log_stats(self, final: bool = False) -> None:
        line = self.stats_line()
        if self._worker is not None and self._path is not None:
            line += self._worker.stats_suffix(self._path)
        if final:
            line = "final " + line
        log.info("%s", line)
        if not final:  # `systemctl status` shows the latest summary
            sd_notify("STATUS=" + line[:200])

    # ----------------------------------------------------------------- config and server
    # commands (fastdhcp.control.cmd_config, cmd_server): what ControlTarget offers them

    def check_config(self, config: Config) -> ReloadResult:
        """What :meth:`reload` would refuse in ``config`` before opening anything (config-test
        asks this after the loader's checks): ``ok`` when nothing."""
        if not endpoint_keys(config):
            return ReloadResult(False, ("nothing to listen on: server.interfaces and "
                                        "server.listen-addresses are both empty",))
        return ReloadResult(True)

    def _service_changed(self) -> None:
        """Read with the packet path while the service is enabled, else discard."""
        self._discarding = not self.dhcp_state.enabled

    def _discard(self, ep: Endpoint, limit: int) -> int:
        """The read of a disabled service: drain the socket (so that its buffer does not fill
        and nothing queued now is answered late), count, answer nothing."""
        try:
            n = ep.io.discard(limit)
        except OSError as exc:
            self._recv_failed(ep, exc)
            return 0
        self.metrics.disabled_discards += n
        return n

    def disable_dhcp(self, origin: Origin, max_period: int | None) -> None:
        """``origin`` disables the DHCP service, for ``max_period`` seconds or until it enables
        it (dhcp-disable); see :mod:`fastdhcp.dhcp_state`."""
        was = self.dhcp_state.enabled
        self.dhcp_state.disable(origin, max_period, time.monotonic())
        timer = "dhcp-enable:" + origin.value
        if max_period is None:
            self._cancel_timer(timer)
        else:
            self._schedule(timer, float(max_period), lambda: self._dhcp_hold_ended(origin))
        self._service_changed()
        log.warning("DHCP service disabled by %s%s%s", origin.value,
                    f" for {max_period} s" if max_period is not None else "",
                    "" if was else " (already disabled)")

    def enable_dhcp(self, origin: Origin) -> None:
        """``origin`` enables the DHCP service again (dhcp-enable); it serves once no other
        origin holds it disabled."""
        self._cancel_timer("dhcp-enable:" + origin.value)
        was = self.dhcp_state.enabled
        now = self.dhcp_state.enable(origin)
        self._service_changed()
        if now and not was:
            log.warning("DHCP service enabled by %s", origin.value)
        elif not now:
            log.warning("DHCP service: %s enabled it, still disabled by %s", origin.value,
                        ", ".join(h.origin.value for h in self.dhcp_state.holds()))

    def _dhcp_hold_ended(self, origin: Origin) -> None:
        now = time.monotonic()
        if self.dhcp_state.expire(origin, now):
            self._service_changed()
            log.warning("DHCP service: the max-period of %s's dhcp-disable ended%s",
                        origin.value, "; enabled" if self.dhcp_state.enabled else "")
            return
        deadline = self.dhcp_state.deadline(origin)
        if deadline is not None:  # the loop's clock fired a hair early: wait out the rest
            self._schedule("dhcp-enable:" + origin.value, max(deadline - now, 0.001),
                           lambda: self._dhcp_hold_ended(origin))

    def _cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def request_shutdown(self, exit_value: int) -> None:
        """Stop as SIGTERM does (pending commits flushed, their ACKs sent) once the answer of
        the command running now has left, and let ``fastdhcp serve`` exit with
        ``exit_value``. A second request while the first is pending changes nothing."""
        if self._shutdown_task is not None or self._stop_task is not None or self._closing:
            return
        self.exit_value = exit_value
        assert self._loop is not None
        self._shutdown_task = self._loop.create_task(
            self._shutdown_after(asyncio.current_task()))

    async def _shutdown_after(self, answering: asyncio.Task[Any] | None) -> None:
        await _answer_sent(answering)
        self._on_stop_signal("shutdown command")

    def _reconfigure_control(self, confs: tuple[Any, ...]) -> None:
        """Serve the control sockets ``confs`` once the command running now (if any) has sent
        its answer: the socket it came in on may be one the new configuration removes."""
        pending = self._control_task is not None and not self._control_task.done()
        if not pending and set(confs) == set(self.control.sockets):
            return
        assert self._loop is not None
        self._control_task = self._loop.create_task(self._control_after(
            confs, asyncio.current_task(), self._control_task))

    async def _control_after(self, confs: tuple[Any, ...], answering: asyncio.Task[Any] | None,
                             previous: asyncio.Task[None] | None) -> None:
        if previous is not None:  # reloads apply in order
            await asyncio.gather(previous, return_exceptions=True)
        await _answer_sent(answering)
        if self._closing:
            return
        try:
            await self.control.reconfigure(confs)
        except OSError as exc:
            self.metrics.reload_failures += 1
            log.error("reload: control socket: %s (serving %d control sockets)",
                      exc.strerror or exc, len(self.control.sockets))
        finally:
            if self._control_task is asyncio.current_task():
                self._control_task = None

    async def control_settled(self) -> None:
        """Return once every control-socket change asked for so far is done (tests, and a
        command that must see the sockets of the configuration it applied)."""
        while (task := self._control_task) is not None:
            await asyncio.gather(task, return_exceptions=True)
            if self._control_task is task:  # cancelled before it ran: its finally never did
                self._control_task = None

    # ----------------------------------------------------------------- statistics (cmd_stats)

    def _kea_values(self) -> dict[str, int] | None:
        """Kea's statistics under Kea's names, raw (never reset), for the Prometheus
        endpoint; runs on the loop (``_on_loop``)."""
        stats = self.statistics
        return stats.raw_values() if stats is not None else None


    # ----------------------------------------------------------------- ha (cmd_ha)

    @property
    def ha(self) -> HAService | None:
        """The HA service, or None without [high-availability]."""
        return self._ha

    @property
    def ha_host(self) -> CommandTableHost:
        """The partner's leases are stored through this server's lease commands."""
        return CommandTableHost(self)

    @property
    def ha_link(self) -> WorkerHA | None:
        """A worker's link to the supervisor's HA service (None otherwise)."""
        return self._ha_link

    async def _start_leasequery(self) -> None:
        lq = self.config.leasequery
        if lq is None:
            return
        self._lq_udp = UdpLeaseQuery(self.config, self.store, self.metrics, self._lq_send)
        if lq.bulk.enabled:
            bulk = BulkLeaseQueryServer(self.config, self.store, self.metrics)
            try:
                await bulk.start()
            except OSError as exc:
                raise StartupError(f"bulk leasequery on {lq.bulk.address}:{lq.bulk.port}: "
                                   f"{exc.strerror or exc}") from exc
            self._lq_bulk = bulk

    async def _stop_leasequery(self) -> None:
        udp, self._lq_udp = self._lq_udp, None
        bulk, self._lq_bulk = self._lq_bulk, None
        if udp is not None:
            await udp.close()
        if bulk is not None:
            await bulk.close()

    def _lq_send(self, ep: Endpoint, item: Outgoing) -> None:
        # a leasequery answered after a scan: it leaves as the burst's replies do
        path = self._path
        if path is None or ep.closed:
            self.metrics.drop("socket-closed")
            return
        ep.out.append(item)
        path.flush(ep)

    @property
    def leasequery_bulk(self) -> BulkLeaseQueryServer | None:
        """The bulk leasequery listener, when one runs."""
        return self._lq_bulk

    async def _start_ha(self) -> None:
        conf = self.config.high_availability
        if conf is None:
            return
        side: HAService | WorkerHA
        if self._worker is not None:  # the supervisor runs the pair's one HA service
            side = self._ha_link = WorkerHA(worker_ha_socket(self.config))
        else:
            side = self._ha = HAService(conf, self.ha_host)
        self._ha_side = side
        self._ha_gate.apply_share(side, self.engine)  # before the first packet
        await side.start()

    async def _stop_ha(self) -> None:
        services: list[HAService | WorkerHA | None] = [self._ha, self._ha_link]
        self._ha = self._ha_link = self._ha_side = None
        await self._ha_gate.cancel()  # their ACKs wait for a partner we stop talking to
        for svc in services:
            if svc is None:
                continue
            try:
                await svc.stop()
            except Exception:
                log.exception("stopping the HA service")


async def _answer_sent(answering: asyncio.Task[Any] | None) -> None:
    """Wait (at most :data:`ANSWER_GRACE`) for the task that carries a command's connection
    (the transports run a command in it and write its answer from it) to finish."""
    if answering is not None and not answering.done() and answering is not asyncio.current_task():
        await asyncio.wait({answering}, timeout=ANSWER_GRACE)
