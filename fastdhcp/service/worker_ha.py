"""A worker's side of HA in a multi-worker server (:mod:`fastdhcp.ha.link`): the scope filter
and allocation share its packet path reads, set by the supervisor's one HA service, and the
ACK gate's question to that service after each group commit.

The worker never talks to the partner. Whatever goes wrong on the link holds ACKs back rather
than letting one leave unacknowledged: the supervisor not answering refuses the whole batch
(its clients retry, as when the partner does not answer), and a worker serves nobody until it
has heard the supervisor's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastdhcp._hascope import MissedQuery, ScopeFilter
from fastdhcp.control.protocol import CommandError, Result
from fastdhcp.control.upstream import WorkerUnavailable, ask
from fastdhcp.ha import link
from fastdhcp.ha import messages as m
from fastdhcp.ha.messages import HALease
from fastdhcp.ha.peer import REQUEST_TIMEOUT

__all__ = ["WorkerHA"]

log = logging.getLogger("fastdhcp.ha")

#: Seconds a commit's question waits for the supervisor: its HA service may wait the partner's
#: request timeout for the update (10 s) and a merged batch ahead of it; past this the batch's
#: ACKs are refused (the clients retry).
COMMIT_TIMEOUT = 2 * REQUEST_TIMEOUT
#: Seconds between tries to read the supervisor's state at start (it may not listen yet).
_RETRY = 0.2
#: Missed queries kept for the next send (Kea's failure detection needs
#: max-unacked-clients + 1 distinct clients, 10 by default; more is only more of the same).
_MAX_MISSED = 1000


class WorkerHA:
    """The HA service as a worker's server sees it (the gate's ``filter``, ``alloc_share``,
    ``drain_missed``, ``lease_changed``), answered by the supervisor at ``path``."""

    def __init__(self, path: str, *, timeout: float = COMMIT_TIMEOUT) -> None:
        self.path = path
        self._timeout = timeout
        #: what the packet path answers (a new filter passes nothing: LinkState.closed)
        self.filter = ScopeFilter()
        self._share: int | None = None
        #: set_state calls so far: an answer carrying the state applies only if no newer
        #: push arrived while it was on its way
        self._version = 0
        self._missed: list[MissedQuery] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending: asyncio.Task[None] | None = None
        self._down = False

    @property
    def alloc_share(self) -> int | None:
        """The allocation share the supervisor's service decided (None: the whole pool)."""
        return self._share

    def set_state(self, state: link.LinkState) -> None:
        """Follow the supervisor's state (its push, or an answer's)."""
        self.filter.set(state.enabled, state.servers, state.mask, state.analyze)
        self._share = state.share
        self._version += 1

    def _answered(self, version: int, state: link.LinkState) -> None:
        if version == self._version:  # no push since the question left: not stale
            self.set_state(state)

    async def start(self) -> None:
        """Read the supervisor's state in the background, until it answers."""
        self.set_state(link.LinkState.closed())
        self._spawn(self._fetch())

    async def stop(self) -> None:
        """Stop the background sends."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _fetch(self) -> None:
        while True:
            version = self._version
            try:
                a = await ask(self.path, link.STATE, None, self._timeout)
                if a.result is Result.SUCCESS:
                    self._answered(version, link.LinkState.from_json(a.arguments))
                    return
                log.warning("HA link: the supervisor's state: %s", a.text)
            except (WorkerUnavailable, CommandError) as exc:
                log.debug("HA link: the supervisor's state not read yet: %s", exc)
            await asyncio.sleep(_RETRY)

    # ------------------------------------------------------------------ the gate's calls

    def drain_missed(self) -> None:
        """Send the queries the filter kept to the supervisor's failure detection (in the
        background, one send at a time)."""
        got = self.filter.drain()
        if not got:
            return
        self._missed.extend(got)
        del self._missed[:-_MAX_MISSED]
        if self._sending is None or self._sending.done():
            self._sending = self._spawn(self._send_missed())

    async def _send_missed(self) -> None:
        while self._missed:
            batch, self._missed = self._missed, []
            with contextlib.suppress(WorkerUnavailable):  # the next burst brings more
                await ask(self.path, link.MISSED, link.missed_args(batch), self._timeout)

    async def lease_changed(self, updated: list[HALease],
                            deleted: list[HALease] | None = None) -> frozenset[int]:
        """After a group commit: the addresses whose ACK must not leave, as the supervisor's
        HA service answers (every address of a chunk it did not answer for)."""
        deleted = deleted or []
        items = [(x, False) for x in updated] + [(x, True) for x in deleted]
        chunks = [items[i:i + link.MAX_ROWS] for i in range(0, len(items), link.MAX_ROWS)]
        out: set[int] = set()
        for bad in await asyncio.gather(*(self._ask_chunk(c) for c in chunks)):
            out |= bad
        return frozenset(out)

    async def _ask_chunk(self, items: list[tuple[HALease, bool]]) -> set[int]:
        upd = [x for x, d in items if not d]
        dele = [x for x, d in items if d]
        args = m.batch_request(upd, dele)["arguments"]
        version = self._version
        try:
            a = await ask(self.path, link.COMMITTED, args, self._timeout)
            if a.result is not Result.SUCCESS:
                raise CommandError(f"{a.text} (result {int(a.result)})")
            refused, state = link.parse_refused(a.arguments)
        except (WorkerUnavailable, CommandError) as exc:
            if not self._down:
                log.error("HA link: the supervisor did not answer for %d committed leases "
                          "(%s): their ACKs are not sent", len(items), exc)
            self._down = True
            return {x.ip for x, _ in items}
        if self._down:
            log.info("HA link: the supervisor answers again")
            self._down = False
        self._answered(version, state)
        return set(refused)
