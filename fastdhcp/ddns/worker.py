"""The DDNS worker: a bounded queue of name changes, drained by one thread off the packet path.

Why a thread and not an asyncio task: an update is a blocking exchange with a DNS server that
may be gone (each attempt waits up to ``dns-server-timeout``, 500 ms by default, then backs off),
and building and signing a message is pure Python work. On the service's loop each of those
would be loop time taken from DHCP; on a thread of its own the loop's only cost is
:meth:`DdnsWorker.submit`: one uncontended lock and a deque append, never a wait. A full queue
drops the change and counts it (``queue-mgr-queue-full``), as Kea's ``max-queue-size`` does, so
a lost DNS server can cost DNS records, never DHCP latency.

Order: changes are taken first in, first out; a change that timed out waits in a retry heap
(``retry-backoff`` doubled per attempt, the next server of the domain each time) while others go
on. Per change the forward transaction runs first, and the reverse one only if the forward one
did not end in a conflict (RFC 4703 section 5.3: a name that is another client's gets no PTR
from us either).
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dns.name

from fastdhcp.ddns.config import DdnsConfig, DnsServer
from fastdhcp.ddns.dhcid import DhcidIdentifier
from fastdhcp.ddns.stats import DdnsStats
from fastdhcp.ddns.transport import Delivery, Sent, send
from fastdhcp.ddns.updates import Change, NameChange, Outcome, Transaction
from fastdhcp.ddns.updates import transactions as plan

__all__ = ["DdnsWorker", "Sender", "lease_ttl"]

log = logging.getLogger("fastdhcp.ddns")

#: ``send(message, server, timeout_s) -> Sent``: fastdhcp.ddns.transport.send, or a stand-in.
Sender = Callable[..., Sent]


def lease_ttl(valid_lifetime: int) -> int:
    """TTL for a lease's records: a third of its lifetime (RFC 4702 section 5's advice, as
    Kea 2.2 computes it), at least 1 s."""
    return max(valid_lifetime // 3, 1)


@dataclass(slots=True)
class _Job:
    """One queued name change and how far it got."""

    ncr: NameChange
    pending: list[Transaction] = field(default_factory=list)
    attempt: int = 0  #: failed attempts of the current transaction so far


class DdnsWorker:
    """Sends name changes to DNS in a thread of its own; ``submit_*`` never block."""

    def __init__(self, cfg: DdnsConfig, stats: DdnsStats | None = None, *,
                 sender: Sender = send, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.stats = stats or DdnsStats(k.name for k in cfg.tsig_keys)
        self._send = sender
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: collections.deque[_Job] = collections.deque()
        self._retries: list[tuple[float, int, _Job]] = []  # (due, seq, job) heap
        self._seq = itertools.count()
        self._busy = False  # a job is being worked on (between two pops)
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- the caller's side (the event loop) ---------------------------------------------------

    def submit(self, ncr: NameChange) -> bool:
        """Queue ``ncr``; False (and counted) when the queue is full. Never blocks on I/O."""
        with self._cond:
            if len(self._queue) + len(self._retries) >= self.cfg.max_queue_size:
                self.stats.bump("queue-mgr-queue-full")
                return False
            self._queue.append(_Job(ncr))
            self.stats.bump("ncr-received")
            self.stats.queue_depth = len(self._queue) + len(self._retries)
            self._cond.notify()
        return True

    def submit_add(self, fqdn: dns.name.Name, address: int, identifier: DhcidIdentifier, *,
                   forward: bool = True, reverse: bool = True, ttl: int = 0) -> bool:
        """Publish ``fqdn`` for ``address`` (an ACK of a new or renamed binding)."""
        return self.submit(NameChange(Change.ADD, fqdn, address, identifier, forward, reverse,
                                      ttl))

    def submit_remove(self, fqdn: dns.name.Name, address: int, identifier: DhcidIdentifier, *,
                      forward: bool = True, reverse: bool = True) -> bool:
        """Withdraw ``fqdn`` / ``address`` (RELEASE, expiry, DECLINE, lease deletion)."""
        return self.submit(NameChange(Change.REMOVE, fqdn, address, identifier, forward,
                                      reverse))

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (a daemon: it never holds the process up at exit)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="fastdhcp-ddns", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread after the exchange in flight (changes still queued are dropped:
        DNS updates are best effort, as Kea's queue is on shutdown)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def idle(self) -> bool:
        """True when nothing is queued, waiting for a retry or in flight."""
        with self._cond:
            return not (self._queue or self._retries or self._busy)

    def wait_idle(self, timeout: float) -> bool:
        """Wait (a test's or a shutdown's helper) until :meth:`idle`; False on timeout."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.idle():
                return True
            time.sleep(0.01)
        return self.idle()

    # -- the worker's side --------------------------------------------------------------------

    def _next(self) -> _Job | None:
        with self._cond:
            self._busy = False
            while not self._stopping:
                now = self._clock()
                if self._retries and self._retries[0][0] <= now:
                    job = heapq.heappop(self._retries)[2]
                elif self._queue:
                    job = self._queue.popleft()
                else:
                    wait = self._retries[0][0] - now if self._retries else None
                    self._cond.wait(wait)
                    continue
                self._busy = True
                self.stats.queue_depth = len(self._queue) + len(self._retries)
                return job
            return None

    def _run(self) -> None:
        while (job := self._next()) is not None:
            try:
                self._work(job)
            except Exception:  # a bug must cost one change, not the worker
                log.exception("ddns: name change for %s failed unexpectedly", job.ncr.fqdn)
                self.stats.bump("ncr-failed")

    def _work(self, job: _Job) -> None:
        cfg = self.cfg
        if not job.pending and job.attempt == 0:
            ncr = job.ncr
            job.pending = plan(ncr, cfg.forward_domain(ncr.fqdn) if ncr.forward else None,
                               cfg.reverse_domain(ncr.ptr_name) if ncr.reverse else None,
                               cfg.conflict_mode)
            if not job.pending:
                self.stats.bump("ncr-no-zone")
                return
        while job.pending:
            txn = job.pending[0]
            outcome = self._exchange(txn, job)
            if outcome is None:  # transient: retry later, or give up
                if job.attempt >= cfg.max_retries:
                    log.warning("ddns: %s %s of %s: no answer after %d attempts",
                                job.ncr.change.value, txn.direction.value, job.ncr.fqdn,
                                job.attempt + 1)
                    self.stats.bump("ncr-failed")
                    return
                job.attempt += 1
                due = self._clock() + cfg.retry_backoff / 1000.0 * (2 ** (job.attempt - 1))
                with self._cond:
                    heapq.heappush(self._retries, (due, next(self._seq), job))
                    self.stats.queue_depth = len(self._queue) + len(self._retries)
                return
            if outcome is Outcome.CONTINUE:
                continue
            job.pending.pop(0)
            job.attempt = 0
            if outcome is not Outcome.SUCCESS:
                # RFC 4703 5.3: a forward conflict means not our name: not our PTR either;
                # a refusal or an error would only repeat on the reverse zone's server
                log.info("ddns: %s %s of %s: %s", job.ncr.change.value, txn.direction.value,
                         txn.owner, outcome.value)
                self.stats.bump(_NCR_STAT[outcome])
                return
        self.stats.bump("ncr-success")

    def _exchange(self, txn: Transaction, job: _Job) -> Outcome | None:
        """Send the transaction's current message once; its outcome, or None if transient."""
        servers = txn.domain.servers
        server: DnsServer = servers[job.attempt % len(servers)]
        key = txn.domain.key.name if txn.domain.key is not None else None
        self.stats.bump("update-sent", key)
        self.stats.bump("update-signed" if key is not None else "update-unsigned")
        sent = self._send(txn.message(), server, self.cfg.dns_server_timeout / 1000.0)
        if sent.delivery is Delivery.ANSWERED:
            self.stats.bump("update-success", key)
            return txn.answer(sent.rcode)
        self.stats.bump("update-timeout" if sent.delivery is Delivery.TIMEOUT
                        else "update-error", key)
        if sent.delivery is Delivery.TSIG_REFUSED:
            log.warning("ddns: %s refused key %s for %s: %s", server.ip_address, key,
                        txn.owner, sent.detail)
            return Outcome.REFUSED
        if sent.delivery is Delivery.BAD_ANSWER:
            return Outcome.ERROR
        return None


_NCR_STAT = {Outcome.CONFLICT: "ncr-conflict", Outcome.REFUSED: "ncr-refused",
             Outcome.ERROR: "ncr-failed"}
