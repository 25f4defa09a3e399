"""Between the packet path and the HA service (docs/high-availability.md): the allocation
share given to the engine, the scope filter's counts folded after each burst, and the ACK
gate that holds a committed batch's ACKs until the partner has acknowledged its leases."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from fastdhcp._engine import Engine
from fastdhcp._hascope import ScopeFilter
from fastdhcp.control.cmd_leases import client_id_of
from fastdhcp.ha.messages import HALease
from fastdhcp.ha.service import HAService
from fastdhcp.ha.state import HAState
from fastdhcp.leases import Lease, LeaseState
from fastdhcp.metrics import HAGauges, Metrics

__all__ = ["GatedHA", "HAGate", "ha_lease"]

log = logging.getLogger("fastdhcp")


def ha_lease(lease: Lease) -> HALease:
    """A committed binding as HA peers exchange it (kea-ha.md section 4): cltt = issued,
    the client-id with its type byte when the client sent one, the DNS update flags the
    engine set (``fqdn-fwd`` / ``fqdn-rev``, with the published hostname). A declined one as
    Kea sends it: state 1, no hw-address nor client-id, valid-lft the probation period."""
    expires, issued = lease.expires, lease.issued
    if lease.state == LeaseState.DECLINED:
        return HALease(lease.ip, b"", max(expires - issued, 0), issued, lease.subnet_id,
                       state=LeaseState.DECLINED)
    return HALease(lease.ip, lease.hw_address, max(expires - issued, 0), issued,
                   lease.subnet_id, client_id_of(lease), lease.hostname.lower(),
                   bool(lease.fqdn_fwd), bool(lease.fqdn_rev))


class GatedHA(Protocol):
    """What the gate and the packet path need of HA: the server's HAService, or a worker's
    link to its supervisor's (fastdhcp.service.worker_ha)."""

    filter: ScopeFilter

    @property
    def alloc_share(self) -> int | None:
        """This server's share of each pool for new addresses (None: the whole pool)."""

    def drain_missed(self) -> None:
        """Feed the queries the filter kept to the failure detection."""

    async def lease_changed(self, updated: list[HALease],
                            deleted: list[HALease] | None = None) -> frozenset[int]:
        """After the local commit: the addresses whose ACK must not leave."""


def gauges(ha: HAService | None) -> HAGauges | None:
    """What the Prometheus collector shows of the HA service (None without one)."""
    if ha is None:
        return None
    mm = ha.machine
    return HAGauges(tuple(s.value for s in HAState), mm.state.value,
                    mm.partner_state.value, mm.unsent_update_count, ha.last_update_rtt)


class HAGate:
    """The server's side of HA per burst and per commit. ``deliver(tokens)`` sends the ACKs
    of held tokens (the packet path's ``deliver`` and the report drain), or is not possible
    (returns without sending) when the path is gone."""

    def __init__(self, metrics: Metrics, deliver: Callable[[list[Any]], None]) -> None:
        self._metrics = metrics
        self._deliver = deliver
        #: commit batches whose ACKs wait for the partner's acknowledgement
        self._pending: set[asyncio.Future[None]] = set()
        #: the allocation share applied to the engine (None = the whole pool)
        self._share: int | None = None

    def apply_share(self, ha: GatedHA, engine: Engine) -> None:
        """Give ``engine`` the HA allocation share (at start, after an engine change, and
        when the partner turns out to be Kea)."""
        share = self._share = ha.alloc_share
        engine.set_ha_share(share or 0, 0 if share is None else 2)
        log.info("HA: new addresses from %s", "the whole pool" if share is None
                 else f"allocation share {share} of 2 (address % 2 == {share})")

    def after_burst(self, ha: GatedHA, engine: Engine) -> None:
        """After each burst: fold the scope filter's drop counts into the metrics and feed the
        queries it kept to the failure detection (one call a burst, none a packet)."""
        if ha.alloc_share != self._share:
            self.apply_share(ha, engine)
        f = ha.filter
        if f.not_for_us:
            self._metrics.drop("ha-not-for-us", f.take_not_for_us())
        if f.disabled:
            self._metrics.drop("dhcp-disabled", f.take_disabled())
        if f.analyze:
            ha.drain_missed()

    def committed(self, ha: GatedHA | None, tokens: list[Any]) -> None:
        """One ``lease_changed`` per committed batch; the ACKs of the addresses the partner did
        not acknowledge are not sent (Kea's treatment: the client retries). With the HA
        service stopped (shutdown) no ACK leaves: the partner cannot hear of these leases any
        more, and the lease stays durable here."""
        if ha is None:
            self._metrics.drop("ha-stopped", len(tokens))
            return
        updated: list[HALease] = []
        deleted: list[HALease] = []
        for t in tokens:
            lease = t.lease
            if lease is None:
                continue
            if lease.state == LeaseState.RELEASED:  # Kea: lease4-del of the lease
                deleted.append(ha_lease(lease))
            else:
                updated.append(ha_lease(lease))
        task = asyncio.ensure_future(self._release(ha, tokens, updated, deleted))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _release(self, ha: GatedHA, tokens: list[Any], updated: list[HALease],
                       deleted: list[HALease]) -> None:
        m = self._metrics
        try:
            refused = (await ha.lease_changed(updated, deleted) if updated or deleted
                       else frozenset())
        except asyncio.CancelledError:
            m.drop("ha-stopped", len(tokens))
            raise
        except Exception:  # a bug: no ACK without the partner's word (the client retries)
            log.exception("HA: lease updates of a commit batch failed")
            m.drop("ha-update-failed", len(tokens))
            return
        if refused:
            keep = [t for t in tokens if t.lease is None or t.lease.ip not in refused]
            # a release or decline has no reply to hold back: not counted as a drop
            m.drop("ha-update-failed", sum(1 for t in tokens if t.out is not None)
                   - sum(1 for t in keep if t.out is not None))
            tokens = keep
        if tokens:
            self._deliver(tokens)

    async def cancel(self) -> None:
        """Give up every batch still waiting for the partner (we stop talking to it)."""
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
