# fastdhcp._engine, part: the RFC 2131 message steps. Included by _engine.pyx (one C module: the
# functions below are direct C calls; Cython allows no include inside a class body,
# so the Engine's methods of this concern are functions taking the Engine first).
#
# One function per message type handled (RFC 2131 4.3): DISCOVER (4.3.1, an offer commits
# nothing), REQUEST in its four client states (4.3.2) and the binding it stages, RELEASE
# (4.3.4), DECLINE (4.3.3) and INFORM (4.3.5).


cdef Decision _discover(Engine self, Exchange ex):
    """RFC 2131 4.3.1: choose an address and hold it as an offer; commit nothing."""
    cdef Message msg = ex.msg
    link = ex.link
    cdef double now = ex.now
    cdef bytes key = ex.key
    cdef bytes chaddr = ex.chaddr
    cid = ex.cid
    cdef _SubnetInfo sel = _select(self, msg, link)
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
    if self._cls.active:
        group = _guarded_group(self, ex, sel)
        if group is None:
            return _drop("no-subnet")
        sel = <_SubnetInfo>group[0]
    res = None
    if sel.has_res or self._hosts_any:
        if chaddr is None:
            chaddr = PyBytes_FromStringAndSize(<const char *>msg._buf + OFF_CHADDR,
                                               msg._buf[OFF_HLEN])
        res = _reservation(self, group, chaddr, cid, msg)
    if self._cls.active and _classify_known(self, ex, res, group):
        return _drop("class-drop")
    if res is not None:
        res_ip = res.ip
    o = self._offers.get(key)
    if o is not None:
        offer = <_Offer>o
        if offer.expires > now:
            found = _bitmap_for(self, offer.ip)
            if found is not None:
                oinfo = <_SubnetInfo>found[1]
            elif offer.ip in self._reserved:
                oinfo = <_SubnetInfo>self._reserved[offer.ip][1]
            elif offer.ip == res_ip and offer.ip == ex.res_api_ip:
                oinfo = ex.res_api_info  # its API reservation, outside every pool
            else:
                oinfo = None
            if (oinfo is not None and _in_group(oinfo, group)
                    and (found is None or offer.ip == res_ip
                         or _pool_allowed(self, _pool_at(self, offer.ip)))):
                # (an offer from a pool the request's classes no longer allow is dropped)
                ip = offer.ip
                info = oinfo
        if not ip:
            _drop_offer(self, key, offer)
    subkey = None
    if not ip:
        # A DISCOVER refused by a defence gets no OFFER: silence, counted. No NAK exists
        # for a DISCOVER; the client retries with backoff.
        why = _may_offer(self, ex, sel)
        if why is not None:
            return _drop(why)
        subkey = ex.offer_sub
    cdef bint alone = True
    lease = None
    if not ip:
        lease = self._sget_by_client(key)
        if lease is not None and lease.client_key == key:
            st = lease.state
            if st == ST_DEFAULT:
                alone = False
                info = _claim(self, lease.ip, key, res_ip, group, now, _UNREAD)
                if info is not None:
                    ip = lease.ip
                    alone = True
                    how = _HOW_BINDING
            elif st != ST_DECLINED:
                hint = lease.ip
    if not ip and res_ip:
        info = _claim(self, res_ip, key, res_ip, group, now, _UNREAD)
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
            info = _claim(self, req, key, res_ip, group, now, _UNREAD)
            if info is not None:
                ip = req
                how = "requested"
    if not ip:
        found = _allocate(self, group, hint)
        ip = found[0]
        info = <_SubnetInfo>found[1]
        if not ip:
            sel.counts.alloc_fail += 1
            if ex.no_pool:
                sel.counts.no_pools += 1
                return _drop("no-allowed-pool")
            return _drop("pool-exhausted")
        how = "previous" if ip == hint else "allocated"
    if info.rapid_commit and _rapid_wanted(self, ex, ip, info, how):
        return _rapid_ack(self, ex, ip, info, res if res_ip == ip or not res_ip else None)
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
            _heap_push(self, <_Offer>fresh)
    else:
        _hold(self, key, ip, expires, alone, _offer_counts(self, subkey, lease, key),
              how is _HOW_BINDING)
    if self._cls.active:
        _classify_required(self, ex, info, _pool_of(self, ip))
    cdef int64_t lt = _lease_time(self, info, msg._opt_u32(OPT_LEASE_TIME, -1))
    opts = _reply_options(self, ex, res if res is not None and (res_ip == ip or not res_ip)
                          else None, info, ip, lt)
    cdef uint32_t sid = _server_id_for(self, msg, fd_load_be32(msg._buf + OFF_GIADDR),
                                       _link_address(link))
    fx = _fixed_fields(self, info, res if res is not None and (res_ip == ip or not res_ip)
                       else None, ex.class_order)
    opts = [_sid_option(self, sid), *opts]
    if self._ddns is not None:
        opts = _fqdn_options(opts, _fqdn_decision(self, msg, ip))
    else:
        opts = _plain_names(self, opts, msg, ip, res if res is not None
                            and (res_ip == ip or not res_ip) else None)
    d = _reply(self, msg, OUT_OFFER, OFFER, 0, ip, opts, None, how, fx)
    if info.ping_check:
        _probe_mark(self, ex, <Decision>d, ip, info, how)
    return d


