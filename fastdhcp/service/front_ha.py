"""The one HA service of a multi-worker server, run by the supervisor's control front
(docs/high-availability.md, "With several workers"; the link is :mod:`fastdhcp.ha.link`).

A pair is between two *servers*, whatever their workers: one state machine, one heartbeat, one
connection pool to the partner, one unsent-update-count, one sync. So the supervisor runs the
:class:`~fastdhcp.ha.service.HAService` and answers the partner's HA commands itself, and:

- pushes every change of its state to the workers (:data:`~fastdhcp.ha.link.STATE_SET`), whose
  packet paths filter and allocate by it;
- answers each worker's commit (:data:`~fastdhcp.ha.link.COMMITTED`) with the addresses whose
  ACK must not leave, after sending their update to the partner; the batches of all workers
  merge on their way there (``fastdhcp.ha.coalesce``), so N workers make no more requests
  than one;
- stores the partner's leases (its updates, a sync's pages) through the worker that owns each
  address (:data:`~fastdhcp.ha.link.APPLY`, split by ``fanout.Owners``), which checks and
  commits them as a single server does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastdhcp.config import Config, ControlSocket, SocketType
from fastdhcp.control import cmd_ha
from fastdhcp.control.channel import ControlChannel
from fastdhcp.control.fanout import Owners
from fastdhcp.control.merge import WorkerAnswer
from fastdhcp.control.protocol import Answer, Caller, CommandError, Request, Result, success
from fastdhcp.control.table import not_supported
from fastdhcp.dhcp_state import Origin
from fastdhcp.ha import link
from fastdhcp.ha import messages as m
from fastdhcp.ha.messages import BatchResult, HALease, PeerAnswer, PeerError
from fastdhcp.ha.service import HAService
from fastdhcp.metrics import HAGauges
from fastdhcp.service.ha_gate import gauges
from fastdhcp.service.worker_paths import worker_ha_socket

__all__ = ["AskWorker", "FrontHA"]

log = logging.getLogger("fastdhcp.ha")

#: How the front asks worker k a command (``ControlFront._ask``: bounded in time, never raises).
AskWorker = Callable[[int, str, Any], Awaitable[WorkerAnswer]]


class FrontHA:
    """``config``'s ``[high-availability]`` for ``owners.n`` workers reached by ``ask``."""

    def __init__(self, config: Config, owners: Owners, ask: AskWorker) -> None:
        conf = config.high_availability
        if conf is None:
            raise ValueError("FrontHA needs [high-availability]")
        self._owners = owners
        self._ask = ask
        self._host = _WorkersHost(owners, ask)
        #: the state the workers should have, and the one they were last all told
        self._want = link.LinkState.closed()
        self._told: link.LinkState | None = None
        self._pusher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running = False
        self.service = HAService(conf, self._host, on_change=self._changed)
        self._channel = ControlChannel(self._dispatch)
        self._socket = ControlSocket(SocketType.UNIX, worker_ha_socket(config))

    @property
    def ha_host(self) -> _WorkersHost:
        """cmd_ha's HATarget: the partner's leases go to their owners."""
        return self._host

    def enable_dhcp(self, origin: Origin) -> None:
        """cmd_ha's HATarget (``ha-sync-complete-notify``): every worker enables it again."""
        self._spawn(self._enable_all(origin))

    async def _enable_all(self, origin: Origin) -> None:
        await self._tell_all("dhcp-enable", {"origin": origin.value},
                             f"enable DHCP for {origin.value}")

    async def open(self) -> None:
        """Listen for the workers (they ask the state as they start; DHCP stays off until the
        service runs: a new machine is in waiting)."""
        await self._channel.start((self._socket,))

    async def start(self) -> None:
        """Start the HA service (once every worker is up, so that its start-up sync can store
        the partner's leases)."""
        if not self._running:
            self._running = True
            await self.service.start()
            self._changed(self.service.link_state())

    async def close(self) -> None:
        """Stop the service, the pushes and the workers' socket."""
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._running:
            self._running = False
            await self.service.stop()
        await self._channel.close()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ state to the workers

    def _changed(self, state: link.LinkState) -> None:
        self._want = state
        if self._running and (self._pusher is None or self._pusher.done()):
            self._pusher = self._spawn(self._push())  # (before start: the workers ask)

    async def _push(self) -> None:
        """Tell every worker the latest state, one push at a time (so none arrives after a
        newer one); a worker that missed it gets it with its next commit's answer."""
        while self._told != self._want:
            state = self._want
            await self._tell_all(link.STATE_SET, state.to_json(), "take the HA state")
            self._told = state

    async def _tell_all(self, command: str, arguments: Any, what: str) -> None:
        """``command`` to every worker; each that did not answer result 0 is logged."""
        got = await asyncio.gather(*(self._ask(k, command, arguments)
                                     for k in range(self._owners.n)))
        for w in got:
            if w.answer is None or w.answer.result is not Result.SUCCESS:
                log.warning("HA: worker %d did not %s: %s", w.worker, what,
                            w.error or (w.answer.text if w.answer else ""))

    # ------------------------------------------------------------------ the partner's commands

    async def command(self, request: Request) -> Answer:
        """One of cmd_ha's commands from the configured control sockets (the partner's)."""
        return await cmd_ha.run(request.command, self, self.service, request.arguments)

    def status(self) -> list[dict[str, object]]:
        """status-get's ``high-availability`` list."""
        return self.service.status()

    def gauges(self) -> HAGauges | None:
        """The Prometheus HA gauges (on the loop)."""
        return gauges(self.service)

    # ------------------------------------------------------------------ the workers' link

    async def _dispatch(self, request: Request, caller: Caller) -> Answer:
        try:
            if request.command == link.COMMITTED:
                updated, deleted = m.parse_batch_args(request.arguments)
                refused = await self.service.lease_changed(updated, deleted)
                return success(arguments={"refused": sorted(refused),
                                          "state": self.service.link_state().to_json()})
            if request.command == link.MISSED:
                for q in link.parse_missed_args(request.arguments):
                    self.service.client_query(q.client_id, q.chaddr, q.secs)
                return success()
            if request.command == link.STATE:
                return success(arguments=self.service.link_state().to_json())
        except CommandError as exc:
            return exc.answer()
        return not_supported(request.command)


