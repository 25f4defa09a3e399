"""The compiled RFC 2131 engine behind ``fastdhcp.engine`` (its docstring has the whole theory
of operation: states, transitions, defences, what is durable when).

Theory of operation, in short: ``Engine.handle(msg, link, now)`` selects the subnet, keys the
client (option 61, else htype + chaddr), and runs the message's step, which reads the lease
store, claims an address in the pool set, holds it in the offer table (DISCOVER: nothing
staged) or stages a binding (REQUEST: the ``Decision.binding`` the service commits before the
ACK leaves), and builds the reply. Three claims keep an address's bit used: an active lease, a
held offer, a reservation; ``_settle`` re-derives the bit whenever one lets go. ``reclaim(now)``
expires offers and leases; ``reload`` swaps the configuration, keeping offers and unchanged
pools; ``rollback`` makes the bits follow the store after a failed commit.

The parts (one C module; included at the end of this file, as uvloop's loop.pyx includes its
handles; the fields are all declared in ``_engine.pxd``):

==============================  ============================================================
``_engine.pyx`` (this file)     Lease construction, Decision, _SubnetInfo, and the Engine's
                                public surface: ``Engine(config, store)``, ``handle``,
                                ``reclaim``, ``reload``, ``rollback``, administration, hosts
``_engine_exchange.pxi``        the Exchange: one request through the steps, reused
``_engine_selection.pxi``       subnet selection (SubnetSelector, ``_select``, ``_ours``)
``_engine_classes.pxi``         client classes: Kea's order of assignment, guards, required
                                classes, class options and lifetimes
``_engine_pools.pxi``           the pool set: bitmaps, ``_claim``, ``_allocate``, ``_settle``
``_engine_reservations.pxi``    reservations: the configuration's and the hosts table's
``_engine_offers.pxi``          the offer table with its heap
``_engine_defences.pxi``        subscriber lease limit, DECLINE limits and pool cap
``_engine_replies.pxi``         ``_destination`` (RFC 2131 4.1), options, server id, ``_reply``
``_engine_fields.pxi``          siaddr / sname / file: Kea's next-server, server-hostname,
                                boot-file-name by reservation > first class > subnet > global
``_engine_steps.pxi``           DISCOVER, REQUEST (+ ``_bind``), RELEASE, DECLINE, INFORM
``_engine_rapid.pxi``           rapid commit (RFC 4039) and ping-check's side of DISCOVER
``_engine_fqdn.pxi``            client names: option 81 / 12 in replies, DNS owed per binding
==============================  ============================================================

Cython allows ``include`` only at module level, not inside a class body: the Engine's methods of
each concern are therefore module-level ``cdef`` functions taking the Engine first
(``_settle(self, ip)``), direct C calls as the final class's methods were.
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
from fastdhcp._lease cimport Lease, lease_fqdn
from fastdhcp._consts cimport *

from array import array
from bisect import bisect_left as _bisect_left, bisect_right as _bisect_right
from collections import namedtuple

from fastdhcp.errors import MalformedPacket
from fastdhcp.consts import Outcome
from fastdhcp.leases import tombstone

__all__ = ["Decision", "Engine", "Link", "PoolStat", "SubnetSelector", "fixed_fields",
           "reply_destination"]

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
    ``declined``: DECLINEs honoured, and addresses ping-check set aside; ``ping_conflicts``:
    offered addresses that answered a ping-check (set aside unless decline-max-fraction was
    reached); ``rapid_commits``: DISCOVERs ACKed at once (RFC 4039);
    ``reclaimed``: expired leases reclaimed, declined ones
    included (reclaimed-leases); ``reclaimed_declined``: declined leases reclaimed after
    probation; ``conflicts``: a client's reserved address held by another
    (v4-reservation-conflicts); ``no_pools``: of ``alloc_fail``, DISCOVERs whose classes
    allowed no pool of the link (v4-allocation-fail-no-pools).
    """

    def __repr__(self):
        return (f"SubnetCounters(assigned={self.assigned}, alloc_fail={self.alloc_fail}, "
                f"declined={self.declined}, reclaimed={self.reclaimed}, "
                f"reclaimed_declined={self.reclaimed_declined}, conflicts={self.conflicts}, "
                f"rapid_commits={self.rapid_commits}, ping_conflicts={self.ping_conflicts}, "
                f"no_pools={self.no_pools})")


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
    wait for (ACKs that bind); ``reason`` is the drop reason or the decision's detail;
    ``probe`` (an OFFER's yiaddr, else 0) asks the service to check that address with ICMP
    echo first and to tell :meth:`Engine.ping_result` what it found (ping-check).
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


# ------------------------------------------------------------------------ engine state

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
        self.rapid_commit = subnet.rapid_commit
        self.ping_check = subnet.ping_check.enabled
        self.ping_cltt = subnet.ping_check.ping_cltt_secs
        self.net_first = int(subnet.network.network_address)
        self.net_last = int(subnet.network.broadcast_address)
        opts = dict(subnet.options)
        # RFC 2132 3.3 / Kea: the subnet mask is always sent; computed when not configured.
        opts.setdefault(1, int(subnet.network.netmask).to_bytes(4, "big"))
        self.options = opts
        own = dict(subnet.own_options)
        own.setdefault(1, opts[1])
        self.own_options = own
        self.guard = ()
        self.required = ()
        self.pools = []
        self.guarded = False
        self.pools_guarded = False
        self.cursor = 0
        self.fixed = _fixed_of(subnet.fixed)
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



@cython.final
cdef class _Caches:
    """Every cache of the engine whose entries answer for one configuration, in one place:
    ``reset`` (``Engine._apply``, on every reload) empties them all, so a cache added here
    cannot be left stale by a reload. (Caches held by objects that ``_apply`` makes anew,
    _SubnetInfo's option list and the SubnetSelector's link cache, go with them.)"""

    def __init__(self):
        self.reset()

    cdef reset(self):
        self.opt = {}
        self.sid = {}
        self.sid_last = 0
        self.sid_last_opt = None
        self.sel_giaddr = 0
        self.sel_info = None
        self.host = {}  # its Reservations merged the old subnets' options
        self.merged = {}
        self.cls_out = None  # the one-entry cache of _reply_options (_engine_classes.pxi)
        self.cls_res = None
        self.cls_pool = None
        self.cls_info = None
        self.cls_prl = b""
        self.cls_lt = 0
        self.cls_order = None
        self.fixed = {}

cdef inline bint _is_active(object lease):
    cdef int st = lease.state
    return st == ST_DEFAULT or st == ST_DECLINED


@cython.final
cdef class Engine:
    """RFC 2131 server decisions over a :class:`~fastdhcp.leases.LeaseStore`.

    ``Engine(config, store)``. The engine has no clock: every request and :meth:`reclaim`
    take the time as an argument, so tests run on a fake clock. At construction the pool
    bitmaps are rebuilt from ``store.active_addresses()`` and every reserved address is
    marked used.
    """

    def __init__(self, config, store, scope=None):
        # scope: a fastdhcp.slices.WorkerScope in a multi-worker server (docs/scaling.md):
        # each pool's bitmap covers only this worker's slice, so the allocator has no bit for
        # an address another worker owns; None = the whole pool (one process).
        self._scope = scope
        self._store = store
        self._sget = store.get
        self._sget_by_client = store.get_by_client
        self._ex = Exchange.__new__(Exchange)
        self._ex.claim_read = _UNREAD
        self._sstage = store.stage
        self._builder = ReplyBuilder()
        self._offers = {}
        self._offered = {}
        self._offer_heap = []
        self._seq = 0
        self._decline_by_client = {}
        self._decline_by_sub = {}
        self._decline_sweep_at = 0.0
        self._share_index = 0
        self._share_count = 0
        self._sub_leases = {}
        self._sub_offers = {}
        self._pool_declined = {}
        self._counters = {}
        self.ddns_pending = {}
        self._ddns_cache = {}
        self._res_names = {}
        self._names = None
        self._caches = _Caches()
        self._fx_scratch = _Fixed.__new__(_Fixed)
        self._apply(config, None)
        _rebuild(self)
        _recount(self)

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
        cdef _Classes cls = _make_classes(config)
        cdef _PoolInfo pinfo
        pools = []
        cdef list fresh = []
        for s in subnets:
            info = <_SubnetInfo>infos[s.id]
            info.guard = _ids_of(cls.ids, s.client_classes)
            info.required = _ids_of(cls.ids, s.required_classes)
            for p in s.pools:
                rng = (p.first, p.last) if self._scope is None else self._scope.range_of(p)
                if rng is None:
                    continue  # this worker's slice of a pool smaller than the worker count
                bm = keep.get(rng) if keep is not None else None
                if bm is None:
                    bm = PoolBitmap(rng[0], rng[1])
                    fresh.append(bm)
                info.bitmaps.append(bm)
                pinfo = _PoolInfo.__new__(_PoolInfo)
                pinfo.pool = p
                pinfo.bm = bm
                pinfo.info = info
                pinfo.guard = _ids_of(cls.ids, p.client_classes)
                pinfo.required = _ids_of(cls.ids, p.required_classes)
                pinfo.options = dict(p.options)
                info.pools.append(pinfo)
                info.pools_guarded = info.pools_guarded or bool(pinfo.guard)
                pools.append((rng[0], bm, info, p.text, pinfo))
        pools.sort(key=lambda x: x[0])
        for sid, g in groups.items():
            # Guards of a link's subnets filter its group per packet (_guarded_group).
            (<_SubnetInfo>infos[sid]).guarded = any((<_SubnetInfo>i).guard for i in g)
        cdef ClassSet class_set = ClassSet(cls.capacity)
        cdef dict reserved = {}
        for s in subnets:
            for r in s.reservations:
                if r.ip:  # (a reservation without an address reserves none)
                    reserved.setdefault(r.ip, (r, infos[s.id]))
        d = getattr(config, "defences", None)
        sub_limit = int(d.subscriber_lease_limit) if d is not None else 0
        sub_code = SUB_REMOTE_ID if d is not None and d.subscriber_key == "remote-id" \
            else SUB_CIRCUIT_ID
        decline_limit = int(d.decline_limit) if d is not None else 0
        decline_window = float(d.decline_window) if d is not None else 3600.0
        decline_fraction = float(d.decline_max_fraction) if d is not None else 1.0
        fx_class = _fixed_by_class(config)
        fx_res = self._hosts is not None or any(
            bool(r.fixed) for s in subnets for r in s.reservations)
        fx_any = fx_res or fx_class is not None or any(
            (<_SubnetInfo>i).fixed is not None for i in infos.values())
        dd = getattr(config, "ddns", None)
        ddns = None
        ddns_gen = False
        if dd is not None:
            from functools import partial
            from fastdhcp.ddns.config import ReplaceClientName
            from fastdhcp.ddns.names import decide
            ddns = partial(decide, cfg=dd)
            ddns_gen = dd.replace_client_name in (ReplaceClientName.ALWAYS,
                                                  ReplaceClientName.WHEN_NOT_PRESENT)
        from fastdhcp.ddns.names import decide_without_ddns

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
        self._pool_pinfos = [p[4] for p in pools]
        self._cls = cls
        self._ex.classes = class_set
        self._ex.class_order = []
        self._reserved = reserved
        self._caches.reset()  # every cache answers for the old configuration
        self._sub_limit = sub_limit
        self._sub_code = sub_code
        self._decline_limit = decline_limit
        self._decline_window = decline_window
        self._decline_fraction = decline_fraction
        self._counting = sub_limit > 0 or decline_fraction < 1.0
        self._fx_class = fx_class
        self._fx_res = fx_res
        self._fx_any = fx_any
        self._ddns = ddns
        self._ddns_cache = {}  # its decisions were the old [ddns]'s
        self._ddns_gen = ddns is not None and ddns_gen
        self._ddns_renew = ddns is not None and dd.update_on_renew
        self._names = decide_without_ddns
        self._res_names = {}
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
            if _bitmap_for(self, offer.ip) is None or offer.ip in self._reserved:
                del self._offers[key]
                _unsub(self, offer)
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
            _fill(self, fresh, addrs)
        # Kept bitmaps: bits whose claim changed with the reservations or the dropped offers.
        for ip in set(old_reserved).symmetric_difference(self._reserved).union(dropped):
            _settle(self, ip)
        _recount(self)

    # ------------------------------------------------------------------ handle

    cpdef Decision handle(self, Message msg, object link, double now):
        """Decide what to answer to ``msg`` received on ``link`` at ``now`` (RFC 2131 4.3)."""
        cdef const unsigned char *b = msg._buf
        cdef const unsigned char *p
        cdef int mtype = 0
        cdef bytes key
        cdef object cid
        if b[OFF_OP] != 1:
            # a BOOTREPLY is not for a server; Kea counts it received, then dropped
            return _drop("bootreply")
        if msg._view(OPT_MESSAGE_TYPE, &p) == 1:
            mtype = p[0]
        key = msg.client_key()  # the one definition, shared with the edge guard
        # option 61 as sent is the key itself when present (no second copy of its bytes)
        cid = key if msg._view(OPT_CLIENT_ID, &p) > 0 else None
        if len(key) < 2:
            return _drop("no-client-id")
        # One instance of 82 (<= 255 bytes) always fits beside 53/54/51 in 576 bytes; only a
        # split one (RFC 3396) needs the trial build.
        if msg._view(OPT_RELAY_AGENT, &p) > 255 and not _relay_info_fits(self, msg):
            return _drop("relay-info-too-long")
        cdef Exchange ex = self._ex
        ex.msg = msg
        ex.link = link
        ex.now = now
        ex.key = key
        ex.cid = cid
        ex.res_api_ip = 0
        ex.rapid = False
        if self._cls.active and _classify_early(self, ex):
            # Kea's step 5: a member of DROP is dropped silently, counted in
            # pkt4-receive-drop.
            return _drop("class-drop")
        if mtype == DISCOVER:
            # chaddr is made there only if a reservation may need it.
            ex.chaddr = None
            return _discover(self, ex)
        ex.chaddr = PyBytes_FromStringAndSize(<const char *>b + OFF_CHADDR, b[OFF_HLEN])
        if mtype == REQUEST:
            return _request(self, ex)
        if mtype == RELEASE:
            return _release(self, ex)
        if mtype == DECLINE:
            return _decline(self, ex)
        if mtype == INFORM:
            return _inform(self, ex)
        if mtype == 0:
            return _drop("bootp")
        return _drop("unexpected-type")

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
            offer = _heap_pop(self)
            key = offer.key
            if self._offers.get(key) is offer:
                if offer.expires <= now:
                    _drop_offer(self, key, offer)
                else:
                    offer.at = offer.expires  # renewed since queued: queue it again
                    _heap_push(self, offer)
        expired = self._store.expired(<int64_t>now, limit)
        cdef SubnetCounters c
        for lease in expired:
            c = self._counts_for(lease.subnet_id)
            c.reclaimed += 1
            if lease.state == ST_DECLINED:
                c.reclaimed_declined += 1
            ended = lease_fqdn(_new_lease(lease.ip, lease.client_key, lease.hw_address,
                                          lease.subnet_id, ST_EXPIRED, lease.issued,
                                          lease.expires, lease.hostname, lease.relay_info),
                               lease.fqdn_fwd, lease.fqdn_rev)  # its names go (ddns.feed)
            _on_record(self, lease, ended)
            self._sstage(ended)
            _settle(self, lease.ip)
        _on_reclaim(self, now)
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
                _drop_offer(self, holder, <_Offer>offer)
            else:
                del self._offered[ip]
        _on_record(self, old, lease)
        if _is_active(lease) and (old is None or not _is_active(old)
                                  or old.client_key != lease.client_key):
            (<SubnetCounters>self._counts_for(lease.subnet_id)).assigned += 1
        self._sstage(lease)
        _settle(self, ip)
        return old

    def admin_delete(self, ip):
        """Stage the deletion of ``ip``'s record (lease4-del, lease4-wipe): readers see none
        at once, the bit is free unless a reservation or an offer holds it, and the commit
        deletes the key. Returns the deleted record, or None if there was none."""
        old = self._sget(ip)
        if old is None:
            return None
        _on_record(self, old, None)
        self._sstage(tombstone(old))
        _settle(self, ip)
        return old

    def rollback(self, leases):
        """A batch did not commit (the store has already forgotten it): make every touched
        address's bit follow what the store shows now."""
        for lease in leases:
            _settle(self, lease.ip)
        # The counts followed the staged versions the store has now forgotten: recount from
        # what it shows (one pass; commits fail rarely).
        _recount(self)

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

    def ping_result(self, bytes key, ip, bint in_use, double now):
        """What the ping-check of ``ip``, offered to ``key`` (a Decision's ``probe``), found.

        Free (``in_use`` False): the offer stands, no longer marked as probing. In use: the
        offer is withdrawn and the address set aside as DECLINED for its subnet's
        decline-probation-period (staged: the service kicks the commit), counted in the
        subnet's ``declined`` and ``ping_conflicts`` (within decline-max-fraction, as a
        DECLINE: past it the offer is only withdrawn); handling the DISCOVER again then picks
        another address. Returns False when there was nothing to do (the offer had gone, or
        the address is now bound), True otherwise."""
        return _ping_result(self, key, ip, in_use, now)

    def last_classes(self):
        """The classes of the last request handled, in the order they were assigned (Kea's
        DHCP4_CLASS_ASSIGNED list, required classes included); [] when the configuration has
        no classes. For tests, logs and the side-by-side comparison with Kea."""
        if not self._cls.active or self._ex.class_order is None:
            return []
        names = {i: n for n, i in self._cls.ids.items()}
        return [names[i] for i in self._ex.class_order]

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

    # ------------------------------------------------------------------ HA share (ha)

    def set_ha_share(self, int index, int count):
        """Allocate new addresses only from share ``index`` of ``count`` (an address is in
        share ``ip % count``), or from the whole pool with ``count`` 0. Renewals of a bound
        lease are not affected. Set by the server for an HA pair of fastdhcp peers."""
        if count < 0 or count > 64 or (count and not 0 <= index < count):
            raise ValueError(f"HA share {index} of {count}")
        self._share_index = index
        self._share_count = count

    # ------------------------------------------------------------------ hosts (cmd_hosts)

    def attach_hosts(self, hosts):
        """Serve the reservations of ``hosts`` (a :class:`fastdhcp.hosts.HostTable`) too:
        looked up per packet after the config's, their addresses marked used in the pools'
        bitmaps now (one pass over the table's address index). Call once, before serving."""
        self._hosts = hosts
        self._fx_res = self._fx_any = True  # API hosts may carry next-server etc.
        self._hfind = hosts.find
        self._hreserved = hosts.reserved
        self._hfilter = <HostFilter?>hosts.filter
        self._host_pending = {}
        _host_counts(self)
        addrs = hosts.addresses()
        if len(addrs):
            _fill(self, self._pool_bitmaps, addrs)

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
                _drop_offer(self, key, <_Offer>o)
            else:
                del self._offered[ip]
        cdef Py_ssize_t at = _pool_at(self, a)
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
        _host_counts(self)
        if ip:
            if held:
                n = self._host_pending.pop(ip, 0) - 1
                if n > 0:
                    self._host_pending[ip] = n  # another add of it is still on its way
            _settle(self, ip)


# ------------------------------------------------------------------------ the parts

include "_engine_exchange.pxi"
include "_engine_selection.pxi"
include "_engine_classes.pxi"
include "_engine_pools.pxi"
include "_engine_reservations.pxi"
include "_engine_offers.pxi"
include "_engine_defences.pxi"
include "_engine_replies.pxi"
include "_engine_fields.pxi"
include "_engine_steps.pxi"
include "_engine_rapid.pxi"
include "_engine_fqdn.pxi"
