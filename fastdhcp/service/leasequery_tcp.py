"""RFC 6926 bulk leasequery: a TCP listener on ``lease-query-ip``:``lease-query-tcp-port`` (67 by
default), run on the server's loop, started and stopped with the server.

A connection (RFC 6926 section 7):

- is accepted only from an address in ``requesters``, and only while fewer than
  ``max-requester-connections`` are open; any other is closed at once (counted refused);
- carries messages each framed by a two-byte length (section 5.1,
  :class:`fastdhcp.leasequery.wire.FrameReader`); a frame that is not a DHCP message, or a
  zero length, closes the connection (no boundary left to trust);
- takes DHCPBULKLEASEQUERY messages, run one after another in the order they came, at most
  ``max-concurrent-queries`` waiting (one more is answered at once with a DHCPLEASEQUERYDONE,
  status NotAllowed);
- gets, per query, zero or more DHCPLEASEACTIVE (and, for a query for all addresses,
  DHCPLEASEUNASSIGNED about the records that are not bound, with their dhcp-state) with the
  query's xid, then one DHCPLEASEQUERYDONE (with a status-code option when the query was
  refused; section 7.4);
- is closed after ``max-requester-idle-time`` seconds without data while no query runs.

The leases are read in pages of ``max-leases-per-fetch`` records, each page one short LMDB read
transaction (:func:`fastdhcp.leasequery.lookup.scan`): the writer is never held, and the loop
serves DHCP between two pages. Writing waits for the socket to drain after each page, so a slow
requester holds back its own query, not the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastdhcp._codec import parse
from fastdhcp.config import Config
from fastdhcp.consts import MessageType
from fastdhcp.errors import MalformedPacket
from fastdhcp.leasequery.lookup import (
    LeaseTable,
    active_options,
    bound,
    matcher,
    scan,
    sends_client_id,
)
from fastdhcp.leasequery.wire import (
    DhcpState,
    FrameReader,
    Opt,
    Query,
    QueryKind,
    Refusal,
    Status,
    build,
    bulk_query,
    frame,
)
from fastdhcp.leases import Lease, LeaseState
from fastdhcp.metrics import Metrics

__all__ = ["BulkLeaseQueryServer"]

log = logging.getLogger("fastdhcp.leasequery")


def _u32(v: float) -> bytes:
    return struct.pack("!I", max(0, min(int(v), 0xFFFFFFFF)))


def _state(lease: Lease, now: float) -> DhcpState:
    """The RFC 6926 dhcp-state of a record."""
    if lease.state == LeaseState.DEFAULT:
        return DhcpState.ACTIVE if lease.expires > now else DhcpState.EXPIRED
    if lease.state == LeaseState.DECLINED:
        return DhcpState.ABANDONED
    if lease.state == LeaseState.RELEASED:
        return DhcpState.RELEASED
    return DhcpState.EXPIRED


@dataclass(eq=False)
class _Connection:
    writer: asyncio.StreamWriter
    peer: str
    queue: asyncio.Queue[Query | _Refused] = field(default_factory=asyncio.Queue)
    running: bool = False


class BulkLeaseQueryServer:
    """The bulk leasequery listener of one server configuration."""

    def __init__(self, config: Config, table: LeaseTable, metrics: Metrics,
                 clock: Callable[[], float] = time.time) -> None:
        lq = config.leasequery
        if lq is None or not lq.bulk.enabled:
            raise ValueError("bulk leasequery is not enabled in this config")
        self.config = config
        self.lq = lq
        self.bulk = lq.bulk
        self.table = table
        self.metrics = metrics
        self.clock = clock
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()

    def reconfigure(self, config: Config) -> None:
        """Use ``config``'s subnets and server id from now on (a reload); the listener and its
        limits stay those it started with ([leasequery] needs a restart)."""
        self.config = config

    @property
    def sockname(self) -> tuple[str, int] | None:
        """The bound address (the port when 0 was asked, in tests), or None when stopped."""
        if self._server is None or not self._server.sockets:
            return None
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        """Listen (``OSError`` when the address cannot be bound)."""
        self._server = await asyncio.start_server(
            self._accept, self.bulk.address, self.bulk.port, reuse_address=True)
        log.info("bulk leasequery on %s:%d (TCP)", self.bulk.address, self.bulk.port)

    async def close(self) -> None:
        """Stop listening and close every connection (running queries end there)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._conns)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    # ----------------------------------------------------------------- connections

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = peer[0] if peer else ""
        try:
            ip = int(ipaddress.IPv4Address(host))
        except ValueError:
            ip = 0
        m = self.metrics
        if not self.lq.allowed(ip) or m.bulk_open >= self.bulk.max_connections:
            m.bulk_refused += 1
            log.info("bulk leasequery: connection from %s refused (%s)", host,
                     "not a requester" if not self.lq.allowed(ip) else
                     f"{m.bulk_open} open, max-requester-connections {self.bulk.max_connections}")
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        m.bulk_connections += 1
        m.bulk_open += 1
        conn = _Connection(writer, host)
        worker = asyncio.get_running_loop().create_task(self._serve(conn))
        try:
            await self._read(conn, reader)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            m.bulk_open -= 1
            self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        frames = FrameReader()
        idle = float(self.bulk.idle_time)
        limit = self.bulk.concurrent_limit
        while True:
            try:
                data = await asyncio.wait_for(reader.read(65536), idle)
            except TimeoutError:
                if conn.running or not conn.queue.empty():
                    continue  # idle is a requester sending nothing while nothing runs
                self.metrics.bulk_idle_closed += 1
                log.info("bulk leasequery: %s idle for %g s, closed", conn.peer, idle)
                return
            if not data:
                # the requester has sent all it will (a half-close): answer what it asked
                await conn.queue.join()
                return
            for raw in frames.feed(data):
                try:
                    msg = parse(raw)
                except MalformedPacket as exc:
                    self.metrics.bad(f"bulk leasequery: {exc.reason}")
                    return
                if msg.message_type != MessageType.BULKLEASEQUERY:
                    q: Query | Refusal = Refusal(
                        Status.MALFORMED_QUERY,
                        f"message type {msg.message_type} is not DHCPBULKLEASEQUERY")
                else:
                    q = bulk_query(msg)
                waiting = conn.queue.qsize() + (1 if conn.running else 0)
                if waiting >= limit:
                    await self._send(conn, [self._done(msg.xid, Status.NOT_ALLOWED,
                                                       f"more than {limit} queries at once")])
                    continue
                conn.queue.put_nowait(q if isinstance(q, Query) else _Refused(msg.xid, q))
            if frames.error is not None:
                self.metrics.bad(f"bulk leasequery: {frames.error}")
                await conn.queue.join()  # the queries framed before it are answered
                return

    async def _serve(self, conn: _Connection) -> None:
        while True:
            q = await conn.queue.get()
            conn.running = True
            try:
                if isinstance(q, _Refused):
                    await self._send(conn, [self._done(q.xid, q.refusal.status,
                                                       q.refusal.text)])
                else:
                    await self._run(conn, q)
                self.metrics.bulk_queries += 1
            finally:
                conn.running = False
                conn.queue.task_done()

    async def _send(self, conn: _Connection, messages: list[bytes]) -> None:
        conn.writer.write(b"".join(frame(x) for x in messages))
        self.metrics.bulk_replies += len(messages)
        await conn.writer.drain()

    # ----------------------------------------------------------------- queries

    def _done(self, xid: int, status: Status = Status.SUCCESS, text: str = "") -> bytes:
        opts: list[tuple[int, bytes]] = []
        if status != Status.SUCCESS or text:
            opts.append((Opt.STATUS_CODE, bytes((status,)) + text.encode()))
        return build(MessageType.LEASEQUERYDONE, xid, options=opts, pad=False)

    async def _run(self, conn: _Connection, q: Query) -> None:
        """Answer one query: its replies page by page, then DHCPLEASEQUERYDONE."""
        first = [True]
        if q.kind == QueryKind.BY_CLIENT_ID:
            lease = self.table.get_by_client(q.key)
            now = self.clock()
            hits = [lease] if lease is not None and self._wanted(q, lease, now) else []
            await self._send(conn, [self._reply(q, x, now, first) for x in hits])
        else:
            select = matcher(q)
            async for page in scan(self.table, select, self.bulk.page_size):
                now = self.clock()
                out = [self._reply(q, x, now, first) for x in page
                       if q.kind == QueryKind.ALL or bound(x, now)]
                if out:
                    await self._send(conn, out)
        await self._send(conn, [self._done(q.xid)])

    def _wanted(self, q: Query, lease: Lease, now: float) -> bool:
        if not bound(lease, now):
            return False
        if q.start_time and lease.issued < q.start_time:
            return False
        return not (q.end_time and lease.issued > q.end_time)

    def _reply(self, q: Query, lease: Lease, now: float, first: list[bool]) -> bytes:
        """DHCPLEASEACTIVE about a bound lease, else (query for all) DHCPLEASEUNASSIGNED with
        its dhcp-state. base-time (152) in every reply, server id (54) in the first (as Kea)."""
        state = _state(lease, now)
        sid = 0
        if first[0]:
            first[0] = False
            sid = self.config.server.server_id or int(ipaddress.IPv4Address(self.bulk.address))
        htype = 1 if sends_client_id(lease) else lease.client_key[0]
        if state == DhcpState.ACTIVE:
            kind = MessageType.LEASEACTIVE
            opts = active_options(lease, now, self.config.subnet(lease.subnet_id), sid)
        else:
            kind = MessageType.LEASEUNASSIGNED
            opts = [(Opt.SERVER_ID, _u32(sid))] if sid else []
        opts.append((Opt.BASE_TIME, _u32(now)))
        if q.kind == QueryKind.ALL:
            opts.append((Opt.DHCP_STATE, bytes((state,))))
        return build(kind, q.xid, ciaddr=lease.ip, htype=htype, chaddr=lease.hw_address[:16],
                     options=opts, pad=False)


@dataclass(frozen=True, slots=True)
class _Refused:
    """A query refused before it ran, waiting its turn for its DHCPLEASEQUERYDONE."""

    xid: int
    refusal: Refusal
