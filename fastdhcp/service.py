"""The running server: sockets, signals, timers and the group-commit pump (the only I/O).

Theory of operation
-------------------
One non-blocking UDP socket per configured interface (``0.0.0.0:port`` + ``SO_BINDTODEVICE``,
its :class:`~fastdhcp.engine.Link` is the interface's name and IPv4) and one per listen address
(``Link("", address)``). Each socket is watched with ``loop.add_reader``; when it is readable
the service drains it (up to :data:`READ_BATCH` datagrams), and for each datagram runs
``parse -> engine.handle -> send``, in compiled code (:mod:`fastdhcp._packetpath`, which counts
everything itself and reports the rare events, such as a malformed datagram, in a
:class:`~fastdhcp.pathreport.PathReport` this module drains after each burst to log them):

- an OFFER or NAK (no binding to commit) is sent at once;
- an ACK whose :class:`~fastdhcp.engine.Decision` carries a ``binding`` is *held*: the service
  gives the committer a :class:`~fastdhcp._packetpath.HeldAck` (endpoint, reply, held_at) and the
  reply leaves only in ``on_committed``, after the writer thread has made the batch durable
  (RFC 2131 3.1 step 4). ``on_failed`` drops those ACKs (counted), and asks the engine to roll
  the bindings back; the clients retransmit.
- after each drained burst the service calls ``committer.kick()``, so one burst of requests
  becomes one group commit.

Read pacing: most of the CPU a DORA costs at a few thousand per second is per wake-up, not per
datagram (epoll, the context switch, uvloop's dispatch, cold caches: at 3,000 DORA/s perfdhcp
a wake-up found ~3 datagrams). So after a burst that read something, the socket leaves epoll
and is read again a pace later, by a timer; the first tick that finds nothing puts it back in
epoll. A lone request is still answered at once; under load, a wake-up serves every datagram of
the last pace and one ``sendmmsg`` sends their replies. The pace adapts to the socket's arrival
rate (:func:`pace_for`): the time :data:`PACE_TARGET` datagrams take to arrive, from
:data:`MIN_PACE` up to ``server.read-pace-ms`` (:data:`READ_PACE`): 2 ms at 3,000 DORA/s, where
each wake-up saved is CPU saved, 0.7 ms at 11,000/s, where that already fills a read. The tick
is a timerfd watched by the loop (``fastdhcp._sockio.PaceTimer``), not a uvloop timer, whose
resolution is a whole millisecond.

Garbage collection: every DORA leaves a few long-lived container objects (leases, held
offers), and the default collector rescans all of them at each full collection: 30 ms stalls of
the loop (and so of every OFFER and ACK in flight) after a few seconds at 10,000 DORA/s, longer
as the table grows. The packet path makes no reference cycles (the collections under load find
nothing), so the server freezes what is alive (``gc.freeze()``, O(1)) at start and every
:data:`GC_FREEZE_INTERVAL` seconds: a collection only ever scans what was allocated since the
last freeze. A reference cycle that becomes garbage more than one interval after it was made is
not collected (refcounting still frees everything else).

The writer thread and the loop share the GIL: the service lowers the interpreter's switch
interval to :data:`SWITCH_INTERVAL` while it runs, so that neither waits the default 5 ms for the
other (the writer after each fsync, the loop while the writer encodes a batch).

Between parse and engine, :class:`fastdhcp.limits.EdgeGuard` (when configured) drops relayed
requests from untrusted relays and requests over the per-client or per-relay rate, and a request
that was not relayed has its option 82 ignored (RFC 3046 2.1/2.2,
``Message.ignore_unrelayed_agent_info``).

Malformed datagrams (``MalformedPacket``), engine drops (BOOTREPLYs among them) and any unexpected
exception are counted by reason and logged at a bounded rate; nothing in the packet path can
stop the loop.

Where a reply goes is decided by the engine (RFC 2131 4.1, ``fastdhcp.engine.reply_destination``):
the service
only turns ``Decision.dest_ip/dest_port`` into a ``sendto``, and for ``Decision.l2_unicast``
injects an ARP entry for ``yiaddr -> chaddr`` on the receiving interface and unicasts, falling
back to the broadcast destination when it cannot (no ``CAP_NET_ADMIN``, not an interface
socket).

Timers: ``engine.reclaim`` at the time it asks for; a one-line statistics summary every
``stats-interval`` seconds. Signals (installed by :meth:`Server.serve_forever`): SIGTERM/SIGINT
stop intake, flush the pending commits and send their ACKs, close the store; SIGHUP reloads the
configuration (a config that does not load is logged and the running one keeps serving).

The control channel (``fastdhcp.control``) can do what the signals do: ``config-set`` and
``config-reload`` apply a configuration as SIGHUP does (:meth:`Server.apply_config`,
:meth:`Server.reload_from_file`, which report their problems back), ``shutdown`` stops as
SIGTERM does once its answer has left (:meth:`Server.request_shutdown`). ``dhcp-disable``
makes every socket read discard (``DatagramIO.discard``): one flag tested per burst, in
Python, is all the enabled path pays; the compiled path knows nothing of it
(:class:`fastdhcp.dhcp_state.DhcpServiceState` holds who disabled it).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastdhcp import netio
from fastdhcp._packetpath import PacketPath
from fastdhcp._sockio import DatagramIO, PaceTimer
from fastdhcp.config import load as load_config
from fastdhcp.control import commands as control_commands
from fastdhcp.control.channel import ControlChannel
from fastdhcp.control.table import CommandTable
from fastdhcp.dhcp_state import DhcpServiceState, Origin
from fastdhcp.engine import Engine, Link
from fastdhcp.errors import ConfigError, StoreError
from fastdhcp.ha.service import HAService
from fastdhcp.ha.table_host import CommandTableHost
from fastdhcp.hosts import HostTable
from fastdhcp.limits import EdgeGuard
from fastdhcp.metrics import Metrics, MetricsServer, ServerCollector, type_name
from fastdhcp.pathreport import Event, PathEvent, PathReport
from fastdhcp.statistics import Statistics
from fastdhcp.store import GroupCommitter, LmdbLeaseStore

log = logging.getLogger("fastdhcp")

#: Datagrams read from one socket per readiness callback: large enough to batch commits, small
#: enough that one busy socket cannot starve the others or the timers.
READ_BATCH = 128
#: Read pacing (see the module docstring): the longest time between two reads of a socket that
#: had datagrams at its last read; 0 = read on every epoll wake-up.
READ_PACE = 0.002  # the default of `server.read-pace-ms`
#: Datagrams a paced read aims to find: the pace is this over the socket's recent arrival rate,
#: from :data:`MIN_PACE` up to the longest pace. As adaptive interrupt coalescing in a NIC: few,
#: well-filled wake-ups at low rates, where a millisecond more is invisible to a client; short
#: waits once a fraction of a millisecond brings enough datagrams to amortise a wake-up.
PACE_TARGET = 16
#: The shortest pace (seconds). The pace timer is a timerfd (fastdhcp._sockio.PaceTimer):
#: uvloop's own timers count whole milliseconds.
MIN_PACE = 0.0002
#: Weight of the newest read in the arrival-rate estimate (exponential moving average).
PACE_RATE_WEIGHT = 0.25
#: ``sys.setswitchinterval`` while the server runs (the default 5 ms is what the loop or the
#: writer thread could wait for the GIL, and so what an ACK or OFFER could wait for nothing).
SWITCH_INTERVAL = 0.0005
#: Seconds between two ``gc.freeze()`` while serving (see the module docstring); 0 = never.
GC_FREEZE_INTERVAL = 0.25
#: Bounds on the delay between two reclaim passes (seconds).
RECLAIM_MIN_DELAY = 0.05
RECLAIM_MAX_DELAY = 60.0
_BROADCAST = 0xFFFFFFFF


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


def _startup_file(config: Any) -> str | None:
    """The file ``config`` was loaded from, or None ("<string>", "<config-set>"...)."""
    source = getattr(config, "source", None)
    return source if isinstance(source, str) and source and not source.startswith("<") else None


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


def sd_notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) to systemd's ``$NOTIFY_SOCKET``; False if none.

    The protocol is one datagram on an AF_UNIX socket; an address starting with ``@`` is in the
    abstract namespace. The send never blocks: it runs on the event loop, and a receiver that
    stops reading (its queue holds ~10 datagrams) would otherwise stop the server on its next
    status line; such a message is dropped instead.
    """
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    addr = "\0" + path[1:] if path.startswith("@") else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            s.connect(addr)
            s.send(state.encode())
        return True
    except OSError:
        return False


