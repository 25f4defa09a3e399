"""From committed leases to the DDNS worker's name changes (RFC 4702 section 4: the server
updates DNS for the bindings it makes; RFC 4703 for how).

The engine decides names per request (``_engine_fqdn.pxi``) and leaves in
``Engine.ddns_pending`` what each staged binding owes DNS; nothing is sent before the binding is
durable. After each group commit the service hands the batch to :meth:`DdnsFeed.committed`,
which turns

- a bound lease that is the very object the engine noted (new, renamed, or renewed with
  ``ddns-update-on-renew``) into an add (after the removal of the name it replaces, if any);
- an ended lease (released, declined, reclaimed on expiry) that kept a name and update flags
  into a removal of that name,

and hands them to the worker, which never blocks the caller (a full queue drops and counts:
``queue-mgr-queue-full``). A lease that is not this feed's concern costs two attribute reads.

The DHCID identifier (RFC 4701) comes from the lease's client key: a key that is the htype
octet followed by chaddr is taken as htype + chaddr (type 0), any other as option 61 (type 1,
or RFC 4361's DUID). A client that sends an option 61 equal to htype + chaddr is therefore
identified as type 0: the record cannot tell the two apart, and the same rule at add and at
removal keeps fastdhcp's own records consistent.
"""

from __future__ import annotations

from collections.abc import Iterable

import dns.exception
import dns.name

from fastdhcp.ddns.dhcid import DhcidIdentifier, IdentifierType
from fastdhcp.ddns.worker import DdnsWorker, lease_ttl
from fastdhcp.leases import Lease, LeaseState

__all__ = ["DdnsFeed", "identifier_of", "name_of"]

#: Ended states whose record still names what was published (the engine keeps the flags).
_ENDED = frozenset((LeaseState.RELEASED, LeaseState.DECLINED, LeaseState.EXPIRED_RECLAIMED))


def identifier_of(lease: Lease) -> DhcidIdentifier:
    """The DHCID identifier of ``lease``'s client (see the module docstring)."""
    key, hw = lease.client_key, lease.hw_address
    if len(key) == len(hw) + 1 and key[1:] == hw:
        return DhcidIdentifier(IdentifierType.HTYPE_CHADDR, key)
    return DhcidIdentifier.from_client(key, 0, hw)


def name_of(lease: Lease) -> dns.name.Name | None:
    """``lease``'s published name (its hostname, absolute), or None when it has none."""
    if not lease.hostname:
        return None
    try:
        return dns.name.from_text(lease.hostname)
    except dns.exception.DNSException:  # a hostname written by other means (lease4-add)
        return None


class DdnsFeed:
    """Submits the name changes a committed batch owes (one per service, on its loop)."""

    def __init__(self, pending: dict[int, tuple[Lease, Lease | None]],
                 worker: DdnsWorker) -> None:
        self._pending = pending
        self.worker = worker

    def committed(self, batch: Iterable[Lease]) -> None:
        """The batch is durable: submit what it owes DNS."""
        pending = self._pending
        for lease in batch:
            st = lease.state
            if st == LeaseState.DEFAULT:
                if not pending:
                    continue
                e = pending.get(lease.ip)
                if e is None or e[0] is not lease:
                    continue  # not noted, or noted for a later staging of this address
                del pending[lease.ip]
                if e[1] is not None:
                    self.remove(e[1])
                if lease.fqdn_fwd or lease.fqdn_rev:
                    self.add(lease)
            elif (lease.fqdn_fwd or lease.fqdn_rev) and st in _ENDED:
                self.remove(lease)

    def failed(self, batch: Iterable[Lease]) -> None:
        """The batch was rolled back: forget what it owed."""
        pending = self._pending
        for lease in batch:
            e = pending.get(lease.ip)
            if e is not None and e[0] is lease:
                del pending[lease.ip]

    def add(self, lease: Lease) -> bool:
        """Publish ``lease``'s name (its flags say which directions); False when nothing was
        queued (no usable name, no direction, or the queue was full)."""
        name = name_of(lease)
        if name is None or not (lease.fqdn_fwd or lease.fqdn_rev):
            return False
        return self.worker.submit_add(name, lease.ip, identifier_of(lease),
                                      forward=bool(lease.fqdn_fwd),
                                      reverse=bool(lease.fqdn_rev),
                                      ttl=lease_ttl(max(lease.expires - lease.issued, 0)))

    def remove(self, lease: Lease) -> bool:
        """Withdraw ``lease``'s name; False when nothing was queued."""
        name = name_of(lease)
        if name is None or not (lease.fqdn_fwd or lease.fqdn_rev):
            return False
        return self.worker.submit_remove(name, lease.ip, identifier_of(lease),
                                         forward=bool(lease.fqdn_fwd),
                                         reverse=bool(lease.fqdn_rev))
