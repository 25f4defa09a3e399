# fastdhcp._engine, part: client classes. Included by _engine.pyx (one C module: the
# functions below are direct C calls; Cython allows no include inside a class body,
# so the Engine's methods of this concern are functions taking the Engine first).
#
# Kea's classification of one packet (docs/classification.md, "Order and precedence"): the
# classes assigned in Kea's order into the Exchange's class set and order list, the guards of
# subnets and pools, required classes, and what the classes give the reply: option-data below
# the subnet and above global, and the first class's valid-lifetime. Nothing here runs when
# the configuration has no class, no guard and no required class (``_Classes.active``).

from fastdhcp._classify cimport (ClassifyLink, EVAL_TRUE, evaluate)
from fastdhcp._hascope cimport scope_index

cdef enum:
    # Fixed ids of the built-ins (fastdhcp.config.BUILTIN_CLASSES order).
    ID_ALL = 0
    ID_KNOWN = 1
    ID_UNKNOWN = 2
    # Kea's name prefix of the option 60 class, and its length.
    VENDOR_PREFIX_LEN = 13


@cython.final
cdef class _PoolInfo:
    """One configured pool as the engine uses it: bitmap, subnet, guard, required classes and
    own options (made by ``Engine._apply``)."""


@cython.final
cdef class _ClassDef:
    """One ``[[client-classes]]`` entry, ready to evaluate and apply per packet."""


@cython.final
cdef class _Classes:
    """The configuration's classes ready per packet: evaluation lists per pass, the option 60
    classes by content, definitions by id (made by ``Engine._apply`` with ``_make_classes``).
    """


cdef tuple _ids_of(dict ids, object names):
    """The ids of ``names`` in the engine's class set, giving a new id to a name no class
    defines (a guard naming an undefined class: nobody is in it, as Kea accepts)."""
    cdef list out = []
    for n in names:
        i = ids.get(n)
        if i is None:
            i = ids[n] = len(ids)
        out.append(i)
    return tuple(out)


cdef _Classes _make_classes(object config):
    cdef _Classes c = _Classes.__new__(_Classes)
    cdef _ClassDef d
    cdef dict ids = dict(config.class_ids)
    classes = tuple(config.client_classes)
    active = bool(classes)
    for s in config.subnets:
        active = active or bool(s.client_classes) or bool(s.required_classes)
        _ids_of(ids, s.client_classes)
        _ids_of(ids, s.required_classes)
        for p in s.pools:
            active = active or bool(p.client_classes) or bool(p.required_classes)
            _ids_of(ids, p.client_classes)
            _ids_of(ids, p.required_classes)
        for r in s.reservations:
            _ids_of(ids, r.client_classes)
    c.active = active
    c.ids = ids
    c.capacity = max(len(ids), 4)
    c.defs = [None] * c.capacity
    c.pass1 = []
    c.pass2 = []
    c.drop = -1
    c.any_options = False
    c.any_valid = False
    for cc in classes:
        d = _ClassDef.__new__(_ClassDef)
        d.id = cc.id
        d.name = cc.name
        d.cls = cc
        d.prog = cc.program
        d.options = dict(cc.options)
        d.has_valid = cc.valid_lifetime is not None
        if d.has_valid:
            # Kea's class triplet: min and max default to the class's valid-lifetime.
            d.valid = cc.valid_lifetime
            d.min_valid = (cc.min_valid_lifetime if cc.min_valid_lifetime is not None
                           else cc.valid_lifetime)
            d.max_valid = (cc.max_valid_lifetime if cc.max_valid_lifetime is not None
                           else cc.valid_lifetime)
        c.defs[d.id] = d
        c.any_options = c.any_options or bool(d.options)
        c.any_valid = c.any_valid or d.has_valid
        if cc.name == "DROP":
            c.drop = d.id
        if d.prog is not None and not cc.only_if_required:
            (c.pass2 if cc.depends_on_known else c.pass1).append(d)
    c.vendor = {name[VENDOR_PREFIX_LEN:].encode("utf-8", "surrogateescape"): i
                for name, i in ids.items() if name.startswith("VENDOR_CLASS_")}
    c.ha = _ha_class_ids(config, ids)
    return c


cdef tuple _ha_class_ids(object config, dict ids):
    """Kea's HA classes: a packet in peer X's scope is in ``HA_X`` (kea-ha.md section 5),
    so that pools can be split per server. Per scope index (the hash's server index, the
    primary first; hot-standby has one scope, the primary's), the id of ``HA_<name>`` when
    some guard or class names it, else -1; () when none is named (nothing per packet)."""
    ha = getattr(config, "high_availability", None)
    if ha is None:
        return ()
    out = tuple(ids.get("HA_" + n, -1) for n in ha.scope_names)
    return out if any(i >= 0 for i in out) else ()


