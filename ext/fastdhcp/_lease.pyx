"""The lease record, and the one codec of its LMDB record (``fastdhcp.leases`` re-exports
:class:`Lease`; ``fastdhcp.store`` documents the tables).

Record layout (schema version 1, ``fastdhcp.store.SCHEMA_VERSION``): key, the address as 4
bytes big-endian; value, the msgpack array ``[state, expires, issued, subnet_id, client_key,
hw_address, hostname, relay_info]`` with ints in their shortest form, bytes as bin, the
hostname as str (UTF-8, surrogateescape); a lease that owes DNS updates (``fqdn_fwd`` or
``fqdn_rev``, fastdhcp.ddns) has a ninth element, the flags int (1 forward, 2 reverse), so that
its records can be withdrawn on release and expiry. Records without it (every record written
before the flags existed, and every lease without DNS updates) read with both flags False. State comes first so that a scan can tell an active
record from its second byte. Everything that reads or writes a record goes through here: the
store (:func:`encode_record`, :func:`decode_record`), the lease index's start-up walk
(``read_head`` and ``key_ip``, C level) and the statistics' scan (:func:`record_state`).

The codec writes and reads the usual record in C (79 ns to encode a bound lease where msgpack's
``Packer.pack`` of the field tuple took 280; 145 ns to decode one where ``unpackb`` and a call of
Lease took 413) and hands anything else to msgpack, so its bytes are exactly msgpack's for every
value: a field of another type (a bool, a float, a bytearray, None), a record in another form.
"""

cimport cython
from cpython.bool cimport PyBool_Check
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact
from cpython.long cimport PyLong_FromLongLong, PyLong_FromUnsignedLong
from cpython.dict cimport PyDict_SetItem
from cpython.object cimport Py_EQ, Py_NE
from cpython.ref cimport PyObject
from cpython.unicode cimport PyUnicode_CheckExact, PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

from fastdhcp._consts cimport ST_DECLINED, ST_DEFAULT

import msgpack

__all__ = ["Lease", "decode_record", "encode_record", "record_key", "record_state"]

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    ctypedef struct PyTypeObject:
        PyObject* tp_dict
    object PyDescr_NewMember(PyTypeObject* tp, PyMemberDef* member)
    void PyType_Modified(PyTypeObject* tp)

cdef extern from "structmember.h":
    ctypedef struct PyMemberDef:
        const char* name
        int type
        Py_ssize_t offset
        int flags
        const char* doc
    enum:
        T_OBJECT_EX
        READONLY

cdef enum:
    # The longest encoding of an int field (0xcf/0xd3 and 8 bytes).
    INT_MAX_SIZE = 9

cdef tuple _FIELDS = ("ip", "client_key", "hw_address", "subnet_id", "state", "issued",
                      "expires", "hostname", "relay_info", "fqdn_fwd", "fqdn_rev")

#: msgpack as the codec's fallback, set as the layout requires (bin type for bytes, str8).
_packb = msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape").pack
_unpackb = msgpack.unpackb