cdef Decision _request(Engine self, Exchange ex):
    """RFC 2131 4.3.2: SELECTING, INIT-REBOOT, RENEWING and REBINDING."""
    cdef Message msg = ex.msg
    link = ex.link
    cdef double now = ex.now
    cdef bytes key = ex.key
    cdef bytes chaddr = ex.chaddr
    cid = ex.cid
    cdef const unsigned char *b = msg._buf
    cdef uint32_t giaddr = fd_load_be32(b + OFF_GIADDR)
    cdef uint32_t ciaddr = fd_load_be32(b + OFF_CIADDR)
    cdef uint32_t link_address = _link_address(link)
    cdef uint32_t sid = _server_id_for(self, msg, giaddr, link_address)
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
                _drop_offer(self, key, <_Offer>o)
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
    sel = _select(self, msg, link)
    if sel is None:
        return _drop("no-subnet")
    cdef tuple group = sel.group
    if self._cls.active:
        group = _guarded_group(self, ex, sel)
        if group is None:
            return _drop("no-subnet")
        sel = <_SubnetInfo>group[0]
    res = (_reservation(self, group, chaddr, cid, msg) if sel.has_res or self._hosts_any
           else None)
    if self._cls.active and _classify_known(self, ex, res, group):
        return _drop("class-drop")
    if res is not None:
        res_ip = res.ip

    o = self._offers.get(key)
    if o is not None:
        offer = <_Offer>o
        if offer.ip != ip:
            # The client wants something else: our offer is moot.
            _drop_offer(self, key, offer)
            offer = None

    known = _UNREAD
    if state != RS_SELECTING:
        if state == RS_INIT_REBOOT:
            for i in group:
                if i.net_first <= ip <= i.net_last:
                    break
            else:
                return _nak(self, msg, sid, "wrong-network")
        lease = self._sget(ip)
        known = lease  # nothing is staged before _claim and _bind: reused there
        if lease is not None and lease.client_key == key:
            if lease.state == ST_DECLINED:
                return _nak(self, msg, sid, "declined")
        elif lease is not None and _is_active(lease):
            return _nak(self, msg, sid, "not-yours")
        elif res_ip != ip and offer is None:
            # No record of this client at this address.
            mine = self._sget_by_client(key)
            known = bool(res_ip) or (mine is not None and mine.client_key == key
                                     and mine.state == ST_DEFAULT)
            if known or sel.authoritative:
                return _nak(self, msg, sid, "not-yours" if known else "unknown-client")
            return _drop("unknown-client")
        if res_ip and res_ip != ip:
            return _nak(self, msg, sid, "reserved-elsewhere")
    why = _may_bind(self, ex, sel)
    if why is not None:
        # A REQUEST refused by a defence gets a DHCPNAK (the client must not keep using
        # an address the server will not bind), counted with the defence's reason.
        return _nak(self, msg, sid, why)
    info = _claim(self, ip, key, res_ip, group, now, known)
    if info is None:
        return _nak(self, msg, sid, "address-unavailable")
    return _bind(self, ex, ip, info, res if res_ip == ip or not res_ip else None, sid, state)