cdef inline bint _allowed(ClassSet cs, tuple guard):
    """Whether a packet in ``cs`` passes ``guard`` (any of its classes; () lets all in)."""
    cdef object g
    if not guard:
        return True
    for g in guard:
        if cs.has(<int>g):
            return True
    return False


cdef inline void _add_class(Exchange ex, int cid):
    if not ex.classes.has(cid):
        ex.classes.set(cid)
        ex.class_order.append(cid)


cdef void _link_for(Engine self, Exchange ex, ClassifyLink *cl):
    """What ``pkt.*`` reads. The engine is not told the datagram's source: ``pkt.src`` is the
    relay (giaddr) for a relayed request, else 0 (docs/classification.md)."""
    name = _link_name(ex.link)
    if name is not ex.iface_name:
        ex.iface_name = name
        ex.iface = (<str>name).encode("utf-8", "surrogateescape") if name else b""
    cl.iface = <const unsigned char *>PyBytes_AS_STRING(ex.iface)
    cl.iface_len = len(ex.iface)
    cl.src = fd_load_be32(ex.msg._buf + OFF_GIADDR)
    cl.dst = _link_address(ex.link)
    cl.length = <uint32_t>ex.msg._len


cdef int _run_pass(Engine self, Exchange ex, list defs) except -1:
    """Evaluate ``defs`` in definition order; each sees the classes added before it."""
    cdef ClassifyLink cl
    cdef _ClassDef d
    if not defs:
        return 0
    _link_for(self, ex, &cl)
    for d in defs:
        if evaluate(d.prog, ex.msg, &cl, ex.classes) == EVAL_TRUE:
            _add_class(ex, d.id)
    return 0


cdef int _classify_base(Engine self, Exchange ex) except -1:
    """Start the packet's classes afresh: ALL, then VENDOR_CLASS_<option 60>."""
    cdef const unsigned char *p
    cdef Py_ssize_t n
    ex.classes.clear_all()
    del ex.class_order[:]
    _add_class(ex, ID_ALL)
    if self._cls.ha:
        n = scope_index(ex.msg, len(self._cls.ha))
        if n >= 0 and <int>self._cls.ha[n] >= 0:
            _add_class(ex, <int>self._cls.ha[n])
    if self._cls.vendor:
        n = ex.msg._view(OPT_VENDOR_CLASS, &p)
        if n > 0:
            v = self._cls.vendor.get(PyBytes_FromStringAndSize(<const char *>p, n))
            if v is not None:
                _add_class(ex, <int>v)
    return 0


cdef bint _classify_early(Engine self, Exchange ex) except -1:
    """Kea's steps 1-5: ALL, VENDOR_CLASS_, pass 1. True when the packet is in DROP."""
    _classify_base(self, ex)
    _run_pass(self, ex, self._cls.pass1)
    return self._cls.drop >= 0 and ex.classes.has(self._cls.drop)


cdef tuple _guarded_group(Engine self, Exchange ex, _SubnetInfo sel):
    """The subnets of ``sel``'s link whose guard the packet passes, ``sel`` first when it
    does; None when none does (Kea: subnet selection failed)."""
    cdef _SubnetInfo i
    if not sel.guarded:
        return sel.group
    out = [i for i in sel.group if _allowed(ex.classes, i.guard)]
    return tuple(out) if out else None


cdef bint _classify_known(Engine self, Exchange ex, object res, tuple group) except -1:
    """Kea's steps 7-8 after the reservation lookup: KNOWN (and the reservation's classes)
    or UNKNOWN, then pass 2. True when the packet is (now) in DROP.

    Reserved classes on a subnet outside a shared network come before pass 1, which is run
    again so that its tests see them (Kea removes and re-evaluates the pass 1 classes)."""
    cdef _Classes c = self._cls
    if res is None:
        _add_class(ex, ID_UNKNOWN)
    else:
        rc = res.client_classes
        if rc and len(group) == 1:
            _classify_base(self, ex)
            for name in rc:
                v = c.ids.get(name)
                if v is not None:
                    _add_class(ex, <int>v)
            _run_pass(self, ex, c.pass1)
            _add_class(ex, ID_KNOWN)
        else:
            _add_class(ex, ID_KNOWN)
            for name in rc:
                v = c.ids.get(name)
                if v is not None:
                    _add_class(ex, <int>v)
    _run_pass(self, ex, c.pass2)
    return c.drop >= 0 and ex.classes.has(c.drop)


cdef _PoolInfo _pool_of(Engine self, uint32_t ip):
    """The pool containing ``ip``, or None."""
    cdef Py_ssize_t at = _pool_at(self, ip) if ip else -1
    return <_PoolInfo>self._pool_pinfos[at] if at >= 0 else None


