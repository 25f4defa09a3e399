"""Server commands: ``status-get``, ``dhcp-disable``, ``dhcp-enable``, ``shutdown``
(reference: kea-control-api.md C2, C13, C15; docs/control-api.md "Server commands").

``version-get`` and ``build-report`` are another group's (cmd_version).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

from fastdhcp.config import ControlSocket, SocketType
from fastdhcp.control.args import Args
from fastdhcp.control.protocol import Answer, Caller, CommandError, success
from fastdhcp.control.table import CommandTable
from fastdhcp.control.target import ControlTarget
from fastdhcp.dhcp_state import Origin
from fastdhcp.errors import StoreError

__all__ = ["SHUTTING_DOWN", "exit_value_of", "register", "socket_json"]

#: shutdown's answer text, as Kea's.
SHUTTING_DOWN = "Shutting down."

#: The keys dhcp-enable reads; Kea 2.2 also takes (and ignores) ``max-period`` there.
_ENABLE_KEYS = ("origin", "max-period")


def register(table: CommandTable) -> None:
    """Add the server commands to ``table``."""
    table.add("status-get", status_get)
    table.add("dhcp-disable", dhcp_disable, mutating=True)
    table.add("dhcp-enable", dhcp_enable, mutating=True)
    table.add("shutdown", shutdown, mutating=True)


# ------------------------------------------------------------------------------- status-get


async def status_get(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    """Kea's five keys (pid, uptime, reload, sockets, multi-threading-enabled), then
    fastdhcp's own: dhcp-state, lease-database, control-sockets. No text, as Kea."""
    now = time.monotonic()
    out: dict[str, Any] = {
        "multi-threading-enabled": False,  # one loop thread serves; the writer only commits
        "pid": os.getpid(),
        "reload": int(now - target.configured_at),
        "sockets": {"status": "ready"},  # a server that runs has opened every DHCP socket
        "uptime": int(now - target.started_at),
        "dhcp-state": _dhcp_state(target, now),
        "lease-database": _lease_database(target),
        "control-sockets": [socket_json(c) for c in target.control.sockets],
    }
    if target.ha is not None:  # Kea's HA hook: a list of relationships (kea-ha.md section 2)
        out["high-availability"] = target.ha.status()
    return success(arguments=out)


def _dhcp_state(target: ControlTarget, now: float) -> dict[str, Any]:
    state = target.dhcp_state
    holds = state.holds()
    return {
        "enabled": state.enabled,
        "disabled-by": [h.origin.value for h in holds],
        # seconds until each max-period ends (origins disabled without one are not listed)
        "remaining": {h.origin.value: max(0, math.ceil(h.until - now))
                      for h in holds if h.until is not None},
    }


def _lease_database(target: ControlTarget) -> dict[str, Any]:
    store = target.store
    try:
        size: int | None = os.stat(os.path.join(store.path, "data.mdb")).st_size
    except OSError:
        size = None
    try:
        map_size: int | None = store.map_size
    except (StoreError, AssertionError, OSError):  # closing
        map_size = None
    lat = target.metrics.commit_latency
    return {
        "path": store.path,
        "size": size,
        "map-size": map_size,
        "sync": store.sync,
        "commit-latency": {  # seconds, bucket upper bounds (null: none yet, or over 5 s)
            "count": lat.count,
            "p50": _finite(lat.quantile(0.5)) if lat.count else None,
            "p99": _finite(lat.quantile(0.99)) if lat.count else None,
        },
    }


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def socket_json(conf: ControlSocket) -> dict[str, Any]:
    """A control socket as status-get lists it."""
    if conf.socket_type is SocketType.UNIX:
        return {"socket-type": conf.socket_type.value, "socket-name": conf.socket_name}
    return {"socket-type": conf.socket_type.value, "socket-address": conf.socket_address,
            "socket-port": conf.socket_port}


# ------------------------------------------------------------------ dhcp-disable / -enable


def _origin(args: Args) -> Origin:
    value = args.get_str("origin", "user", bad_type="'origin' argument must be a string")
    try:
        return Origin(value)
    except ValueError:
        shown = value if value else "(empty string)"
        raise CommandError(f"invalid value used for 'origin' parameter: {shown}") from None


async def dhcp_disable(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    """``{"max-period"?: int > 0, "origin"?: "user" | "ha-partner"}``."""
    args = Args.of(arguments)
    args.only(("max-period", "origin"))
    max_period = args.get_int("max-period", None,
                              bad_type="'max-period' argument must be a number")
    if max_period is not None and max_period <= 0:
        raise CommandError("'max-period' must be positive integer")
    origin = _origin(args)
    target.disable_dhcp(origin, max_period)
    if max_period is None:
        return success("DHCPv4 service disabled")
    return success(f"DHCPv4 service disabled for {max_period} seconds")


async def dhcp_enable(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    """``{"origin"?}``; the text is Kea's even when another origin still holds the service
    off (status-get's ``dhcp-state`` tells)."""
    args = Args.of(arguments)
    args.only(_ENABLE_KEYS)
    target.enable_dhcp(_origin(args))
    return success("DHCP service successfully enabled")


# ---------------------------------------------------------------------------------- shutdown


async def shutdown(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    """``{"exit-value"?: int}``: stop as SIGTERM does once this answer has left."""
    target.request_shutdown(exit_value_of(arguments))
    return success(SHUTTING_DOWN)


def exit_value_of(arguments: Any) -> int:
    """shutdown's ``{"exit-value"?: int}`` (CommandError with Kea's text when it is not)."""
    args = Args.of(arguments)
    args.only(("exit-value",))
    value: int = args.get_int("exit-value", 0,
                              bad_type="parameter 'exit-value' is not an integer")
    return value
