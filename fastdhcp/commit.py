"""Group commit: one writer thread makes each batch of bindings durable before its ACKs leave.

RFC 2131 3.1 step 4 has the server commit a binding to persistent storage before it sends the
DHCPACK. One fsync per lease would cap the server at a few thousand leases per second, so the
event loop groups the bindings it decides into a batch, and one writer thread commits the batch
in one LMDB write transaction (one fsync) while the loop keeps filling the next one:

    loop:    stage+hold ... kick | stage+hold ... kick | on_committed(batch N tokens) | ...
    writer:                 [ write batch N (fsync) ]   [ write batch N+1 ]

A batch is closed and handed to the writer when the writer is idle and either it holds
``batch_size`` tokens or ``max_wait`` seconds passed since it was opened (``max_wait=0``: at
once). It is never split: everything staged when it closes commits in one transaction or not at
all. ``on_committed(tokens)`` runs on the loop only after the write returned (durable);
``on_failed(leases, tokens, exc)`` after it raised, once the store has dropped the staged
versions; either way the committer goes on with the next batch.

The hand-off each way is one cheap call, because at a few thousand DORA/s the batches are small
and the fixed cost per batch counts: the loop puts ``(batch, tokens)`` on a ``SimpleQueue`` the
writer thread blocks on (no executor, no future, no work item), and the writer appends the
outcome to a deque and wakes the loop with one ``loop.call_soon_threadsafe`` (one eventfd
write), unless the loop is polling (below). There is one writer thread, started with the
committer and joined by ``close()``.

Fewer, larger commits at low rates: each commit has a fixed cost (two device flushes, LMDB's
two-phase commit with ``sync = true``, the hand-offs), ~0.3 ms of CPU here whether it holds 5
leases or 200. While batches are small (the previous one held fewer than
:data:`SMALL_BATCH` tokens) a batch may stay open :data:`LOW_RATE_STRETCH` times ``max_wait``
(4 ms by default instead of 2), until batches are large again (:data:`LARGE_BATCH`; the
gap between the two keeps the rule from flapping near the edge). Measured at 3,000 DORA/s
with perfdhcp (bench/RESULTS.md, 2026-12-07 15:50): 51.3 -> 38.7 us of server CPU per DORA,
the writer's system time 15.3 -> 8.3, the average ACK delay 5.7 -> 6.9 ms; an ACK waits at
most one ``max_wait`` longer, only at rates (below about 10,000/s) where batches are small;
at half of the maximum rate batches are large and nothing changes. Durability is untouched:
every ACK still leaves after its own batch's commit.

Other writes to the same environment (the hosts table of the control channel) go through the
same thread: :meth:`GroupCommitter.run_in_writer` queues a callable behind the batch being
written, so LMDB's one writer is never contended and a batch is never split by them.

Riding the loop's own ticks: a wake-up of the event loop costs more than most of what it does
at a few thousand DORA/s (epoll, timers, the context switch, on a VM an inter-processor
interrupt). While the service reads its sockets on a timer (read pacing) it sets
:attr:`GroupCommitter.polled` and calls :meth:`GroupCommitter.poll` on every tick, at most a
read pace apart; the committer then neither arms its own ``max_wait`` timer nor has the writer
wake the loop: the writer appends the outcome to a deque, and the next tick hands it over. An
ACK may so wait up to one tick longer; two wake-ups per commit are saved. When the service
stops polling it clears ``polled`` and calls ``poll()`` once more; the writer checks ``polled``
after appending, so an outcome is never left behind (either the writer sees False and wakes the
loop, or its append happened before the service's last ``poll()``).

The writer thread needs the GIL to encode the batch: on a loop that is busy in Python, the
interpreter's switch interval (``sys.setswitchinterval``, 5 ms by default) bounds how long it
waits for it after each fsync. The service may lower it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastdhcp.leases import Lease, LeaseStore

__all__ = ["GroupCommitter"]

log = logging.getLogger("fastdhcp.commit")

_T = TypeVar("_T")

#: A batch of fewer tokens than this marks a low rate: the next batches may stay open
#: LOW_RATE_STRETCH times max_wait (see the module docstring) ...
SMALL_BATCH = 32
#: ... until one holds at least this many again.
LARGE_BATCH = 64
LOW_RATE_STRETCH = 2.0


@dataclass(slots=True)
class _Job:
    """One batch handed to the writer: its leases, the service's tokens (held ACKs) and the
    futures of :meth:`GroupCommitter.durable` callers."""

    batch: list[Lease]
    tokens: list[Any]
    waiters: list[asyncio.Future[None]]


@dataclass(slots=True)
class _Call:
    """A callable to run in the writer thread between two batches (:meth:`run_in_writer`),
    and the loop future that gets its outcome."""

    fn: Callable[[], Any]
    future: asyncio.Future[Any]


def _resolve(waiters: list[asyncio.Future[None]], exc: BaseException | None) -> None:
    for fut in waiters:
        if not fut.done():  # a caller may have given up (cancelled)
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc)


def _settle_call(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.done():  # the caller gave up (cancelled)
        return
    if exc is None:
        fut.set_result(result)
    else:
        fut.set_exception(exc)


class GroupCommitter:
    """Commits the store's pending batches from one writer thread; see the module docstring.

    ``store`` is any :class:`~fastdhcp.leases.LeaseStore` (its ``write`` runs in the writer
    thread; everything else on ``loop``). Tokens are opaque: the service's deferred ACKs.
    """

    def __init__(
        self,
        store: LeaseStore,
        loop: asyncio.AbstractEventLoop,
        on_committed: Callable[[list[Any]], None],
        on_failed: Callable[[list[Lease], list[Any], BaseException], None],
        batch_size: int = 256,
        max_wait: float = 0.002,
        on_batch: Callable[[list[Lease]], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_wait < 0:
            raise ValueError("max_wait must not be negative")
        self._store = store
        self._loop = loop
        self._on_committed = on_committed
        self._on_failed = on_failed
        #: called on the loop with each durable batch, after its ACKs left (the DDNS feed)
        self._on_batch = on_batch
        self.batch_size = batch_size
        self.max_wait = max_wait
        # Stores that can tell how much is staged let kick() ignore datagram batches that
        # staged nothing (the protocol does not require it; other stores commit on each kick).
        self._counts = isinstance(getattr(type(store), "pending_count", None), property)
        # (batch, tokens, waiters) to write, or None to stop; the writer thread blocks on it
        self._jobs: queue.SimpleQueue[_Job | _Call | None] = queue.SimpleQueue()
        self._tokens: list[Any] = []
        # futures of durable() callers, resolved with the open batch's outcome
        self._waiters: list[asyncio.Future[None]] = []
        self._open = False  # something was held or kicked since the last batch closed
        self._opened_at = 0.0
        # low rate (small batches): the open batch may wait LOW_RATE_STRETCH * max_wait
        self._stretched = False
        self._busy = False
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._closed = False
        self._idle: asyncio.Future[None] | None = None
        #: True while the service calls poll() on every loop tick (see the module docstring)
        self.polled = False
        # outcomes (job, exc) the writer left for the next poll()
        self._results: collections.deque[tuple[_Job, BaseException | None]] = (
            collections.deque())
        #: Counters for metrics: batches and leases committed, batches failed.
        self.batches = 0
        self.leases = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._writer, name="fastdhcp-writer", daemon=True)
        self._thread.start()

    @property
    def window(self) -> float:
        """How long (seconds) the open batch may wait to fill: ``max_wait``, or at low rates
        ``LOW_RATE_STRETCH * max_wait`` (see the module docstring)."""
        return self.max_wait * LOW_RATE_STRETCH if self._stretched else self.max_wait

    @property
    def busy(self) -> bool:
        """True while a batch is in the writer thread."""
        return self._busy

    def hold(self, token: Any) -> None:
        """Attach ``token`` to the open batch: it is handed back when the batch is durable."""
        self.hold_many([token])

    def hold_many(self, tokens: list[Any]) -> None:
        """:meth:`hold` each of ``tokens``, in order (one call for a burst's held ACKs)."""
        if self._closed:
            raise RuntimeError("GroupCommitter is closed")
        self._tokens.extend(tokens)
        self._mark()

    def durable(self) -> asyncio.Future[None]:
        """A future that is done once everything staged so far is durable (its exception is
        the commit's error if that failed). For the control channel's mutations, which answer
        only after their commit, as an ACK leaves only after its binding's."""
        if self._closed or self._closing:
            raise RuntimeError("GroupCommitter is closed")
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(fut)
        self._mark()
        self._maybe_start()
        return fut

    def run_in_writer(self, fn: Callable[[], _T]) -> asyncio.Future[_T]:
        """Run ``fn()`` in the writer thread, after the batch being written (if any) and before
        the next: the one writer of the store, so ``fn`` may open its own write transaction
        (the hosts table does). The future gets what ``fn`` returned, or what it raised; it is
        resolved on the loop only after ``fn`` returned, so a ``fn`` that commits is durable
        (fsynced when the environment syncs) by then. ``fn`` must not touch loop state."""
        if self._closed or self._closing:
            raise RuntimeError("GroupCommitter is closed")
        fut: asyncio.Future[_T] = self._loop.create_future()
        self._jobs.put(_Call(fn, fut))
        return fut

    def kick(self) -> None:
        """Called after each datagram batch: close the open batch if it is due."""
        if self._closed:
            raise RuntimeError("GroupCommitter is closed")
        if not self._tokens and self._counts and not self._store.pending_count:  # type: ignore[attr-defined]
            return  # a datagram batch with no binding (offers, drops): no batch to open
        self._mark()
        self._maybe_start()

    def poll(self) -> None:
        """Called on each of the service's loop ticks: hand over what the writer finished, then
        close the open batch if it is due (arming the ``max_wait`` timer unless :attr:`polled`)."""
        if self._closed:
            return
        self._drain()
        self._maybe_start()

    async def close(self) -> None:
        """Commit everything pending (including leases staged without a kick), then stop."""
        if self._closed:
            return
        self._closing = True
        self.polled = False
        self._drain()  # outcomes left for a poll() that will not come
        while True:
            if self._busy:
                self._idle = self._loop.create_future()
                await self._idle
                continue
            self._start()  # flush what was staged even if nobody kicked
            if not self._busy:
                break  # nothing was pending
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._jobs.put(None)
        self._thread.join()

    # ------------------------------------------------------------------------------ internals

    def _mark(self) -> None:
        if not self._open:
            self._open = True
            self._opened_at = self._loop.time()

    def _maybe_start(self) -> None:
        if self._busy or not self._open:
            return
        if (
            self._closing
            or self.max_wait <= 0
            or len(self._tokens) >= self.batch_size
            or self._loop.time() - self._opened_at >= self.window
        ):
            self._start()
        elif self._timer is None and not self.polled:
            self._timer = self._loop.call_at(self._opened_at + self.window, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._maybe_start()

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = self._store.take_pending()
        tokens, self._tokens = self._tokens, []
        waiters, self._waiters = self._waiters, []
        self._open = False
        if len(tokens) < SMALL_BATCH:
            self._stretched = True
        elif len(tokens) >= LARGE_BATCH:
            self._stretched = False
        if not batch:
            # Nothing to make durable (and no batch in the writer): nobody waits for a write.
            if tokens:
                self._deliver(tokens)
            _resolve(waiters, None)
            return
        self._busy = True
        self._jobs.put(_Job(batch, tokens, waiters))

    def _writer(self) -> None:
        """The writer thread: write each batch, hand the outcome back to the loop."""
        get = self._jobs.get
        write = self._store.write
        post = self._loop.call_soon_threadsafe
        results = self._results
        drain = self._drain
        while True:
            job = get()
            if job is None:
                return
            if type(job) is _Call:
                if not self._call(job):
                    return
                continue
            assert isinstance(job, _Job)
            exc: BaseException | None = None
            try:
                write(job.batch)
            except BaseException as e:  # noqa: BLE001 - whatever it is, the batch failed
                exc = e
            results.append((job, exc))
            if self.polled:
                continue  # the service's next tick takes it (see the module docstring)
            try:
                post(drain)
            except RuntimeError:  # the loop is closed: nobody is left to tell
                log.error("group commit finished after its event loop closed")
                return

    def _call(self, job: _Call) -> bool:
        """Run one :meth:`run_in_writer` callable (writer thread); False if the loop is gone."""
        result: Any = None
        exc: BaseException | None = None
        try:
            result = job.fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller as is
            exc = e
        try:
            # Always a wake-up: these are rare (control commands), unlike batches.
            self._loop.call_soon_threadsafe(_settle_call, job.future, result, exc)
        except RuntimeError:
            log.error("writer call finished after its event loop closed")
            return False
        return True

    def _drain(self) -> None:
        results = self._results
        while results:
            self._done(*results.popleft())

    def _deliver(self, tokens: list[Any]) -> None:
        try:
            self._on_committed(tokens)
        except Exception:
            log.exception("on_committed callback failed")

    def _done(self, job: _Job, exc: BaseException | None) -> None:
        batch, tokens = job.batch, job.tokens
        self._busy = False
        if exc is None:
            self.batches += 1
            self.leases += len(batch)
            try:
                self._store.committed(batch)
            except Exception:
                log.exception("store.committed failed")
            self._deliver(tokens)
            if self._on_batch is not None:
                try:
                    self._on_batch(batch)
                except Exception:
                    log.exception("on_batch callback failed")
            _resolve(job.waiters, None)
        else:
            self.failures += 1
            try:
                self._store.failed(batch)
            except Exception:
                log.exception("store.failed failed")
            try:
                self._on_failed(batch, tokens, exc)
            except Exception:
                log.exception("on_failed callback failed")
            _resolve(job.waiters, exc)
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)
            return  # close() takes it from here
        self._maybe_start()