class _WorkersHost:
    """The HA service's :class:`~fastdhcp.ha.service.HAHost` in the supervisor: each lease
    to the worker that owns its address, at most ``link.MAX_ROWS`` a request."""

    def __init__(self, owners: Owners, ask: AskWorker) -> None:
        self._owners = owners
        self._ask = ask

    async def apply_leases(self, updated: list[HALease],
                           deleted: list[HALease]) -> list[BatchResult]:
        """The partner's update batch, through the owners."""
        return await self._apply(updated, deleted, False)

    async def apply_synced(self, page: list[HALease]) -> list[BatchResult]:
        """A sync page, merged by each owner with its table (fastdhcp.ha.reconcile)."""
        return await self._apply(page, [], True)

    async def _apply(self, updated: list[HALease], deleted: list[HALease],
                     sync: bool) -> list[BatchResult]:
        per: dict[int, tuple[list[HALease], list[HALease]]] = {}
        for into, leases in ((0, updated), (1, deleted)):
            for x in leases:
                per.setdefault(self._owners.of(x.ip), ([], []))[into].append(x)
        requests = []
        for k, (upd, dele) in per.items():
            for i in range(0, max(len(upd), len(dele)), link.MAX_ROWS):
                args = m.batch_request(upd[i:i + link.MAX_ROWS],
                                       dele[i:i + link.MAX_ROWS])["arguments"]
                requests.append(self._one(k, {**args, "sync": sync}))
        failed: list[BatchResult] = []
        for got in await asyncio.gather(*requests):
            failed.extend(got)
        return failed

    async def _one(self, k: int, args: dict[str, Any]) -> list[BatchResult]:
        w = await self._ask(k, link.APPLY, args)
        a = w.answer
        if a is None:
            # nothing stored by that worker: the whole batch fails (the partner sees an
            # error and holds its ACKs; a sync fails and is tried again), nothing is lost
            raise CommandError(f"worker {k} did not store the partner's leases: {w.error}")
        try:
            return m.parse_batch_result(PeerAnswer(int(a.result), a.text or "", a.arguments))
        except PeerError as exc:
            raise CommandError(f"worker {k} did not store the partner's leases: {exc}") \
                from None
