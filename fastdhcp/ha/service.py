"""The HA service of a running server: the heartbeat loop on the server's event loop, the
state machine it drives, the start-up sync, lease updates to the partner and the ACK gate.

The rest of the server is reached only through :class:`HAHost` (apply leases received from the
partner, durably) and the calls the server makes on this object:

- :meth:`HAService.serves` / :meth:`HAService.client_query` for each query (scope filter and
  Kea's failure detection);
- ``await`` :meth:`HAService.lease_changed` after a group commit, before the ACKs leave: it
  returns the addresses whose client must get no ACK (the partner did not acknowledge them);
- :meth:`HAService.heartbeat_answer`, :meth:`HAService.status` and the command methods for
  ``fastdhcp.control.cmd_ha``.

Kea's order is kept: one heartbeat at start, then one every ``heartbeat-delay``; the state
machine's reaction runs after each heartbeat's result; a sync or a backlog flush runs in the
heartbeat task (so a heartbeat never overlaps them), each request on the commands connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from fastdhcp._hascope import ScopeFilter
from fastdhcp.control.protocol import Answer
from fastdhcp.ha import messages as m
from fastdhcp.ha.coalesce import UpdateCoalescer
from fastdhcp.ha.config import HAConfig, PeerConfig
from fastdhcp.ha.link import LinkState
from fastdhcp.ha.messages import BatchResult, HALease, PeerAnswer, PeerError
from fastdhcp.ha.peer import COMMANDS_CONNECTIONS, REQUEST_TIMEOUT, Channel, PeerClient
from fastdhcp.ha.state import (
    Action,
    HAState,
    HAStateMachine,
    Refused,
    Step,
    Transition,
    UpdatePolicy,
)

__all__ = ["HAHost", "HAService", "PeerLike", "SyncFailed"]

log = logging.getLogger("fastdhcp.ha")


class HAHost(Protocol):
    """What the HA service needs of the server."""

    async def apply_leases(self, updated: list[HALease],
                           deleted: list[HALease]) -> list[BatchResult]:
        """Store these leases from the partner (new or changed; deleted), through the engine
        and the group commit; return once durable, with the leases that could not be applied
        (an address outside every subnet...). Raise only if none could be (a commit failed)."""
        ...

    async def apply_synced(self, page: list[HALease]) -> list[BatchResult]:
        """Store a page pulled in a sync, merged with the local table (fastdhcp.ha.reconcile:
        the later copy of each address, the later binding of each client); the failures."""
        ...


class PeerLike(Protocol):
    """The partner client (``PeerClient``; tests may put a stand-in)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, request: dict[str, object], channel: Channel = Channel.COMMANDS,
                   timeout: float = REQUEST_TIMEOUT) -> PeerAnswer: ...

    async def heartbeat(self, request: dict[str, object], timeout: float) -> PeerAnswer: ...


class SyncFailed(Exception):
    """A lease sync from the partner did not complete (the text says at which step)."""


