"""The DHCPv4 server's decisions, sans-IO: ``Engine.handle(message, link, now) -> Decision``.

Theory of operation
===================

The engine owns no socket, thread or clock: the service hands it a parsed request, the link it
arrived on and the time, and gets back what to send, where, and which binding must be durable
first. Timers are asked for (:meth:`Engine.reclaim` returns when to call it next), never slept.

State, and where it lives
-------------------------
* **Leases** (the :class:`~fastdhcp.leases.LeaseStore`): one record per address, the durable
  truth. A record is *active* in state DEFAULT (bound) or DECLINED (probation) and inactive in
  RELEASED or EXPIRED_RECLAIMED, where it only remembers the last client (affinity: a client
  that comes back gets its previous address while it is still free, RFC 2131 4.3.1).
* **Offers** (memory only, never persisted): client key -> offered address, held for the
  subnet's offer-lifetime so that no other client is offered the same address. A repeated
  DISCOVER gets the same offer back. DISCOVER commits nothing (Kea's "fake allocation").
* **Pool bitmaps** (memory, rebuilt at start): a bit is *used* exactly when something claims the
  address: an active lease, a held offer, or a reservation. :meth:`Engine._settle` re-derives a
  bit from those three whenever one of them lets go, so a bit is never freed from under a claim.

Transitions (client key = option 61 if sent, else htype + chaddr)
-----------------------------------------------------------------
=================  ==========================================================================
DISCOVER           hold an offer: existing binding > reservation > requested address (50)
                   if free > fresh allocation (previous address as hint); nothing staged.
REQUEST selecting  (54 present) ours: bind the requested address if it is the client's to
                   have (its offer, or free) -> stage DEFAULT, ACK; else NAK. Another
                   server's id: drop our offer silently, free its address.
REQUEST init-reb.  (no 54, 50 set, ciaddr 0) right address and link -> ACK; wrong network or
                   another client's address -> NAK; no record of the client -> silence
                   (NAK when authoritative).
REQUEST renew/reb. (ciaddr set) the client's binding -> extend, stage, ACK; the address is
                   another client's -> NAK; no record -> silence (NAK when authoritative).
DECLINE            the client's binding -> stage DECLINED until now + decline-probation-period;
                   the address stays used and is never offered meanwhile.
RELEASE            the client's binding -> stage RELEASED (keeps affinity), bit freed.
INFORM             ACK with configuration options only (no 51/58/59, yiaddr 0).
reclaim(now)       expired DEFAULT -> stage EXPIRED_RECLAIMED, bit freed; DECLINED past
                   probation -> EXPIRED_RECLAIMED, bit freed; expired offers dropped.
=================  ==========================================================================

What is durable when
--------------------
``store.stage(lease)`` makes a change visible at once and puts it in the open batch. An ACK's
:class:`Decision` carries the staged lease in ``binding``: the service sends the ACK only after
that batch has committed (RFC 2131 3.1 step 4). RELEASE, DECLINE and reclamation stage too, but
have no reply to hold back. OFFERs go out at once: an offer lost in a crash costs the client one
more DISCOVER, never an address given twice, since a held offer is not a binding. If a batch
fails, the service calls :meth:`Engine.rollback` with it, and the bitmaps follow the store back.

Options
-------
Configuration options come already merged (reservation > subnet > global). A reply carries:
54 server identifier, 51/58/59 for leases, then option 1 (subnet mask) always (computed from the
subnet when not configured; RFC 2132 3.3 wants it before 3), the options the client asked for in
its parameter request list (55) in the client's order, and routers (3), domain name servers (6)
and domain name (15) whenever configured even if not asked for (as Kea does: clients that send
no PRL still get a usable configuration); then the client identifier echoed (RFC 6842) and
option 82 echoed verbatim, last (RFC 3046 2.2). The filtered list is cached per (option source,
PRL bytes, lease time).
"""

from __future__ import annotations

import bisect
import heapq
import time
from array import array
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from fastdhcp._codec import Message, ReplyBuilder
from fastdhcp._bitmap import PoolBitmap
from fastdhcp.leases import Lease, LeaseState, LeaseStore
from fastdhcp.routing import reply_destination
from fastdhcp.selection import SubnetSelector