cdef Decision _bind(Engine self, Exchange ex, uint32_t ip, _SubnetInfo info, object res,
                    uint32_t sid, RequestState state):
    """Stage the binding of ``ip`` to ``key`` and build the ACK that waits for it.
    ``ex.claim_read`` is the store's record for ``ip`` if already read (see ``_claim``),
    else ``_UNREAD``."""
    cdef Message msg = ex.msg
    cdef double now = ex.now
    cdef bytes key = ex.key
    cdef bytes chaddr = ex.chaddr
    at_ip = ex.claim_read
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
        ended = lease_fqdn(_new_lease(prev.ip, key, prev.hw_address, prev.subnet_id,
                                      ST_RELEASED, t, t, prev.hostname, prev.relay_info),
                           prev.fqdn_fwd, prev.fqdn_rev)
        _on_record(self, prev, ended)
        self._sstage(ended)
        _settle(self, prev.ip)
    if self._cls.active:
        _classify_required(self, ex, info, _pool_of(self, ip))
    cdef int64_t lt = _lease_time(self, info, msg._opt_u32(OPT_LEASE_TIME, -1))
    cdef int64_t expires
    if lt == INFINITE:
        expires = INFINITE
    else:
        # Rounded up: the binding never ends before the client's idea of its end.
        expires = t + lt + (1 if <double>t != now else 0)
    host = msg._opt_bytes(OPT_HOSTNAME)
    rai = msg._opt_bytes(OPT_RELAY_AGENT)
    nd = _fqdn_decision(self, msg, ip) if self._ddns is not None else None
    if nd is not None and nd.fqdn is not None:
        hostname = nd.fqdn.to_text()  # the FQDN, as Kea's lease records hold it
    elif host:
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
    if nd is not None:
        lease_fqdn(lease, nd.forward, nd.reverse)
    if not renewal and (prev is None or prev.ip != ip or prev.client_key != key
                        or prev.state != ST_DEFAULT):
        info.counts.assigned += 1  # a new binding, not a renewal of this one
    _on_bound(self, ipo, at_ip, rai, info)
    if self._ddns is not None:
        _fqdn_note(self, lease, prev, ip, key)
    self._sstage(lease)
    o = self._offers.pop(key, None)
    if o is not None:
        _unsub(self, <_Offer>o)
        oip = ipo if (<_Offer>o).ip == ip else (<_Offer>o).ip
        holder = self._offered.get(oip)
        if holder is not None and (holder is key or holder == key):
            del self._offered[oip]
    # a new list: _reply_options may answer with a cached one
    opts = [_sid_option(self, sid), *_reply_options(self, ex, res, info, ip, lt)]
    if nd is not None:
        opts = _fqdn_options(opts, nd)
    elif self._ddns is None:
        opts = _plain_names(self, opts, msg, ip, res)
    fx = _fixed_fields(self, info, res, ex.class_order)
    if ex.rapid:
        return _rapid_reply(self, ex, ip, info, opts, lease, fx)
    return _reply(self, msg, OUT_ACK, ACK, fd_load_be32(msg._buf + OFF_CIADDR), ip, opts,
                  lease, <str>_REQUEST_STATE_NAMES[<int>state], fx)


