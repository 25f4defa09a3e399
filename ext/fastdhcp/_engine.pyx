"""The compiled RFC 2131 engine behind ``fastdhcp.engine`` (read its docstring first: the
theory of operation, states and transitions, and what is durable when, are described there).

This module holds the per-packet code: subnet selection, ownership checks, allocation, option
filtering, reply building and the RFC 2131 4.1 destination. It reads the request through the
codec's C-level API (``fastdhcp/_codec.pxd``) and allocates through the bitmap's
(``allocate_c``); everything else (the lease store, the config) is Python and is reached
through the documented contracts.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.ref cimport PyObject
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_SIZE
from libc.stdint cimport int64_t, uint8_t, uint32_t
from libc.string cimport memcmp

from fastdhcp._bitmap cimport PoolBitmap
from fastdhcp._codec cimport Message, ReplyBuilder, fd_load_be16, fd_load_be32
# Leases are made in C (the cdef class's own allocation, no argument parsing): once per
# binding. Under the engine's old name, so the call sites read as before.
from fastdhcp._lease cimport lease_new as _new_lease
from fastdhcp._consts cimport *

from array import array
from bisect import bisect_left as _bisect_left, bisect_right as _bisect_right
from collections import namedtuple

from fastdhcp.errors import MalformedPacket
from fastdhcp.consts import Outcome
from fastdhcp.leases import tombstone

__all__ = ["Decision", "Engine", "Link", "PoolStat", "SubnetSelector", "reply_destination"]

cdef enum:
    # How many filtered option lists / server-id options to keep (distinct PRLs are few).
    CACHE_MAX = 8192

cdef enum:
    # Identifier types of the hosts table (fastdhcp.hosts.IdentifierType: Kea's numbers).
    HOST_HW_ADDRESS = 0
    HOST_CIRCUIT_ID = 2
    HOST_CLIENT_ID = 3

#: Decision.reason of the ACK of each RequestState (RFC 2131 4.3.2's names).
cdef tuple _REQUEST_STATE_NAMES = ("selecting", "init-reboot", "renewing", "rebinding")

cdef int64_t INFINITE = 0xFFFFFFFF
cdef uint32_t BROADCAST_IP = 0xFFFFFFFF

#: Options the engine writes itself; never copied from configuration into a reply.
cdef frozenset _MANAGED = frozenset((0, 50, 51, 52, 53, 54, 55, 57, 58, 59, 61, 82, 118, 255))
#: Sent whenever configured, asked for or not (Kea's basic options).
cdef tuple _BASIC = (3, 6, 15)

#: "The store was not read for this address": no lease record to reuse.
cdef object _UNREAD = object()
#: Decision.reason of an OFFER of the client's own binding (compared by identity)
cdef str _HOW_BINDING = "binding"

Link = namedtuple("Link", ["name", "address"])
Link.__doc__ = """The socket a request arrived on: ``name`` (interface, or "" for a
listen-address socket) and ``address`` (our IPv4 there, host order; the default server id)."""

PoolStat = namedtuple("PoolStat", ["subnet_id", "pool", "size", "used"])
PoolStat.__doc__ = """Occupancy of one pool, for metrics: ``used`` counts addresses bound,
declined, offered or reserved."""


@cython.final
cdef class SubnetCounters:
    """What happened in one subnet since the engine was made (monotonic counts, kept across
    reloads by subnet id): the events behind Kea's statistics that neither the packet
    counters nor the lease table can tell (fastdhcp.statistics derives the rest).

    ``assigned``: new bindings, not renewals (Kea's cumulative-assigned-addresses);
    ``alloc_fail``: DISCOVERs that found no free address (v4-allocation-fail);
    ``declined``: DECLINEs honoured; ``reclaimed``: expired leases reclaimed, declined ones
    included (reclaimed-leases); ``reclaimed_declined``: declined leases reclaimed after
    probation; ``conflicts``: a client's reserved address held by another
    (v4-reservation-conflicts).
    """

    def __repr__(self):
        return (f"SubnetCounters(assigned={self.assigned}, alloc_fail={self.alloc_fail}, "
                f"declined={self.declined}, reclaimed={self.reclaimed}, "
                f"reclaimed_declined={self.reclaimed_declined}, conflicts={self.conflicts})")


#: Outcome members by their C value (fastdhcp/_consts.pxd OUT_*), for Decision.kind.
cdef tuple _OUTCOMES = tuple(Outcome)


@cython.final
@cython.freelist(64)
cdef class Decision:
    """What to do with one request. ``kind`` is a :class:`fastdhcp.consts.Outcome`: OFFER,
    ACK or NAK with a ``reply``; SILENT for a request handled with nothing to send (RELEASE,
    DECLINE: processed, not a drop); DROP for one refused or ignored, ``reason`` saying why.

    ``reply`` (bytes or None) goes to ``dest_ip:dest_port``; ``broadcast`` means dest_ip is
    255.255.255.255 (send out the receiving interface); ``l2_unicast`` = (yiaddr, chaddr) when
    the service may unicast at layer 2 instead; ``binding`` is the staged lease the reply must
    wait for (ACKs that bind); ``reason`` is the drop reason or the decision's detail.
    """

    def __init__(self, kind, reply=None, uint32_t dest_ip=0, int dest_port=0,
                 bint broadcast=False, l2_unicast=None, binding=None, str reason=""):
        self.outcome = int(Outcome(kind))
        self.reply = reply
        self.dest_ip = dest_ip
        self.dest_port = dest_port
        self.broadcast = broadcast
        self.l2_unicast = l2_unicast
        self.binding = binding
        self.reason = reason

    @property
    def kind(self):
        """The :class:`fastdhcp.consts.Outcome` of the request."""
        return _OUTCOMES[self.outcome]

    def __repr__(self):
        return (f"Decision({self.kind!r}, reason={self.reason!r}, dest={self.dest_ip:#x}:"
                f"{self.dest_port}, broadcast={self.broadcast}, l2={self.l2_unicast!r})")


cdef inline Decision _no_reply(int outcome, str reason):
    cdef Decision d = Decision.__new__(Decision)
    d.outcome = outcome
    d.reply = None
    d.dest_ip = 0
    d.dest_port = 0
    d.broadcast = False
    d.l2_unicast = None
    d.binding = None
    d.reason = reason
    return d


cdef inline Decision _drop(str reason):
    """A request refused or ignored (counted and logged as a drop, ``reason``)."""
    return _no_reply(OUT_DROP, reason)


cdef inline Decision _silent(str reason):
    """A request handled as the RFC says with nothing to send (RFC 2131 4.3.3, 4.3.4)."""
    return _no_reply(OUT_SILENT, reason)


cdef inline Dest _destination(int msg_type, uint32_t giaddr, uint32_t ciaddr,
                              bint broadcast_flag, uint32_t yiaddr, bint ethernet,
                              int server_port, int client_port) noexcept:
    """Where a reply goes, RFC 2131 4.1, in the RFC's order (see reply_destination)."""
    cdef Dest d
    d.port = client_port
    d.broadcast = False
    d.l2 = False
    d.set_broadcast_flag = False
    if giaddr:
        d.ip = giaddr
        d.port = server_port
        d.set_broadcast_flag = msg_type == NAK
    elif msg_type == NAK:
        d.ip = BROADCAST_IP
        d.broadcast = True
    elif ciaddr:
        d.ip = ciaddr
    else:
        d.ip = BROADCAST_IP
        d.broadcast = True
        d.l2 = not broadcast_flag and yiaddr != 0 and ethernet
    return d


cpdef tuple reply_destination(int msg_type, uint32_t giaddr, uint32_t ciaddr,
                              bint broadcast_flag, uint32_t yiaddr, int htype, bytes chaddr,
                              int server_port=67, int client_port=68):
    """Where a reply goes, RFC 2131 4.1, in the RFC's order:

    1. ``giaddr`` set: to the relay at ``giaddr:server-port``; a DHCPNAK through a relay gets
       the broadcast bit so the relay broadcasts it (the client's address may be wrong).
    2. A DHCPNAK not relayed: broadcast, ``255.255.255.255:client-port``.
    3. ``ciaddr`` set (RENEWING, REBINDING, INFORM): unicast to ``ciaddr:client-port``.
    4. Broadcast bit set by the client: broadcast.
    5. Else unicast to ``yiaddr`` at layer 2 (``chaddr``): returned as ``l2_unicast`` with a
       broadcast destination as the fallback for a service that cannot do it; without an
       Ethernet address (``htype`` 1, 6 bytes) plainly broadcast.

    Returns ``(dest_ip, dest_port, broadcast, l2_unicast, set_broadcast_flag)``; ``yiaddr`` is
    the reply's (0 for NAK and INFORM replies), the other fields are the request's.
    """
    cdef Dest d = _destination(msg_type, giaddr, ciaddr, broadcast_flag, yiaddr,
                               htype == 1 and len(chaddr) == 6, server_port, client_port)
    return (d.ip, d.port, d.broadcast, (yiaddr, chaddr) if d.l2 else None,
            d.set_broadcast_flag)


# ------------------------------------------------------------------------ subnet selection

@cython.final
cdef class SubnetSelector:
    """Which subnet, and so which link, a request belongs to. Kea's order:

    1. option 118, subnet selection (RFC 3011): the subnet containing that address;
    2. option 82 sub-option 5, link selection (RFC 3527): the subnet containing it;
    3. ``giaddr`` (RFC 2131 4.3.1): the subnet listing it in ``relay``, else containing it;
    4. ``ciaddr`` of a request not relayed (RENEWING clients unicast to us; INFORM): the subnet
       containing it, if any (a unicast renewal on a listen-address socket has no link else);
    5. the receiving link: the subnet whose ``interface`` is its name, else the subnet
       containing its address.

    A selector (1-3) naming an address no subnet contains selects nothing: a relay asking for
    a link we do not serve must not get addresses from another one. Subnets with the same
    ``shared_network`` form one link: :meth:`group` gives all of them, the selected one first.
    """

    def __init__(self, subnets):
        cdef dict by_len = {}
        for s in subnets:
            net = s.network
            by_len.setdefault(net.prefixlen, {}).setdefault(int(net.network_address), s)
        self._by_prefix = tuple(
            ((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF, by_len[plen])
            for plen in sorted(by_len, reverse=True)
        )
        self._by_relay = {}
        self._by_iface = {}
        for s in subnets:
            for r in s.relay:
                self._by_relay.setdefault(int(r), s)
            if s.interface:
                self._by_iface.setdefault(s.interface, s)
        cdef dict shared = {}
        for s in subnets:
            if s.shared_network:
                shared.setdefault(s.shared_network, []).append(s)
        self._groups = {}
        for s in subnets:
            if s.shared_network:
                self._groups[s.id] = (s,) + tuple(m for m in shared[s.shared_network]
                                                  if m is not s)
            else:
                self._groups[s.id] = (s,)
        self._link_cache = {}

    cpdef object containing(self, uint32_t ip):
        """The most specific subnet whose prefix contains ``ip``, or None."""
        cdef tuple entry
        for entry in self._by_prefix:
            s = (<dict>entry[1]).get(ip & <uint32_t>entry[0])
            if s is not None:
                return s
        return None

    def group(self, subnet):
        """Every subnet on ``subnet``'s link (its shared network), ``subnet`` first."""
        return self._groups[subnet.id]

    cpdef object select(self, uint32_t subnet_selection, uint32_t link_selection,
                        uint32_t giaddr, uint32_t ciaddr, str link_name, uint32_t link_address):
        """The subnet for a request, by the rules in the class docstring; None if none."""
        if subnet_selection:
            return self.containing(subnet_selection)
        if link_selection:
            return self.containing(link_selection)
        if giaddr:
            s = self._by_relay.get(giaddr)
            if s is not None:
                return s
            return self.containing(giaddr)
        if ciaddr:
            s = self.containing(ciaddr)
            if s is not None:
                return s
        key = (link_name, link_address)
        s = self._link_cache.get(key, self)
        if s is not self:
            return s
        s = self._by_iface.get(link_name) if link_name else None
        if s is None and link_address:
            s = self.containing(link_address)
        if len(self._link_cache) < 4096:
            self._link_cache[key] = s
        return s


# ------------------------------------------------------------------------ engine state

@cython.final
@cython.freelist(256)
@cython.no_gc
cdef class _Offer:
    """An address held for one client between OFFER and REQUEST (memory only).

    Made by ``Engine._hold`` only. It refers to nothing but bytes and tuples of ints and bytes
    (``key``, ``sub``), so it can be in no reference cycle: kept out of the cyclic GC, which
    would otherwise walk every held offer."""


cdef inline bint _earlier(_Offer a, _Offer b) noexcept:
    return a.at < b.at or (a.at == b.at and a.seq < b.seq)


@cython.final
cdef class _SubnetInfo:
    """Per-subnet values precomputed once from the configuration."""

    def __init__(self, subnet, bint global_authoritative):
        lt = subnet.lifetimes
        self.subnet = subnet
        self.id = subnet.id
        self.valid = lt.valid_lifetime
        self.min_valid = (lt.min_valid_lifetime if lt.min_valid_lifetime is not None
                          else lt.valid_lifetime)
        self.max_valid = (lt.max_valid_lifetime if lt.max_valid_lifetime is not None
                          else lt.valid_lifetime)
        self.renew = lt.renew_timer
        self.rebind = lt.rebind_timer
        self.offer_lifetime = lt.offer_lifetime
        self.probation = lt.decline_probation_period
        self.net_first = int(subnet.network.network_address)
        self.net_last = int(subnet.network.broadcast_address)
        opts = dict(subnet.options)
        # RFC 2132 3.3 / Kea: the subnet mask is always sent; computed when not configured.
        opts.setdefault(1, int(subnet.network.netmask).to_bytes(4, "big"))
        self.options = opts
        self.bitmaps = []
        self.authoritative = bool(global_authoritative or subnet.authoritative)
        self.by_hw = {}
        self.by_cid = {}
        self.by_circuit = {}
        for r in subnet.reservations:
            if r.hw_address:
                self.by_hw.setdefault(bytes(r.hw_address), r)
            if r.client_id:
                self.by_cid.setdefault(bytes(r.client_id), r)
            if r.circuit_id:
                self.by_circuit.setdefault(bytes(r.circuit_id), r)


cdef inline bint _in_group(_SubnetInfo info, tuple group):
    cdef object g
    for g in group:
        if g is info:
            return True
    return False


cdef object _rai_sub(object rai, int code):
    """Sub-option ``code`` of a stored option 82 value (RFC 3046 TLVs), or None when it is
    absent or empty. A damaged value (a TLV running past the end) names no subscriber."""
    cdef const unsigned char *b
    cdef Py_ssize_t n, i = 0, ln
    if not rai:
        return None
    # bytes(x) of a bytes object is x itself, but is a type call: skipped for the usual case.
    data = rai if type(rai) is bytes else bytes(rai)
    b = <const unsigned char *>PyBytes_AS_STRING(data)
    n = len(data)
    while i + 2 <= n:
        ln = b[i + 1]
        if i + 2 + ln > n:
            return None
        if b[i] == code:
            return PyBytes_FromStringAndSize(<const char *>b + i + 2, ln) if ln else None
        i += 2 + ln
    return None


cdef extern from "Python.h":
    PyObject *PyTuple_GET_ITEM_borrowed "PyTuple_GET_ITEM" (object t, Py_ssize_t i)


cdef inline object _link_name(object link):
    """``link[0]``. Link is a namedtuple, a tuple subclass: plain indexing would go through
    its Python-level ``__getitem__`` slot (a method lookup and call) per packet."""
    if PyTuple_Check(link) and PyTuple_GET_SIZE(link) == 2:
        return <object>PyTuple_GET_ITEM_borrowed(link, 0)
    return link[0]


cdef inline uint32_t _link_address(object link) except? 0:
    """``link[1]`` as an address (see ``_link_name``)."""
    if PyTuple_Check(link) and PyTuple_GET_SIZE(link) == 2:
        return <object>PyTuple_GET_ITEM_borrowed(link, 1)
    return link[1]


cdef inline bint _is_active(object lease):
    cdef int st = lease.state
    return st == ST_DEFAULT or st == ST_DECLINED


@cython.final
cdef class Engine:
    """RFC 2131 server decisions over a :class:`~fastdhcp.leases.LeaseStore`.

    ``Engine(config, store, *, now=time.time)``: ``now`` is the clock used only where no time
    is passed in; every request and :meth:`reclaim` take the time as an argument so tests run
    on a fake clock. At construction the pool bitmaps are rebuilt from
    ``store.active_addresses()`` and every reserved address is marked used.
    """

    def __init__(self, config, store, *, now=None):
        import time

        self._store = store
        self._clock = now if now is not None else time.time
        self._sget = store.get
        self._sget_by_client = store.get_by_client
        self._claim_read = _UNREAD
        self._sstage = store.stage
        self._builder = ReplyBuilder()
        self._build = self._builder.build  # bound once: no method lookup per reply
        self._offers = {}
        self._offered = {}
        self._offer_heap = []
        self._seq = 0
        self._decline_by_client = {}
        self._decline_by_sub = {}
        self._decline_sweep_at = 0.0
        self._sub_leases = {}
        self._sub_offers = {}
        self._pool_declined = {}
        self._counters = {}
        self._apply(config, None)
        self._rebuild()
        self._recount()

    cdef list _apply(self, object config, dict keep):
        """Derive every configuration-dependent table from ``config`` and install them.

        ``keep`` maps ``(first, last)`` of the current pools to their bitmaps: a pool whose
        range is unchanged keeps its bitmap (bits and next-fit cursor). Returns the bitmaps
        made fresh (empty), for the caller to fill. Everything is computed into locals first,
        so an exception leaves the engine as it was.
        """
        server = config.server
        subnets = tuple(config.subnets)
        selector = SubnetSelector(subnets)
        cdef dict infos = {s.id: _SubnetInfo(s, server.authoritative) for s in subnets}
        cdef dict groups = {
            s.id: tuple(infos[m.id] for m in selector.group(s)) for s in subnets
        }
        cdef dict has_res = {}
        cdef dict link_of = {}
        for sid, g in groups.items():
            has_res[sid] = any(
                (<_SubnetInfo>i).by_hw or (<_SubnetInfo>i).by_cid or (<_SubnetInfo>i).by_circuit
                for i in g
            )
            link_of[sid] = min((<_SubnetInfo>i).id for i in g)
        for sid, g in groups.items():
            info = <_SubnetInfo>infos[sid]
            info.group = <tuple>g
            info.has_res = has_res[sid]
        # A subnet keeps its counters across reloads (and a removed one keeps them too: the
        # server-wide sums must not go back).
        cdef dict counters = dict(self._counters)
        for sid, si in infos.items():
            c = counters.get(sid)
            if c is None:
                c = counters[sid] = SubnetCounters.__new__(SubnetCounters)
            (<_SubnetInfo>si).counts = <SubnetCounters>c
        pools = []
        cdef list fresh = []
        for s in subnets:
            info = <_SubnetInfo>infos[s.id]
            for p in s.pools:
                bm = keep.get((p.first, p.last)) if keep is not None else None
                if bm is None:
                    bm = PoolBitmap(p.first, p.last)
                    fresh.append(bm)
                info.bitmaps.append(bm)
                pools.append((p.first, bm, info, p.text))
        pools.sort(key=lambda x: x[0])
        cdef dict reserved = {}
        for s in subnets:
            for r in s.reservations:
                reserved.setdefault(r.ip, (r, infos[s.id]))
        d = getattr(config, "defences", None)
        sub_limit = int(d.subscriber_lease_limit) if d is not None else 0
        sub_code = SUB_REMOTE_ID if d is not None and d.subscriber_key == "remote-id" \
            else SUB_CIRCUIT_ID
        decline_limit = int(d.decline_limit) if d is not None else 0
        decline_window = float(d.decline_window) if d is not None else 3600.0
        decline_fraction = float(d.decline_max_fraction) if d is not None else 1.0

        # Commit point: plain assignments from here on.
        self._config = config
        self._server_id = server.server_id
        self._server_port = server.port
        self._client_port = server.client_port
        self._selector = selector
        self._infos = infos
        self._counters = counters
        self._link_of = link_of
        self._pool_bitmaps = [p[1] for p in pools]
        self._pool_infos = [p[2] for p in pools]
        self._pool_texts = [p[3] for p in pools]
        self._reserved = reserved
        self._opt_cache = {}
        self._host_cache = {}  # its Reservations merged the old subnets' options
        self._sid_cache = {}
        self._sid_last = 0
        self._sid_last_opt = None
        self._sel_giaddr = 0
        self._sel_info = None
        self._sub_limit = sub_limit
        self._sub_code = sub_code
        self._decline_limit = decline_limit
        self._decline_window = decline_window
        self._decline_fraction = decline_fraction
        self._counting = sub_limit > 0 or decline_fraction < 1.0
        return fresh

    def reload(self, config):
        """Apply a new configuration in place (the service calls this on SIGHUP).

        The store is untouched: every lease is kept, including leases whose address is in no
        pool of ``config`` any more (a client renewing one is NAKed, see ``_request``; the
        record expires and is reclaimed as usual). A held offer survives if its address is
        still in a pool of ``config`` and not reserved there; others are dropped and their
        bits freed. Pools whose range is unchanged keep their bitmap; new or resized pools get
        a fresh one rebuilt from the store's active addresses, the reservations and the held
        offers, so that no bound, declined, reserved or offered address is ever handed out.
        Raises (and changes nothing) if ``config`` cannot be applied.
        """
        cdef PoolBitmap bm
        cdef _Offer offer
        old_reserved = self._reserved
        keep = {(bm._first, bm._last): bm for bm in self._pool_bitmaps}
        cdef list fresh = self._apply(config, keep)
        cdef list dropped = []
        for key, o in list(self._offers.items()):
            offer = <_Offer>o
            if self._bitmap_for(offer.ip) is None or offer.ip in self._reserved:
                del self._offers[key]
                self._unsub(offer)
                if self._offered.get(offer.ip) == key:
                    del self._offered[offer.ip]
                dropped.append(offer.ip)
        # Offers whose client no longer holds them (stale index entries) go too.
        for ip, key in list(self._offered.items()):
            o = self._offers.get(key)
            if o is None or (<_Offer>o).ip != ip:
                del self._offered[ip]
                dropped.append(ip)
        if fresh:
            addrs = array("I", self._store.active_addresses())
            addrs.extend(self._reserved)
            addrs.extend(self._offered)
            if self._hosts is not None:
                addrs.extend(self._hosts.addresses())
                addrs.extend(self._host_pending)
            self._fill(fresh, addrs)
        # Kept bitmaps: bits whose claim changed with the reservations or the dropped offers.
        for ip in set(old_reserved).symmetric_difference(self._reserved).union(dropped):
            self._settle(ip)
        self._recount()

    # ------------------------------------------------------------------ bitmaps

    cdef _rebuild(self):
        """Mark used every address the store shows active, and every reserved address."""
        # 4 bytes an address: no Python int kept per lease, even for millions of them.
        addrs = array("I", self._store.active_addresses())
        addrs.extend(self._reserved)
        self._fill(self._pool_bitmaps, addrs)

    cdef _fill(self, list bitmaps, object addrs):
        """Mark used in each of ``bitmaps`` (sorted by address) the addresses of ``addrs``
        (an ``array('I')``) that fall in it."""
        cdef PoolBitmap bm
        cdef Py_ssize_t lo, hi
        cdef list claimed
        if len(bitmaps) <= 64:
            # Few pools: each scans the whole array in C (reserve_many ignores addresses
            # outside its range); cheaper than sorting.
            for bm in bitmaps:
                bm.reserve_many(addrs)
            return
        # Many pools: sort once and give each pool only its slice, O(leases log leases)
        # instead of O(pools x leases).
        claimed = sorted(addrs)
        addrs = array("I", claimed)
        for bm in bitmaps:
            lo = _bisect_left(claimed, bm._first)
            hi = _bisect_right(claimed, bm._last)
            if hi > lo:
                bm.reserve_many(addrs[lo:hi])

    # ------------------------------------------------------------------ defences

    cdef _recount(self):
        """Rebuild the per-subscriber lease counts and per-pool decline counts from the
        store: one pass over its records at start-up, after a reload and after a failed
        commit (rare events), only when a limit that needs them is configured. The lease
        objects of the pass are dropped at once: what stays is one dict entry per subscriber
        and one per pool, never one per lease."""
        cdef dict subs = {}
        cdef dict declined = {}
        cdef int st
        cdef tuple found
        if self._counting:
            for lease in self._store:
                st = lease.state
                if st == ST_DEFAULT and self._sub_limit:
                    k = self._lease_sub(lease)
                    if k is not None:
                        subs[k] = subs.get(k, 0) + 1
                elif st == ST_DECLINED and self._decline_fraction < 1.0:
                    found = self._bitmap_for(lease.ip)
                    if found is not None:
                        first = (<PoolBitmap>found[0])._first
                        declined[first] = declined.get(first, 0) + 1
        self._sub_leases = subs
        self._pool_declined = declined

    cdef object _lease_sub(self, object lease):
        """The subscriber a lease counts against: (link id, subscriber id) for a bound lease
        whose stored option 82 names one, else None."""
        if lease is None or lease.state != ST_DEFAULT:
            return None
        sid = _rai_sub(lease.relay_info, self._sub_code)
        if sid is None:
            return None
        return (self._link_of.get(lease.subnet_id, lease.subnet_id), sid)

    cdef object _msg_sub(self, Message msg, int subnet_id):
        """The subscriber a request comes from (see ``_lease_sub``), or None."""
        cdef const unsigned char *p
        cdef Py_ssize_t n = msg._sub_view(self._sub_code, &p)
        if n <= 0:
            return None
        return (self._link_of.get(subnet_id, subnet_id),
                PyBytes_FromStringAndSize(<const char *>p, n))

    cdef _count(self, object old, object new):
        """Follow one record change (``old`` -> ``new``, either may be None) in the
        subscriber counts (called only when subscriber-lease-limit is set)."""
        self._count_keys(self._lease_sub(old), self._lease_sub(new))

    cdef _count_keys(self, object a, object b):
        """``_count`` given the two records' subscribers (``_lease_sub`` of each)."""
        if a == b:
            return
        cdef dict d = self._sub_leases
        if a is not None:
            n = d.get(a, 0) - 1
            if n > 0:
                d[a] = n
            else:
                d.pop(a, None)
        if b is not None:
            d[b] = d.get(b, 0) + 1

    cdef bint _sub_full(self, object subkey, bytes key, bint offers):
        """True when binding one more address for client ``key`` would take subscriber
        ``subkey`` past subscriber-lease-limit; with ``offers``, the offers held for the
        subscriber's other clients count too (a DISCOVER: an offer holds an address, so a
        subscriber flooding DISCOVERs from many MACs must not hold more than its limit).
        A client whose own binding already counts against ``subkey`` never is: renewing, or
        moving to another address (the old one is released in ``_bind``), leaves the count
        as it is."""
        if subkey is None:
            return False
        cdef Py_ssize_t n = (<dict>self._sub_leases).get(subkey, 0)
        if offers:
            n += <Py_ssize_t>(<dict>self._sub_offers).get(subkey, 0)
        if n < self._sub_limit:
            return False
        mine = self._sget_by_client(key)
        return not (mine is not None and mine.client_key == key
                    and self._lease_sub(mine) == subkey)

    cdef _unsub(self, _Offer offer):
        """The offer stops counting against its subscriber (idempotent)."""
        if offer.sub is None:
            return
        cdef dict d = self._sub_offers
        n = d.get(offer.sub, 0) - 1
        if n > 0:
            d[offer.sub] = n
        else:
            d.pop(offer.sub, None)
        offer.sub = None

    cdef bint _decline_over(self, dict table, object k, double now):
        """True when ``k`` has used up its decline-limit in the current window."""
        e = table.get(k)
        if e is None or now >= <double>(<list>e)[0] + self._decline_window:
            return False
        return <Py_ssize_t>(<list>e)[1] >= self._decline_limit

    cdef _decline_note(self, dict table, object k, double now):
        """Count one honoured DECLINE for ``k`` (a fixed window opened by its first)."""
        e = table.get(k)
        if e is None or now >= <double>(<list>e)[0] + self._decline_window:
            table[k] = [now, 1]
        else:
            (<list>e)[1] = (<list>e)[1] + 1

    cdef Py_ssize_t _pool_at(self, uint32_t ip):
        """Index in _pool_bitmaps / _pool_infos of the pool containing ``ip``, or -1.

        ``bisect_right(_pool_firsts, ip) - 1`` done on the bitmaps' C fields: no int made
        and no Python call per lookup."""
        cdef list bitmaps = self._pool_bitmaps
        cdef Py_ssize_t lo = 0, hi = len(bitmaps), mid
        while lo < hi:
            mid = (lo + hi) >> 1
            if ip < (<PoolBitmap>bitmaps[mid])._first:
                hi = mid
            else:
                lo = mid + 1
        lo -= 1
        if lo >= 0 and ip <= (<PoolBitmap>bitmaps[lo])._last:
            return lo
        return -1

    cdef tuple _bitmap_for(self, uint32_t ip):
        """(bitmap, subnet) of the pool containing ``ip``, or None."""
        cdef Py_ssize_t i = self._pool_at(ip)
        if i >= 0:
            return (self._pool_bitmaps[i], self._pool_infos[i])
        return None

    cdef _settle(self, uint32_t ip):
        """Make ``ip``'s bit used exactly when a lease, an offer or a reservation claims it."""
        cdef Py_ssize_t at = self._pool_at(ip)
        if at < 0:
            return
        bm = self._pool_bitmaps[at]
        lease = self._sget(ip)
        cdef bint claimed = (ip in self._reserved or ip in self._offered
                             or (lease is not None and _is_active(lease))
                             or (self._hosts is not None and (ip in self._host_pending
                                                              or self._api_reserved(ip))))
        if claimed:
            if bm.is_free(ip):
                bm.reserve(ip)
        elif not bm.is_free(ip):
            bm.free(ip)

    # ------------------------------------------------------------------ offers

    cdef _drop_offer(self, bytes key, _Offer offer):
        """Forget ``key``'s offer and free its address unless something else claims it."""
        if self._offers.get(key) is offer:
            del self._offers[key]
        self._unsub(offer)
        if self._offered.get(offer.ip) == key:
            del self._offered[offer.ip]
            self._settle(offer.ip)

    cdef _hold(self, bytes key, uint32_t ip, double expires, bint alone, object sub,
               bint renews):
        if self._sub_offers:
            # (Callers drop the client's previous offer first; this keeps the count right
            # should one ever be replaced here.)
            old = self._offers.get(key)
            if old is not None:
                self._unsub(<_Offer>old)
        cdef _Offer offer = _Offer.__new__(_Offer)
        offer.ip = ip
        offer.expires = expires
        offer.alone = alone
        offer.renews = renews
        offer.key = key
        if sub is not None:
            offer.sub = sub
            self._sub_offers[sub] = self._sub_offers.get(sub, 0) + 1
        self._offers[key] = offer
        self._offered[ip] = key
        offer.at = expires
        self._heap_push(offer)

    # The offer heap holds the offers themselves (no entry tuple, float and int per offer),
    # ordered on (at, seq). Every offer in _offers is in it once; an offer whose expiry moved
    # later stays at its old place and is queued again at its expiry when reclaim reaches
    # it; one that is dropped or replaced stays until reclaim pops and discards it.

    cdef _heap_push(self, _Offer offer):
        cdef list heap = self._offer_heap
        cdef Py_ssize_t pos = len(heap), parent
        cdef _Offer up
        self._seq += 1
        offer.seq = self._seq
        heap.append(offer)
        while pos > 0:
            parent = (pos - 1) >> 1
            up = <_Offer>heap[parent]
            if not _earlier(offer, up):
                break
            heap[pos] = up
            pos = parent
        heap[pos] = offer

    cdef _Offer _heap_pop(self):
        cdef list heap = self._offer_heap
        cdef _Offer last = <_Offer>heap.pop()
        cdef _Offer top, c
        cdef Py_ssize_t n = len(heap), pos = 0, child
        if n == 0:
            return last
        top = <_Offer>heap[0]
        while True:
            child = 2 * pos + 1
            if child >= n:
                break
            c = <_Offer>heap[child]
            if child + 1 < n and _earlier(<_Offer>heap[child + 1], c):
                child += 1
                c = <_Offer>heap[child]
            if not _earlier(c, last):
                break
            heap[pos] = c
            pos = child
        heap[pos] = last
        return top

    # ------------------------------------------------------------------ ownership

    cdef _SubnetInfo _claim(self, uint32_t ip, bytes key, uint32_t res_ip, tuple group,
                            double now, object known):
        """Take ``ip`` for client ``key`` on the link ``group`` if it may have it.

        It may when the address lies in a pool of the link (or is the client's reservation
        there), is not reserved for another client, not offered to another client, and not
        bound or declined. Marks the bit used; returns the address's subnet, or None.
        ``known`` is the store's record for ``ip`` when the caller has just read it (nothing
        staged since), else ``_UNREAD``; the record read or known is left in ``_claim_read``
        (``_UNREAD`` if neither) so that ``_bind`` need not read it again.
        """
        cdef _Offer other
        cdef _SubnetInfo info
        cdef PoolBitmap bm
        cdef uint32_t off
        cdef int st
        cdef Py_ssize_t at
        ipo = ip  # the address as an int, made once for the lookups below
        self._claim_read = known
        res = self._reserved.get(ipo) if self._reserved else None
        if res is not None and ip != res_ip:
            return None
        if (res is None and ip == res_ip and ip == self._res_api_ip
                and self._res_api_info is not None):
            res = (None, self._res_api_info)  # the client's own API reservation
        holder = self._offered.get(ipo)
        if holder is not None and (holder is key or holder == key):
            # Our own live offer: every other way to this address goes through _claim, which
            # respects the offer, so no other lease can have appeared on it; no store read.
            o = self._offers.get(key)
            if o is not None and (<_Offer>o).ip == ip:
                at = self._pool_at(ip)
                if at >= 0 and _in_group(<_SubnetInfo>self._pool_infos[at], group):
                    return <_SubnetInfo>self._pool_infos[at]
        if holder is not None and holder != key:
            o = self._offers.get(holder)
            if o is not None:
                other = <_Offer>o
                if other.expires > now:
                    return None
                self._drop_offer(holder, other)
            holder = None
        lease = self._sget(ipo) if known is _UNREAD else known
        self._claim_read = lease
        cdef bint mine = False
        if lease is not None:
            st = lease.state
            if st == ST_DECLINED:
                return None
            if st == ST_DEFAULT:
                if lease.client_key != key:
                    return None
                mine = True
        at = self._pool_at(ip)
        if at < 0:
            # Outside every pool: only a reservation can hand it out.
            if res is not None and _in_group(<_SubnetInfo>res[1], group):
                return <_SubnetInfo>res[1]
            return None
        bm = <PoolBitmap>self._pool_bitmaps[at]
        info = <_SubnetInfo>self._pool_infos[at]
        if not _in_group(info, group):
            if res is None or not _in_group(<_SubnetInfo>res[1], group):
                return None
            info = <_SubnetInfo>res[1]
        off = ip - bm._first
        if not (bm._lvl[0][off >> 6] >> (off & 63)) & 1:
            bm.allocate_c(ip)  # the hint is free: taken as is
            return info
        if res is not None:
            return info
        if mine or holder == key:
            if self._hosts_any and self._api_reserved(ip):
                return None  # reserved through the API for another client since
            return info
        return None  # used by something we cannot name: leave it alone

    cdef tuple _allocate(self, tuple group, uint32_t hint):
        """A fresh address from the link's pools (next subnet when one is full)."""
        cdef _SubnetInfo info
        cdef PoolBitmap bm
        for info in group:
            for bm in info.bitmaps:
                if bm._used < bm._size:
                    return (<uint32_t>bm.allocate_c(hint if bm._first <= hint <= bm._last
                                                    else 0), info)
        return (0, group[0])

    cdef object _reservation(self, tuple group, bytes chaddr, object cid, Message msg):
        """The client's reservation on this link (hw-address, client-id, then circuit-id)."""
        cdef _SubnetInfo info
        cdef const unsigned char *p
        cdef Py_ssize_t n = msg._sub_view(SUB_CIRCUIT_ID, &p)
        circuit = PyBytes_FromStringAndSize(<const char *>p, n) if n >= 0 else None
        self._res_api_ip = 0
        for info in group:
            r = info.by_hw.get(chaddr)
            if r is None and cid:
                r = info.by_cid.get(cid)
            if r is None and circuit:
                r = info.by_circuit.get(circuit)
            if r is not None:
                return r
        if self._hosts_any:
            # The config's reservations come first: they win over the API's.
            return self._api_reservation(group, chaddr, cid, circuit)
        return None

    cdef object _api_reservation(self, tuple group, bytes chaddr, object cid, object circuit):
        """The client's reservation added through the API (fastdhcp.hosts): per identifier
        type present and subnet of the link, the filter first (C, no Python call), then for a
        client it may hold one B-tree search in the lease database; only a record found is
        decoded (and kept in a bounded cache keyed by its bytes, so a
        changed host is never served from it)."""
        cdef _SubnetInfo info
        cdef HostFilter f = self._hfilter
        for info in group:
            raw = None
            if self._hn_hw and f.may_hold(info.id, HOST_HW_ADDRESS,
                                          <const unsigned char *>PyBytes_AS_STRING(chaddr),
                                          len(chaddr)):
                raw = self._hfind(info.id, HOST_HW_ADDRESS, chaddr)
            if raw is None and cid and self._hn_cid and f.may_hold(
                    info.id, HOST_CLIENT_ID, <const unsigned char *>PyBytes_AS_STRING(cid),
                    len(cid)):
                raw = self._hfind(info.id, HOST_CLIENT_ID, cid)
            if raw is None and circuit and self._hn_circuit and f.may_hold(
                    info.id, HOST_CIRCUIT_ID,
                    <const unsigned char *>PyBytes_AS_STRING(circuit), len(circuit)):
                raw = self._hfind(info.id, HOST_CIRCUIT_ID, circuit)
            if raw is None:
                continue
            r = self._host_cache.get(raw)
            if r is None:
                r = self._hosts.engine_reservation(raw, info.options)
                if len(self._host_cache) >= CACHE_MAX:
                    # The option cache keys on id(reservation): both go together.
                    self._host_cache.clear()
                    self._opt_cache.clear()
                self._host_cache[raw] = r
            if r.ip and r.ip in self._reserved:
                continue  # its address is a config reservation's (added by a reload since)
            self._res_api_ip = r.ip
            self._res_api_info = info
            return r
        return None

    cdef bint _api_reserved(self, uint32_t ip) except -1:
        """Whether a host added through the API reserves ``ip`` (one B-tree search)."""
        if not self._hosts_any:
            return False
        return bool(self._hreserved(ip))

    cdef _host_counts(self):
        hosts = self._hosts
        self._hn_hw = hosts.count(HOST_HW_ADDRESS) > 0
        self._hn_cid = hosts.count(HOST_CLIENT_ID) > 0
        self._hn_circuit = hosts.count(HOST_CIRCUIT_ID) > 0
        self._hosts_any = self._hn_hw or self._hn_cid or self._hn_circuit

    # ------------------------------------------------------------------ replies

    cdef list _options(self, object src, dict options, Message msg, int64_t lease_time,
                       _SubnetInfo info):
        """Lease-time options plus configured options filtered by ``msg``'s PRL (cached).

        The subnet's own options (``src`` is ``info``) are answered from a one-entry cache in
        ``info`` when the PRL and lease time are the last ones asked of it, compared in place:
        clients of one kind send one PRL, and neither a bytes object nor a tuple key is made
        and hashed per packet then. Anything else goes through the shared cache."""
        cdef const unsigned char *p
        cdef Py_ssize_t n = msg._view(OPT_PRL, &p)
        cdef bytes last
        cdef list out
        if n < 0:
            n = 0  # an absent PRL filters like an empty one
        if src is info:
            last = info.opt_prl
            if (last is not None and info.opt_lt == lease_time
                    and len(last) == n
                    and (n == 0 or memcmp(PyBytes_AS_STRING(last), p, n) == 0)):
                return info.opt_list
        pkey = PyBytes_FromStringAndSize(<const char *>p, n)
        out = self._options_slow(src, options, pkey, lease_time, info)
        if src is info:
            info.opt_prl = pkey
            info.opt_lt = lease_time
            info.opt_list = out
        return out

    cdef list _options_slow(self, object src, dict options, bytes pkey, int64_t lease_time,
                            _SubnetInfo info):
        """``_options`` through the shared cache keyed by (source, PRL, lease time)."""
        ckey = (id(src), pkey, lease_time)
        cached = self._opt_cache.get(ckey)
        if cached is not None:
            return <list>cached
        cdef list out = []
        cdef int64_t t1, t2
        if lease_time >= 0:
            out.append((51, lease_time.to_bytes(4, "big")))
            if lease_time != INFINITE:
                t2 = info.rebind if info.rebind is not None else lease_time * 7 // 8
                t1 = info.renew if info.renew is not None else lease_time // 2
                if t2 >= lease_time:
                    t2 = -1
                if t1 >= (t2 if t2 >= 0 else lease_time):
                    t1 = -1
                if t1 >= 0:
                    out.append((58, t1.to_bytes(4, "big")))
                if t2 >= 0:
                    out.append((59, t2.to_bytes(4, "big")))
        seen = set()
        for code in (1, *pkey, *_BASIC):
            if code in seen or code in _MANAGED:
                continue
            seen.add(code)
            v = options.get(code)
            if v is not None:
                out.append((code, v))
        if len(self._opt_cache) >= CACHE_MAX:
            self._opt_cache.clear()
        self._opt_cache[ckey] = out
        return out

    cdef uint32_t _server_id_for(self, Message msg, uint32_t giaddr, uint32_t link_address):
        """RFC 5107 override from a relay, else the configured id, else the receiving
        address."""
        cdef uint32_t o
        if giaddr:
            o = msg._sub_u32(SUB_SERVER_ID_OVERRIDE)
            if o:
                return o
        return self._server_id if self._server_id else link_address

    cdef tuple _sid_option(self, uint32_t sid):
        if sid == self._sid_last and self._sid_last_opt is not None:
            return self._sid_last_opt  # one server id per link: no int made, no dict lookup
        opt = self._sid_cache.get(sid)
        if opt is None:
            opt = (54, (<object>sid).to_bytes(4, "big"))
            if len(self._sid_cache) < CACHE_MAX:
                self._sid_cache[sid] = opt
        self._sid_last = sid
        self._sid_last_opt = <tuple>opt
        return <tuple>opt

    cdef Decision _reply(self, Message msg, int outcome, int mtype, uint32_t ciaddr,
                         uint32_t yiaddr, list opts, object binding, str reason):
        cdef const unsigned char *b = msg._buf
        cid = msg._opt_bytes(OPT_CLIENT_ID)
        if cid:
            opts.append((61, cid))  # RFC 6842
        rai = msg._opt_bytes(OPT_RELAY_AGENT)
        if rai is not None:
            opts.append((82, rai))  # RFC 3046 2.2: verbatim; the builder writes it last
        cdef Dest dest = _destination(
            mtype, fd_load_be32(b + OFF_GIADDR), fd_load_be32(b + OFF_CIADDR),
            fd_load_be16(b + OFF_FLAGS) & BROADCAST_FLAG, yiaddr,
            b[OFF_HTYPE] == 1 and b[OFF_HLEN] == 6, self._server_port, self._client_port)
        cdef long flags = -1
        if dest.set_broadcast_flag:
            # RFC 2131 4.1: a NAK through a relay must be broadcast by the relay.
            flags = fd_load_be16(b + OFF_FLAGS) | BROADCAST_FLAG
        l2 = (None if not dest.l2 else
              (yiaddr, PyBytes_FromStringAndSize(<const char *>b + OFF_CHADDR, 6)))
        reply = self._build(msg, mtype, ciaddr, yiaddr, 0, opts, flags)
        cdef Decision d = Decision.__new__(Decision)
        d.outcome = outcome
        d.reply = reply
        d.dest_ip = dest.ip
        d.dest_port = dest.port
        d.broadcast = dest.broadcast
        d.l2_unicast = l2
        d.binding = binding
        d.reason = reason
        return d

    cdef bint _relay_info_fits(self, Message msg):
        """Whether a reply can carry this request's option 82 back.

        RFC 3046 2.2 makes the server echo option 82 verbatim, and a reply may not exceed the
        client's maximum message size (57, else 576). When even 53, 54, 51 and 82 alone do not
        fit, no reply is possible: decide that before any state changes (no offer held, no
        binding staged), with the builder itself as the judge.
        """
        try:
            self._builder.build(msg, OFFER, 0, 0, 0,
                                [(54, b"\0\0\0\0"), (51, b"\0\0\0\0"),
                                 (82, msg._opt_bytes(OPT_RELAY_AGENT))])
        except MalformedPacket:
            return False
        return True

    cdef Decision _nak(self, Message msg, uint32_t sid, str reason):
        return self._reply(msg, OUT_NAK, NAK, 0, 0, [self._sid_option(sid)], None, reason)

    cdef int64_t _lease_time(self, _SubnetInfo info, int64_t requested):
        """valid-lifetime, or the client's option 51 clamped to [min, max]."""
        if requested < 0:
            return info.valid
        if requested < info.min_valid:
            return info.min_valid
        if requested > info.max_valid:
            return info.max_valid
        return requested

    # ------------------------------------------------------------------ handle

    cpdef Decision handle(self, Message msg, object link, double now):
        """Decide what to answer to ``msg`` received on ``link`` at ``now`` (RFC 2131 4.3)."""
        cdef const unsigned char *b = msg._buf
        cdef const unsigned char *p
        cdef int mtype = 0
        cdef Py_ssize_t hlen
        cdef bytes key
        cdef char *k
        cdef Py_ssize_t i
        if b[OFF_OP] != 1:
            # a BOOTREPLY is not for a server; Kea counts it received, then dropped
            return _drop("bootreply")
        if msg._view(OPT_MESSAGE_TYPE, &p) == 1:
            mtype = p[0]
        hlen = b[OFF_HLEN]
        cid = msg._opt_bytes(OPT_CLIENT_ID)
        if cid:
            key = <bytes>cid
        else:
            # htype byte + chaddr (what Lease.client_key documents)
            key = PyBytes_FromStringAndSize(NULL, hlen + 1)
            k = PyBytes_AS_STRING(key)
            k[0] = <char>b[OFF_HTYPE]
            for i in range(hlen):
                k[i + 1] = <char>b[OFF_CHADDR + i]
        if len(key) < 2:
            return _drop("no-client-id")
        # One instance of 82 (<= 255 bytes) always fits beside 53/54/51 in 576 bytes; only a
        # split one (RFC 3396) needs the trial build.
        if msg._view(OPT_RELAY_AGENT, &p) > 255 and not self._relay_info_fits(msg):
            return _drop("relay-info-too-long")
        if mtype == DISCOVER:
            # chaddr is made there only if a reservation may need it.
            return self._discover(msg, link, now, key, None, cid)
        chaddr = PyBytes_FromStringAndSize(<const char *>b + OFF_CHADDR, hlen)
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

    cdef _SubnetInfo _select(self, Message msg, object link):
        cdef const unsigned char *b = msg._buf
        cdef uint32_t subnet_selection = <uint32_t>msg._opt_u32(OPT_SUBNET_SELECTION, 0)
        cdef uint32_t link_selection = msg._sub_u32(SUB_LINK_SELECTION)
        cdef uint32_t giaddr = fd_load_be32(b + OFF_GIADDR)
        cdef bint by_relay = giaddr != 0 and not subnet_selection and not link_selection
        cdef _SubnetInfo info
        if by_relay and giaddr == self._sel_giaddr and self._sel_info is not None:
            # Relayed, and no selector option: the subnet depends on giaddr alone, and the
            # selector does not change between reloads (_apply resets this).
            return self._sel_info
        s = self._selector.select(
            subnet_selection,
            link_selection,
            giaddr,
            fd_load_be32(b + OFF_CIADDR),
            _link_name(link),
            _link_address(link),
        )
        if s is None:
            return None
        info = <_SubnetInfo>self._infos[s.id]
        if by_relay:
            self._sel_giaddr = giaddr
            self._sel_info = info
        return info

    cdef Decision _discover(self, Message msg, object link, double now, bytes key,
                            bytes chaddr, object cid):
        """RFC 2131 4.3.1: choose an address and hold it as an offer; commit nothing."""
        cdef _SubnetInfo sel = self._select(msg, link)
        cdef _SubnetInfo info = None
        cdef _SubnetInfo oinfo
        cdef _Offer offer = None
        cdef uint32_t ip = 0, res_ip = 0, hint = 0, req
        cdef tuple found
        cdef int st
        cdef str how = "same-offer"
        if sel is None:
            return _drop("no-subnet")
        cdef tuple group = sel.group
        res = None
        if sel.has_res or self._hosts_any:
            if chaddr is None:
                chaddr = PyBytes_FromStringAndSize(<const char *>msg._buf + OFF_CHADDR,
                                                   msg._buf[OFF_HLEN])
            res = self._reservation(group, chaddr, cid, msg)
        if res is not None:
            res_ip = res.ip
        o = self._offers.get(key)
        if o is not None:
            offer = <_Offer>o
            if offer.expires > now:
                found = self._bitmap_for(offer.ip)
                if found is not None:
                    oinfo = <_SubnetInfo>found[1]
                elif offer.ip in self._reserved:
                    oinfo = <_SubnetInfo>self._reserved[offer.ip][1]
                elif offer.ip == res_ip and offer.ip == self._res_api_ip:
                    oinfo = self._res_api_info  # its API reservation, outside every pool
                else:
                    oinfo = None
                if oinfo is not None and _in_group(oinfo, group):
                    ip = offer.ip
                    info = oinfo
            if not ip:
                self._drop_offer(key, offer)
        subkey = None
        if not ip and self._sub_limit:
            subkey = self._msg_sub(msg, sel.id)
            if self._sub_full(subkey, key, True):
                # Kea's limits hook refuses the allocation (its lease4_select callout skips
                # it), and a DISCOVER whose allocation is refused gets no OFFER: silence,
                # counted. No NAK exists for a DISCOVER; the client retries with backoff.
                return _drop("subscriber-limit")
        cdef bint alone = True
        lease = None
        if not ip:
            lease = self._sget_by_client(key)
            if lease is not None and lease.client_key == key:
                st = lease.state
                if st == ST_DEFAULT:
                    alone = False
                    info = self._claim(lease.ip, key, res_ip, group, now, _UNREAD)
                    if info is not None:
                        ip = lease.ip
                        alone = True
                        how = _HOW_BINDING
                elif st != ST_DECLINED:
                    hint = lease.ip
        if not ip and res_ip:
            info = self._claim(res_ip, key, res_ip, group, now, _UNREAD)
            if info is not None:
                ip = res_ip
                how = "reservation"
            else:  # the reserved address is another client's (or declined)
                found = self._reserved.get(res_ip)
                if found is not None:
                    (<_SubnetInfo>found[1]).counts.conflicts += 1
        if not ip:
            req = <uint32_t>msg._opt_u32(OPT_REQUESTED_IP, 0)
            if req:
                info = self._claim(req, key, res_ip, group, now, _UNREAD)
                if info is not None:
                    ip = req
                    how = "requested"
        if not ip:
            found = self._allocate(group, hint)
            ip = found[0]
            info = <_SubnetInfo>found[1]
            if not ip:
                sel.counts.alloc_fail += 1
                return _drop("pool-exhausted")
            how = "previous" if ip == hint else "allocated"
        cdef double expires = now + info.offer_lifetime
        if offer is not None and offer.ip == ip and self._offers.get(key) is offer:
            if expires >= offer.at:
                offer.expires = expires  # stays queued at offer.at (see _heap_push)
            else:
                # Earlier than its place in the heap (a clock stepped back): a fresh offer,
                # queued at the new expiry; the old one is discarded when popped.
                fresh = _Offer.__new__(_Offer)
                (<_Offer>fresh).ip = ip
                (<_Offer>fresh).expires = expires
                (<_Offer>fresh).alone = offer.alone
                (<_Offer>fresh).renews = offer.renews
                (<_Offer>fresh).key = key
                (<_Offer>fresh).sub = offer.sub
                offer.sub = None  # the count moves with it, unchanged
                (<_Offer>fresh).at = expires
                self._offers[key] = fresh
                self._heap_push(<_Offer>fresh)
        else:
            # The offer counts against the subscriber unless the client's own binding
            # already does (a bound client asking again takes nothing more).
            if (subkey is not None and lease is not None and lease.client_key == key
                    and self._lease_sub(lease) == subkey):
                subkey = None
            self._hold(key, ip, expires, alone, subkey, how is _HOW_BINDING)
        cdef int64_t lt = self._lease_time(info, msg._opt_u32(OPT_LEASE_TIME, -1))
        if res is not None and (res_ip == ip or not res_ip):
            opts = self._options(res, res.options, msg, lt, info)
        else:
            opts = self._options(info, info.options, msg, lt, info)
        cdef uint32_t sid = self._server_id_for(msg, fd_load_be32(msg._buf + OFF_GIADDR),
                                                _link_address(link))
        return self._reply(msg, OUT_OFFER, OFFER, 0, ip, [self._sid_option(sid), *opts], None,
                           how)

    cdef Decision _request(self, Message msg, object link, double now, bytes key,
                           bytes chaddr, object cid):
        """RFC 2131 4.3.2: SELECTING, INIT-REBOOT, RENEWING and REBINDING."""
        cdef const unsigned char *b = msg._buf
        cdef uint32_t giaddr = fd_load_be32(b + OFF_GIADDR)
        cdef uint32_t ciaddr = fd_load_be32(b + OFF_CIADDR)
        cdef uint32_t link_address = _link_address(link)
        cdef uint32_t sid = self._server_id_for(msg, giaddr, link_address)
        cdef uint32_t server_id = <uint32_t>msg._opt_u32(OPT_SERVER_ID, 0)
        cdef uint32_t ip, res_ip = 0
        cdef _Offer offer = None
        cdef _SubnetInfo sel, info, i
        cdef RequestState state
        if server_id:
            # SELECTING: the client chose a server.
            if server_id != sid and server_id != link_address and server_id != self._server_id:
                o = self._offers.get(key)
                if o is not None:
                    self._drop_offer(key, <_Offer>o)
                return _drop("other-server")
            state = RS_SELECTING
            ip = <uint32_t>msg._opt_u32(OPT_REQUESTED_IP, 0) or ciaddr
            if not ip:
                return _drop("no-requested-address")
        else:
            ip = <uint32_t>msg._opt_u32(OPT_REQUESTED_IP, 0)
            if ip and not ciaddr:
                state = RS_INIT_REBOOT
            elif ciaddr:
                ip = ciaddr
                if not giaddr and not (fd_load_be16(b + OFF_FLAGS) & BROADCAST_FLAG):
                    state = RS_RENEWING
                else:
                    state = RS_REBINDING
            else:
                return _drop("no-requested-address")
        sel = self._select(msg, link)
        if sel is None:
            return _drop("no-subnet")
        cdef tuple group = sel.group
        res = (self._reservation(group, chaddr, cid, msg) if sel.has_res or self._hosts_any
               else None)
        if res is not None:
            res_ip = res.ip

        o = self._offers.get(key)
        if o is not None:
            offer = <_Offer>o
            if offer.ip != ip:
                # The client wants something else: our offer is moot.
                self._drop_offer(key, offer)
                offer = None

        known = _UNREAD
        if state != RS_SELECTING:
            if state == RS_INIT_REBOOT:
                for i in group:
                    if i.net_first <= ip <= i.net_last:
                        break
                else:
                    return self._nak(msg, sid, "wrong-network")
            lease = self._sget(ip)
            known = lease  # nothing is staged before _claim and _bind: reused there
            if lease is not None and lease.client_key == key:
                if lease.state == ST_DECLINED:
                    return self._nak(msg, sid, "declined")
            elif lease is not None and _is_active(lease):
                return self._nak(msg, sid, "not-yours")
            elif res_ip != ip and offer is None:
                # No record of this client at this address.
                mine = self._sget_by_client(key)
                known = bool(res_ip) or (mine is not None and mine.client_key == key
                                         and mine.state == ST_DEFAULT)
                if known or sel.authoritative:
                    return self._nak(msg, sid, "not-yours" if known else "unknown-client")
                return _drop("unknown-client")
            if res_ip and res_ip != ip:
                return self._nak(msg, sid, "reserved-elsewhere")
        if self._sub_limit and self._sub_full(self._msg_sub(msg, sel.id), key, False):
            # Kea's limits hook: a REQUEST whose allocation is refused gets a DHCPNAK (the
            # client must not keep using an address the server will not bind), counted with
            # its own reason. A renewal without option 82 keeps its stored subscriber and
            # never adds to a count, so it is not checked.
            return self._nak(msg, sid, "subscriber-limit")
        info = self._claim(ip, key, res_ip, group, now, known)
        if info is None:
            return self._nak(msg, sid, "address-unavailable")
        return self._bind(msg, now, key, chaddr, ip, info,
                          res if res_ip == ip or not res_ip else None, sid, state,
                          self._claim_read)

    cdef Decision _bind(self, Message msg, double now, bytes key, bytes chaddr, uint32_t ip,
                        _SubnetInfo info, object res, uint32_t sid, RequestState state,
                        object at_ip):
        """Stage the binding of ``ip`` to ``key`` and build the ACK that waits for it.
        ``at_ip`` is the store's record for ``ip`` if already read (see ``_claim``), else
        ``_UNREAD``."""
        cdef int64_t t = <int64_t>now
        cdef bint renewal = False
        o = self._offers.get(key)
        if o is not None and (<_Offer>o).ip == ip and (<_Offer>o).alone:
            # Offered to a client with no other binding, and every binding of this client
            # since would have consumed the offer: nothing to end, no store read.
            prev = None
            renewal = (<_Offer>o).renews
        else:
            prev = self._sget_by_client(key)
        if (prev is not None and prev.ip != ip and prev.client_key == key
                and prev.state == ST_DEFAULT):
            # One binding per client: the old address goes back (staged before the new one
            # so the client index ends on the new address).
            ended = _new_lease(prev.ip, key, prev.hw_address, prev.subnet_id, ST_RELEASED,
                               t, t, prev.hostname, prev.relay_info)
            if self._sub_limit:
                self._count(prev, ended)
            self._sstage(ended)
            self._settle(prev.ip)
        cdef int64_t lt = self._lease_time(info, msg._opt_u32(OPT_LEASE_TIME, -1))
        cdef int64_t expires
        if lt == INFINITE:
            expires = INFINITE
        else:
            # Rounded up: the binding never ends before the client's idea of its end.
            expires = t + lt + (1 if <double>t != now else 0)
        host = msg._opt_bytes(OPT_HOSTNAME)
        rai = msg._opt_bytes(OPT_RELAY_AGENT)
        if host:
            hostname = (<bytes>host).decode("utf-8", "replace")
        elif res is not None and res.hostname:
            hostname = res.hostname
        elif prev is not None and prev.ip == ip and prev.client_key == key:
            hostname = prev.hostname  # a renewal without option 12 keeps the name it had
        else:
            hostname = ""
        if rai is None:
            # A renewal is unicast, with no relay in the path and so no option 82: the lease
            # keeps the relay information it was bound with (audits, subscriber counts).
            if prev is not None and prev.ip == ip and prev.client_key == key:
                rai = prev.relay_info
            else:
                rai = b""
        ipo = ip  # the address as an int, made once
        lease = _new_lease(ipo, key, chaddr, info.id, ST_DEFAULT, t, expires, hostname, rai)
        if not renewal and (prev is None or prev.ip != ip or prev.client_key != key
                            or prev.state != ST_DEFAULT):
            info.counts.assigned += 1  # a new binding, not a renewal of this one
        if self._sub_limit:
            # (A previous binding ended above is at another address: the record at ip is
            # still the one read before, if one was.)
            # The new record's subscriber straight from what it is made of (``_lease_sub``
            # of a DEFAULT lease: its subnet's link and its option 82's sub-option).
            sub = _rai_sub(rai, self._sub_code)
            self._count_keys(
                self._lease_sub(self._sget(ipo) if at_ip is _UNREAD else at_ip),
                None if sub is None else (self._link_of.get(info.id, info.id), sub))
        self._sstage(lease)
        o = self._offers.pop(key, None)
        if o is not None:
            self._unsub(<_Offer>o)
            oip = ipo if (<_Offer>o).ip == ip else (<_Offer>o).ip
            holder = self._offered.get(oip)
            if holder is not None and (holder is key or holder == key):
                del self._offered[oip]
        if res is not None:
            opts = self._options(res, res.options, msg, lt, info)
        else:
            opts = self._options(info, info.options, msg, lt, info)
        return self._reply(msg, OUT_ACK, ACK, fd_load_be32(msg._buf + OFF_CIADDR), ip,
                           [self._sid_option(sid), *opts], lease,
                           <str>_REQUEST_STATE_NAMES[<int>state])

    cdef bint _ours(self, Message msg, object link):
        cdef uint32_t s = <uint32_t>msg._opt_u32(OPT_SERVER_ID, 0)
        cdef uint32_t link_address = _link_address(link)
        return (not s or s == link_address or s == self._server_id
                or s == self._server_id_for(msg, fd_load_be32(msg._buf + OFF_GIADDR),
                                            link_address))

    cdef Decision _release(self, Message msg, object link, double now, bytes key):
        """RFC 2131 4.3.4: end the client's binding; the record keeps affinity."""
        if not self._ours(msg, link):
            return _drop("other-server")
        o = self._offers.get(key)
        if o is not None:
            self._drop_offer(key, <_Offer>o)
        cdef uint32_t ip = fd_load_be32(msg._buf + OFF_CIADDR)
        lease = self._sget(ip) if ip else None
        if lease is None or lease.client_key != key or lease.state != ST_DEFAULT:
            return _drop("release-unknown")
        cdef int64_t t = <int64_t>now
        ended = _new_lease(ip, key, lease.hw_address, lease.subnet_id, ST_RELEASED, t, t,
                           lease.hostname, lease.relay_info)
        if self._sub_limit:
            self._count(lease, ended)
        self._sstage(ended)
        self._settle(ip)
        return _silent("released")

    cdef Decision _decline(self, Message msg, object link, double now, bytes key):
        """RFC 2131 4.3.3: set the address aside for decline-probation-period."""
        if not self._ours(msg, link):
            return _drop("other-server")
        cdef uint32_t ip = <uint32_t>msg._opt_u32(OPT_REQUESTED_IP, 0)
        lease = self._sget(ip) if ip else None
        if lease is None or lease.client_key != key or lease.state != ST_DEFAULT:
            return _drop("decline-unknown")
        # Defences: a DECLINE takes an address out of service for the whole probation
        # period on the client's word alone, so a client (or every client behind one
        # circuit) may do it at most decline-limit times per decline-window, and at most
        # decline-max-fraction of a pool may be set aside at once. A DECLINE past either is
        # ignored as if never received (counted): the binding stays as it was and nothing is
        # set aside; the client's retries are bounded by the same limit.
        cdef tuple found
        subkey = None
        if self._decline_limit:
            # The circuit (or remote id) is the one stored with the binding: a DECLINE
            # is broadcast through the relay, but the binding's own record is the surer.
            subkey = _rai_sub(lease.relay_info, self._sub_code)
            if subkey is not None:
                subkey = (self._link_of.get(lease.subnet_id, lease.subnet_id), subkey)
            else:
                subkey = self._msg_sub(msg, lease.subnet_id)
            if self._decline_over(self._decline_by_client, key, now) or (
                    subkey is not None and self._decline_over(self._decline_by_sub, subkey,
                                                              now)):
                return _drop("decline-limit")
        found = None
        if self._decline_fraction < 1.0:
            found = self._bitmap_for(ip)
            if found is not None:
                first = (<PoolBitmap>found[0])._first
                if (<dict>self._pool_declined).get(first, 0) + 1 > \
                        <Py_ssize_t>(self._decline_fraction * (<PoolBitmap>found[0])._size):
                    return _drop("decline-pool-cap")
                self._pool_declined[first] = self._pool_declined.get(first, 0) + 1
        if self._decline_limit:
            self._decline_note(self._decline_by_client, key, now)
            if subkey is not None:
                self._decline_note(self._decline_by_sub, subkey, now)
        info = self._infos.get(lease.subnet_id)
        cdef int64_t probation = (<_SubnetInfo>info).probation if info is not None else 86400
        cdef int64_t t = <int64_t>now
        declined = _new_lease(ip, key, lease.hw_address, lease.subnet_id, ST_DECLINED, t,
                              t + probation, lease.hostname, lease.relay_info)
        if self._sub_limit:
            self._count(lease, declined)
        self._sstage(declined)
        o = self._offers.get(key)
        if o is not None:
            self._drop_offer(key, <_Offer>o)
        self._settle(ip)
        cdef SubnetCounters c = self._counts_for(lease.subnet_id)
        c.declined += 1
        return _silent("declined")

    cdef Decision _inform(self, Message msg, object link, bytes key, bytes chaddr, object cid):
        """RFC 2131 4.3.5: configuration only; no lease, no yiaddr, no lease-time options."""
        cdef _SubnetInfo sel = self._select(msg, link)
        cdef _SubnetInfo info, i
        cdef uint32_t ciaddr = fd_load_be32(msg._buf + OFF_CIADDR)
        if sel is None:
            return _drop("no-subnet")
        cdef tuple group = sel.group
        res = (self._reservation(group, chaddr, cid, msg) if sel.has_res or self._hosts_any
               else None)
        info = sel
        if ciaddr:
            for i in group:
                if i.net_first <= ciaddr <= i.net_last:
                    info = i
                    break
        if res is not None:
            opts = self._options(res, res.options, msg, -1, info)
        else:
            opts = self._options(info, info.options, msg, -1, info)
        cdef uint32_t sid = self._server_id_for(msg, fd_load_be32(msg._buf + OFF_GIADDR),
                                                _link_address(link))
        return self._reply(msg, OUT_ACK, ACK, ciaddr, 0, [self._sid_option(sid), *opts], None,
                           "inform")

    # ------------------------------------------------------------------ timers, recovery

    def reclaim(self, double now, Py_ssize_t limit=1000):
        """End expired bindings and declines past probation, drop stale offers.

        Stages at most ``limit`` reclamations (state EXPIRED_RECLAIMED, bit freed). Returns
        when to call again: at once (``now``) if the limit was hit, else at the next offer
        expiry or in one second, whichever comes first.
        """
        cdef list heap = self._offer_heap
        cdef _Offer offer
        while heap and (<_Offer>heap[0]).at <= now:
            offer = self._heap_pop()
            key = offer.key
            if self._offers.get(key) is offer:
                if offer.expires <= now:
                    self._drop_offer(key, offer)
                else:
                    offer.at = offer.expires  # renewed since queued: queue it again
                    self._heap_push(offer)
        expired = self._store.expired(<int64_t>now, limit)
        cdef tuple found
        cdef SubnetCounters c
        for lease in expired:
            c = self._counts_for(lease.subnet_id)
            c.reclaimed += 1
            if lease.state == ST_DECLINED:
                c.reclaimed_declined += 1
            ended = _new_lease(lease.ip, lease.client_key, lease.hw_address, lease.subnet_id,
                               ST_EXPIRED, lease.issued, lease.expires, lease.hostname,
                               lease.relay_info)
            if self._sub_limit:
                self._count(lease, ended)
            if self._counting:
                if lease.state == ST_DECLINED and self._decline_fraction < 1.0:
                    found = self._bitmap_for(lease.ip)
                    if found is not None:
                        first = (<PoolBitmap>found[0])._first
                        n = self._pool_declined.get(first, 0) - 1
                        if n > 0:
                            self._pool_declined[first] = n
                        else:
                            self._pool_declined.pop(first, None)
            self._sstage(ended)
            self._settle(lease.ip)
        if self._decline_limit and now >= self._decline_sweep_at:
            # Forget clients and circuits whose decline window has ended (at most once a
            # window), so the tables hold only recent decliners.
            self._decline_sweep_at = now + self._decline_window
            for table in (self._decline_by_client, self._decline_by_sub):
                stale = [k for k, e in (<dict>table).items()
                         if now >= <double>(<list>e)[0] + self._decline_window]
                for k in stale:
                    del (<dict>table)[k]
        if len(expired) >= limit:
            return now
        cdef double nxt = now + 1.0
        if heap and (<_Offer>heap[0]).at < nxt:
            nxt = (<_Offer>heap[0]).at
        return nxt

    # ------------------------------------------------------------------ administration

    def admin_put(self, lease):
        """Stage ``lease`` as the control channel made it (lease4-add, lease4-update) and
        keep every view in step: an offer of its address to anyone is withdrawn (so the
        offered client is not ACKed an address another client now holds), the bit follows,
        the subscriber and subnet counts follow. Returns the record it replaces, or None.
        Validation is the caller's: this changes state without refusing."""
        ip = lease.ip
        old = self._sget(ip)
        holder = self._offered.get(ip)
        if holder is not None:
            offer = self._offers.get(holder)
            if offer is not None and (<_Offer>offer).ip == ip:
                self._drop_offer(holder, <_Offer>offer)
            else:
                del self._offered[ip]
        if self._sub_limit:
            self._count(old, lease)
        if _is_active(lease) and (old is None or not _is_active(old)
                                  or old.client_key != lease.client_key):
            (<SubnetCounters>self._counts_for(lease.subnet_id)).assigned += 1
        self._sstage(lease)
        self._settle(ip)
        return old

    def admin_delete(self, ip):
        """Stage the deletion of ``ip``'s record (lease4-del, lease4-wipe): readers see none
        at once, the bit is free unless a reservation or an offer holds it, and the commit
        deletes the key. Returns the deleted record, or None if there was none."""
        old = self._sget(ip)
        if old is None:
            return None
        if self._sub_limit:
            self._count(old, None)
        self._sstage(tombstone(old))
        self._settle(ip)
        return old

    def rollback(self, leases):
        """A batch did not commit (the store has already forgotten it): make every touched
        address's bit follow what the store shows now."""
        for lease in leases:
            self._settle(lease.ip)
        # The counts followed the staged versions the store has now forgotten: recount from
        # what it shows (one pass; commits fail rarely).
        self._recount()

    def pool_stats(self):
        """``PoolStat(subnet_id, pool, size, used)`` for every pool, in address order."""
        return [
            PoolStat((<_SubnetInfo>info).id, text, bm.size, bm.used)
            for bm, info, text in zip(self._pool_bitmaps, self._pool_infos, self._pool_texts)
        ]

    cdef SubnetCounters _counts_for(self, object subnet_id):
        """The counters of ``subnet_id``, made if it is not configured (a lease of a subnet
        a reload removed still counts in the server-wide sums)."""
        c = self._counters.get(subnet_id)
        if c is None:
            c = self._counters[subnet_id] = SubnetCounters.__new__(SubnetCounters)
        return <SubnetCounters>c

    def subnet_counters(self):
        """``{subnet id: SubnetCounters}`` for every subnet ever configured (live objects,
        read-only): the statistics view reads them when asked."""
        return dict(self._counters)

    def offered(self, bytes key):
        """The address currently held for client ``key`` (0 if none); for tests and audits."""
        o = self._offers.get(key)
        return (<_Offer>o).ip if o is not None else 0

    def subscriber_counts(self):
        """A copy of the bound-lease counts per subscriber, ``{(link id, subscriber id): n}``
        (empty unless subscriber-lease-limit is set); for tests and audits."""
        return dict(self._sub_leases)

    def subscriber_offers(self):
        """A copy of the held-offer counts per subscriber (offers that count against
        subscriber-lease-limit); for tests and audits."""
        return dict(self._sub_offers)

    def is_offered(self, ip):
        """True while ``ip`` is held for some client's offer; for tests and audits."""
        return ip in self._offered

    @property
    def config(self):
        """The configuration this engine was built from."""
        return self._config

    def pool_bitmaps(self):
        """The pools' bitmaps, in address order (read-only use: tests and audits)."""
        return list(self._pool_bitmaps)

    # ------------------------------------------------------------------ hosts (cmd_hosts)

    def attach_hosts(self, hosts):
        """Serve the reservations of ``hosts`` (a :class:`fastdhcp.hosts.HostTable`) too:
        looked up per packet after the config's, their addresses marked used in the pools'
        bitmaps now (one pass over the table's address index). Call once, before serving."""
        self._hosts = hosts
        self._hfind = hosts.find
        self._hreserved = hosts.reserved
        self._hfilter = <HostFilter?>hosts.filter
        self._host_pending = {}
        self._host_cache = {}
        self._host_counts()
        addrs = hosts.addresses()
        if len(addrs):
            self._fill(self._pool_bitmaps, addrs)

    def hold_host_address(self, ip):
        """A host reserving ``ip`` is being added (its commit is on the way): claim the
        address now, so that no other client is offered it meanwhile; an offer another client
        holds on it is dropped. End with :meth:`host_written` whatever the commit did."""
        cdef uint32_t a = ip
        if self._hosts is None:
            raise RuntimeError("no hosts table attached")
        self._host_pending[ip] = self._host_pending.get(ip, 0) + 1
        key = self._offered.get(ip)
        if key is not None:
            o = self._offers.get(key)
            if o is not None:
                self._drop_offer(key, <_Offer>o)
            else:
                del self._offered[ip]
        cdef Py_ssize_t at = self._pool_at(a)
        if at >= 0:
            bm = <PoolBitmap>self._pool_bitmaps[at]
            if bm.is_free(a):
                bm.reserve(a)

    def host_written(self, ip=0, held=False):
        """A hosts write committed or failed (the table's counts are current): look up the
        types that exist now, and settle ``ip``'s bit (used while a lease, an offer or a
        reservation claims it, else freed). ``held``: the write was the reservation-add of a
        :meth:`hold_host_address` (once per hold), whose claim ends here."""
        if self._hosts is None:
            raise RuntimeError("no hosts table attached")
        self._host_counts()
        if ip:
            if held:
                n = self._host_pending.pop(ip, 0) - 1
                if n > 0:
                    self._host_pending[ip] = n  # another add of it is still on its way
            self._settle(ip)