__all__ = ["Decision", "Engine", "Link", "PoolStat"]

# Message types (RFC 2132 9.6).
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = 1, 2, 3, 4, 5, 6, 7, 8

_DEFAULT = LeaseState.DEFAULT
_DECLINED = LeaseState.DECLINED
_RELEASED = LeaseState.RELEASED
_EXPIRED = LeaseState.EXPIRED_RECLAIMED
_INFINITE = 0xFFFFFFFF

#: Options the engine writes itself; never copied from configuration into a reply.
_MANAGED = frozenset((0, 50, 51, 52, 53, 54, 55, 57, 58, 59, 61, 82, 118, 255))
#: Sent whenever configured, asked for or not (Kea's basic options).
_BASIC = (3, 6, 15)
#: How many filtered option lists to keep before starting over (distinct PRLs are few).
_CACHE_MAX = 8192


class Link(NamedTuple):
    """The socket a request arrived on."""

    name: str  #: interface name, or "" for a listen-address (unicast only) socket
    address: int  #: our IPv4 address there (host order); the default server identifier


class PoolStat(NamedTuple):
    """Occupancy of one pool, for metrics."""

    subnet_id: int
    pool: str  #: the pool as configured, e.g. "192.0.2.100 - 192.0.2.200"
    size: int
    used: int  #: addresses bound, declined, offered or reserved


class Decision:
    """What to do with one request. ``kind`` is "offer", "ack", "nak" or "drop"."""

    __slots__ = (
        "kind",
        "reply",
        "dest_ip",
        "dest_port",
        "broadcast",
        "l2_unicast",
        "binding",
        "reason",
    )

    def __init__(
        self,
        kind: str,
        reply: bytes | None = None,
        dest_ip: int = 0,
        dest_port: int = 0,
        broadcast: bool = False,
        l2_unicast: tuple[int, bytes] | None = None,
        binding: Lease | None = None,
        reason: str = "",
    ) -> None:
        self.kind = kind
        #: the reply datagram (DHCP payload), None for "drop"
        self.reply = reply
        self.dest_ip = dest_ip
        self.dest_port = dest_port
        #: dest_ip is 255.255.255.255: send out the receiving interface
        self.broadcast = broadcast
        #: (yiaddr, chaddr): the service may unicast at layer 2 instead of broadcasting
        self.l2_unicast = l2_unicast
        #: the staged lease this reply must wait for (ACKs only)
        self.binding = binding
        #: drop reason, or what the decision was about (counted by the service)
        self.reason = reason

    def __repr__(self) -> str:
        return (
            f"Decision({self.kind!r}, reason={self.reason!r}, dest={self.dest_ip:#x}:"
            f"{self.dest_port}, broadcast={self.broadcast}, l2={self.l2_unicast!r})"
        )


def _drop(reason: str) -> Decision:
    return Decision("drop", None, 0, 0, False, None, None, reason)


class _Offer:
    """An address held for one client between OFFER and REQUEST (memory only)."""

    __slots__ = ("ip", "expires")

    def __init__(self, ip: int, expires: float) -> None:
        self.ip = ip
        self.expires = expires


