"""The server's :class:`~fastdhcp.ha.service.HAHost`, over the lease commands group
(``cmd_leases``): leases from the partner take the path of every lease change (the engine, the
group commit, durable before the answer) with ``lease4-update``'s checks and texts, a whole
batch staged at once and made durable in one commit, and HA has no lease-writing code of its
own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastdhcp.control.cmd_leases import apply_partner_leases
from fastdhcp.control.protocol import Caller
from fastdhcp.ha.messages import BatchResult, HALease
from fastdhcp.ha.reconcile import merge

if TYPE_CHECKING:
    from fastdhcp.control.target import ControlTarget

__all__ = ["CommandTableHost"]

_CALLER = Caller("ha", "partner")


class CommandTableHost:
    """Applies the partner's leases through the lease commands group."""

    def __init__(self, target: ControlTarget) -> None:
        self._target = target

    async def apply_leases(self, updated: list[HALease],
                           deleted: list[HALease]) -> list[BatchResult]:
        """The batch in one commit (one lease4-update per lease, each waiting for its own
        commit, held a batch of 100 for ~0.5 s, and the command path per lease was ~30% of
        the receiver's HA work, bench/ha_pair.py and py-spy); the failures."""
        return await apply_partner_leases(self._target, updated, deleted, _CALLER)

    async def apply_synced(self, page: list[HALease]) -> list[BatchResult]:
        """A sync page, merged by :mod:`fastdhcp.ha.reconcile`: per address the later copy,
        per client the later binding (the older address of the client deleted)."""
        store = self._target.store
        updated: list[HALease] = []
        freed: list[HALease] = []
        for x in page:
            plan = merge(x, store.get, store.get_by_client)
            if plan.apply:
                updated.append(x)
            if plan.free is not None:
                # the delete carries the later binding's cltt: the partner path skips a
                # delete older than the binding it would remove (apply_partner_leases)
                freed.append(HALease(plan.free, b"", 0, x.cltt))
        return await self.apply_leases(updated, freed)