@dataclass(eq=False)
class Endpoint:
    """One receiving socket and the link it serves."""

    key: tuple[str, str, int]  #: ("if", ifname, port) or ("addr", address, port)
    sock: socket.socket
    link: Any  #: fastdhcp.engine.Link
    ifname: str  #: "" for a listen-address socket
    arp_ok: bool = True  #: False once ARP injection failed for lack of privilege
    arp_cache: dict[int, bytes] = field(default_factory=dict)
    closed: bool = False
    #: read pacing (see the module docstring): out of epoll, read again when ``timer`` fires
    #: (or by ``pace``, a call_soon, when a read stopped at READ_BATCH)
    paced: bool = False
    pace: asyncio.Handle | None = None
    timer: PaceTimer = field(init=False)
    #: while paced: when the socket was last read (perf_counter) and its arrival rate
    #: (datagrams per second, moving average)
    last_read: float = 0.0
    rate: float = 0.0
    #: replies waiting for the end of this read burst (or commit) to leave in one sendmmsg:
    #: (reply, dest_ip, dest_port, received_at)
    out: list[tuple[bytes, int, int, float]] = field(default_factory=list)
    fd: int = -1
    io: DatagramIO = field(init=False)

    def __post_init__(self) -> None:
        self.fd = self.sock.fileno()
        self.io = DatagramIO(self.sock)
        self.timer = PaceTimer()

    def unpace(self) -> None:
        """Cancel a pending paced read (the socket is closing or leaving the loop)."""
        if self.pace is not None:
            self.pace.cancel()
            self.pace = None
        self.timer.disarm()
        self.paced = False

    def close(self) -> None:
        """Close the socket and the pace timer (after the loop stopped watching both)."""
        self.closed = True
        self.sock.close()
        self.timer.close()