class _SubnetInfo:
    """Per-subnet values precomputed once from the configuration."""

    __slots__ = (
        "subnet",
        "id",
        "valid",
        "min_valid",
        "max_valid",
        "renew",
        "rebind",
        "offer_lifetime",
        "probation",
        "options",
        "bitmaps",
        "authoritative",
        "by_hw",
        "by_cid",
        "by_circuit",
    )

    def __init__(self, subnet: Any, global_authoritative: bool) -> None:
        lt = subnet.lifetimes
        self.subnet = subnet
        self.id: int = subnet.id
        self.valid: int = lt.valid_lifetime
        self.min_valid: int = (
            lt.min_valid_lifetime if lt.min_valid_lifetime is not None else lt.valid_lifetime
        )
        self.max_valid: int = (
            lt.max_valid_lifetime if lt.max_valid_lifetime is not None else lt.valid_lifetime
        )
        self.renew: int | None = lt.renew_timer
        self.rebind: int | None = lt.rebind_timer
        self.offer_lifetime: float = lt.offer_lifetime
        self.probation: int = lt.decline_probation_period
        opts = dict(subnet.options)
        opts.setdefault(1, int(subnet.network.netmask).to_bytes(4, "big"))
        self.options: dict[int, bytes] = opts
        self.bitmaps: list[PoolBitmap] = []
        self.authoritative: bool = bool(global_authoritative or subnet.authoritative)
        self.by_hw: dict[bytes, Any] = {}
        self.by_cid: dict[bytes, Any] = {}
        self.by_circuit: dict[bytes, Any] = {}
        for r in subnet.reservations:
            if r.hw_address:
                self.by_hw.setdefault(bytes(r.hw_address), r)
            if r.client_id:
                self.by_cid.setdefault(bytes(r.client_id), r)
            if r.circuit_id:
                self.by_circuit.setdefault(bytes(r.circuit_id), r)


