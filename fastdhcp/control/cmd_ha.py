"""HA commands (Kea's HA hook, kea-ha.md §2): ``ha-heartbeat``, ``ha-scopes``, ``ha-continue``,
``ha-sync``, ``ha-sync-complete-notify``, ``ha-reset``, ``ha-maintenance-start`` / ``-notify`` /
``-cancel``, and fastdhcp's batched lease update between fastdhcp peers
(:data:`fastdhcp.ha.messages.BATCH_COMMAND`).

Without ``[high-availability]`` each answers as Kea without the HA hook: result 2,
``'<name>' command not supported.``
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastdhcp.control.protocol import Answer, Caller, CommandError, Result, success
from fastdhcp.control.table import CommandTable, Handler
from fastdhcp.control.target import ControlTarget
from fastdhcp.dhcp_state import Origin
from fastdhcp.ha import messages as m
from fastdhcp.ha.service import HAService, SyncFailed
from fastdhcp.ha.state import Refused

__all__ = ["register"]


def register(table: CommandTable) -> None:
    """Add the HA commands to ``table``."""
    table.add("ha-heartbeat", _needs_ha("ha-heartbeat", ha_heartbeat))
    table.add("ha-scopes", _needs_ha("ha-scopes", ha_scopes), mutating=True)
    table.add("ha-continue", _needs_ha("ha-continue", ha_continue), mutating=True)
    table.add("ha-sync", _needs_ha("ha-sync", ha_sync), mutating=True)
    table.add("ha-sync-complete-notify",
              _needs_ha("ha-sync-complete-notify", ha_sync_complete_notify), mutating=True)
    table.add("ha-reset", _needs_ha("ha-reset", ha_reset), mutating=True)
    table.add("ha-maintenance-start", _needs_ha("ha-maintenance-start", ha_maintenance_start),
              mutating=True)
    table.add("ha-maintenance-notify",
              _needs_ha("ha-maintenance-notify", ha_maintenance_notify), mutating=True)
    table.add("ha-maintenance-cancel",
              _needs_ha("ha-maintenance-cancel", ha_maintenance_cancel), mutating=True)
    table.add(m.BATCH_COMMAND, _needs_ha(m.BATCH_COMMAND, lease4_updates), mutating=True)


#: an HA command's body: (the server, its HA service, the raw arguments) -> the answer
_HAHandler = Callable[[ControlTarget, HAService, Any], Awaitable[Answer]]


def _needs_ha(name: str, fn: _HAHandler) -> Handler:
    """The handler, or result 2 as Kea without the hook when HA is not configured."""
    async def handler(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
        ha = target.ha
        if ha is None:
            return Answer(Result.UNSUPPORTED, f"'{name}' command not supported.")
        try:
            answer: Answer = await fn(target, ha, arguments)
        except Refused as exc:
            raise CommandError(exc.text) from None
        return answer
    return handler


async def ha_heartbeat(target: ControlTarget, ha: HAService, arguments: Any) -> Answer:
    """The partner asks our state, clock, scopes and unsent-update-count."""
    return ha.heartbeat_answer()


async def ha_scopes(target: ControlTarget, ha: HAService, arguments: Any) -> Answer:
    """``{"scopes": [...]}``: serve these scopes until the next state change."""
    ha.set_scopes(m.parse_scopes(arguments))
    return success("New HA scopes configured.")


async def ha_continue(target: ControlTarget, ha: HAService, arguments: Any) -> Answer:
    """fastdhcp has no ``state-machine`` pausing: never paused."""
    return success("HA state machine is not paused.")


async def ha_sync(target: ControlTarget, ha: HAService, arguments: Any) -> Answer:
    """``{"server-name", "max-period"?}``: pull the partner's leases now. (Kea 2.2 closes
    the connection without an answer for an unknown server-name; we answer result 1.)"""
    name, period = m.parse_sync_args(arguments)
    partner = ha.config.partner
    if partner is None or name != partner.name:
        raise CommandError(f"server name '{name}' not found in the HA configuration")
    try:
        await ha.sync_from_partner(period)
    except SyncFailed as exc:
        raise CommandError(str(exc)) from None
    return success("Lease database synchronization complete.")


async def ha_sync_complete_notify(target: ControlTarget, ha: HAService,
                                  arguments: Any) -> Answer:
    """The partner finished syncing from us: the service it disabled runs again (unless
    another origin holds it off)."""
    target.enable_dhcp(Origin.HA_PARTNER)
    return success("Server successfully notified about the synchronization completion.")


async def ha_reset(target: ControlTarget, ha: HAService, arguments: Any) -> Answer:
    """Back to waiting (a resync follows)."""
    return success(ha.reset())


async def ha_maintenance_start(target: ControlTarget, ha: HAService, arguments: Any) -> Answer:
    """Put the partner in in-maintenance and take its scope."""
    return success(await ha.maintenance_start())


async def ha_maintenance_notify(target: ControlTarget, ha: HAService,
                                arguments: Any) -> Answer:
    """``{"cancel": bool}`` from the partner."""
    return success(ha.maintenance_notify(m.parse_maintenance_notify(arguments)))


async def ha_maintenance_cancel(target: ControlTarget, ha: HAService,
                                arguments: Any) -> Answer:
    """End the maintenance started here."""
    return success(await ha.maintenance_cancel())


async def lease4_updates(target: ControlTarget, ha: HAService, arguments: Any) -> Answer:
    """``{"leases": [...], "deleted-leases": [...]}`` from a fastdhcp partner: applied in one
    commit; the answer lists the leases that could not be applied (``failed-leases``, each
    with ``ip-address``, ``result`` and ``error-message``)."""
    updated, deleted = m.parse_batch_args(arguments)
    failed = await target.ha_host.apply_leases(updated, deleted)
    n = len(updated) + len(deleted)
    return success(f"{n - len(failed)} of {n} IPv4 lease(s) applied.", {
        "failed-leases": [{"error-message": f.text, "ip-address": _ip(f.ip),
                           "result": f.result} for f in failed]})


def _ip(ip: int) -> str:
    return f"{ip >> 24}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"