def pace_for(rate: float, longest: float) -> float:
    """The next read pace (seconds) of a socket receiving ``rate`` datagrams per second: time
    for :data:`PACE_TARGET` datagrams, at least :data:`MIN_PACE` and at most ``longest``
    (``longest`` itself when the rate is not known yet)."""
    if rate <= 0.0 or longest <= MIN_PACE:
        return longest
    return min(max(PACE_TARGET / rate, MIN_PACE), longest)


def _endpoint_keys(config: Any) -> list[tuple[str, str, int]]:
    srv = config.server
    keys = [("if", name, srv.port) for name in srv.interfaces]
    keys += [("addr", str(a), srv.port) for a in srv.listen_addresses]
    return keys


def _open_endpoint(key: tuple[str, str, int]) -> Endpoint:
    kind, name, port = key
    if kind == "if":
        address = netio.interface_ipv4(name)
        sock = netio.open_interface_socket(name, port)
        return Endpoint(key, sock, Link(name, address), name)
    sock = netio.open_address_socket(name, port)
    return Endpoint(key, sock, Link("", netio.str_to_ip(name)), "")


class Server:
    """A fastdhcp server built from a :class:`fastdhcp.config.Config`.

    ``await start()`` opens the store, builds the engine, opens the sockets and starts serving;
    ``await stop()`` stops intake, flushes pending commits (sending their ACKs) and closes
    everything; ``reload(config)`` applies a new configuration. :meth:`serve_forever` adds the
    signal handlers and sd_notify and runs until SIGTERM/SIGINT.

    ``start`` either completes or raises with nothing left open: :class:`StartupError` (sockets,
    metrics endpoint), ``StoreError`` (database).
    """

    def __init__(self, config: Any, *, config_path: str | None = None,
                 log_level_pinned: bool = False) -> None:
        self.config = config
        #: the startup file: what SIGHUP and config-reload read, config-write writes by default
        self.config_path: str | None = (config_path if config_path is not None
                                        else _startup_file(config))
        #: True when --log-level overrides server.log-level (a reload then leaves it alone)
        self._log_level_pinned = log_level_pinned
        self.metrics = Metrics()
        self.store: Any = None
        self.engine: Any = None
        self.committer: Any = None
        self.metrics_server: MetricsServer | None = None
        self.endpoints: dict[tuple[str, str, int], Endpoint] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ipstr_cache: dict[int, str] = {}
        self._ratelog = RateLimitedLog(log)
        self._report = PathReport()  # filled by the packet path, drained by _drain
        #: relay trust and rate limits before the engine (None when none are configured)
        self._guard: EdgeGuard | None = EdgeGuard.from_config(config.server)
        self.metrics.limiters = self._limiter_rows
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._started = False
        self._closing = False
        self._closed: asyncio.Event | None = None
        self._stats_prev: tuple[float, list[int], list[int], dict[str, int], dict[str, int],
                                list[int], list[int]] | None = None
        self._debug = False
        self._stop_task: asyncio.Task[None] | None = None
        self._switch_prev: float | None = None
        #: the compiled per-datagram path (fastdhcp._packetpath), rebuilt when its inputs change
        self._path: PacketPath | None = None
        #: Kea's management API: the command table and the sockets that answer it
        self.commands: CommandTable = control_commands.build()
        self.control = ControlChannel(self)
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
        #: the HA service, when [high-availability] is configured (ha, cmd_ha)
        self._ha: HAService | None = None

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
            self.store = LmdbLeaseStore(str(db.path), **kwargs)
            self.engine = Engine(cfg, self.store)
            self.statistics = Statistics(self)
            self._hosts = HostTable(self.store)  # hosts (cmd_hosts)
            self.engine.attach_hosts(self._hosts)
            try:
                for key in _endpoint_keys(cfg):
                    ep = _open_endpoint(key)
                    self.endpoints[key] = ep
            except OSError as exc:
                raise StartupError(f"cannot open sockets: {exc.strerror or exc}") from exc
            if not self.endpoints:
                raise StartupError("nothing to listen on: server.interfaces and "
                                   "server.listen-addresses are both empty")
            self.committer = GroupCommitter(
                self.store,
                self._loop,
                self._on_committed,
                self._on_failed,
                batch_size=db.batch_size,
                max_wait=db.max_wait_ms / 1000.0,
            )
            if cfg.server.metrics:
                try:
                    self.metrics_server = MetricsServer(
                        ServerCollector(
                            self.metrics,
                            lambda: self._on_loop(self._pool_rows) or [],
                            lambda: self._on_loop(self._lease_count),
                            lambda: self._on_loop(self._kea_values),
                        ),
                        cfg.server.metrics,
                    )
                except (OSError, ValueError) as exc:
                    why = getattr(exc, "strerror", None) or exc
                    raise StartupError(f"metrics endpoint {cfg.server.metrics}: {why}") from exc
            try:
                await self.control.start(cfg.control_sockets)
            except OSError as exc:
                raise StartupError(f"control socket: {exc.strerror or exc}") from exc
            await self._start_ha()  # ha (cmd_ha)
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
        self._started = True
        self._schedule("reclaim", 0.0, self._reclaim)
        self._stats_prev = self._stats_snapshot()
        self._schedule_stats()
        if GC_FREEZE_INTERVAL > 0:
            gc.collect()  # what start-up left as garbage, then the rest is out of every scan
            self._gc_freeze()
        self._log_startup()

    async def _abort_start(self) -> None:
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
        for ep in self.endpoints.values():
            ep.close()
        self.endpoints.clear()
        self.engine = None
        if self.store is not None:
            self._close_store()

    def _close_store(self) -> None:
        close = getattr(self.store, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                log.exception("closing the lease database")
        self.store = None

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
        await self._stop_ha()  # ha (cmd_ha): no more heartbeats nor updates to the partner
        await self.control.close()  # no command starts while the commits are flushed
        for ep in self.endpoints.values():
            self._unwatch(ep)
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

    def apply_config(self, config: Any) -> ReloadResult:
        """:meth:`reload` ``config``, turning a refusal into its problem lines (logged; the
        running configuration keeps serving). SIGHUP, config-reload and config-set use it."""
        try:
            self.reload(config)
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

    def reload(self, config: Any) -> None:
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

        want = _endpoint_keys(config)
        refused = self.check_config(config)
        if not refused.ok:
            raise StartupError(refused.problems[0])
        new_eps: dict[tuple[str, str, int], Endpoint] = {}
        try:
            for key in want:
                if key not in self.endpoints:
                    new_eps[key] = _open_endpoint(key)
        except OSError as exc:
            for ep in new_eps.values():
                ep.close()
            raise StartupError(f"cannot open sockets: {exc.strerror or exc}") from exc

        try:
            assert self.engine is not None
            self.engine.reload(config)
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
        self._guard = EdgeGuard.from_config(config.server, self._guard)
        if old.server.log_level != config.server.log_level and not self._log_level_pinned:
            logging.getLogger().setLevel(config.server.log_level.upper())
            self._debug = log.isEnabledFor(logging.DEBUG)
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
        committer = self.committer
        return PacketPath(self.engine, self.metrics, self._report, self._guard,
                          committer.hold_many if committer is not None else None, self._dest_ip,
                          self._debug)

    def _on_readable(self, ep: Endpoint) -> None:
        path = self._path
        assert path is not None
        t0 = time.perf_counter()
        if self._discarding:  # dhcp-disable: one test a burst, nothing more when enabled
            n = self._discard(ep, READ_BATCH)
        else:
            n = path.read(ep, READ_BATCH, time.time(), t0)
        ms = self.config.server.read_pace_ms
        longest = READ_PACE if ms is None else ms / 1000.0
        loop = self._loop
        assert loop is not None
        paced = bool(n and longest > 0)
        if paced and ep.paced:
            # a paced read: these datagrams arrived since the last one
            rate = n / max(t0 - ep.last_read, 1e-4)
            ep.rate += PACE_RATE_WEIGHT * (rate - ep.rate) if ep.rate else rate
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
        self._drain()
        if paced:
            ep.last_read = t0
            if n >= READ_BATCH:  # more may be waiting: after the other ready callbacks
                ep.pace = loop.call_soon(self._on_pace, ep)
            else:
                ep.timer.arm(pace_for(ep.rate, longest))

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

    # The packet path's report (fastdhcp.pathreport): counted there, logged here.

    def _drain(self) -> None:
        """Write the log lines of the events the packet path reported since the last drain."""
        events, lost = self._report.take()
        for ev in events:
            self._log_event(ev)
        if lost:
            self._ratelog(logging.INFO, "report-lost", "%d more packet-path events since the "
                          "last drain (counted, not logged)", lost)

    def _log_event(self, ev: PathEvent) -> None:
        src = f"{self._ipstr(ev.ip)}:{ev.port}"
        kind = ev.event
        if kind is Event.DECISION:
            log.debug("%s on %s from %s xid=%08x chaddr=%s -> %s", type_name(ev.message_type),
                      ev.where, src, ev.xid, ev.chaddr.hex(":"), ev.reason)
        elif kind is Event.MALFORMED:
            self._ratelog(logging.INFO, "malformed", "malformed datagram from %s on %s: %s",
                          src, ev.where, ev.reason)
        elif kind is Event.GUARD_DROP:
            self._ratelog(logging.INFO, ev.reason, "%s: dropped %s from %s on %s (giaddr %s, "
                          "chaddr %s)", ev.reason, type_name(ev.message_type), src, ev.where,
                          self._ipstr(ev.giaddr), ev.chaddr.hex(":"))
        elif kind is Event.ENGINE_DROP:
            self._ratelog(logging.INFO, "drop:" + ev.reason, "no reply to %s from %s on %s "
                          "chaddr %s: %s", type_name(ev.message_type), src, ev.where,
                          ev.chaddr.hex(":"), ev.reason)
        elif kind is Event.INTERNAL_ERROR:
            err = ev.error
            self._ratelog(logging.ERROR, "internal", "unexpected error handling a datagram from "
                          "%s on %s: %r\n%s", src, ev.where, err,
                          "".join(traceback.format_exception(err)).rstrip() if err else "")
        elif kind is Event.RECV_FAILED:
            self._ratelog(logging.WARNING, "recv", "receive error on %s: %s", ev.where, ev.error)
        elif kind is Event.SEND_FAILED:
            self._ratelog(logging.WARNING, "send", "sending to %s on %s failed: %s", src,
                          ev.where, os.strerror(ev.errno))

    def _recv_failed(self, ep: Endpoint, exc: OSError) -> None:
        """A failed receive outside the packet path (the disabled service's discard): counted
        and reported as the path does, logged by the same _drain."""
        self.metrics.drop("recv-error")
        self._report.add(PathEvent(Event.RECV_FAILED, ep.key[1], error=exc))

    def _limiter_rows(self) -> list[tuple[str, int, int]]:
        """(limit, keys tracked, evictions) of each configured rate limiter (for metrics)."""
        guard = self._guard
        rows = []
        if guard is not None:
            for name, lim in (("client", guard.clients), ("relay", guard.relays)):
                if lim is not None:
                    rows.append((name, len(lim), lim.evictions))
        return rows

    def _ipstr(self, ip: int) -> str:
        s = self._ipstr_cache.get(ip)
        if s is None:
            if len(self._ipstr_cache) > 65536:
                self._ipstr_cache.clear()
            s = self._ipstr_cache[ip] = netio.ip_to_str(ip)
        return s

    def _dest_ip(self, ep: Endpoint, d: Any) -> int:
        """The IPv4 to send ``d.reply`` to: ``d.dest_ip``, or for a layer-2 unicast (RFC 2131
        4.1) yiaddr once an ARP entry for it is in place (else ``d.dest_ip``, the broadcast)."""
        l2 = d.l2_unicast
        if l2 is not None and ep.ifname and ep.arp_ok:
            yiaddr, chaddr = l2
            if ep.arp_cache.get(yiaddr) == chaddr:
                return int(yiaddr)
            try:
                netio.inject_arp(ep.sock, ep.ifname, yiaddr, chaddr)
            except OSError as exc:
                if exc.errno in (1, 13):  # EPERM/EACCES: no CAP_NET_ADMIN, stop trying
                    ep.arp_ok = False
                    log.warning("cannot add ARP entries on %s (%s): replies to clients without "
                                "an address are broadcast", ep.ifname, exc.strerror)
                else:
                    self._ratelog(logging.WARNING, "arp", "ARP entry %s on %s failed: %s",
                                  self._ipstr(yiaddr), ep.ifname, exc)
            else:
                if len(ep.arp_cache) > 65536:
                    ep.arp_cache.clear()
                ep.arp_cache[yiaddr] = chaddr
                return int(yiaddr)
        return int(d.dest_ip)

    # ----------------------------------------------------------------- commit callbacks

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
        if not tokens:
            return
        m.commit_batch.observe(len(tokens))
        m.commit_latency.observe(time.perf_counter() - tokens[0].held_at)
        assert self._path is not None
        self._path.deliver(tokens)
        self._drain()

    def _on_failed(self, leases: list[Any], tokens: list[Any], exc: BaseException) -> None:
        m = self.metrics
        m.commit_failures += 1
        m.acks_lost += len(tokens)
        m.drop("commit-failed", len(tokens))
        self._ratelog(logging.ERROR, "commit", "group commit of %d leases failed: %s; "
                      "%d ACKs not sent (clients will retry)", len(leases), exc, len(tokens))
        try:
            if self.engine is not None:
                self.engine.rollback(leases)
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

    def pool_stats(self) -> list[tuple[int, str, str, int, int]]:
        """(subnet id, subnet, pool, size, used) for every pool, from ``engine.pool_stats()``."""
        return list(self._pool_rows())

    def _pool_rows(self) -> Iterable[tuple[int, str, str, int, int]]:
        engine = self.engine
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
        store = self.store
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
        by_subnet: dict[int, list[tuple[int, str, str, int, int]]] = {}
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

    def _stats_snapshot(self) -> tuple[float, list[int], list[int], dict[str, int],
                                       dict[str, int], list[int], list[int]]:
        m = self.metrics
        return (time.monotonic(), list(m.received), list(m.sent), dict(m.dropped),
                dict(m.malformed), list(m.offer_latency.counts), list(m.ack_latency.counts))

    def stats_line(self) -> str:
        """The periodic summary (rates since the last line, drops, pool use, latencies)."""
        prev = self._stats_prev or self._stats_snapshot()
        cur = self._stats_snapshot()
        self._stats_prev = cur
        dt = max(cur[0] - prev[0], 1e-9)

        def rates(a: list[int], b: list[int]) -> str:
            parts = [f"{type_name(i)} {(b[i] - a[i]) / dt:.0f}/s"
                     for i in range(256) if b[i] != a[i]]
            return ", ".join(parts) or "none"

        def deltas(a: dict[str, int], b: dict[str, int]) -> str:
            parts = [f"{k} {v - a.get(k, 0)}" for k, v in sorted(b.items()) if v != a.get(k, 0)]
            return ", ".join(parts) or "none"

        m = self.metrics
        lat = []
        for name, h, before, after in (("offer", m.offer_latency, prev[5], cur[5]),
                                        ("ack", m.ack_latency, prev[6], cur[6])):
            diff = [y - x for x, y in zip(before, after, strict=True)]
            if any(diff):
                lat.append(f"{name} p50<={h.quantile(0.5, diff) * 1e3:g}ms "
                           f"p99<={h.quantile(0.99, diff) * 1e3:g}ms")
        pools = []
        try:
            for sid, _subnet, pool, size, used in self._pool_rows():
                pct = 100.0 * used / size if size else 0.0
                pools.append(f"{sid}:{pool} {used}/{size} ({pct:.1f}%)")
        except Exception:
            pools.append("?")
        return (f"stats: in [{rates(prev[1], cur[1])}] out [{rates(prev[2], cur[2])}] "
                f"drops [{deltas(prev[3], cur[3])}] malformed [{deltas(prev[4], cur[4])}] "
                f"latency [{'; '.join(lat) or 'none'}] pools [{', '.join(pools) or 'none'}]")

    def _log_stats(self, final: bool = False) -> None:
        line = self.stats_line()
        if final:
            line = "final " + line
        log.info("%s", line)
        if not final:  # `systemctl status` shows the latest summary
            sd_notify("STATUS=" + line[:200])

    # ----------------------------------------------------------------- config and server
    # commands (fastdhcp.control.cmd_config, cmd_server): what ControlTarget offers them

    def check_config(self, config: Any) -> ReloadResult:
        """What :meth:`reload` would refuse in ``config`` before opening anything (config-test
        asks this after the loader's checks): ``ok`` when nothing."""
        if not _endpoint_keys(config):
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

    async def _start_ha(self) -> None:
        conf = self.config.high_availability
        if conf is None:
            return
        self._ha = HAService(conf, self.ha_host)
        await self._ha.start()

    async def _stop_ha(self) -> None:
        ha, self._ha = self._ha, None
        if ha is not None:
            try:
                await ha.stop()
            except Exception:
                log.exception("stopping the HA service")


async def _answer_sent(answering: asyncio.Task[Any] | None) -> None:
    """Wait (at most :data:`ANSWER_GRACE`) for the task that carries a command's connection
    (the transports run a command in it and write its answer from it) to finish."""
    if answering is not None and not answering.done() and answering is not asyncio.current_task():
        await asyncio.wait({answering}, timeout=ANSWER_GRACE)