cdef Decision _release(Engine self, Exchange ex):
    """RFC 2131 4.3.4: end the client's binding; the record keeps affinity."""
    cdef Message msg = ex.msg
    link = ex.link
    cdef double now = ex.now
    cdef bytes key = ex.key
    if not _ours(self, msg, link):
        return _drop("other-server")
    o = self._offers.get(key)
    if o is not None:
        _drop_offer(self, key, <_Offer>o)
    cdef uint32_t ip = fd_load_be32(msg._buf + OFF_CIADDR)
    lease = self._sget(ip) if ip else None
    if lease is None or lease.client_key != key or lease.state != ST_DEFAULT:
        return _drop("release-unknown")
    cdef int64_t t = <int64_t>now
    ended = lease_fqdn(_new_lease(ip, key, lease.hw_address, lease.subnet_id, ST_RELEASED,
                                  t, t, lease.hostname, lease.relay_info),
                       lease.fqdn_fwd, lease.fqdn_rev)  # its names go (ddns.feed)
    _on_record(self, lease, ended)
    self._sstage(ended)
    _settle(self, ip)
    return _silent("released")


cdef Decision _decline(Engine self, Exchange ex):
    """RFC 2131 4.3.3: set the address aside for decline-probation-period."""
    cdef Message msg = ex.msg
    link = ex.link
    cdef double now = ex.now
    cdef bytes key = ex.key
    if not _ours(self, msg, link):
        return _drop("other-server")
    cdef uint32_t ip = <uint32_t>msg._opt_u32(OPT_REQUESTED_IP, 0)
    lease = self._sget(ip) if ip else None
    if lease is None or lease.client_key != key or lease.state != ST_DEFAULT:
        return _drop("decline-unknown")
    why = _may_decline(self, ex, lease)
    if why is not None:
        # Ignored as if never received (counted): the binding stays as it was and
        # nothing is set aside; the client's retries are bounded by the same defence.
        return _drop(why)
    _on_decline(self, ex, lease)
    info = self._infos.get(lease.subnet_id)
    cdef int64_t probation = (<_SubnetInfo>info).probation if info is not None else 86400
    cdef int64_t t = <int64_t>now
    declined = lease_fqdn(_new_lease(ip, key, lease.hw_address, lease.subnet_id, ST_DECLINED,
                                     t, t + probation, lease.hostname, lease.relay_info),
                          lease.fqdn_fwd, lease.fqdn_rev)
    _on_record(self, lease, declined)
    self._sstage(declined)
    o = self._offers.get(key)
    if o is not None:
        _drop_offer(self, key, <_Offer>o)
    _settle(self, ip)
    cdef SubnetCounters c = self._counts_for(lease.subnet_id)
    c.declined += 1
    return _silent("declined")


cdef Decision _inform(Engine self, Exchange ex):
    """RFC 2131 4.3.5: configuration only; no lease, no yiaddr, no lease-time options."""
    cdef Message msg = ex.msg
    link = ex.link
    cdef bytes key = ex.key
    cdef bytes chaddr = ex.chaddr
    cid = ex.cid
    cdef _SubnetInfo sel = _select(self, msg, link)
    cdef _SubnetInfo info, i
    cdef uint32_t ciaddr = fd_load_be32(msg._buf + OFF_CIADDR)
    if sel is None:
        return _drop("no-subnet")
    cdef tuple group = sel.group
    if self._cls.active:
        group = _guarded_group(self, ex, sel)
        if group is None:
            return _drop("no-subnet")
        sel = <_SubnetInfo>group[0]
    res = (_reservation(self, group, chaddr, cid, msg) if sel.has_res or self._hosts_any
           else None)
    if self._cls.active and _classify_known(self, ex, res, group):
        return _drop("class-drop")
    info = sel
    if ciaddr:
        for i in group:
            if i.net_first <= ciaddr <= i.net_last:
                info = i
                break
    if self._cls.active:
        _classify_required(self, ex, info, None)
    opts = _reply_options(self, ex, res, info, 0, -1)
    cdef uint32_t sid = _server_id_for(self, msg, fd_load_be32(msg._buf + OFF_GIADDR),
                                       _link_address(link))
    # Kea sets the fixed fields in an INFORM's ACK too (siaddr/file for a PXE client's INFORM)
    return _reply(self, msg, OUT_ACK, ACK, ciaddr, 0, [_sid_option(self, sid), *opts], None,
                  "inform", _fixed_fields(self, info, res, ex.class_order))