@cython.final
@cython.no_gc
@cython.freelist(64)
cdef class Lease:
    """One address binding. Addresses are host-order ``int``; times are unix seconds.

    ``client_key``: b"\\x01"+chaddr style: option 61 if sent, else htype byte + chaddr;
    ``hw_address``: chaddr[:hlen]; ``state``: a :class:`~fastdhcp.leases.LeaseState` value;
    ``issued``: client last transaction time (Kea's cltt); ``relay_info``: option 82 as
    received, for audits and per-subscriber limits; ``fqdn_fwd`` / ``fqdn_rev``: the server
    owes the forward (A) / reverse (PTR) DNS update of ``hostname`` (Kea's names; RFC 4702).

    Read-only once made (a staged lease is shared by the store's overlay, its index and the
    reply waiting for it: make a new one). Compared field by field (``==``), unhashable (as
    the dataclass it replaces), pickled by value. Not tracked by the garbage collector (no_gc: its fields are ints, bytes and str, which
    form no cycles; a store's overlay holds thousands, and each tracked one made the
    collector run sooner and longer).
    """

    __match_args__ = _FIELDS

    def __init__(self, ip, client_key, hw_address, subnet_id, state, issued, expires,
                 hostname="", relay_info=b"", fqdn_fwd=False, fqdn_rev=False):
        self.ip = ip
        self.client_key = client_key
        self.hw_address = hw_address
        self.subnet_id = subnet_id
        self.state = state
        self.issued = issued
        self.expires = expires
        self.hostname = hostname
        self.relay_info = relay_info
        self.fqdn_fwd = fqdn_fwd
        self.fqdn_rev = fqdn_rev

    @property
    def active(self):
        """True while the address is in use (bound or declined)."""
        return self.state == ST_DEFAULT or self.state == ST_DECLINED

    def astuple(self):
        """The eleven fields in declaration order."""
        return (self.ip, self.client_key, self.hw_address, self.subnet_id, self.state,
                self.issued, self.expires, self.hostname, self.relay_info, self.fqdn_fwd,
                self.fqdn_rev)

    def __richcmp__(self, other, int op):
        if op != Py_EQ and op != Py_NE:
            return NotImplemented
        if type(other) is not Lease:
            return NotImplemented
        cdef Lease a = self
        cdef Lease b = <Lease>other
        same = (a is b or (a.ip == b.ip and a.client_key == b.client_key
                           and a.hw_address == b.hw_address and a.subnet_id == b.subnet_id
                           and a.state == b.state and a.issued == b.issued
                           and a.expires == b.expires and a.hostname == b.hostname
                           and a.relay_info == b.relay_info and a.fqdn_fwd == b.fqdn_fwd
                           and a.fqdn_rev == b.fqdn_rev))
        return same if op == Py_EQ else not same

    __hash__ = None

    def __repr__(self):
        return (f"Lease(ip={self.ip!r}, client_key={self.client_key!r}, "
                f"hw_address={self.hw_address!r}, subnet_id={self.subnet_id!r}, "
                f"state={self.state!r}, issued={self.issued!r}, expires={self.expires!r}, "
                f"hostname={self.hostname!r}, relay_info={self.relay_info!r}, "
                f"fqdn_fwd={self.fqdn_fwd!r}, fqdn_rev={self.fqdn_rev!r})")

    def __reduce__(self):
        return (Lease, self.astuple())


# The fields as read-only member descriptors (PyMemberDef, T_OBJECT_EX): the kind of attribute
# CPython 3.11 specializes a Python-level read of (LOAD_ATTR_SLOT, as for __slots__), 11 ns
# where the properties Cython makes for `cdef readonly` take 26 ns; the store reads five or six
# per lease staged. The offsets are the C compiler's (offsetof the object struct).
cdef PyMemberDef _members[11]
cdef list _member_names = [name.encode() for name in _FIELDS]


cdef extern from *:
    # Cython's name for the object struct (a rename fails the build here, loudly).
    """
    #define FdLease struct __pyx_obj_8fastdhcp_6_lease_Lease
    #define FD_LEASE_OFFSET(i) (((const Py_ssize_t[]){ \\
        offsetof(FdLease, ip), offsetof(FdLease, client_key), \\
        offsetof(FdLease, hw_address), offsetof(FdLease, subnet_id), \\
        offsetof(FdLease, state), offsetof(FdLease, issued), \\
        offsetof(FdLease, expires), offsetof(FdLease, hostname), \\
        offsetof(FdLease, relay_info), offsetof(FdLease, fqdn_fwd), \\
        offsetof(FdLease, fqdn_rev)})[i])
    """
    Py_ssize_t FD_LEASE_OFFSET(int i)


cdef int _add_members() except -1:
    cdef PyTypeObject* tp = <PyTypeObject*>Lease
    cdef int i
    for i in range(11):
        _members[i].name = <const char*>(<bytes>_member_names[i])
        _members[i].type = T_OBJECT_EX
        _members[i].offset = FD_LEASE_OFFSET(i)
        _members[i].flags = READONLY
        _members[i].doc = NULL
        PyDict_SetItem(<object>tp.tp_dict, _FIELDS[i], PyDescr_NewMember(tp, &_members[i]))
    PyType_Modified(tp)
    return 0


_add_members()


# ------------------------------------------------------------------ keys

def record_key(ip):
    """The record key of address ``ip``: 4 bytes big-endian (OverflowError outside 32 bits)."""
    cdef uint32_t v = ip
    cdef char k[4]
    k[0] = <char>(v >> 24)
    k[1] = <char>(v >> 16)
    k[2] = <char>(v >> 8)
    k[3] = <char>v
    return PyBytes_FromStringAndSize(k, 4)


# ------------------------------------------------------------------ reading, in place

def record_state(bytes raw not None):
    """The state of a record as this schema writes it (its second byte), or None for a record
    in another form (decode it)."""
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(raw)
    if (PyBytes_GET_SIZE(raw) >= 2 and (p[0] == REC_FIXARRAY8 or p[0] == REC_FIXARRAY9)
            and p[1] <= REC_FIXINT_MAX):
        return p[1]
    return None


