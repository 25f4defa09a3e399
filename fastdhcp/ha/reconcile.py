"""How a lease pulled from the partner in a sync merges with this server's table
(docs/high-availability.md, "Reconciling after the link returns").

- Per address, the copy with the later ``cltt`` is kept: a local lease at least as recent as
  the synced one is not overwritten (Kea's sync skips such a "stale" lease too). After a split
  brain where both peers renewed one client, each keeps the later expiry.
- Per client, the binding with the later ``cltt`` is the client's: a client that took an
  address from each peer during the cut (a new DORA answered by the other one) left the older
  one when it accepted the newer, so the older address is freed. Both peers apply the same
  rule to the same two copies, so they converge on the same binding and nothing a client
  still holds is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastdhcp.ha.messages import HALease
from fastdhcp.leases import Lease, LeaseState

__all__ = ["Merge", "client_key", "merge"]

#: a client key without option 61 is htype + chaddr (fastdhcp.leases); HA leases carry no htype
_HTYPE_ETHERNET = 1


@dataclass(frozen=True, slots=True)
class Merge:
    """What to do with one synced lease."""

    apply: bool  #: store the synced copy (lease4-update)
    free: int | None = None  #: this client's older local address, to delete (lease4-del)


def client_key(lease: HALease) -> bytes:
    """The synced lease's client key, as the lease commands derive it."""
    return lease.client_id or bytes((_HTYPE_ETHERNET,)) + lease.hw_address


def merge(synced: HALease, by_ip: Callable[[int], Lease | None],
          by_client: Callable[[bytes], Lease | None]) -> Merge:
    """The module's rule for ``synced``, given this server's lookups by address and by client
    key (the newest version of each, staged or committed)."""
    local = by_ip(synced.ip)
    if local is not None and local.issued >= synced.cltt:
        return Merge(apply=False)
    if synced.state != LeaseState.DEFAULT:
        return Merge(apply=True)
    other = by_client(client_key(synced))
    if other is None or other.ip == synced.ip or other.state != LeaseState.DEFAULT:
        return Merge(apply=True)
    if other.issued >= synced.cltt:
        return Merge(apply=False)  # the client's later binding is ours: the partner frees its
    return Merge(apply=True, free=other.ip)
