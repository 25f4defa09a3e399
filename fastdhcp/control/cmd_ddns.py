"""Kea's ``lease4-resend-ddns``: queue the DNS add of a stored lease again (after a DNS
server lost its zone, say), with Kea 2.2's result codes and texts. The add goes to the DDNS
worker like any other (fastdhcp.ddns.feed); the answer says it was queued, not that DNS took
it (as Kea's says an NCR was generated)."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastdhcp.control.args import Args
from fastdhcp.control.protocol import Answer, Caller, CommandError, empty, success
from fastdhcp.control.table import CommandTable
from fastdhcp.control.target import ControlTarget
from fastdhcp.leases import LeaseState

__all__ = ["register"]


async def _resend(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments, required=True,
                   missing_text="no parameters specified for the command")
    ip = args.get_ipv4("ip-address")
    text = str(ipaddress.IPv4Address(ip))
    runner = target.ddns
    if runner is None:
        raise CommandError("DDNS updating is not enabled")
    lease = target.store.get(ip)
    if lease is None or lease.state != LeaseState.DEFAULT:
        return empty(f"No lease found for: {text}")
    if not lease.hostname:
        raise CommandError(f"Lease for: {text}, has no hostname, nothing to update")
    if not (lease.fqdn_fwd or lease.fqdn_rev):
        raise CommandError(f"Neither forward nor reverse updates enabled for lease for: {text}")
    if not runner.feed.add(lease):
        raise CommandError(f"Failed to queue an NCR for: {text} (queue full or bad hostname)")
    return success(f"NCR generated for: {text}, hostname: {lease.hostname}")


def register(table: CommandTable) -> None:
    """Add ``lease4-resend-ddns`` to ``table``."""
    table.add("lease4-resend-ddns", _resend)
