# fastdhcp._engine, part: rapid commit (RFC 4039) and ping-check's side of a DISCOVER.
# Included by _engine.pyx (one C module: the functions below are direct C calls taking the
# Engine first).
#
# Rapid commit: a DISCOVER carrying option 80 (length 0) to a subnet with rapid-commit on is
# bound at once: ``_bind`` stages the binding as for a REQUEST, and the ACK (with option 80)
# is a Decision with ``binding``, so it waits for the same group commit. No offer is held.
#
# Ping-check: the engine never sends or waits. An OFFER of an address that must be checked
# first carries ``Decision.probe`` = the address; its offer is held (so no other client gets
# it) and marked ``probing``. The service probes it off the packet path and reports through
# ``Engine.ping_result``: free -> the held OFFER leaves; in use -> the address is DECLINED for
# probation and the service hands the same DISCOVER to ``handle`` again, which picks another.


cdef bint _needs_probe(Engine self, Exchange ex, uint32_t ip, _SubnetInfo info, str how):
    """Must ``ip``, about to be offered on a subnet with ping-check on, be probed first?

    Not the client's own binding, nor its reservation (both are the client's already); an
    offer held since an earlier DISCOVER only while its probe runs. Otherwise yes, unless the
    record at ``ip`` is this client's and was last seen (issued, its CLTT) less than
    ping-cltt-secs ago: the client itself would answer the echo (Kea's rule)."""
    if how is _HOW_BINDING or how == "reservation":
        return False
    if how == "same-offer":
        o = self._offers.get(ex.key)
        return o is not None and (<_Offer>o).ip == ip and (<_Offer>o).probing
    lease = self._sget(ip)
    if lease is not None and lease.client_key == ex.key and info.ping_cltt > 0:
        if ex.now - <double>lease.issued < <double>info.ping_cltt:
            return False
    return True


cdef _probe_mark(Engine self, Exchange ex, Decision d, uint32_t ip, _SubnetInfo info,
                 str how):
    """Ask for a probe of ``d``, the OFFER of ``ip``, when it needs one (and mark its offer)."""
    if not _needs_probe(self, ex, ip, info, how):
        return
    o = self._offers.get(ex.key)
    if o is not None and (<_Offer>o).ip == ip:
        (<_Offer>o).probing = True
        d.probe = ip


cdef bint _rapid_wanted(Engine self, Exchange ex, uint32_t ip, _SubnetInfo info, str how):
    """Answer this DISCOVER with a rapid-commit ACK? When it carries option 80 (RFC 4039
    sec. 4), the defences would bind it, and no probe must come first (a binding cannot wait
    for an echo: the client gets the usual OFFER, as RFC 4039 lets a server do)."""
    cdef const unsigned char *p
    if ex.msg._view(OPT_RAPID_COMMIT, &p) < 0:
        return False
    if info.ping_check and _needs_probe(self, ex, ip, info, how):
        return False
    return _may_bind(self, ex, info) is None


cdef Decision _rapid_ack(Engine self, Exchange ex, uint32_t ip, _SubnetInfo info, object res):
    """Bind ``ip`` as a REQUEST in SELECTING would and answer with the ACK ``_bind`` makes."""
    ex.rapid = True
    if ex.chaddr is None:  # handle() leaves it unmade for a DISCOVER: the lease records it
        ex.chaddr = PyBytes_FromStringAndSize(<const char *>ex.msg._buf + OFF_CHADDR,
                                              ex.msg._buf[OFF_HLEN])
    # _allocate reads no record: whatever an earlier _claim left there is not ip's.
    ex.claim_read = _UNREAD
    cdef uint32_t sid = _server_id_for(self, ex.msg, fd_load_be32(ex.msg._buf + OFF_GIADDR),
                                       _link_address(ex.link))
    return _bind(self, ex, ip, info, res, sid, RS_SELECTING)


cdef Decision _rapid_reply(Engine self, Exchange ex, uint32_t ip, _SubnetInfo info, list opts,
                           object lease, _Fixed fx):
    """The ACK of a rapid commit: ``_bind``'s (``opts`` its own list, server id first), with
    option 80 (empty, RFC 4039 sec. 4)."""
    info.counts.rapid_commits += 1
    opts.append((OPT_RAPID_COMMIT, b""))
    return _reply(self, ex.msg, OUT_ACK, ACK, 0, ip, opts, lease, "rapid-commit", fx)


cdef bint _ping_result(Engine self, bytes key, object ipo, bint in_use, double now):
    """``Engine.ping_result``: see there."""
    cdef uint32_t ip = ipo
    cdef _Offer offer
    o = self._offers.get(key)
    if o is not None and (<_Offer>o).ip == ip:
        offer = <_Offer>o
        if not in_use:
            offer.probing = False
            return True
        _drop_offer(self, key, offer)
    elif not in_use:
        return False
    if ip in self._offered:
        return False  # held for another client since: its own probe decides
    found = _bitmap_for(self, ip)
    if found is None:
        return False
    old = self._sget(ipo)
    if old is not None and _is_active(old):
        return False  # bound (or declined) since: nothing to set aside
    cdef _SubnetInfo info = <_SubnetInfo>found[1]
    info.counts.ping_conflicts += 1
    if _pool_cap_reached(self, ip):
        return True  # withdrawn, not set aside (decline-max-fraction): probed again if chosen
    cdef int64_t t = <int64_t>now
    # No client declined it: the record names none (Kea clears a declined lease's ids too).
    declined = _new_lease(ipo, b"", b"", info.id, ST_DECLINED, t, t + info.probation, "", b"")
    _on_record(self, old, declined)
    self._sstage(declined)
    _settle(self, ip)
    info.counts.declined += 1
    return True
