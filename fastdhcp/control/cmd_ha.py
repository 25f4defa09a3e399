"""HA commands (Kea's HA hook, kea-ha.md §2): ``ha-heartbeat``, ``ha-scopes``, ``ha-continue``,
``ha-sync``, ``ha-sync-complete-notify``, ``ha-reset``, ``ha-maintenance-start`` / ``-notify`` /
``-cancel``, and fastdhcp's batched lease update between fastdhcp peers
(:data:`fastdhcp.ha.messages.BATCH_COMMAND`).

Without ``[high-availability]`` each answers as Kea without the HA hook: result 2,
``'<name>' command not supported.``

The bodies (:data:`BODIES`) need only an :class:`HATarget`: the single server, or the control
front of a multi-worker server, which runs the one HA service and answers these commands itself
(:mod:`fastdhcp.service.front_ha`). A worker of such a server answers the two commands of the
private link instead (:data:`fastdhcp.ha.link.STATE_SET`, :data:`~fastdhcp.ha.link.APPLY`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from fastdhcp.control.protocol import Answer, Caller, CommandError, Result, success
from fastdhcp.control.table import CommandTable, Handler
from fastdhcp.control.target import ControlTarget
from fastdhcp.dhcp_state import Origin
from fastdhcp.ha import link
from fastdhcp.ha import messages as m
from fastdhcp.ha.messages import BatchResult
from fastdhcp.ha.service import HAService, SyncFailed
from fastdhcp.ha.state import Refused

if TYPE_CHECKING:
    from fastdhcp.ha.service import HAHost

__all__ = ["BODIES", "HATarget", "register", "run"]


class HATarget(Protocol):
    """What the HA commands need of whoever runs the HA service."""

    @property
    def ha_host(self) -> HAHost:
        """How the partner's leases are stored."""

    def enable_dhcp(self, origin: Origin) -> None:
        """``origin`` enables the DHCP service again."""


#: an HA command's body: (who runs the service, the service, the raw arguments) -> the answer
_HAHandler = Callable[[HATarget, HAService, Any], Awaitable[Answer]]


def register(table: CommandTable) -> None:
    """Add the HA commands (and the workers' link commands) to ``table``."""
    for name, fn in BODIES.items():
        table.add(name, _needs_ha(name, fn), mutating=name != "ha-heartbeat")
    # (not logged as mutating: the front logs the partner's command they carry out)
    table.add(link.STATE_SET, _link_state_set)
    table.add(link.APPLY, _link_apply)


async def run(name: str, target: HATarget, ha: HAService, arguments: Any) -> Answer:
    """Answer HA command ``name`` (one of :data:`BODIES`); CommandError for a refusal."""
    try:
        return await BODIES[name](target, ha, arguments)
    except Refused as exc:
        raise CommandError(exc.text) from None


def _needs_ha(name: str, fn: _HAHandler) -> Handler:
    """The handler, or result 2 as Kea without the hook when HA is not configured."""
    async def handler(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
        ha = target.ha
        if ha is None:
            return Answer(Result.UNSUPPORTED, f"'{name}' command not supported.")
        return await run(name, target, ha, arguments)
    return handler


async def ha_heartbeat(target: HATarget, ha: HAService, arguments: Any) -> Answer:
    """The partner asks our state, clock, scopes and unsent-update-count."""
    return ha.heartbeat_answer()


async def ha_scopes(target: HATarget, ha: HAService, arguments: Any) -> Answer:
    """``{"scopes": [...]}``: serve these scopes until the next state change."""
    ha.set_scopes(m.parse_scopes(arguments))
    return success("New HA scopes configured.")


async def ha_continue(target: HATarget, ha: HAService, arguments: Any) -> Answer:
    """fastdhcp has no ``state-machine`` pausing: never paused."""
    return success("HA state machine is not paused.")


async def ha_sync(target: HATarget, ha: HAService, arguments: Any) -> Answer:
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


async def ha_sync_complete_notify(target: HATarget, ha: HAService,
                                  arguments: Any) -> Answer:
    """The partner finished syncing from us: the service it disabled runs again (unless
    another origin holds it off)."""
    target.enable_dhcp(Origin.HA_PARTNER)
    return success("Server successfully notified about the synchronization completion.")


async def ha_reset(target: HATarget, ha: HAService, arguments: Any) -> Answer:
    """Back to waiting (a resync follows)."""
    return success(ha.reset())


async def ha_maintenance_start(target: HATarget, ha: HAService, arguments: Any) -> Answer:
    """Put the partner in in-maintenance and take its scope."""
    return success(await ha.maintenance_start())


async def ha_maintenance_notify(target: HATarget, ha: HAService,
                                arguments: Any) -> Answer:
    """``{"cancel": bool}`` from the partner."""
    return success(ha.maintenance_notify(m.parse_maintenance_notify(arguments)))


async def ha_maintenance_cancel(target: HATarget, ha: HAService,
                                arguments: Any) -> Answer:
    """End the maintenance started here."""
    return success(await ha.maintenance_cancel())


async def lease4_updates(target: HATarget, ha: HAService, arguments: Any) -> Answer:
    """``{"rows": [...], "deleted-rows": [...]}`` from a fastdhcp partner: applied in one
    commit; the answer lists the leases that could not be applied (``failed-leases``, each
    with ``ip-address``, ``result`` and ``error-message``)."""
    updated, deleted = m.parse_batch_args(arguments)
    return _applied(len(updated) + len(deleted),
                    await target.ha_host.apply_leases(updated, deleted))


def _applied(n: int, failed: list[BatchResult]) -> Answer:
    return success(f"{n - len(failed)} of {n} IPv4 lease(s) applied.", {
        "failed-leases": [{"error-message": f.text, "ip-address": _ip(f.ip),
                           "result": f.result} for f in failed]})


BODIES: dict[str, _HAHandler] = {
    "ha-heartbeat": ha_heartbeat,
    "ha-scopes": ha_scopes,
    "ha-continue": ha_continue,
    "ha-sync": ha_sync,
    "ha-sync-complete-notify": ha_sync_complete_notify,
    "ha-reset": ha_reset,
    "ha-maintenance-start": ha_maintenance_start,
    "ha-maintenance-notify": ha_maintenance_notify,
    "ha-maintenance-cancel": ha_maintenance_cancel,
    m.BATCH_COMMAND: lease4_updates,
}


# ------------------------------------------------------------------ a worker's link


async def _link_state_set(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    """The supervisor's HA state for this worker's packet path (link.STATE_SET)."""
    sink = target.ha_link
    if sink is None:
        return Answer(Result.UNSUPPORTED, f"'{link.STATE_SET}' command not supported.")
    sink.set_state(link.LinkState.from_json(arguments))
    return success("HA state set.")


async def _link_apply(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    """The partner's leases for this worker's addresses, from the supervisor (link.APPLY):
    an update batch, or a sync page merged with the table."""
    if target.ha_link is None:
        return Answer(Result.UNSUPPORTED, f"'{link.APPLY}' command not supported.")
    batch, sync = link.parse_apply_args(arguments)
    updated, deleted = m.parse_batch_args(batch)
    host = target.ha_host
    if sync:
        if deleted:
            raise CommandError("a sync page has no 'deleted-rows'")
        return _applied(len(updated), await host.apply_synced(updated))
    return _applied(len(updated) + len(deleted), await host.apply_leases(updated, deleted))


def _ip(ip: int) -> str:
    return f"{ip >> 24}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"
