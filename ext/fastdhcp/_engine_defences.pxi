# fastdhcp._engine, part: the defences. Included by _engine.pyx (one C module: the
# functions below are direct C calls; Cython allows no include inside a class body,
# so the Engine's methods of this concern are functions taking the Engine first).
#
# Subscriber lease limit (per option 82 subscriber and link) and the DECLINE defences
# (decline-limit per client and per subscriber within decline-window; decline-max-fraction of a
# pool). docs/configuration.md, "Defences".


# ------------------------------------------------------------------------ the hooks
# The message steps and the record changes call only these; each runs the defences that
# apply, in order. A new defence is its own part file plus one line in each hook it needs.
# Checks return None (allowed) or the refusal's reason; the step decides what a refusal is
# (DISCOVER: no OFFER; REQUEST: a NAK; DECLINE: ignored). All are cheap when no defence is
# configured: one flag test each.

cdef str _may_offer(Engine self, Exchange ex, _SubnetInfo sel):
    """May a new offer be made to the client (a DISCOVER with no offer held, ``sel`` its
    subnet)? Sets ``ex.offer_sub``: the subscriber the offer would count against, or None."""
    ex.offer_sub = None
    if self._sub_limit:
        # Kea's limits hook refuses the allocation (its lease4_select callout skips it).
        subkey = _msg_sub(self, ex.msg, sel.id)
        if _sub_full(self, subkey, ex.key, True):
            return "subscriber-limit"
        ex.offer_sub = subkey
    return None


cdef inline bint _in_share(Engine self, uint32_t ip) noexcept:
    """May ``ip`` be newly allocated by this server (its HA allocation share, set by
    ``set_ha_share``)? Two fastdhcp peers so never hand one address to two clients, even
    when both serve every client in a split brain (docs/high-availability.md)."""
    return self._share_count == 0 or ip % self._share_count == self._share_index


cdef object _offer_counts(Engine self, object subkey, object lease, bytes key):
    """The subscriber a new offer to ``key`` counts against: ``subkey`` (from
    ``_may_offer``) unless the client's own binding ``lease`` already does (a bound client
    asking again takes nothing more)."""
    if (subkey is not None and lease is not None and lease.client_key == key
            and _lease_sub(self, lease) == subkey):
        return None
    return subkey


cdef str _may_bind(Engine self, Exchange ex, _SubnetInfo sel):
    """May the client be bound (a REQUEST about to bind, ``sel`` its subnet)?"""
    # Kea's limits hook NAKs a REQUEST whose allocation it refuses. A renewal without
    # option 82 keeps its stored subscriber and never adds to a count: not refused.
    if self._sub_limit and _sub_full(self, _msg_sub(self, ex.msg, sel.id), ex.key, False):
        return "subscriber-limit"
    return None


cdef object _decline_sub(Engine self, Message msg, object lease):
    """The subscriber a DECLINE of ``lease`` counts against, or None. The circuit (or
    remote id) is the one stored with the binding: a DECLINE is broadcast through the
    relay, but the binding's own record is the surer."""
    sub = _rai_sub(lease.relay_info, self._sub_code)
    if sub is not None:
        return (self._link_of.get(lease.subnet_id, lease.subnet_id), sub)
    return _msg_sub(self, msg, lease.subnet_id)


cdef str _may_decline(Engine self, Exchange ex, object lease):
    """May the client's DECLINE of its binding ``lease`` be honoured?

    A DECLINE takes an address out of service for the whole probation period on the
    client's word alone, so a client (or every client behind one circuit) may do it at most
    decline-limit times per decline-window, and at most decline-max-fraction of a pool may
    be set aside at once."""
    cdef tuple found
    cdef double now = ex.now
    key = ex.key
    if self._decline_limit:
        subkey = _decline_sub(self, ex.msg, lease)
        if _decline_over(self, self._decline_by_client, key, now) or (
                subkey is not None and _decline_over(self, self._decline_by_sub, subkey,
                                                     now)):
            return "decline-limit"
    if _pool_cap_reached(self, lease.ip):
        return "decline-pool-cap"
    return None


cdef bint _pool_cap_reached(Engine self, uint32_t ip):
    """Would declining ``ip`` put more than decline-max-fraction of its pool on probation?
    (A DECLINE's rule, and ping-check's: an address answering an echo is set aside only
    within the same cap, so a host answering for the whole pool cannot empty it.)"""
    cdef tuple found
    if self._decline_fraction >= 1.0:
        return False
    found = _bitmap_for(self, ip)
    if found is None:
        return False
    return (<dict>self._pool_declined).get((<PoolBitmap>found[0])._first, 0) + 1 > \
        <Py_ssize_t>(self._decline_fraction * (<PoolBitmap>found[0])._size)


cdef _on_decline(Engine self, Exchange ex, object lease):
    """A DECLINE ``_may_decline`` allowed is honoured: count it in the windows."""
    if self._decline_limit:
        _decline_note(self, self._decline_by_client, ex.key, ex.now)
        subkey = _decline_sub(self, ex.msg, lease)
        if subkey is not None:
            _decline_note(self, self._decline_by_sub, subkey, ex.now)


