"""The server's :class:`~fastdhcp.ha.service.HAHost`, over the command table: leases from the
partner are stored by the server's own ``lease4-update`` / ``lease4-del`` commands (the lease
commands group, ``cmd_leases``), so that they take the path of every lease change (engine, group
commit, durable before the answer) and HA has no lease-writing code of its own.

Until the lease commands are in the table, applying answers result 2 for every lease and a sync
fails with that text (the state machine then stays in waiting and retries).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastdhcp.control.protocol import Caller, Request, Result
from fastdhcp.ha.messages import BatchResult, HALease
from fastdhcp.ha.reconcile import merge

if TYPE_CHECKING:
    from fastdhcp.control.target import ControlTarget

__all__ = ["CommandTableHost"]

_CALLER = Caller("ha", "partner")


class CommandTableHost:
    """Applies the partner's leases through ``target.commands``."""

    def __init__(self, target: ControlTarget) -> None:
        self._target = target

    async def apply_leases(self, updated: list[HALease],
                           deleted: list[HALease]) -> list[BatchResult]:
        """Each lease through lease4-update (force-create) or lease4-del, all at once so that
        they share group commits (one at a time, each waited for its own fsync'd commit: a
        batch of 100 took ~0.5 s and held the partner's ACKs that long, bench/ha_pair.py);
        the failures."""
        failed: list[BatchResult] = []
        table = self._target.commands
        reqs = [(x, Request("lease4-update", x.update_arguments())) for x in updated]
        reqs += [(x, Request("lease4-del", x.delete_arguments())) for x in deleted]
        answers = await asyncio.gather(*(table.dispatch(self._target, req, _CALLER)
                                         for _, req in reqs))
        for (lease, _), answer in zip(reqs, answers, strict=True):
            if answer.result == Result.UNSUPPORTED:
                raise RuntimeError(f"cannot store the partner's leases: {answer.text}")
            if answer.result not in (Result.SUCCESS, Result.EMPTY):
                failed.append(BatchResult(lease.ip, int(answer.result), answer.text or ""))
        return failed

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
                freed.append(HALease(plan.free, b"", 0, 0))
        return await self.apply_leases(updated, freed)
