"""The lease record and the store interface the engine talks to.

Kea's vocabulary: a Lease4 is in state default (bound), declined, expired-reclaimed or released.
The record keeps the last client of an address after the binding ends, so that a client that
comes back gets the same address while it is still free (RFC 2131 4.3.1, "client's previous
address").

Two stores implement :class:`LeaseStore`: :class:`MemoryLeaseStore` here (tests, and servers that
accept losing leases), and ``fastdhcp.store.LmdbLeaseStore`` (durable, group-committed).

Commit protocol (single-threaded caller, i.e. the event loop):

1. the engine calls ``stage(lease)``; the lease is visible to ``get``/``get_by_client`` at once
   and joins the *pending* list;
2. the service's committer calls ``take_pending()`` to close the batch, runs
   ``write(batch)`` in the writer thread (durable when it returns; raises ``StoreError``), then
   back on the loop ``committed(batch)`` (or ``failed(batch)`` after an error, which drops the
   staged state so readers see the last committed version again);
3. only after ``committed`` may the ACKs that depend on the batch leave.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

# The record and its LMDB codec are compiled (ext/fastdhcp/_lease.pyx): the engine makes one per
# binding, the store encodes and decodes one per read and write.
from fastdhcp._lease import Lease

__all__ = ["ACTIVE_STATES", "Lease", "LeaseState", "LeaseStore", "MemoryLeaseStore", "tombstone"]


class LeaseState(enum.IntEnum):
    """Lease4 states (Kea's numbering for the first three)."""

    DEFAULT = 0  #: bound to ``client_key`` until ``expires``
    DECLINED = 1  #: set aside after DHCPDECLINE until ``expires`` (probation)
    EXPIRED_RECLAIMED = 2  #: ended by expiry; the record keeps client affinity
    RELEASED = 3  #: ended by DHCPRELEASE; the record keeps client affinity
    #: never stored: a staged deletion (the control channel's lease4-del and lease4-wipe).
    #: Readers see no record; the writer deletes the key in the batch's transaction, so a
    #: deletion is as durable, and as ordered against bindings, as a binding.
    DELETED = 4


#: States in which the address is in use and must be marked used in its pool's bitmap
#: (:attr:`Lease.active`; the compiled modules test ST_DEFAULT and ST_DECLINED of _consts.pxd).
ACTIVE_STATES = frozenset((LeaseState.DEFAULT, LeaseState.DECLINED))


def tombstone(lease: Lease) -> Lease:
    """The staged deletion of ``lease``'s record (see :attr:`LeaseState.DELETED`)."""
    return Lease(lease.ip, lease.client_key, lease.hw_address, lease.subnet_id,
                 LeaseState.DELETED, 0, 0)


class LeaseStore(Protocol):
    """What the engine needs from a lease table. All methods run on the caller's thread except
    ``write``, which the committer runs in its writer thread."""

    def get(self, ip: int) -> Lease | None:
        """The newest version of the lease for ``ip`` (staged first, then committed)."""

    def get_by_client(self, client_key: bytes) -> Lease | None:
        """The newest lease last held by ``client_key`` (any state), or None."""

    def stage(self, lease: Lease) -> None:
        """Make ``lease`` visible to readers now and add it to the pending batch (a
        :func:`tombstone` hides the record now and deletes it at the commit)."""

    def take_pending(self) -> list[Lease]:
        """Close the pending batch and return it (possibly empty)."""

    def write(self, batch: list[Lease]) -> None:
        """Commit ``batch`` in one transaction; durable when it returns. Raises StoreError."""

    def committed(self, batch: list[Lease]) -> None:
        """``batch`` is durable: drop it from the staged overlay."""

    def failed(self, batch: list[Lease]) -> None:
        """``batch`` did not commit: forget its staged versions."""

    def page(self, after: int | None, limit: int) -> list[Lease]:
        """Up to ``limit`` records (newest versions) with an address above ``after`` (from
        the first: None), ascending: the control channel's paged reads."""

    def expired(self, now: int, limit: int) -> list[Lease]:
        """Up to ``limit`` active leases with ``expires <= now``, oldest first."""

    def active_addresses(self) -> Iterable[int]:
        """Every address whose newest lease is active, ascending (for rebuilding pool bitmaps,
        and for the statistics' counts per subnet)."""

    def declined_addresses(self) -> Iterable[int]:
        """Every address whose newest lease is DECLINED, ascending (the statistics count
        them once, at start-up)."""

    def active_counts(self, ranges: Sequence[tuple[int, int]]) -> list[int]:
        """Addresses whose newest lease is active, per range ``(first, last)`` (inclusive;
        ascending, disjoint)."""

    def __len__(self) -> int:
        """Number of lease records."""

    def __iter__(self) -> Iterator[Lease]:
        """Every lease record, in address order."""


class MemoryLeaseStore:
    """An in-memory :class:`LeaseStore`: every write is immediate and nothing is durable."""

    def __init__(self) -> None:
        self._by_ip: dict[int, Lease] = {}
        self._by_client: dict[bytes, int] = {}
        self._pending: list[Lease] = []

    def get(self, ip: int) -> Lease | None:
        return self._by_ip.get(ip)

    def get_by_client(self, client_key: bytes) -> Lease | None:
        ip = self._by_client.get(client_key)
        return None if ip is None else self._by_ip.get(ip)

    def stage(self, lease: Lease) -> None:
        old = self._by_ip.get(lease.ip)
        if old is not None and (old.client_key != lease.client_key
                                or lease.state == LeaseState.DELETED):
            if self._by_client.get(old.client_key) == lease.ip:
                del self._by_client[old.client_key]
        if lease.state == LeaseState.DELETED:
            self._by_ip.pop(lease.ip, None)
        else:
            self._by_ip[lease.ip] = lease
            self._by_client[lease.client_key] = lease.ip
        self._pending.append(lease)

    def page(self, after: int | None, limit: int) -> list[Lease]:
        """Up to ``limit`` records with an address above ``after`` (all: None), ascending."""
        ips = sorted(ip for ip in self._by_ip if after is None or ip > after)[:limit]
        return [self._by_ip[ip] for ip in ips]

    def take_pending(self) -> list[Lease]:
        batch, self._pending = self._pending, []
        return batch

    def write(self, batch: list[Lease]) -> None:
        return None

    def committed(self, batch: list[Lease]) -> None:
        return None

    def failed(self, batch: list[Lease]) -> None:
        # Nothing to roll back to: an in-memory store has no committed version apart from the
        # staged one.
        return None

    def expired(self, now: int, limit: int) -> list[Lease]:
        out = [x for x in self._by_ip.values() if x.active and x.expires <= now]
        out.sort(key=lambda x: (x.expires, x.ip))
        return out[:limit]

    def active_addresses(self) -> Iterable[int]:
        return sorted(ip for ip, x in self._by_ip.items() if x.active)

    def declined_addresses(self) -> Iterable[int]:
        return sorted(ip for ip, x in self._by_ip.items() if x.state == LeaseState.DECLINED)

    def active_counts(self, ranges: Sequence[tuple[int, int]]) -> list[int]:
        active = [ip for ip, x in self._by_ip.items() if x.active]
        return [sum(1 for ip in active if first <= ip <= last) for first, last in ranges]

    def __len__(self) -> int:
        return len(self._by_ip)

    def __iter__(self) -> Iterator[Lease]:
        return iter([self._by_ip[ip] for ip in sorted(self._by_ip)])
