# fastdhcp._engine, part: the pool set (allocation). Included by _engine.pyx (one C module: the
# functions below are direct C calls; Cython allows no include inside a class body,
# so the Engine's methods of this concern are functions taking the Engine first).
#
# The allocation side (Kea's AllocEngine): the pools' bitmaps, rebuilt from the store at
# start, kept in step with every lease, offer and reservation (``_settle``); ``_claim`` decides
# whether an address may go to a client and ``_allocate`` finds a free one next-fit.


cdef _rebuild(Engine self):
    """Mark used every address the store shows active, and every reserved address."""
    # 4 bytes an address: no Python int kept per lease, even for millions of them.
    addrs = array("I", self._store.active_addresses())
    addrs.extend(self._reserved)
    _fill(self, self._pool_bitmaps, addrs)


cdef _fill(Engine self, list bitmaps, object addrs):
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


cdef Py_ssize_t _pool_at(Engine self, uint32_t ip):
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


cdef tuple _bitmap_for(Engine self, uint32_t ip):
    """(bitmap, subnet) of the pool containing ``ip``, or None."""
    cdef Py_ssize_t i = _pool_at(self, ip)
    if i >= 0:
        return (self._pool_bitmaps[i], self._pool_infos[i])
    return None


cdef _settle(Engine self, uint32_t ip):
    """Make ``ip``'s bit used exactly when a lease, an offer or a reservation claims it."""
    cdef Py_ssize_t at = _pool_at(self, ip)
    if at < 0:
        return
    bm = self._pool_bitmaps[at]
    lease = self._sget(ip)
    cdef bint claimed = (ip in self._reserved or ip in self._offered
                         or (lease is not None and _is_active(lease))
                         or (self._hosts is not None and (ip in self._host_pending
                                                          or _api_reserved(self, ip))))
    if claimed:
        if bm.is_free(ip):
            bm.reserve(ip)
    elif not bm.is_free(ip):
        bm.free(ip)


cdef _SubnetInfo _claim(Engine self, uint32_t ip, bytes key, uint32_t res_ip, tuple group,
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
    self._ex.claim_read = known
    res = self._reserved.get(ipo) if self._reserved else None
    if res is not None and ip != res_ip:
        return None
    if (res is None and ip == res_ip and ip == self._ex.res_api_ip
            and self._ex.res_api_info is not None):
        res = (None, self._ex.res_api_info)  # the client's own API reservation
    holder = self._offered.get(ipo)
    if holder is not None and (holder is key or holder == key):
        # Our own live offer: every other way to this address goes through _claim, which
        # respects the offer, so no other lease can have appeared on it; no store read.
        o = self._offers.get(key)
        if o is not None and (<_Offer>o).ip == ip:
            at = _pool_at(self, ip)
            if (at >= 0 and _in_group(<_SubnetInfo>self._pool_infos[at], group)
                    and (res is not None or _pool_allowed(self, at))):
                return <_SubnetInfo>self._pool_infos[at]
    if holder is not None and holder != key:
        o = self._offers.get(holder)
        if o is not None:
            other = <_Offer>o
            if other.expires > now:
                return None
            _drop_offer(self, holder, other)
        holder = None
    lease = self._sget(ipo) if known is _UNREAD else known
    self._ex.claim_read = lease
    cdef bint mine = False
    if lease is not None:
        st = lease.state
        if st == ST_DECLINED:
            return None
        if st == ST_DEFAULT:
            if lease.client_key != key:
                return None
            mine = True
    at = _pool_at(self, ip)
    if at < 0:
        # Outside every pool: only a reservation can hand it out.
        if res is not None and _in_group(<_SubnetInfo>res[1], group):
            return <_SubnetInfo>res[1]
        return None
    if res is None and not _pool_allowed(self, at):
        # A pool whose guard the client does not pass (its classes changed since, for a
        # renewal): Kea's "outside the allowed pools", a DISCOVER allocates elsewhere and a
        # REQUEST is NAKed. A client's own reserved address is not guarded.
        return None
    bm = <PoolBitmap>self._pool_bitmaps[at]
    info = <_SubnetInfo>self._pool_infos[at]
    if not _in_group(info, group):
        if res is None or not _in_group(<_SubnetInfo>res[1], group):
            return None
        info = <_SubnetInfo>res[1]
    off = ip - bm._first
    if not (bm._lvl[0][off >> 6] >> (off & 63)) & 1:
        if not _in_share(self, ip):
            return None  # free, but the HA partner's to hand out (no binding of ours)
        bm.allocate_c(ip)  # the hint is free: taken as is
        return info
    if res is not None:
        return info
    if mine or holder == key:
        if self._hosts_any and _api_reserved(self, ip):
            return None  # reserved through the API for another client since
        return info
    return None  # used by something we cannot name: leave it alone


cdef inline bint _pool_allowed(Engine self, Py_ssize_t at):
    """Whether the packet's classes pass the guard of pool ``at`` (always, without classes)."""
    if not self._cls.active:
        return True
    return _allowed(self._ex.classes, (<_PoolInfo>self._pool_pinfos[at]).guard)


cdef tuple _allocate(Engine self, tuple group, uint32_t hint):
    """A fresh address from the link's pools the packet's classes allow, in config order
    (next subnet when one is full). On failure ``ex.no_pool`` tells whether no pool was
    allowed at all (Kea's v4-allocation-fail-no-pools)."""
    cdef _SubnetInfo info
    cdef _PoolInfo pi
    cdef PoolBitmap bm
    cdef bint classes = self._cls.active
    cdef bint any_pool = False
    cdef uint32_t ip
    for info in group:
        for pi in info.pools:
            if classes and pi.guard and not _allowed(self._ex.classes, pi.guard):
                continue
            any_pool = True
            bm = pi.bm
            while bm._used < bm._size:
                ip = <uint32_t>bm.allocate_c(hint if bm._first <= hint <= bm._last else 0)
                if _in_share(self, ip):
                    return (ip, info)
                # the HA partner's share: left marked used here (parked) so next-fit does
                # not meet it again; a lease change there (_settle) frees it, and it is
                # parked again when met
                hint = 0
    self._ex.no_pool = not any_pool
    return (0, group[0])
