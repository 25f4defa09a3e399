"""What a leasequery finds in the lease table, and what a reply says about one lease.

Lookups, and why each is what it is:

- by IP address: one read (the store's ``get``: overlay, then the LMDB ``leases`` table);
- by client identifier: the client index (``get_by_client``), exact: option 61 as sent is the
  client key a lease is held under, and one key holds one lease in this server;
- by hardware address, relay-id, remote-id, all: a scan of ``leases`` in pages of short read
  transactions (:func:`scan`), awaited page by page so the loop serves DHCP between two pages,
  and never holding the writer (LMDB readers do not block it). No index for these: a MAC index
  would cost every commit a second random-keyed write (DESIGN.md: random keys cost ~10x in
  dirty pages per fsync'd commit), or ~100 bytes of RAM per lease held in Python, for a query
  a relay makes after a reboot. The cost is the scan: 1.4 us per record read and tested in pages
  of 1,000 (a query by hardware address), 2.0 us in pages of 100 (relay-id), so 1.4 to 2 s of
  loop time per query at 1M leases, spread in page-sized slices of 0.2 to 1.4 ms (measured at
  100,000 leases, bench/bench_leasequery.py, 2026-12-07, a busy 2-core machine).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from fastdhcp.config import Config, Subnet4
from fastdhcp.leasequery.wire import SUB_RELAY_ID, SUB_REMOTE_ID, Opt, Query, QueryKind, sub_option
from fastdhcp.leases import Lease, LeaseState

__all__ = ["LeaseTable", "active_options", "bound", "known_address", "matcher", "scan",
           "sends_client_id"]


class LeaseTable(Protocol):
    """The reads leasequery makes of the store (``fastdhcp.store.LmdbLeaseStore`` is one)."""

    def get(self, ip: int) -> Lease | None: ...

    def get_by_client(self, client_key: bytes) -> Lease | None: ...

    def page(self, after: int | None, limit: int) -> list[Lease]: ...


def bound(lease: Lease | None, now: float) -> bool:
    """True if ``lease`` binds its address to its client at ``now`` (state default, not
    expired): the DHCPLEASEACTIVE case. A declined, released or expired record is not."""
    return lease is not None and lease.state == LeaseState.DEFAULT and lease.expires > now


def known_address(config: Config, ip: int) -> bool:
    """True if the server hands out ``ip`` (in a pool, or reserved): a query by IP address for
    it with no binding is DHCPLEASEUNASSIGNED, for any other DHCPLEASEUNKNOWN (RFC 4388 6.4)."""
    for s in config.subnets:
        if s.first_ip <= ip <= s.last_ip:
            if any(p.first <= ip <= p.last for p in s.pools):
                return True
            if any(r.ip == ip for r in s.reservations):
                return True
    return False


def sends_client_id(lease: Lease) -> bool:
    """True if the lease's key is a client identifier the client sent (option 61), not the
    htype + chaddr key made for a client without one. A client-id of type 1 that holds the MAC
    is the same key by design (see ``Message.client_key``) and is not told apart: its reply
    carries the MAC in chaddr and no option 61."""
    key = lease.client_key
    return not (len(key) == len(lease.hw_address) + 1 and key[1:] == lease.hw_address)


def _u32(v: float) -> bytes:
    return struct.pack("!I", max(0, min(int(v), 0xFFFFFFFF)))


def active_options(lease: Lease, now: float, subnet: Subnet4 | None, server_id: int,
                   associated: tuple[int, ...] = ()) -> list[tuple[int, bytes]]:
    """The options of a DHCPLEASEACTIVE about ``lease`` (RFC 4388 6.4.1): 54 (when
    ``server_id``), 51 the time left, 58 and 59 the timers left when the subnet sets them, 91
    seconds since the last transaction, 61 when the client sent one, 92 the client's other
    bound addresses (``associated``), 82 as stored with the lease."""
    t = int(now)
    out: list[tuple[int, bytes]] = []
    if server_id:
        out.append((Opt.SERVER_ID, _u32(server_id)))
    # from the exact time: the engine rounds a binding's end up to the next second (never
    # early), so expires - int(now) would say one second more than was granted
    out.append((Opt.LEASE_TIME, _u32(lease.expires - now)))
    if subnet is not None:
        for code, timer in ((Opt.RENEWAL_TIME, subnet.lifetimes.renew_timer),
                            (Opt.REBINDING_TIME, subnet.lifetimes.rebind_timer)):
            if timer is not None and lease.issued + timer > t:
                out.append((code, _u32(lease.issued + timer - t)))
    out.append((Opt.CLIENT_LAST_TRANSACTION_TIME, _u32(t - lease.issued)))
    if sends_client_id(lease):
        out.append((Opt.CLIENT_ID, lease.client_key))
    if associated:
        out.append((Opt.ASSOCIATED_IP, b"".join(_u32(ip) for ip in associated)))
    if lease.relay_info:
        out.append((Opt.RELAY_AGENT, lease.relay_info))
    return out


def matcher(query: Query) -> Callable[[Lease], bool]:
    """The record test of a scanned query (by MAC, relay-id, remote-id, all), with the RFC 6926
    query-start-time / query-end-time bounds on the last transaction time."""
    key = query.key
    if query.kind == QueryKind.BY_MAC:
        def select(lease: Lease) -> bool:
            # the client key of a client without option 61 is htype + chaddr: the htype asked
            # is checked where the record keeps it
            return lease.hw_address == key and (
                sends_client_id(lease) or lease.client_key[0] == query.htype)
    elif query.kind in (QueryKind.BY_RELAY_ID, QueryKind.BY_REMOTE_ID):
        code = SUB_RELAY_ID if query.kind == QueryKind.BY_RELAY_ID else SUB_REMOTE_ID

        def select(lease: Lease) -> bool:
            return sub_option(lease.relay_info, code) == key
    elif query.kind == QueryKind.ALL:
        def select(lease: Lease) -> bool:
            return True
    else:
        raise ValueError(f"{query.kind.value} is not a scanned query")
    lo, hi = query.start_time, query.end_time
    if not lo and not hi:
        return select

    def bounded(lease: Lease) -> bool:
        if lo and lease.issued < lo:
            return False
        if hi and lease.issued > hi:
            return False
        return select(lease)
    return bounded


async def scan(table: LeaseTable, select: Callable[[Lease], bool],
               page_size: int) -> AsyncIterator[list[Lease]]:
    """The records ``select`` takes, in address order, a page of the table at a time: each page
    is one short read transaction of ``page_size`` records, and the loop runs other work
    between two pages (the DHCP packet path first)."""
    after: int | None = None
    while True:
        page = table.page(after, page_size)
        if not page:
            return
        hits = [x for x in page if select(x)]
        if hits:
            yield hits
        if len(page) < page_size:
            return
        after = page[-1].ip
        await asyncio.sleep(0)