def decode_record(bytes key not None, bytes raw not None):
    """The :class:`Lease` stored as ``raw`` under ``key``. Raises (ValueError, TypeError or
    a msgpack error) for a record that is not one: the caller names it damaged."""
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw)
    cdef Py_ssize_t pos, hw_len = 0, host_len = 0, relay_len = 0
    cdef Py_ssize_t hw_at, host_at, relay_at, end
    cdef int64_t fq = 0
    cdef RecHead h
    cdef bint big = False, big2 = False
    cdef uint32_t ip = key_ip(<const uint8_t*>PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key))
    pos = _head_at(p, n, &h, &big)
    if pos >= 0:
        hw_at = _raw_at(p, n, pos, False, &hw_len)
        host_at = -1 if hw_at < 0 else _raw_at(p, n, hw_at + hw_len, True, &host_len)
        relay_at = -1 if host_at < 0 else _raw_at(p, n, host_at + host_len, False, &relay_len)
        end = relay_at + relay_len if relay_at >= 0 else -1
        if end >= 0 and p[0] == REC_FIXARRAY9:
            end = _int_at(p, n, end, &fq, &big2)
            if fq < 0 or fq > (REC_FQDN_FWD | REC_FQDN_REV) or big2:
                end = -1
        if end == n and not big and ip != 0:
            return lease_fqdn(lease_new(
                PyLong_FromUnsignedLong(ip),
                PyBytes_FromStringAndSize(<const char*>h.client_key, h.client_key_len),
                PyBytes_FromStringAndSize(<const char*>(p + hw_at), hw_len),
                PyLong_FromLongLong(h.subnet_id),
                h.state,
                PyLong_FromLongLong(h.issued),
                PyLong_FromLongLong(h.expires),
                # as msgpack's strict decode, or its surrogateescape retry when not UTF-8
                PyUnicode_DecodeUTF8(<const char*>(p + host_at), host_len, "surrogateescape"),
                PyBytes_FromStringAndSize(<const char*>(p + relay_at), relay_len),
            ), fq & REC_FQDN_FWD, fq & REC_FQDN_REV)
    return _decode_other(key, raw)


cdef Lease _decode_other(bytes key, bytes raw):
    # A record in another form (a field of another type, an int past 64 bits), or damaged.
    try:
        rec = _unpackb(raw, use_list=False)
    except UnicodeDecodeError:
        # A hostname that was not UTF-8 (written with surrogateescape). Not the default:
        # the error handler argument doubles the cost of every msgpack decode.
        rec = _unpackb(raw, use_list=False, unicode_errors="surrogateescape")
    fq = 0
    if len(rec) == 9:  # a lease with DNS update flags (see the module docstring)
        fq = rec[8]
        if type(fq) is not int or not 0 <= fq <= (REC_FQDN_FWD | REC_FQDN_REV):
            raise ValueError(f"fqdn flags {fq!r}")
        rec = rec[:8]
    (state, expires, issued, subnet_id, client_key, hw_address, hostname, relay) = rec
    return lease_fqdn(lease_new(int.from_bytes(key, "big"), client_key, hw_address, subnet_id,
                                state, issued, expires, hostname, relay),
                      fq & REC_FQDN_FWD, fq & REC_FQDN_REV)


# ------------------------------------------------------------------ writing

cdef inline Py_ssize_t _put_int(uint8_t* o, int64_t v) noexcept nogil:
    # msgpack's shortest form: what Packer.pack writes for the same int.
    cdef uint64_t u
    cdef int width, k
    if 0 <= v <= 0x7F or -32 <= v < 0:
        o[0] = <uint8_t>v
        return 1
    if v > 0:
        u = <uint64_t>v
        if u <= 0xFF:
            o[0] = 0xCC
            width = 1
        elif u <= 0xFFFF:
            o[0] = 0xCD
            width = 2
        elif u <= 0xFFFFFFFFULL:
            o[0] = 0xCE
            width = 4
        else:
            o[0] = 0xCF
            width = 8
    else:
        u = <uint64_t>v
        if v >= -0x80:
            o[0] = 0xD0
            width = 1
        elif v >= -0x8000:
            o[0] = 0xD1
            width = 2
        elif v >= -0x80000000LL:
            o[0] = 0xD2
            width = 4
        else:
            o[0] = 0xD3
            width = 8
    for k in range(width):
        o[1 + k] = <uint8_t>(u >> (8 * (width - 1 - k)))
    return 1 + width


cdef inline Py_ssize_t _raw_size(Py_ssize_t size, bint text) noexcept nogil:
    # Bytes of a bin (``text``: str) of ``size`` bytes, header included.
    if text and size < 32:
        return 1 + size
    if size <= 0xFF:
        return 2 + size
    if size <= 0xFFFF:
        return 3 + size
    return 5 + size