class Engine:
    """RFC 2131 server decisions over a :class:`~fastdhcp.leases.LeaseStore`.

    ``now`` is the clock used only where no time is passed in (start-up); every request and
    :meth:`reclaim` take the time as an argument so tests can run on a fake clock.
    """

    def __init__(
        self,
        config: Any,
        store: LeaseStore,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store = store
        self._clock = now
        server = config.server
        self._server_id: int = server.server_id
        self._server_port: int = server.port
        self._client_port: int = server.client_port
        self._builder = ReplyBuilder()
        subnets = tuple(config.subnets)
        self._selector = SubnetSelector(subnets)
        self._infos: dict[int, _SubnetInfo] = {
            s.id: _SubnetInfo(s, server.authoritative) for s in subnets
        }
        self._groups: dict[int, tuple[_SubnetInfo, ...]] = {
            s.id: tuple(self._infos[m.id] for m in self._selector.group(s)) for s in subnets
        }
        self._group_has_res: dict[int, bool] = {
            sid: any(i.by_hw or i.by_cid or i.by_circuit for i in g)
            for sid, g in self._groups.items()
        }
        # Pools, sorted by first address, for address -> pool lookups (pools never overlap).
        pools: list[tuple[int, PoolBitmap, _SubnetInfo, str]] = []
        for s in subnets:
            info = self._infos[s.id]
            for p in s.pools:
                bm = PoolBitmap(p.first, p.last)
                info.bitmaps.append(bm)
                pools.append((p.first, bm, info, p.text))
        pools.sort(key=lambda x: x[0])
        self._pool_firsts: list[int] = [p[0] for p in pools]
        self._pool_bitmaps: list[PoolBitmap] = [p[1] for p in pools]
        self._pool_infos: list[_SubnetInfo] = [p[2] for p in pools]
        self._pool_texts: list[str] = [p[3] for p in pools]
        # Reserved addresses: never allocated to anybody else.
        self._reserved: dict[int, tuple[Any, _SubnetInfo]] = {}
        for s in subnets:
            for r in s.reservations:
                self._reserved.setdefault(r.ip, (r, self._infos[s.id]))
        self._offers: dict[bytes, _Offer] = {}
        self._offered: dict[int, bytes] = {}
        self._offer_heap: list[tuple[float, int, bytes, _Offer]] = []
        self._seq = 0
        self._opt_cache: dict[tuple[int, bytes, int], list[tuple[int, bytes]]] = {}
        self._sid_cache: dict[int, tuple[int, bytes]] = {}
        self._rebuild()

    # ------------------------------------------------------------------ start-up, bitmaps

    def _rebuild(self) -> None:
        """Mark used every address the store shows active, and every reserved address."""
        active = array("I", sorted(self._store.active_addresses()))
        reserved = array("I", sorted(self._reserved))
        for bm in self._pool_bitmaps:
            if active:
                bm.reserve_many(active)
            if reserved:
                bm.reserve_many(reserved)

    def _bitmap_for(self, ip: int) -> tuple[PoolBitmap, _SubnetInfo] | None:
        """The pool bitmap containing ``ip`` and its subnet, or None."""
        i = bisect.bisect_right(self._pool_firsts, ip) - 1
        if i >= 0:
            bm = self._pool_bitmaps[i]
            if ip <= bm.last:
                return bm, self._pool_infos[i]
        return None

    def _settle(self, ip: int) -> None:
        """Make ``ip``'s bit used exactly when a lease, an offer or a reservation claims it."""
        found = self._bitmap_for(ip)
        if found is None:
            return
        bm = found[0]
        lease = self._store.get(ip)
        claimed = (
            ip in self._reserved
            or ip in self._offered
            or (lease is not None and lease.state in (_DEFAULT, _DECLINED))
        )
        if claimed:
            if bm.is_free(ip):
                bm.reserve(ip)
        elif not bm.is_free(ip):
            bm.free(ip)

    # ------------------------------------------------------------------ offers

    def _drop_offer(self, key: bytes, offer: _Offer) -> None:
        """Forget ``key``'s offer and free its address unless something else claims it."""
        if self._offers.get(key) is offer:
            del self._offers[key]
        if self._offered.get(offer.ip) == key:
            del self._offered[offer.ip]
            self._settle(offer.ip)

    def _hold(self, key: bytes, ip: int, expires: float) -> None:
        offer = _Offer(ip, expires)
        self._offers[key] = offer
        self._offered[ip] = key
        self._seq += 1
        heapq.heappush(self._offer_heap, (expires, self._seq, key, offer))

    # ------------------------------------------------------------------ ownership

    def _claim(
        self, ip: int, key: bytes, res_ip: int, group: tuple[_SubnetInfo, ...], now: float
    ) -> _SubnetInfo | None:
        """Take ``ip`` for client ``key`` on the link ``group`` if it may have it.

        It may when the address lies in a pool of the link (or is the client's reservation
        there), is not reserved for another client, not offered to another client, and not
        bound or declined. Marks the bit used; returns the address's subnet, or None.
        """
        res = self._reserved.get(ip)
        if res is not None and ip != res_ip:
            return None
        holder = self._offered.get(ip)
        if holder is not None and holder != key:
            other = self._offers.get(holder)
            if other is not None and other.expires > now:
                return None
            if other is not None:
                self._drop_offer(holder, other)
            holder = None
        lease = self._store.get(ip)
        mine = False
        if lease is not None:
            st = lease.state
            if st == _DECLINED:
                return None
            if st == _DEFAULT:
                if lease.client_key != key:
                    return None
                mine = True
        found = self._bitmap_for(ip)
        if found is None:
            # Outside every pool: only a reservation can hand it out.
            if res is not None and ip == res_ip and res[1] in group:
                return res[1]
            return None
        bm, info = found
        if info not in group:
            if res is None or res[1] not in group:
                return None
            info = res[1]
        if bm.is_free(ip):
            bm.reserve(ip)
            return info
        if mine or holder == key or res is not None:
            return info
        return None  # used by something we cannot name: leave it alone

    def _allocate(self, group: tuple[_SubnetInfo, ...], hint: int) -> tuple[int, _SubnetInfo]:
        """A fresh address from the link's pools (next subnet when one is full); (0, _) if
        none is left."""
        for info in group:
            for bm in info.bitmaps:
                if bm.free_count:
                    h = hint if bm.first <= hint <= bm.last else 0
                    return bm.allocate(h), info
        return 0, group[0]

    def _reservation(
        self, group: tuple[_SubnetInfo, ...], chaddr: bytes, cid: bytes | None, msg: Message
    ) -> Any | None:
        """The client's reservation on this link (hw-address, client-id, then circuit-id)."""
        circuit = msg.circuit_id
        for info in group:
            r = info.by_hw.get(chaddr)
            if r is None and cid:
                r = info.by_cid.get(cid)
            if r is None and circuit:
                r = info.by_circuit.get(circuit)
            if r is not None:
                return r
        return None

    # ------------------------------------------------------------------ replies

    def _options(
        self, src: Any, options: dict[int, bytes], prl: bytes | None, lease_time: int, info: Any
    ) -> list[tuple[int, bytes]]:
        """Lease-time options plus configured options filtered by the PRL (cached)."""
        pkey = prl or b""
        ckey = (id(src), pkey, lease_time)
        cached = self._opt_cache.get(ckey)
        if cached is not None:
            return cached
        out: list[tuple[int, bytes]] = []
        if lease_time >= 0:
            out.append((51, lease_time.to_bytes(4, "big")))
            if lease_time != _INFINITE:
                t2 = info.rebind if info.rebind is not None else lease_time * 7 // 8
                t1 = info.renew if info.renew is not None else lease_time // 2
                if t2 >= lease_time:
                    t2 = None
                if t1 >= (t2 if t2 is not None else lease_time):
                    t1 = None
                if t1 is not None:
                    out.append((58, t1.to_bytes(4, "big")))
                if t2 is not None:
                    out.append((59, t2.to_bytes(4, "big")))
        seen = set()
        for code in (1, *pkey, *_BASIC):
            if code in seen or code in _MANAGED:
                continue
            seen.add(code)
            v = options.get(code)
            if v is not None:
                out.append((code, v))
        if len(self._opt_cache) >= _CACHE_MAX:
            self._opt_cache.clear()
        self._opt_cache[ckey] = out
        return out

    def _server_id_for(self, msg: Message, link: Link) -> int:
        """Server identifier for this request: RFC 5107 override from a relay, else the
        configured one, else the receiving address."""
        if msg.giaddr:
            o = msg.server_id_override
            if o:
                return o
        return self._server_id or link.address

    def _sid_option(self, sid: int) -> tuple[int, bytes]:
        opt = self._sid_cache.get(sid)
        if opt is None:
            opt = (54, sid.to_bytes(4, "big"))
            if len(self._sid_cache) < 4096:
                self._sid_cache[sid] = opt
        return opt

    def _reply(
        self,
        msg: Message,
        kind: str,
        mtype: int,
        ciaddr: int,
        yiaddr: int,
        opts: list[tuple[int, bytes]],
        binding: Lease | None,
        reason: str,
    ) -> Decision:
        cid = msg.client_id
        if cid:
            opts.append((61, cid))
        rai = msg.relay_agent_info
        if rai is not None:
            opts.append((82, rai))
        reply = self._builder.build(msg, mtype, ciaddr, yiaddr, 0, opts)
        r = reply_destination(
            mtype,
            msg.giaddr,
            msg.ciaddr,
            msg.broadcast,
            yiaddr,
            msg.htype,
            msg.chaddr,
            self._server_port,
            self._client_port,
        )
        if r.set_broadcast_flag and not reply[10] & 0x80:
            # RFC 2131 4.1: a NAK through a relay must be broadcast by the relay.
            reply = b"".join((reply[:10], bytes((reply[10] | 0x80,)), reply[11:]))
        return Decision(kind, reply, r.dest_ip, r.dest_port, r.broadcast, r.l2_unicast, binding,
                        reason)

    def _nak(self, msg: Message, sid: int, reason: str) -> Decision:
        return self._reply(msg, "nak", NAK, 0, 0, [self._sid_option(sid)], None, reason)

    def _lease_time(self, info: _SubnetInfo, requested: int) -> int:
        """valid-lifetime, or the client's option 51 clamped to [min, max]."""
        if requested < 0:
            return info.valid
        if requested < info.min_valid:
            return info.min_valid
        if requested > info.max_valid:
            return info.max_valid
        return requested

    # ------------------------------------------------------------------ handle

    def handle(self, msg: Message, link: Link, now: float) -> Decision:
        """Decide what to answer to ``msg`` received on ``link`` at ``now`` (RFC 2131 4.3)."""
        if msg.op != 1:
            return _drop("not-request")
        mtype = msg.message_type
        cid = msg.client_id
        chaddr = msg.chaddr
        key = cid if cid else bytes((msg.htype,)) + chaddr
        if len(key) < 2:
            return _drop("no-client-id")
        if mtype == DISCOVER:
            return self._discover(msg, link, now, key, chaddr, cid)
        if mtype == REQUEST:
            return self._request(msg, link, now, key, chaddr, cid)
        if mtype == RELEASE:
            return self._release(msg, link, now, key)
        if mtype == DECLINE:
            return self._decline(msg, link, now, key)
        if mtype == INFORM:
            return self._inform(msg, link, key, chaddr, cid)
        if mtype == 0:
            return _drop("bootp")
        return _drop("unexpected-type")

    def _select(self, msg: Message, link: Link) -> _SubnetInfo | None:
        s = self._selector.select(
            msg.subnet_selection,
            msg.link_selection,
            msg.giaddr,
            msg.ciaddr,
            link.name,
            link.address,
        )
        return None if s is None else self._infos[s.id]

    def _discover(
        self, msg: Message, link: Link, now: float, key: bytes, chaddr: bytes, cid: bytes | None
    ) -> Decision:
        """RFC 2131 4.3.1: choose an address and hold it as an offer; commit nothing."""
        sel = self._select(msg, link)
        if sel is None:
            return _drop("no-subnet")
        group = self._groups[sel.id]
        res = self._reservation(group, chaddr, cid, msg) if self._group_has_res[sel.id] else None
        res_ip = res.ip if res is not None else 0
        ip = 0
        info: _SubnetInfo | None = None
        offer = self._offers.get(key)
        if offer is not None:
            if offer.expires > now:
                found = self._bitmap_for(offer.ip)
                oinfo = found[1] if found is not None else self._reserved[offer.ip][1]
                if oinfo in group:
                    ip, info = offer.ip, oinfo
            if not ip:
                self._drop_offer(key, offer)
        hint = 0
        if not ip:
            lease = self._store.get_by_client(key)
            if lease is not None and lease.client_key == key:
                if lease.state == _DEFAULT:
                    info = self._claim(lease.ip, key, res_ip, group, now)
                    if info is not None:
                        ip = lease.ip
                elif lease.state != _DECLINED:
                    hint = lease.ip
        if not ip and res_ip:
            info = self._claim(res_ip, key, res_ip, group, now)
            if info is not None:
                ip = res_ip
        if not ip:
            req = msg.requested_ip
            if req:
                info = self._claim(req, key, res_ip, group, now)
                if info is not None:
                    ip = req
        if not ip:
            ip, info = self._allocate(group, hint)
            if not ip:
                return _drop("pool-exhausted")
        assert info is not None
        expires = now + info.offer_lifetime
        if offer is not None and offer.ip == ip and self._offers.get(key) is offer:
            offer.expires = expires
            self._seq += 1
            heapq.heappush(self._offer_heap, (expires, self._seq, key, offer))
        else:
            self._hold(key, ip, expires)
        lt = self._lease_time(info, msg.lease_time)
        if res is not None and res_ip == ip:
            opts = self._options(res, res.options, msg.prl, lt, info)
        else:
            opts = self._options(info, info.options, msg.prl, lt, info)
        return self._reply(
            msg,
            "offer",
            OFFER,
            0,
            ip,
            [self._sid_option(self._server_id_for(msg, link)), *opts],
            None,
            "",
        )

    def _request(
        self, msg: Message, link: Link, now: float, key: bytes, chaddr: bytes, cid: bytes | None
    ) -> Decision:
        """RFC 2131 4.3.2: SELECTING, INIT-REBOOT, RENEWING and REBINDING."""
        sid = self._server_id_for(msg, link)
        server_id = msg.server_id
        if server_id:
            # SELECTING: the client chose a server.
            if server_id != sid and server_id != link.address and server_id != self._server_id:
                offer = self._offers.get(key)
                if offer is not None:
                    self._drop_offer(key, offer)
                return _drop("other-server")
            state = "selecting"
            ip = msg.requested_ip or msg.ciaddr
            if not ip:
                return _drop("no-requested-address")
        else:
            ip = msg.requested_ip
            if ip and not msg.ciaddr:
                state = "init-reboot"
            elif msg.ciaddr:
                ip = msg.ciaddr
                state = "renewing" if not msg.broadcast and not msg.giaddr else "rebinding"
            else:
                return _drop("no-requested-address")
        sel = self._select(msg, link)
        if sel is None:
            return _drop("no-subnet")
        group = self._groups[sel.id]
        res = self._reservation(group, chaddr, cid, msg) if self._group_has_res[sel.id] else None
        res_ip = res.ip if res is not None else 0

        offer = self._offers.get(key)
        if offer is not None and offer.ip != ip:
            # The client wants something else: our offer is moot.
            self._drop_offer(key, offer)
            offer = None

        if state != "selecting":
            if state == "init-reboot":
                if not any(i.subnet.contains(ip) for i in group):
                    return self._nak(msg, sid, "wrong-network")
            lease = self._store.get(ip)
            if lease is not None and lease.client_key == key:
                if lease.state == _DECLINED:
                    return self._nak(msg, sid, "declined")
            elif lease is not None and lease.state in (_DEFAULT, _DECLINED):
                return self._nak(msg, sid, "not-yours")
            elif res_ip != ip and (offer is None):
                # No record of this client at this address.
                mine = self._store.get_by_client(key)
                known = res_ip or (
                    mine is not None and mine.client_key == key and mine.state == _DEFAULT
                )
                if known or sel.authoritative:
                    return self._nak(msg, sid, "not-yours" if known else "unknown-client")
                return _drop("unknown-client")
            if res_ip and res_ip != ip:
                return self._nak(msg, sid, "reserved-elsewhere")
        info = self._claim(ip, key, res_ip, group, now)
        if info is None:
            return self._nak(msg, sid, "address-unavailable")
        return self._bind(msg, link, now, key, chaddr, ip, info, res if res_ip == ip else None,
                          sid, state)

    def _bind(
        self,
        msg: Message,
        link: Link,
        now: float,
        key: bytes,
        chaddr: bytes,
        ip: int,
        info: _SubnetInfo,
        res: Any | None,
        sid: int,
        state: str,
    ) -> Decision:
        """Stage the binding of ``ip`` to ``key`` and build the ACK that waits for it."""
        store = self._store
        prev = store.get_by_client(key)
        if prev is not None and prev.ip != ip and prev.client_key == key and prev.state == _DEFAULT:
            # One binding per client: the old address goes back (staged before the new one so
            # the client index ends on the new address).
            store.stage(
                Lease(prev.ip, key, prev.hw_address, prev.subnet_id, _RELEASED, int(now),
                      int(now), prev.hostname, prev.relay_info)
            )
            self._settle(prev.ip)
        lt = self._lease_time(info, msg.lease_time)
        t = int(now)
        host = msg.hostname
        lease = Lease(
            ip,
            key,
            chaddr,
            info.id,
            _DEFAULT,
            t,
            # Rounded up: the binding never ends before the client's idea of its end.
            (t + lt + (t != now)) if lt != _INFINITE else _INFINITE,
            host.decode("utf-8", "replace") if host else (res.hostname if res else ""),
            msg.relay_agent_info or b"",
        )
        store.stage(lease)
        offer = self._offers.pop(key, None)
        if offer is not None and self._offered.get(offer.ip) == key:
            del self._offered[offer.ip]
        if res is not None:
            opts = self._options(res, res.options, msg.prl, lt, info)
        else:
            opts = self._options(info, info.options, msg.prl, lt, info)
        return self._reply(
            msg, "ack", ACK, msg.ciaddr, ip, [self._sid_option(sid), *opts], lease, state
        )

    def _ours(self, msg: Message, link: Link) -> bool:
        s = msg.server_id
        return not s or s == self._server_id_for(msg, link) or s == link.address or (
            s == self._server_id
        )

    def _release(self, msg: Message, link: Link, now: float, key: bytes) -> Decision:
        """RFC 2131 4.3.4: end the client's binding; the record keeps affinity."""
        if not self._ours(msg, link):
            return _drop("other-server")
        offer = self._offers.get(key)
        if offer is not None:
            self._drop_offer(key, offer)
        ip = msg.ciaddr
        lease = self._store.get(ip) if ip else None
        if lease is None or lease.client_key != key or lease.state != _DEFAULT:
            return _drop("release-unknown")
        t = int(now)
        self._store.stage(
            Lease(ip, key, lease.hw_address, lease.subnet_id, _RELEASED, t, t, lease.hostname,
                  lease.relay_info)
        )
        self._settle(ip)
        return _drop("released")

    def _decline(self, msg: Message, link: Link, now: float, key: bytes) -> Decision:
        """RFC 2131 4.3.3: set the address aside for decline-probation-period."""
        if not self._ours(msg, link):
            return _drop("other-server")
        ip = msg.requested_ip
        lease = self._store.get(ip) if ip else None
        if lease is None or lease.client_key != key or lease.state != _DEFAULT:
            return _drop("decline-unknown")
        info = self._infos.get(lease.subnet_id)
        probation = info.probation if info is not None else 86400
        t = int(now)
        self._store.stage(
            Lease(ip, key, lease.hw_address, lease.subnet_id, _DECLINED, t, t + probation,
                  lease.hostname, lease.relay_info)
        )
        offer = self._offers.get(key)
        if offer is not None:
            self._drop_offer(key, offer)
        self._settle(ip)
        return _drop("declined")

    def _inform(
        self, msg: Message, link: Link, key: bytes, chaddr: bytes, cid: bytes | None
    ) -> Decision:
        """RFC 2131 4.3.5: configuration only; no lease, no yiaddr, no lease-time options."""
        sel = self._select(msg, link)
        if sel is None:
            return _drop("no-subnet")
        group = self._groups[sel.id]
        res = self._reservation(group, chaddr, cid, msg) if self._group_has_res[sel.id] else None
        info = sel
        if msg.ciaddr:
            for i in group:
                if i.subnet.contains(msg.ciaddr):
                    info = i
                    break
        if res is not None:
            opts = self._options(res, res.options, msg.prl, -1, info)
        else:
            opts = self._options(info, info.options, msg.prl, -1, info)
        sid = self._server_id_for(msg, link)
        return self._reply(
            msg, "ack", ACK, msg.ciaddr, 0, [self._sid_option(sid), *opts], None, "inform"
        )

    # ------------------------------------------------------------------ timers, recovery

    def reclaim(self, now: float, limit: int = 1000) -> float:
        """End expired bindings and declines past probation, drop stale offers.

        Stages at most ``limit`` reclamations. Returns when to call again: at once (``now``)
        if the limit was hit, else at the next offer expiry or in one second, whichever first.
        """
        heap = self._offer_heap
        offers = self._offers
        while heap and heap[0][0] <= now:
            _, _, key, offer = heapq.heappop(heap)
            if offers.get(key) is offer and offer.expires <= now:
                self._drop_offer(key, offer)
        expired = self._store.expired(int(now), limit)
        for lease in expired:
            self._store.stage(
                Lease(lease.ip, lease.client_key, lease.hw_address, lease.subnet_id, _EXPIRED,
                      lease.issued, lease.expires, lease.hostname, lease.relay_info)
            )
            self._settle(lease.ip)
        if len(expired) >= limit:
            return now
        nxt = now + 1.0
        if heap and heap[0][0] < nxt:
            nxt = heap[0][0]
        return nxt

    def rollback(self, leases: Iterable[Lease]) -> None:
        """A batch did not commit (the store has already forgotten it): make every touched
        address's bit follow what the store shows now."""
        for lease in leases:
            self._settle(lease.ip)

    def pool_stats(self) -> list[PoolStat]:
        """Size and use of every pool, in address order."""
        return [
            PoolStat(info.id, text, bm.size, bm.used)
            for bm, info, text in zip(
                self._pool_bitmaps, self._pool_infos, self._pool_texts, strict=True
            )
        ]

    # ------------------------------------------------------------------ introspection

    def offered(self, key: bytes) -> int:
        """The address currently held for client ``key`` (0 if none); for tests and audits."""
        o = self._offers.get(key)
        return o.ip if o is not None else 0