class HAService:
    """One server's side of the HA relationship (``[high-availability]``)."""

    def __init__(self, config: HAConfig, host: HAHost, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 peer_factory: Callable[[PeerConfig], PeerLike] = PeerClient,
                 on_change: Callable[[LinkState], None] | None = None) -> None:
        self.config = config
        self._host = host
        self._clock = clock
        self._wall = wall
        self.machine = HAStateMachine(config, clock())
        partner = config.partner
        self._peer: PeerLike | None = peer_factory(partner) if partner is not None else None
        #: backup servers: they get every update; the ACK waits for them with wait-backup-ack
        self._backups: list[PeerLike] = [peer_factory(p) for p in config.backups]
        self._backup_batch: dict[int, bool] = {}
        self._task: asyncio.Task[None] | None = None
        self._backlog: list[tuple[HALease, bool]] = []  # (lease, deleted)
        #: whether the partner takes BATCH_COMMAND (None: not asked since it came back)
        self._batch: bool | None = None
        #: batched updates to the partner: what waits for a connection goes out merged
        self._coalescer = UpdateCoalescer(self._send_batch, COMMANDS_CONNECTIONS)
        self._wake = asyncio.Event()
        #: every transition, for tests and the metrics (bounded)
        self.transitions: list[Transition] = []
        #: round-trip seconds of the last lease update (the Prometheus gauge)
        self.last_update_rtt: float | None = None
        #: the partner answered list-commands without BATCH_COMMAND: a Kea server
        self._partner_kea = False
        self._sync_lock = asyncio.Lock()
        self._background: set[asyncio.Future[list[set[int]]]] = set()
        #: what the packet path answers (compiled; set here at every change, read per query)
        self.filter = ScopeFilter()
        #: told the new :meth:`link_state` at each change (the workers of a multi-worker
        #: server follow it: fastdhcp.service.front_ha)
        self._on_change = on_change
        self._last: LinkState | None = None
        self._refresh_filter()

    # ------------------------------------------------------------------ start / stop

    async def start(self) -> None:
        """Start the heartbeat loop (the first heartbeat goes at once)."""
        for b in self._backups:
            await b.start()
        if self._peer is not None:
            await self._peer.start()
            self._task = asyncio.get_running_loop().create_task(self._run(),
                                                                name="ha-heartbeat")
        log.info("HA: %s, %s mode, role %s, state %s", self.config.this_server_name,
                 self.config.mode.value, self.config.this_peer.role.value,
                 self.machine.state.value)

    async def stop(self) -> None:
        """Stop heartbeats and close the partner's connections."""
        for t in self._background:
            t.cancel()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._peer is not None:
            await self._peer.close()
        for b in self._backups:
            await b.close()

    # ------------------------------------------------------------------ queries

    @property
    def state(self) -> HAState:
        """This server's HA state."""
        return self.machine.state

    def serves(self, client_id: bytes | None, chaddr: bytes) -> bool:
        """Whether this server answers this client now (scope and state)."""
        return self.machine.serves(client_id, chaddr)

    def _refresh_filter(self) -> None:
        """Set the packet path's filter to the machine's answer (after every event that may
        change the state, the scopes or the partner's reachability). Missed queries are kept
        only while the partner is unavailable in a state that analyzes them: Kea's failure
        detection, at no cost per packet otherwise."""
        mm = self.machine
        analyze = (mm.partner_state is HAState.UNAVAILABLE
                   and mm.state in (mm.normal_state, HAState.COMMUNICATION_RECOVERY))
        self.filter.set(mm.dhcp_enabled, mm.scope_count, mm.scope_mask(), analyze)
        if self._on_change is not None and (now := self.link_state()) != self._last:
            self._last = now
            self._on_change(now)

    def link_state(self) -> LinkState:
        """The filter's inputs and the allocation share, as the workers get them."""
        f = self.filter
        return LinkState(f.enabled, f.servers, f.mask, f.analyze, self.alloc_share)

    def drain_missed(self) -> None:
        """Feed the queries the filter dropped as the partner's (kept while communication is
        interrupted) to the failure detection: the server calls this after each burst."""
        for q in self.filter.drain():
            self.client_query(q.client_id, q.chaddr, q.secs)

    def client_query(self, client_id: bytes | None, chaddr: bytes, secs: int) -> None:
        """A query this server does not answer: Kea's failure detection counts it."""
        m_ = self.machine
        key = client_id or chaddr
        if not key:
            return
        mine = m_.scope_of(client_id, chaddr) == self.config.this_server_name
        m_.client_query(self._clock(), key, secs, not mine)

    @property
    def alloc_share(self) -> int | None:
        """This server's share of each pool for new addresses (its index among the two
        active peers, primary first; an address ``ip`` is in share ``ip % 2``), or None for
        the whole pool: a backup, no partner, or a Kea partner (Kea allocates from the whole
        pool; fastdhcp then does as Kea). Until the partner is known, the share: restricting
        ourselves is always safe."""
        if self._partner_kea or self._peer is None or self.config.partner is None:
            return None
        names = [p.name for p in self.config.active_peers]
        return names.index(self.config.this_server_name)

    def heartbeat_answer(self) -> Answer:
        """Our answer to the partner's ``ha-heartbeat``."""
        mm = self.machine
        return m.heartbeat_answer(mm.state, self._wall(), mm.scopes(), mm.unsent_update_count)

    def status(self) -> list[dict[str, object]]:
        """status-get's ``high-availability`` list (Kea's shape, one relationship)."""
        return [self.machine.status(self._clock())]

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        delay = self.config.heartbeat_delay / 1000.0
        while True:
            t0 = self._clock()
            try:
                await self._heartbeat_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the heartbeats for good
                log.exception("HA: heartbeat round failed")
            left = delay - (self._clock() - t0)
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(left, 0.01))

    def poke(self) -> None:
        """Run the next heartbeat now (after a command changed the state)."""
        self._wake.set()

    async def _heartbeat_once(self) -> None:
        """One heartbeat, the machine's reaction, its actions, then the partner-down check."""
        assert self._peer is not None
        mm = self.machine
        if mm.heartbeats_enabled:
            try:
                answer = await self._peer.heartbeat(
                    m.heartbeat_request(),
                    min(REQUEST_TIMEOUT, self.config.max_response_delay / 1000.0))
                reply = m.parse_heartbeat_answer(answer)
            except PeerError as exc:
                if mm.partner_state is not HAState.UNAVAILABLE or log.isEnabledFor(
                        logging.DEBUG):
                    log.warning("HA_HEARTBEAT_FAILED heartbeat to %s failed: %s",
                                self.config.partner.name if self.config.partner else "?", exc)
                self._batch = None
                step = mm.heartbeat_failed(self._clock())
            else:
                step = mm.heartbeat_answered(self._clock(), self._wall(), reply)
                if self._batch is None:  # once per contact, so that no ACK waits for it
                    self._batch = await self._has_batch(self._peer)
            await self._apply(step)
        await self._apply(mm.tick(self._clock()))
        self._refresh_filter()

    async def _apply(self, step: Step) -> None:
        for t in step.transitions:
            self._note(t)
        if step.transitions:
            self._refresh_filter()
        for w in step.warnings:
            log.warning("HA: %s", w)
        for action in step.actions:
            if action is Action.SYNC:
                ok = True
                try:
                    n = await self.sync_from_partner()
                    log.info("HA_SYNC_SUCCESSFUL %d leases synced from %s", n,
                             self.config.partner.name if self.config.partner else "?")
                except SyncFailed as exc:
                    log.error("HA_SYNC_FAILED %s", exc)
                    ok = False
                await self._apply(self.machine.sync_finished(self._clock(), ok))
            elif action is Action.SEND_BACKLOG:
                await self._apply(self.machine.backlog_sent(self._clock(),
                                                            await self._flush_backlog()))

    def _note(self, t: Transition) -> None:
        log.info("%s", t.log_line())
        self.transitions.append(t)
        del self.transitions[:-200]
        if self.machine.backlog_size == 0:
            # the machine's backlog restarted (communication-recovery entered afresh, or the
            # normal state reached): what the list still holds predates a resync (queued, then
            # partner-down) and, flushed at a later recovery, would overwrite newer copies
            # (split-brain test, 2026-12-07: a renewal's cltt T+3 went back to T)
            self._backlog.clear()

    # ------------------------------------------------------------------ sync

    async def sync_from_partner(self, max_period: int | None = None) -> int:
        """Pull every lease of the partner: dhcp-disable (origin ha-partner) before each page,
        lease4-get-page from "start" then after the last address, each page applied through
        the host, ha-sync-complete-notify at the end. Returns the count; SyncFailed if any step
        fails (the partner is then asked to enable its service again)."""
        assert self._peer is not None
        period = max_period or max(1, self.config.sync_timeout // 1000)
        limit = self.config.sync_page_limit
        total = 0
        async with self._sync_lock:
            try:
                async with asyncio.timeout(self.config.sync_timeout / 1000.0):
                    after: int | None = None
                    while True:
                        self._check(await self._peer.send(m.dhcp_disable_request(period)),
                                    "dhcp-disable")
                        page = m.parse_page_answer(await self._peer.send(
                            m.get_page_request(after, limit),
                            timeout=self.config.sync_timeout / 1000.0))
                        if page:
                            failed = await self._host.apply_synced(page)
                            for f in failed:
                                log.warning("HA: synced lease %s not stored: %s",
                                            _ip(f.ip), f.text)
                            total += len(page) - len(failed)
                        if len(page) < limit:  # a short (or empty) page is the last
                            break
                        after = page[-1].ip
                    self._check(await self._peer.send(m.sync_complete_notify_request()),
                                "ha-sync-complete-notify")
            except Exception as exc:  # PeerError, TimeoutError, or the host's failure
                with contextlib.suppress(PeerError):
                    await self._peer.send(m.dhcp_enable_request())
                why = "sync-timeout elapsed" if isinstance(exc, TimeoutError) else str(exc)
                raise SyncFailed(f"lease sync from the partner failed: {why}") from exc
        return total

    @staticmethod
    def _check(answer: PeerAnswer, what: str) -> None:
        if answer.result != 0:
            raise PeerError(f"{what}: {answer.text} (result {answer.result})")

    # ------------------------------------------------------------------ lease updates

    async def lease_changed(self, updated: list[HALease],
                            deleted: list[HALease] | None = None) -> frozenset[int]:
        """The ACK gate, after the local commit: send these changes as the state says and
        return the addresses whose ACK must not leave (the partner did not acknowledge their
        update; Kea drops those replies). In communication-recovery they are queued, in
        partner-down counted as unsent: the ACK leaves at once."""
        deleted = deleted or []
        # concurrent with the partner's update (the ACK waits for the slower when it must)
        backups = asyncio.ensure_future(self._to_backups(updated, deleted))
        before = self.machine.backlog_size
        policy = self.machine.lease_changes(len(updated) + len(deleted))
        if policy is UpdatePolicy.QUEUE:
            # the machine decides how many fit (delayed-updates-limit); this list holds them
            items = [(x, False) for x in updated] + [(x, True) for x in deleted]
            self._backlog.extend(items[:self.machine.backlog_size - before])
            return await backups
        if policy is not UpdatePolicy.SEND or self._peer is None:
            return await backups
        t0 = time.perf_counter()
        failed, rejected = await self._send_updates(updated, deleted)
        held = await backups
        self.last_update_rtt = time.perf_counter() - t0
        if failed or rejected:
            bad = failed | rejected
            log.warning("HA_LEASE_UPDATE_FAILED %d of %d lease updates not acknowledged by "
                        "the partner: %s", len(bad), len(updated) + len(deleted),
                        ", ".join(_ip(ip) for ip in sorted(bad)[:8]))
            by_ip = {x.ip: x for x in (*updated, *deleted)}
            for ip in sorted(rejected):
                lease = by_ip[ip]
                key = lease.client_id or lease.hw_address
                await self._apply(self.machine.lease_update_failed(self._clock(), key, True))
            if failed:
                await self._apply(self.machine.lease_update_failed(self._clock()))
            return frozenset(bad) | held
        return held

    async def _to_backups(self, updated: list[HALease],
                          deleted: list[HALease]) -> frozenset[int]:
        """Send the changes to every backup server; with wait-backup-ack, the addresses a
        backup did not acknowledge (their ACK is held back too, INFER), else nothing (sent
        in the background, failures logged)."""
        if not self._backups or not self.config.send_lease_updates:
            return frozenset()

        async def one(i: int, peer: PeerLike) -> set[int]:
            has = self._backup_batch.get(i)
            if has is None:
                has = await self._has_batch(peer)
                if has is not None:
                    self._backup_batch[i] = has
            failed, rejected = await self._send_to(peer, bool(has), updated,
                                                   deleted)
            if failed or rejected:
                log.warning("HA: backup %s did not take %d lease updates",
                            self.config.backups[i].name, len(failed | rejected))
            return failed | rejected

        sends = [one(i, p) for i, p in enumerate(self._backups)]
        if not self.config.wait_backup_ack:
            task: asyncio.Future[list[set[int]]] = asyncio.ensure_future(
                asyncio.gather(*sends))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return frozenset()
        out: set[int] = set()
        for bad in await asyncio.gather(*sends):
            out |= bad
        return frozenset(out)

    async def _send_updates(self, updated: list[HALease],
                            deleted: list[HALease]) -> tuple[set[int], set[int]]:
        """To the partner: (failed, rejected) addresses: no answer or result 2; result 1."""
        assert self._peer is not None
        if self._batch is None:
            self._batch = await self._has_batch(self._peer)
        if not self._batch:  # Kea (or not known yet): a request per lease
            return await self._send_to(self._peer, False, updated, deleted)
        out = await self._coalescer.send(updated, deleted)
        return set(out.failed), set(out.rejected)

    async def _send_batch(self, updated: list[HALease],
                          deleted: list[HALease]) -> tuple[set[int], set[int]]:
        assert self._peer is not None
        return await self._send_to(self._peer, True, updated, deleted)

    async def _send_to(self, peer: PeerLike, batch: bool, updated: list[HALease],
                       deleted: list[HALease]) -> tuple[set[int], set[int]]:
        if batch:
            try:
                answer = await peer.send(m.batch_request(updated, deleted))
                results = m.parse_batch_result(answer)
            except PeerError as exc:
                log.warning("HA: batched update failed: %s", exc)
                return {x.ip for x in (*updated, *deleted)}, set()
            return ({r.ip for r in results if r.result not in (1, 3)},
                    {r.ip for r in results if r.result == 1})
        reqs = [(x.ip, m.lease_update_request(x)) for x in updated]
        reqs += [(x.ip, m.lease_del_request(x)) for x in deleted]
        answers = await asyncio.gather(*(peer.send(r) for _, r in reqs),
                                       return_exceptions=True)
        failed: set[int] = set()
        rejected: set[int] = set()
        for (ip, _), a in zip(reqs, answers, strict=True):
            if isinstance(a, BaseException):
                if not isinstance(a, PeerError):
                    raise a
                failed.add(ip)
            elif a.result == 1:
                rejected.add(ip)
            elif a.result not in (0, 3):  # 3 (not found on a delete) counts as done
                failed.add(ip)
        return failed, rejected

    async def _has_batch(self, peer: PeerLike) -> bool | None:
        """Whether ``peer`` lists BATCH_COMMAND; None when it did not say (no answer, or an
        error: a multi-worker partner answers list-commands with an error while its workers
        start), so that it is asked again rather than taken for Kea until the next loss of
        contact (a pair of 2-worker servers updated per lease so: 1,100 of 2,000 DORA/s)."""
        try:
            answer = await peer.send(m.command("list-commands"))
        except PeerError:
            return None
        if answer.result != 0:
            return None
        has = isinstance(answer.arguments, list) and m.BATCH_COMMAND in answer.arguments
        if peer is self._peer:
            self._partner_kea = not has
        return has

    async def _flush_backlog(self) -> bool:
        """Send the queued updates (communication-recovery -> normal state), those queued
        while a send was in flight too (still communication-recovery: left in the list they
        would go out at a later recovery, stale), each address once with its last change (a
        release then a new binding of it must not arrive as a delete)."""
        sent = 0
        while self._backlog:
            items, self._backlog = self._backlog, []
            last = list({x.ip: (x, d) for x, d in items}.values())
            updated = [x for x, d in last if not d]
            deleted = [x for x, d in last if d]
            failed, rejected = await self._send_updates(updated, deleted)
            if failed:
                self._backlog = [it for it in last if it[0].ip in failed] + self._backlog
                return False
            sent += len(items)
        if not sent:
            log.info("HA_LEASES_BACKLOG_NOTHING_TO_SEND")
            return True
        log.info("HA_LEASES_BACKLOG_SUCCESS %d queued lease updates sent", sent)
        return True

    # ------------------------------------------------------------------ commands

    def reset(self) -> str:
        """ha-reset."""
        step, text = self.machine.reset()
        self._apply_sync(step)
        self.poke()
        return text

    def set_scopes(self, scopes: tuple[str, ...]) -> None:
        """ha-scopes (Refused for an unknown name)."""
        self.machine.set_scopes(scopes)
        self._refresh_filter()

    def maintenance_notify(self, cancel: bool) -> str:
        """ha-maintenance-notify from the partner (Refused when the state does not allow)."""
        step, text = self.machine.maintenance_notify(cancel)
        self._apply_sync(step)
        return text

    async def maintenance_start(self) -> str:
        """ha-maintenance-start: tell the partner to go in-maintenance, then take over."""
        self.machine.check_maintenance_start()
        reached = False
        if self._peer is not None:
            try:
                answer = await self._peer.send(m.maintenance_notify_request(False))
            except PeerError as exc:
                log.warning("HA: ha-maintenance-notify to the partner failed: %s", exc)
            else:
                if answer.result != 0:
                    raise Refused(f"Unable to transition the partner server to the "
                                  f"in-maintenance state: {answer.text}")
                reached = True
        step, text = self.machine.maintenance_started(reached)
        self._apply_sync(step)
        return text

    async def maintenance_cancel(self) -> str:
        """ha-maintenance-cancel: bring the partner out of in-maintenance, then ourselves."""
        self.machine.check_maintenance_cancel()
        assert self._peer is not None
        try:
            answer = await self._peer.send(m.maintenance_notify_request(True))
        except PeerError as exc:
            raise Refused(f"Unable to cancel maintenance. The partner server responded with "
                          f"error: {exc}") from None
        if answer.result != 0:
            raise Refused(f"Unable to cancel maintenance. The partner server responded with "
                          f"error: {answer.text}")
        step, text = self.machine.maintenance_canceled()
        self._apply_sync(step)
        self.poke()
        return text

    def _apply_sync(self, step: Step) -> None:
        """A command's step: transitions logged now (a command's step has no actions)."""
        for t in step.transitions:
            self._note(t)
        self._refresh_filter()
        for w in step.warnings:
            log.warning("HA: %s", w)


def _ip(ip: int) -> str:
    return f"{ip >> 24}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"
