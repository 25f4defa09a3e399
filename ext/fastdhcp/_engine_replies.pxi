# fastdhcp._engine, part: replies. Included by _engine.pyx (one C module: the
# functions below are direct C calls; Cython allows no include inside a class body,
# so the Engine's methods of this concern are functions taking the Engine first).
#
# Building a reply: the RFC 2131 4.1 destination (the one ``_destination``, a C struct, and
# ``reply_destination`` over it for tests), option filtering by the parameter request list
# (cached per PRL), the server identifier, and the reply itself into the reused buffer.


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


cdef list _options(Engine self, object src, dict options, Message msg, int64_t lease_time,
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
    out = _options_slow(self, src, options, pkey, lease_time, info)
    if src is info:
        info.opt_prl = pkey
        info.opt_lt = lease_time
        info.opt_list = out
    return out


cdef list _options_slow(Engine self, object src, dict options, bytes pkey, int64_t lease_time,
                           _SubnetInfo info):
    """``_options`` through the shared cache keyed by (source, PRL, lease time)."""
    ckey = (id(src), pkey, lease_time)
    cached = self._caches.opt.get(ckey)
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
    if len(self._caches.opt) >= CACHE_MAX:
        self._caches.opt.clear()
    self._caches.opt[ckey] = out
    return out


cdef uint32_t _server_id_for(Engine self, Message msg, uint32_t giaddr, uint32_t link_address):
    """RFC 5107 override from a relay, else the configured id, else the receiving
    address."""
    cdef uint32_t o
    if giaddr:
        o = msg._sub_u32(SUB_SERVER_ID_OVERRIDE)
        if o:
            return o
    return self._server_id if self._server_id else link_address


cdef tuple _sid_option(Engine self, uint32_t sid):
    if sid == self._caches.sid_last and self._caches.sid_last_opt is not None:
        return self._caches.sid_last_opt  # one server id per link: no int made, no dict lookup
    opt = self._caches.sid.get(sid)
    if opt is None:
        opt = (54, (<object>sid).to_bytes(4, "big"))
        if len(self._caches.sid) < CACHE_MAX:
            self._caches.sid[sid] = opt
    self._caches.sid_last = sid
    self._caches.sid_last_opt = <tuple>opt
    return <tuple>opt


cdef Decision _reply(Engine self, Message msg, int outcome, int mtype, uint32_t ciaddr,
                        uint32_t yiaddr, list opts, object binding, str reason,
                        _Fixed fx=None):
    cdef const unsigned char *b = msg._buf
    cid = msg._opt_bytes(OPT_CLIENT_ID)
    if cid:
        opts.append((61, cid))  # RFC 6842
    sel = msg._opt_bytes(OPT_SUBNET_SELECTION)
    if sel is not None:
        # RFC 3011 3: an identical copy to any client that sends it, asked for in 55 or not
        opts.append((118, sel))
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
    if fx is None:
        reply = self._builder.reply(msg, mtype, ciaddr, yiaddr, 0, opts, flags, None, None)
    else:  # siaddr / sname / file (_engine_fields.pxi)
        reply = self._builder.reply(msg, mtype, ciaddr, yiaddr, fx.siaddr, opts, flags,
                                    fx.sname, fx.file)
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


cdef bint _relay_info_fits(Engine self, Message msg):
    """Whether a reply can carry this request's option 82 back.

    RFC 3046 2.2 makes the server echo option 82 verbatim, and a reply may not exceed the
    client's maximum message size (57, else 576). When even 53, 54, 51 and 82 alone do not
    fit, no reply is possible: decide that before any state changes (no offer held, no
    binding staged), with the builder itself as the judge.
    """
    try:
        # With sname/file configured somewhere they may be unavailable for overload: judge
        # with both taken (the reply's own fields are not known yet).
        self._builder.build(msg, OFFER, 0, 0, 0,
                            [(54, b"\0\0\0\0"), (51, b"\0\0\0\0"),
                             (82, msg._opt_bytes(OPT_RELAY_AGENT))], -1,
                            b"-" if self._fx_any else None, b"-" if self._fx_any else None)
    except MalformedPacket:
        return False
    return True


cdef Decision _nak(Engine self, Message msg, uint32_t sid, str reason):
    return _reply(self, msg, OUT_NAK, NAK, 0, 0, [_sid_option(self, sid)], None, reason)
