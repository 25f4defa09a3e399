# fastdhcp._engine, part: reservations. Included by _engine.pyx (one C module: the
# functions below are direct C calls; Cython allows no include inside a class body,
# so the Engine's methods of this concern are functions taking the Engine first).
#
# Host reservations: the configuration's (per-subnet dicts, filled by _SubnetInfo) and the
# control channel's (fastdhcp.hosts.HostTable in the lease database, looked up only while it
# holds hosts of the type asked).


cdef object _reservation(Engine self, tuple group, bytes chaddr, object cid, Message msg):
    """The client's reservation on this link (hw-address, client-id, then circuit-id)."""
    cdef _SubnetInfo info
    cdef const unsigned char *p
    cdef Py_ssize_t n = msg._sub_view(SUB_CIRCUIT_ID, &p)
    circuit = PyBytes_FromStringAndSize(<const char *>p, n) if n >= 0 else None
    self._ex.res_api_ip = 0
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
        return _api_reservation(self, group, chaddr, cid, circuit)
    return None


cdef object _api_reservation(Engine self, tuple group, bytes chaddr, object cid, object circuit):
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
        r = self._caches.host.get(raw)
        if r is None:
            r = self._hosts.engine_reservation(raw, info.options)
            if len(self._caches.host) >= CACHE_MAX:
                # The option caches key on id(reservation): they all go together.
                self._caches.host.clear()
                self._caches.merged.clear()
                self._caches.opt.clear()
            self._caches.host[raw] = r
        if r.ip and r.ip in self._reserved:
            continue  # its address is a config reservation's (added by a reload since)
        self._ex.res_api_ip = r.ip
        self._ex.res_api_info = info
        return r
    return None


cdef bint _api_reserved(Engine self, uint32_t ip) except -1:
    """Whether a host added through the API reserves ``ip`` (one B-tree search)."""
    if not self._hosts_any:
        return False
    return bool(self._hreserved(ip))


cdef _host_counts(Engine self):
    hosts = self._hosts
    self._hn_hw = hosts.count(HOST_HW_ADDRESS) > 0
    self._hn_cid = hosts.count(HOST_CLIENT_ID) > 0
    self._hn_circuit = hosts.count(HOST_CIRCUIT_ID) > 0
    self._hosts_any = self._hn_hw or self._hn_cid or self._hn_circuit