cdef _on_record(Engine self, object old, object new):
    """A record changes from ``old`` to ``new`` (either may be None): the counts the
    defences keep follow (subscriber leases, declined leases per pool)."""
    if self._sub_limit:
        _count(self, old, new)
    if self._decline_fraction < 1.0:
        was = old is not None and old.state == ST_DECLINED
        now_declined = new is not None and new.state == ST_DECLINED
        if was != now_declined:
            _pool_declined_add(self, (old if was else new).ip, -1 if was else 1)


cdef _on_bound(Engine self, object ipo, object at_ip, object rai, _SubnetInfo info):
    """``_on_record`` for the new DEFAULT binding of ``ipo`` made by ``_bind``, from what
    it is made of (no lease object read back). ``at_ip`` is the record at ``ipo`` before,
    if read (``_UNREAD`` if not); a previous binding the bind ended is at another address
    and was followed already."""
    if self._sub_limit:
        # _lease_sub of a DEFAULT lease: its subnet's link and its option 82's sub-option.
        sub = _rai_sub(rai, self._sub_code)
        _count_keys(self,
                    _lease_sub(self, self._sget(ipo) if at_ip is _UNREAD else at_ip),
                    None if sub is None else (self._link_of.get(info.id, info.id), sub))


cdef _on_reclaim(Engine self, double now):
    """The timer (``reclaim``): forget clients and circuits whose decline window has ended
    (at most once a window), so the tables hold only recent decliners."""
    if self._decline_limit and now >= self._decline_sweep_at:
        self._decline_sweep_at = now + self._decline_window
        for table in (self._decline_by_client, self._decline_by_sub):
            stale = [k for k, e in (<dict>table).items()
                     if now >= <double>(<list>e)[0] + self._decline_window]
            for k in stale:
                del (<dict>table)[k]


# ------------------------------------------------------------------------ the defences


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


cdef _recount(Engine self):
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
                k = _lease_sub(self, lease)
                if k is not None:
                    subs[k] = subs.get(k, 0) + 1
            elif st == ST_DECLINED and self._decline_fraction < 1.0:
                found = _bitmap_for(self, lease.ip)
                if found is not None:
                    first = (<PoolBitmap>found[0])._first
                    declined[first] = declined.get(first, 0) + 1
    self._sub_leases = subs
    self._pool_declined = declined


cdef object _lease_sub(Engine self, object lease):
    """The subscriber a lease counts against: (link id, subscriber id) for a bound lease
    whose stored option 82 names one, else None."""
    if lease is None or lease.state != ST_DEFAULT:
        return None
    sid = _rai_sub(lease.relay_info, self._sub_code)
    if sid is None:
        return None
    return (self._link_of.get(lease.subnet_id, lease.subnet_id), sid)


cdef object _msg_sub(Engine self, Message msg, int subnet_id):
    """The subscriber a request comes from (see ``_lease_sub``), or None."""
    cdef const unsigned char *p
    cdef Py_ssize_t n = msg._sub_view(self._sub_code, &p)
    if n <= 0:
        return None
    return (self._link_of.get(subnet_id, subnet_id),
            PyBytes_FromStringAndSize(<const char *>p, n))


cdef _count(Engine self, object old, object new):
    """Follow one record change (``old`` -> ``new``, either may be None) in the
    subscriber counts (called only when subscriber-lease-limit is set)."""
    _count_keys(self, _lease_sub(self, old), _lease_sub(self, new))


cdef _count_keys(Engine self, object a, object b):
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


cdef bint _sub_full(Engine self, object subkey, bytes key, bint offers):
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
                and _lease_sub(self, mine) == subkey)


cdef _unsub(Engine self, _Offer offer):
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


cdef bint _decline_over(Engine self, dict table, object k, double now):
    """True when ``k`` has used up its decline-limit in the current window."""
    e = table.get(k)
    if e is None or now >= <double>(<list>e)[0] + self._decline_window:
        return False
    return <Py_ssize_t>(<list>e)[1] >= self._decline_limit


cdef _decline_note(Engine self, dict table, object k, double now):
    """Count one honoured DECLINE for ``k`` (a fixed window opened by its first)."""
    e = table.get(k)
    if e is None or now >= <double>(<list>e)[0] + self._decline_window:
        table[k] = [now, 1]
    else:
        (<list>e)[1] = (<list>e)[1] + 1


cdef _pool_declined_add(Engine self, uint32_t ip, Py_ssize_t d):
    """Add ``d`` to the declined count of ``ip``'s pool (none outside every pool)."""
    cdef tuple found = _bitmap_for(self, ip)
    if found is None:
        return
    first = (<PoolBitmap>found[0])._first
    n = self._pool_declined.get(first, 0) + d
    if n > 0:
        self._pool_declined[first] = n
    else:
        self._pool_declined.pop(first, None)
