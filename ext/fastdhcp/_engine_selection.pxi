# fastdhcp._engine, part: subnet selection. Included by _engine.pyx (one C module: the
# functions below are direct C calls; Cython allows no include inside a class body,
# so the Engine's methods of this concern are functions taking the Engine first).
#
# Which subnet (and so which link) a request belongs to: the SubnetSelector with Kea's order
# of selectors, the engine's one-entry cache in front of it for relayed traffic (``_select``),
# and whether a request addressed to a server is addressed to us (``_ours``).


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


cdef inline bint _in_group(_SubnetInfo info, tuple group):
    cdef object g
    for g in group:
        if g is info:
            return True
    return False


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


cdef _SubnetInfo _select(Engine self, Message msg, object link):
    cdef const unsigned char *b = msg._buf
    cdef uint32_t subnet_selection = <uint32_t>msg._opt_u32(OPT_SUBNET_SELECTION, 0)
    cdef uint32_t link_selection = msg._sub_u32(SUB_LINK_SELECTION)
    cdef uint32_t giaddr = fd_load_be32(b + OFF_GIADDR)
    cdef bint by_relay = giaddr != 0 and not subnet_selection and not link_selection
    cdef _SubnetInfo info
    if by_relay and giaddr == self._caches.sel_giaddr and self._caches.sel_info is not None:
        # Relayed, and no selector option: the subnet depends on giaddr alone, and the
        # selector does not change between reloads (_apply resets this).
        return self._caches.sel_info
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
        self._caches.sel_giaddr = giaddr
        self._caches.sel_info = info
    return info


cdef bint _ours(Engine self, Message msg, object link):
    cdef uint32_t s = <uint32_t>msg._opt_u32(OPT_SERVER_ID, 0)
    cdef uint32_t link_address = _link_address(link)
    return (not s or s == link_address or s == self._server_id
            or s == _server_id_for(self, msg, fd_load_be32(msg._buf + OFF_GIADDR),
                                   link_address))