cdef inline Py_ssize_t _put_raw(uint8_t* o, const char* data, Py_ssize_t size,
                                bint text) noexcept nogil:
    # bin 8/16/32, or for text fixstr/str 8/16/32; then the bytes.
    cdef Py_ssize_t h
    if text and size < 32:
        o[0] = <uint8_t>(0xA0 | size)
        h = 1
    elif size <= 0xFF:
        o[0] = 0xD9 if text else 0xC4
        o[1] = <uint8_t>size
        h = 2
    elif size <= 0xFFFF:
        o[0] = 0xDA if text else 0xC5
        o[1] = <uint8_t>(size >> 8)
        o[2] = <uint8_t>size
        h = 3
    else:
        o[0] = 0xDB if text else 0xC6
        o[1] = <uint8_t>(size >> 24)
        o[2] = <uint8_t>(size >> 16)
        o[3] = <uint8_t>(size >> 8)
        o[4] = <uint8_t>size
        h = 5
    memcpy(o + h, data, size)
    return h + size


cdef inline bint _as_i64(object v, int64_t* out):
    # An int field the C writer takes: an int (IntEnum included, bool not: msgpack writes a
    # bool as one) within int64.
    cdef int overflow = 0
    if not (PyLong_CheckExact(v) or (isinstance(v, int) and not PyBool_Check(v))):
        return False
    out[0] = PyLong_AsLongLongAndOverflow(v, &overflow)
    return overflow == 0


def encode_record(Lease lease not None):
    """The record of ``lease`` (the value under :func:`record_key` of its address)."""
    cdef int64_t state = 0, expires = 0, issued = 0, subnet_id = 0
    cdef object ck = lease.client_key, hw = lease.hw_address, relay = lease.relay_info
    cdef object host = lease.hostname
    cdef int64_t fq = ((REC_FQDN_FWD if lease.fqdn_fwd else 0)
                       | (REC_FQDN_REV if lease.fqdn_rev else 0))
    cdef const char* host_p
    cdef Py_ssize_t host_len = 0, size, n
    cdef uint8_t ints[4 * INT_MAX_SIZE]
    cdef bytes out
    cdef uint8_t* o
    if (_as_i64(lease.state, &state) and _as_i64(lease.expires, &expires)
            and _as_i64(lease.issued, &issued) and _as_i64(lease.subnet_id, &subnet_id)
            and PyBytes_CheckExact(ck) and PyBytes_CheckExact(hw)
            and PyBytes_CheckExact(relay) and PyUnicode_CheckExact(host)
            and PyBytes_GET_SIZE(ck) <= 0xFFFFFFFF and PyBytes_GET_SIZE(hw) <= 0xFFFFFFFF
            and PyBytes_GET_SIZE(relay) <= 0xFFFFFFFF):
        try:
            # the UTF-8 the str caches (no copy for ASCII)
            host_p = PyUnicode_AsUTF8AndSize(host, &host_len)
        except UnicodeEncodeError:
            host_p = NULL  # lone surrogates (a hostname read back with surrogateescape)
        if host_p is not NULL and host_len <= 0xFFFFFFFF:
            # the ints first, into a scratch buffer: the record's size is then known
            n = _put_int(ints, state)
            n += _put_int(ints + n, expires)
            n += _put_int(ints + n, issued)
            n += _put_int(ints + n, subnet_id)
            size = (1 + n + (1 if fq else 0) + _raw_size(PyBytes_GET_SIZE(ck), False)
                    + _raw_size(PyBytes_GET_SIZE(hw), False) + _raw_size(host_len, True)
                    + _raw_size(PyBytes_GET_SIZE(relay), False))
            out = PyBytes_FromStringAndSize(NULL, size)
            o = <uint8_t*>PyBytes_AS_STRING(out)
            o[0] = REC_FIXARRAY9 if fq else REC_FIXARRAY8
            memcpy(o + 1, ints, n)
            n += 1
            n += _put_raw(o + n, PyBytes_AS_STRING(ck), PyBytes_GET_SIZE(ck), False)
            n += _put_raw(o + n, PyBytes_AS_STRING(hw), PyBytes_GET_SIZE(hw), False)
            n += _put_raw(o + n, host_p, host_len, True)
            n += _put_raw(o + n, PyBytes_AS_STRING(relay), PyBytes_GET_SIZE(relay), False)
            if fq:
                o[n] = <uint8_t>fq  # a positive fixint (at most 3)
            return out
    # msgpack packs int subclasses (LeaseState) as ints; the fields are typed by Lease.
    if fq:
        return _packb((lease.state, lease.expires, lease.issued, lease.subnet_id, ck, hw, host,
                       relay, fq))
    return _packb((lease.state, lease.expires, lease.issued, lease.subnet_id, ck, hw, host,
                   relay))
