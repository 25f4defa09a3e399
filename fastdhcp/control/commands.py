"""The command table, built from the command groups (one ``cmd_*`` module each).

Each group module exposes ``register(table)``; the table is built explicitly here, once per
server, with no import-time registry.
"""

from __future__ import annotations

from typing import Any

from fastdhcp.control import (
    cmd_config,
    cmd_ddns,
    cmd_ha,
    cmd_hosts,
    cmd_leases,
    cmd_server,
    cmd_stats,
)
from fastdhcp.control.protocol import Answer, Caller, success
from fastdhcp.control.table import CommandTable
from fastdhcp.control.target import ControlTarget

__all__ = ["build"]


async def _list_commands(target: ControlTarget, args: Any, caller: Caller) -> Answer:
    return success(arguments=target.commands.names())


def build() -> CommandTable:
    """Every command fastdhcp answers."""
    table = CommandTable()
    table.add("list-commands", _list_commands)
    # ------------------------------------------------------------------ server (cmd_server)
    cmd_server.register(table)
    # ------------------------------------------------------------------ config (cmd_config)
    cmd_config.register(table)
    # ------------------------------------------------------------------ statistics (cmd_stats)
    cmd_stats.register(table)
    # ------------------------------------------------------------------ leases (cmd_leases)
    cmd_leases.register(table)
    # ------------------------------------------------------------------ hosts (cmd_hosts)
    cmd_hosts.register(table)
    # ------------------------------------------------------------------ ddns (cmd_ddns)
    cmd_ddns.register(table)
    # ------------------------------------------------------------------ ha (cmd_ha)
    cmd_ha.register(table)
    return table
