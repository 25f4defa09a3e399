"""The supervisor of a multi-worker server (``[server] workers`` > 1, docs/scaling.md).

``fastdhcp serve`` with N workers runs this instead of one :class:`~.server.Server`:

1. opens the lease database once (schema check, creation) and closes it again: no LMDB handle
   is ever shared with a worker;
2. makes the N sockets of each reuseport group (one group per interface / listen address), in
   worker order, and attaches the chaddr steering program (:func:`fastdhcp.slices.
   steering_program`) to each group, so that socket k of every group gets worker k's clients;
3. starts worker k as a fresh interpreter (``python3 -m fastdhcp.service.worker``) holding
   socket k of every group (an exec, not a bare fork: neither the event loop nor an LMDB handle
   crosses it); every worker opens the database itself;
4. restarts a worker that dies, on the same slot with the same sockets (the supervisor keeps
   every socket open, so datagrams for a dead worker wait in its socket's buffer), after
   freeing the reader slots it held (``mdb_reader_check``); gives up, stopping every worker,
   when a worker dies :data:`FAST_FAILURES` times in a row within :data:`FAST_FAILURE` seconds
   of its start (a configuration or database it cannot serve);
5. forwards SIGHUP (reload) and SIGTERM/SIGINT (graceful stop: each worker stops intake,
   commits what it staged and sends those ACKs) to every worker, and exits with 0 when every
   worker stopped cleanly, else 1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastdhcp import netio
from fastdhcp.config import Config
from fastdhcp.errors import StoreError
from fastdhcp.service.endpoints import EndpointKey, endpoint_keys
from fastdhcp.service.notify import sd_notify
from fastdhcp.service.worker import ENV_FORWARD, ENV_SOCKETS, ENV_SUPERVISOR
from fastdhcp.service.worker_paths import worker_control_socket, workers_directory
from fastdhcp.slices import steering_program

if TYPE_CHECKING:
    from fastdhcp.service.control_front import ControlFront

__all__ = ["FAST_FAILURE", "FAST_FAILURES", "Supervisor", "open_groups", "run_supervisor"]

log = logging.getLogger("fastdhcp")

#: A worker that exits within this many seconds of its start failed fast (it could not
#: start: a bad database, a config it refuses); one that ran longer crashed while serving and
#: is restarted at once.
FAST_FAILURE = 5.0
#: Fast failures of one slot in a row after which the supervisor stops everything.
FAST_FAILURES = 3
#: Send buffer of each forwarding socket: a burst of renewals for another worker (rare by
#: design: only after N changed) queues there rather than being handled where it landed.
FORWARD_BUFFER = 1 << 20
#: sizeof(sockaddr_un.sun_path), with its terminating NUL.
UNIX_PATH_MAX = 108
#: Wait before restarting a worker that failed fast.
RESTART_DELAY = 0.5


def open_groups(keys: list[EndpointKey], n: int) -> dict[EndpointKey, list[socket.socket]]:
    """The N sockets of each reuseport group, in worker order, each group with the steering
    program attached (``OSError`` naming the socket if one cannot be made; nothing is left
    open then)."""
    groups: dict[EndpointKey, list[socket.socket]] = {}
    prog = steering_program(n)
    try:
        for key in keys:
            kind, name, port = key
            group = groups[key] = []
            for _ in range(n):
                group.append(netio.open_interface_socket(name, port, reuseport=True)
                             if kind == "if" else
                             netio.open_address_socket(name, port, reuseport=True))
            try:
                netio.attach_steering(group[0], prog)
            except OSError as exc:
                raise OSError(exc.errno, f"{name}:{port}: SO_ATTACH_REUSEPORT_CBPF: "
                                         f"{exc.strerror}") from None
    except BaseException:
        for group in groups.values():
            for sock in group:
                sock.close()
        raise
    return groups


@dataclass(eq=False)
class _Slot:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    fast_failures: int = 0
    restarts: int = 0
    exit_code: int | None = None
    restart: asyncio.TimerHandle | None = field(default=None, repr=False)
    pidfd: int = -1  #: readable once the worker exited (uvloop keeps SIGCHLD for itself)


class Supervisor:
    """Runs N workers for ``config`` (read from ``config_path`` by each worker)."""

    def __init__(self, config: Config, config_path: str, log_level: str | None = None) -> None:
        self.config = config
        self.config_path = os.path.abspath(config_path)
        self.log_level = log_level
        self.n = config.server.workers
        self.groups: dict[EndpointKey, list[socket.socket]] = {}
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.slots = [_Slot(k) for k in range(self.n)]
        self._stopping = False
        self._failed = False
        self._done: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: the control front (the ``control_front`` module beside this one), when present
        self.front: ControlFront | None = None
        #: the front's HA start once every worker is up (kept: a task needs a reference)
        self._ha_start: asyncio.Future[None] | None = None
        self._follow: asyncio.Future[None] | None = None
        #: where the workers' sd_notify lines arrive: READY=1 goes to systemd once every
        #: worker has said it (a worker that restarts says it again, unseen by systemd)
        self._notify: socket.socket | None = None
        self._ready: set[int] = set()
        self.ready = False
        #: the exit status once every worker stopped cleanly (shutdown's exit-value)
        self._exit_value = 0

    # ----------------------------------------------------------------- start-up

    def prepare(self) -> None:
        """Check the database, make the sockets and the workers' directory (all before any
        worker starts). Raises StoreError or OSError."""
        from fastdhcp.store import LmdbLeaseStore

        longest = os.path.join(workers_directory(self.config), "notify.sock")
        for path in (longest, worker_control_socket(self.config, self.n - 1)):
            if len(os.fsencode(path)) >= UNIX_PATH_MAX:
                raise OSError(f"{path}: longer than a Unix socket path may be "
                              f"({UNIX_PATH_MAX - 1} bytes): the workers' sockets live in the "
                              "lease database directory, give it a shorter path")
        db = self.config.lease_database
        kwargs: dict[str, Any] = {"map_size": db.map_size} if db.map_size else {}
        store = LmdbLeaseStore(str(db.path), sync=db.sync, create=True, **kwargs)
        store.close()
        keys = endpoint_keys(self.config)
        if not keys:
            raise OSError("nothing to listen on: server.interfaces and "
                          "server.listen-addresses are both empty")
        self.groups = open_groups(keys, self.n)
        # worker k reads pairs[k][1]; the others write pairs[k][0] (forwarding)
        self.pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
                      for _ in range(self.n)]
        for a, _b in self.pairs:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, FORWARD_BUFFER)
        os.makedirs(workers_directory(self.config), mode=0o700, exist_ok=True)

    def _spawn(self, slot: _Slot) -> None:
        k = slot.index
        fds = [(key[0], key[1], key[2], group[k].fileno()) for key, group in self.groups.items()]
        env = dict(os.environ)
        env[ENV_SOCKETS] = json.dumps(fds)
        inbox = self.pairs[k][1].fileno()
        outs = [-1 if j == k else self.pairs[j][0].fileno() for j in range(self.n)]
        env[ENV_FORWARD] = json.dumps({"inbox": inbox, "out": outs})
        passed = [f[3] for f in fds] + [inbox] + [fd for fd in outs if fd >= 0]
        argv = [sys.executable, "-m", "fastdhcp.service.worker", "--config", self.config_path,
                "--worker", str(k), "--workers", str(self.n)]
        if self.log_level:
            argv += ["--log-level", self.log_level]
        try:
            os.unlink(worker_control_socket(self.config, k))  # a dead worker's leftover
        except FileNotFoundError:
            pass
        env[ENV_SUPERVISOR] = str(os.getpid())
        if self._notify is not None:  # the worker's READY=1 comes here (see _on_notify)
            env["NOTIFY_SOCKET"] = self._notify.getsockname()
        else:
            env.pop("NOTIFY_SOCKET", None)
        slot.proc = subprocess.Popen(argv, env=env, pass_fds=passed)
        slot.started = time.monotonic()
        slot.exit_code = None
        if self._loop is not None:
            slot.pidfd = os.pidfd_open(slot.proc.pid)
            self._loop.add_reader(slot.pidfd, self._reap)
        log.info("worker %d started (pid %d)", k, slot.proc.pid)

    def _reader_check(self) -> None:
        """Free the LMDB reader slots of dead processes (a killed worker's)."""
        import lmdb

        try:
            env = lmdb.open(str(self.config.lease_database.path), max_dbs=8, create=False,
                            lock=True, map_size=0)
        except lmdb.Error as exc:
            log.warning("reader check: %s", exc)
            return
        try:
            freed = env.reader_check()
            if freed:
                log.info("freed %d stale LMDB reader slots", freed)
        finally:
            env.close()

    # ----------------------------------------------------------------- running

    async def run(self) -> int:
        """Start every worker and supervise them until a stop signal; the exit status."""
        loop = self._loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._open_notify()
        for slot in self.slots:
            self._spawn(slot)
        loop.add_signal_handler(signal.SIGTERM, self.stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        await self._start_front()
        log.info("supervising %d workers (pid %d); sockets: %s", self.n, os.getpid(),
                 ", ".join(f"{k[1]}:{k[2]}" for k in self.groups))
        try:
            await self._done
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            await self._close_front()
            if self._notify is not None:
                loop.remove_reader(self._notify.fileno())
                self._notify.close()
                self._notify = None
            for group in self.groups.values():
                for sock in group:
                    sock.close()
            for pair in self.pairs:
                for sock in pair:
                    sock.close()
        if self._failed:
            return 1
        if not all(s.exit_code == 0 for s in self.slots):
            return 1
        return self._exit_value

    def _open_notify(self) -> None:
        path = os.path.join(workers_directory(self.config), "notify.sock")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.setblocking(False)
        self._notify = sock
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._on_notify)

    def _on_notify(self) -> None:
        assert self._notify is not None
        while True:
            try:
                data = self._notify.recv(4096)
            except BlockingIOError:
                return
            lines = data.decode(errors="replace").splitlines()
            if "READY=1" not in lines:
                continue
            pid = next((int(x[8:]) for x in lines if x.startswith("MAINPID=")
                        and x[8:].isdigit()), 0)
            for slot in self.slots:
                if slot.proc is not None and slot.proc.pid == pid:
                    self._ready.add(slot.index)
            if self.ready and self.front is not None:
                # a worker reloaded (SIGHUP) or was restarted: the front routes by the
                # pools the workers run now
                self._follow = asyncio.ensure_future(self.front.follow_workers())
            if not self.ready and len(self._ready) == self.n:
                self.ready = True
                log.info("all %d workers serving", self.n)
                if self.front is not None:
                    self._ha_start = asyncio.ensure_future(self.front.workers_ready())
                sd_notify(f"READY=1\nMAINPID={os.getpid()}\nSTATUS=serving, {self.n} workers")

    async def _start_front(self) -> None:
        """Serve the configured control sockets here, routed to the workers' private ones
        (and the HA relationship, when configured: :mod:`.front_ha`)."""
        from fastdhcp.service.control_front import ControlFront

        paths = [worker_control_socket(self.config, k) for k in range(self.n)]
        front = ControlFront(self.config, paths, on_shutdown=self._shutdown)
        try:
            await front.start()
        except (OSError, ValueError) as exc:  # a socket or the metrics port it cannot open
            log.error("control sockets: %s: stopping", exc.strerror
                      if isinstance(exc, OSError) and exc.strerror else exc)
            self._failed = True
            self.stop("control front")
            return
        self.front = front

    def _shutdown(self, exit_value: int) -> None:
        """The ``shutdown`` command (from the control front): stop, then exit with
        ``exit_value``."""
        self._exit_value = exit_value
        self.stop("shutdown command")

    async def _close_front(self) -> None:
        front, self.front = self.front, None
        if front is not None:
            await front.close()

    def _forward(self, sig: int) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                try:
                    slot.proc.send_signal(sig)
                except ProcessLookupError:
                    pass

    def stop(self, name: str = "stop") -> None:
        """Stop every worker gracefully (each flushes its commits); run returns once all
        exited."""
        if self._stopping:
            return
        self._stopping = True
        log.info("%s: stopping %d workers", name, self.n)
        sd_notify("STOPPING=1")
        for slot in self.slots:
            if slot.restart is not None:
                slot.restart.cancel()
                slot.restart = None
        self._forward(signal.SIGTERM)
        self._reap()

    def _on_hup(self) -> None:
        # each worker reloads itself; systemd hears of it here only (MONOTONIC_USEC: as
        # Server._on_hup, for Type=notify-reload units)
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        sd_notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")
        self._forward(signal.SIGHUP)
        sd_notify("READY=1")

    def _reap(self) -> None:
        for slot in self.slots:
            proc = slot.proc
            if proc is None:
                continue
            rc = proc.poll()
            if rc is None:
                continue
            slot.proc = None
            slot.exit_code = rc
            if slot.pidfd >= 0:
                assert self._loop is not None
                self._loop.remove_reader(slot.pidfd)
                os.close(slot.pidfd)
                slot.pidfd = -1
            if self._stopping:
                log.info("worker %d exited (%d)", slot.index, rc)
                continue
            self._died(slot, rc)
        if self._stopping and all(s.proc is None for s in self.slots):
            if self._done is not None and not self._done.done():
                self._done.set_result(None)

    def _died(self, slot: _Slot, rc: int) -> None:
        lived = time.monotonic() - slot.started
        how = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
        slot.fast_failures = slot.fast_failures + 1 if lived < FAST_FAILURE else 0
        if slot.fast_failures >= FAST_FAILURES:
            log.error("worker %d died (%s) %d times in a row within %.0f s of its start: "
                      "stopping", slot.index, how, slot.fast_failures, FAST_FAILURE)
            self._failed = True
            self.stop("worker failures")
            return
        slot.restarts += 1
        log.warning("worker %d died (%s) after %.1f s: restarting it", slot.index, how, lived)
        self._reader_check()
        delay = RESTART_DELAY if slot.fast_failures else 0.0
        assert self._loop is not None
        slot.restart = self._loop.call_later(delay, self._restart, slot)

    def _restart(self, slot: _Slot) -> None:
        slot.restart = None
        if not self._stopping:
            self._spawn(slot)


def run_supervisor(config: Config, config_path: str, log_level: str | None = None) -> int:
    """``fastdhcp serve`` with ``[server] workers`` > 1: the exit status."""
    import uvloop

    sup = Supervisor(config, config_path, log_level)
    try:
        sup.prepare()
    except StoreError as exc:
        print(f"fastdhcp: lease database {config.lease_database.path}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        for group in sup.groups.values():
            for sock in group:
                sock.close()
        print(f"fastdhcp: cannot open sockets: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return uvloop.run(sup.run())