cdef int _classify_required(Engine self, Exchange ex, _SubnetInfo info,
                            _PoolInfo pool) except -1:
    """Kea's step 10: the subnet's, then the pool's ``require-client-classes``, each
    evaluated now (only-if-required or not); one without a test is not added."""
    cdef ClassifyLink cl
    cdef _ClassDef d
    cdef tuple req = info.required
    if pool is not None and pool.required:
        req = req + pool.required
    if not req:
        return 0
    _link_for(self, ex, &cl)
    for cid in req:
        d = <_ClassDef>self._cls.defs[<int>cid]
        if d is not None and d.prog is not None and not ex.classes.has(<int>cid):
            if evaluate(d.prog, ex.msg, &cl, ex.classes) == EVAL_TRUE:
                _add_class(ex, d.id)
    return 0


cdef int64_t _lease_time(Engine self, _SubnetInfo info, int64_t requested):
    """valid-lifetime, or the client's option 51 clamped to [min, max]: the first of the
    packet's classes (in assignment order) with a valid-lifetime gives the three, else the
    subnet (Kea's getValidLft)."""
    cdef _ClassDef d
    cdef int64_t valid = info.valid, lo = info.min_valid, hi = info.max_valid
    if self._cls.any_valid:
        for cid in self._ex.class_order:
            d = <_ClassDef>self._cls.defs[<int>cid]
            if d is not None and d.has_valid:
                valid = d.valid
                lo = d.min_valid
                hi = d.max_valid
                break
    if requested < 0:
        return valid
    if requested < lo:
        return lo
    if requested > hi:
        return hi
    return requested


cdef list _reply_options(Engine self, Exchange ex, object res, _SubnetInfo info,
                         uint32_t ip, int64_t lt):
    """The reply's configured options (filtered by the PRL, cached): Kea's precedence
    reservation > pool > subnet > classes (assignment order) > global.

    Without class options and pool options this is the subnet's (or the reservation's)
    merged list, as before classes: the no-class path costs nothing more. With them, a
    one-entry cache answers a packet like the last one (same reservation, pool, subnet, lease
    time, PRL and class list: clients of one kind come in runs) without building the keys of
    the shared caches."""
    cdef Message msg = ex.msg
    cdef _Classes c = self._cls
    cdef _Caches ca = self._caches
    cdef _PoolInfo pool = None
    cdef const unsigned char *p
    cdef Py_ssize_t n
    cdef bytes last
    cdef tuple sig = ()
    cdef list out
    cdef dict m
    if c.active:
        pool = _pool_of(self, ip)
        if pool is not None and not pool.options:
            pool = None
    if not c.any_options and pool is None:
        if res is not None:
            return _options(self, res, res.options, msg, lt, info)
        return _options(self, info, info.options, msg, lt, info)
    n = msg._view(OPT_PRL, &p)
    if n < 0:
        n = 0
    last = ca.cls_prl
    if (ca.cls_out is not None and ca.cls_res is res and ca.cls_pool is pool
            and ca.cls_info is info and ca.cls_lt == lt and len(last) == n
            and (n == 0 or memcmp(PyBytes_AS_STRING(last), p, n) == 0)
            and ca.cls_order == ex.class_order):
        return ca.cls_out
    if c.any_options:
        sig = tuple([cid for cid in ex.class_order
                     if c.defs[<int>cid] is not None
                     and (<_ClassDef>c.defs[<int>cid]).options])
    if not sig and pool is None:
        if res is not None:
            out = _options(self, res, res.options, msg, lt, info)
        else:
            out = _options(self, info, info.options, msg, lt, info)
    else:
        m = _merged(self, res, pool, info, sig)
        out = _options(self, m, m, msg, lt, info)
    ca.cls_out = out
    ca.cls_res = res
    ca.cls_pool = pool
    ca.cls_info = info
    ca.cls_lt = lt
    ca.cls_prl = PyBytes_FromStringAndSize(<const char *>p, n)
    ca.cls_order = list(ex.class_order)
    return out


cdef dict _merged(Engine self, object res, _PoolInfo pool, _SubnetInfo info, tuple sig):
    """The option dict of one (reservation, pool, subnet, classes with options) by Kea's
    precedence, made once and kept (its id keys the filtered lists of ``_options``)."""
    cdef _Classes c = self._cls
    mkey = (id(res) if res is not None else 0, id(pool) if pool is not None else 0,
            info.id, sig)
    merged = self._caches.merged.get(mkey)
    if merged is not None:
        return <dict>merged
    cdef dict m = dict(self._config.options)
    for cid in reversed(sig):
        m.update((<_ClassDef>c.defs[<int>cid]).options)
    m.update(info.own_options)
    if pool is not None:
        m.update(pool.options)
    if res is not None:
        m.update(res.own_options)
    if len(self._caches.merged) >= CACHE_MAX:
        # The option cache keys on id(merged dict): both go together.
        self._caches.merged.clear()
        self._caches.opt.clear()
    self._caches.merged[mkey] = m
    return m
