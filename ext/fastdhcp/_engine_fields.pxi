# fastdhcp._engine, part: fixed fields. Included by _engine.pyx (one C module: the
# functions below are direct C calls; Cython allows no include inside a class body,
# so the Engine's methods of this concern are functions taking the Engine first).
#
# The BOOTP header's siaddr, sname and file in OFFER and ACK (RFC 2131 table 3), from Kea's
# next-server, server-hostname and boot-file-name. Kea's order (its setFixedFields, observed on
# Kea 2.2): start from the subnet's values (which inherit the global ones), then each field
# from the first class, in the packet's assignment order, that sets it, then the reservation's
# over both: reservation > first class > subnet > global. Unlike options, a class beats the
# subnet here. Every level's values are encoded once per configuration (_apply); a packet
# whose levels set none costs one flag test and one pointer read.


@cython.final
cdef class _Fixed:
    """siaddr / sname / file of one level, or of a reply (0 / None = not set)."""

    def __repr__(self):
        return f"_Fixed(siaddr={self.siaddr:#x}, sname={self.sname!r}, file={self.file!r})"


cdef _Fixed _fixed_of(object fields):
    """A config ``FixedFields`` as the engine's _Fixed, or None when it sets nothing."""
    if not fields:
        return None
    cdef _Fixed f = _Fixed.__new__(_Fixed)
    f.siaddr = fields.next_server or 0
    f.sname = fields.server_hostname.encode("utf-8") if fields.server_hostname else None
    f.file = fields.boot_file_name.encode("utf-8") if fields.boot_file_name else None
    return f


cdef tuple _fixed_by_class(object config):
    """Class id -> its _Fixed (None where the class sets no field); None when no class
    sets any (then a packet's classes are not even looked at)."""
    ids = config.class_ids
    cdef list out = [None] * (max(ids.values()) + 1 if ids else 0)
    cdef bint any_set = False
    for c in config.client_classes:
        f = _fixed_of(c.fixed)
        if f is not None:
            out[c.id] = f
            any_set = True
    return tuple(out) if any_set else None


cdef _Fixed _res_fixed(Engine self, object res):
    """The reservation's own level (None: it sets nothing), encoded once per reservation
    object: kept with the object itself, so a reused id() can never answer for another."""
    cdef tuple hit = self._caches.fixed.get(id(res))
    if hit is not None and hit[0] is res:
        return <_Fixed>hit[1]
    f = _fixed_of(res.fixed)
    if len(self._caches.fixed) >= CACHE_MAX:
        self._caches.fixed.clear()
    self._caches.fixed[id(res)] = (res, f)
    return f


cdef inline _Fixed _fixed_fields(Engine self, _SubnetInfo info, object res, object classes):
    """The siaddr / sname / file a reply carries, Kea's precedence (the part's header):
    ``info``'s values (subnet over global), each field from the first class of ``classes``
    (class ids, in assignment order) that sets it, then ``res``'s (a Reservation or None).
    None when nothing is set. The result may be the Engine's scratch _Fixed, valid until
    the next call: read it at once (``_reply`` does)."""
    if not self._fx_any:
        return None  # no level sets a field: one flag test per reply, no call
    cdef _Fixed rf = None
    if res is not None and self._fx_res:
        rf = _res_fixed(self, res)
    if self._fx_class is None and rf is None:
        return info.fixed  # no class or reservation sets a field: the subnet's
    return _fixed_merge(self, info.fixed, rf, classes)


cdef _Fixed _fixed_merge(Engine self, _Fixed base, _Fixed rf, object classes):
    """``_fixed_fields`` when a class or the reservation sets a field: merged into the
    Engine's scratch _Fixed (or None if nothing ends up set)."""
    cdef tuple by_class = self._fx_class
    cdef _Fixed out = self._fx_scratch
    cdef _Fixed f
    cdef Py_ssize_t n = len(by_class) if by_class is not None else 0
    cdef Py_ssize_t c
    cdef bint got_si = False, got_sn = False, got_fi = False
    if base is not None:
        out.siaddr, out.sname, out.file = base.siaddr, base.sname, base.file
    else:
        out.siaddr, out.sname, out.file = 0, None, None
    if n:
        for cls in classes:
            c = cls
            if c < 0 or c >= n:
                continue
            o = by_class[c]
            if o is None:
                continue
            f = <_Fixed>o
            if not got_si and f.siaddr:
                out.siaddr = f.siaddr
                got_si = True
            if not got_sn and f.sname is not None:
                out.sname = f.sname
                got_sn = True
            if not got_fi and f.file is not None:
                out.file = f.file
                got_fi = True
            if got_si and got_sn and got_fi:
                break
    if rf is not None:
        if rf.siaddr:
            out.siaddr = rf.siaddr
        if rf.sname is not None:
            out.sname = rf.sname
        if rf.file is not None:
            out.file = rf.file
    if not out.siaddr and out.sname is None and out.file is None:
        return None
    return out


def fixed_fields(Engine engine, subnet_id, res, classes):
    """``(siaddr, sname, file)`` a reply in subnet ``subnet_id`` would carry for reservation
    ``res`` (or None) and the class ids ``classes`` in assignment order: the precedence
    table driven directly (tests, audits). sname/file are bytes or None."""
    info = engine._infos.get(subnet_id)
    if info is None:
        raise KeyError(f"no subnet {subnet_id}")
    cdef _Fixed f = _fixed_fields(engine, <_SubnetInfo>info, res, tuple(classes))
    if f is None:
        return (0, None, None)
    return (f.siaddr, f.sname, f.file)
