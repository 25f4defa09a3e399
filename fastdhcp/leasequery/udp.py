"""RFC 4388 leasequery over UDP: the handler the compiled packet path hands every
DHCPLEASEQUERY (message type 10) to, when ``[leasequery]`` is configured.

Who may ask: a relay in ``requesters``, by its giaddr *and* the datagram's source address
(RFC 4388 6.1: the requestor sets giaddr to its own address; section 7: the server answers only
those it is configured to trust). Anything else is dropped and counted
(``leasequery-not-allowed``); a client never gets an answer (giaddr 0: ``leasequery-no-giaddr``).

The answer (RFC 4388 6.4) goes to giaddr at the server port, as ISC dhcpd and Kea send it:

- by IP address: DHCPLEASEACTIVE when the address is bound, DHCPLEASEUNASSIGNED when the server
  hands it out but it is not bound, DHCPLEASEUNKNOWN otherwise;
- by client identifier or hardware address: DHCPLEASEACTIVE about the client's binding with the
  latest last transaction (and its other bound addresses in option 92), else DHCPLEASEUNKNOWN.

DHCPLEASEUNASSIGNED and DHCPLEASEUNKNOWN carry only what was asked (ciaddr, chaddr or option
61) and option 54. A query by IP address or client-id is answered within the burst; one by
hardware address scans the table (see :mod:`fastdhcp.leasequery.lookup`) in a task, and its
answer leaves through ``send`` when the scan is done.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from fastdhcp._codec import Message
from fastdhcp._sockio import Outgoing
from fastdhcp.config import Config
from fastdhcp.consts import MessageType
from fastdhcp.leasequery.lookup import (
    LeaseTable,
    active_options,
    bound,
    known_address,
    matcher,
    scan,
    sends_client_id,
)
from fastdhcp.leasequery.wire import Opt, Query, QueryKind, build, udp_query
from fastdhcp.leases import Lease
from fastdhcp.metrics import Metrics

__all__ = ["UdpLeaseQuery"]

log = logging.getLogger("fastdhcp.leasequery")

#: Records read per page of a hardware-address scan (one short read transaction each).
SCAN_PAGE = 1000


def _u32(v: int) -> bytes:
    return v.to_bytes(4, "big")


class UdpLeaseQuery:
    """The DHCPLEASEQUERY handler: ``handler(ep, msg, src_ip, now, t0)`` returns the reply to
    queue now, or None (dropped, or answered later through ``send(ep, reply)``)."""

    def __init__(self, config: Config, table: LeaseTable, metrics: Metrics,
                 send: Callable[[Any, Outgoing], None],
                 clock: Callable[[], float] = time.time) -> None:
        if config.leasequery is None:
            raise ValueError("no [leasequery] in this config")
        self.config = config
        self.lq = config.leasequery
        self.table = table
        self.metrics = metrics
        self.send = send
        self.clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def reconfigure(self, config: Config) -> None:
        """Answer from ``config``'s subnets, pools and server id from now on (a reload); the
        requesters stay those the server started with ([leasequery] needs a restart)."""
        self.config = config

    def __call__(self, ep: Any, msg: Message, src_ip: int, now: float,
                 t0: float) -> Outgoing | None:
        q = udp_query(msg)
        if isinstance(q, str):
            self.metrics.drop(q)
            return None
        if not (self.lq.allowed(msg.giaddr) and self.lq.allowed(src_ip)):
            self.metrics.drop("leasequery-not-allowed")
            return None
        sid = self.config.server.server_id or ep.link.address
        if q.kind == QueryKind.BY_MAC:
            task = asyncio.get_running_loop().create_task(
                self._by_mac(ep, msg, q, sid, t0))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return None
        return self._outgoing(msg, self.answer(msg, q, sid, now), t0)

    def _outgoing(self, msg: Message, reply: tuple[MessageType, bytes], t0: float) -> Outgoing:
        return Outgoing(reply[1], msg.giaddr, self.config.server.port, int(reply[0]), t0)

    def answer(self, msg: Message, q: Query, sid: int, now: float,
               leases: list[Lease] | None = None) -> tuple[MessageType, bytes]:
        """The reply to query ``q`` of ``msg``: its type and bytes. ``leases`` are the records
        a hardware-address scan found (other kinds read the table here)."""
        if q.kind == QueryKind.BY_IP:
            lease = self.table.get(q.ip)
            if bound(lease, now):
                assert lease is not None
                return self._active(msg, lease, now, sid, ())
            kind = (MessageType.LEASEUNASSIGNED if known_address(self.config, q.ip)
                    else MessageType.LEASEUNKNOWN)
            return kind, build(kind, msg.xid, flags=msg.flags, giaddr=msg.giaddr,
                               ciaddr=q.ip, options=[(Opt.SERVER_ID, _u32(sid))])
        if q.kind == QueryKind.BY_CLIENT_ID:
            found = self.table.get_by_client(q.key)
            leases = [found] if found is not None else []
        live = [x for x in (leases or []) if bound(x, now)]
        if not live:
            opts = [(Opt.SERVER_ID, _u32(sid))]
            if q.kind == QueryKind.BY_CLIENT_ID:
                opts.append((Opt.CLIENT_ID, q.key))
            return MessageType.LEASEUNKNOWN, build(
                MessageType.LEASEUNKNOWN, msg.xid, flags=msg.flags, giaddr=msg.giaddr,
                htype=msg.htype if q.kind == QueryKind.BY_MAC else 0,
                chaddr=q.key if q.kind == QueryKind.BY_MAC else b"", options=opts)
        # RFC 4388 6.4.1: the binding with the latest last transaction answers; the others are
        # listed in associated-ip (92), as ISC dhcpd and Kea list them
        live.sort(key=lambda x: (x.issued, x.ip))
        newest = live[-1]
        return self._active(msg, newest, now, sid, tuple(x.ip for x in live[:-1]))

    def _active(self, msg: Message, lease: Lease, now: float, sid: int,
                associated: tuple[int, ...]) -> tuple[MessageType, bytes]:
        subnet = self.config.subnet(lease.subnet_id)
        # a key made of htype + chaddr keeps the htype; a client-id key does not (Ethernet)
        htype = 1 if sends_client_id(lease) else lease.client_key[0]
        opts = active_options(lease, now, subnet, sid, associated)
        return MessageType.LEASEACTIVE, build(
            MessageType.LEASEACTIVE, msg.xid, flags=msg.flags, giaddr=msg.giaddr,
            ciaddr=lease.ip, htype=htype, chaddr=lease.hw_address[:16], options=opts)

    async def _by_mac(self, ep: Any, msg: Message, q: Query, sid: int, t0: float) -> None:
        try:
            found: list[Lease] = []
            async for hits in scan(self.table, matcher(q), SCAN_PAGE):
                found.extend(hits)
            reply = self.answer(msg, q, sid, self.clock(), found)
            self.send(ep, self._outgoing(msg, reply, t0))
        except Exception:
            self.metrics.internal_errors += 1
            self.metrics.drop("internal-error")
            log.exception("leasequery by hardware address")

    async def close(self) -> None:
        """Cancel the scans still running (the server is stopping or reloading)."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
