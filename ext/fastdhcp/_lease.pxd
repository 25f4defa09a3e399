# Typed boundary of fastdhcp._lease: the lease record and the one codec of its LMDB record.

cimport cython
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t


cdef enum:
    # First byte of every record this schema writes (msgpack fixarray of 8 elements), and the
    # largest positive fixint: the state is the record's second byte when it is one.
    REC_FIXARRAY8 = 0x98
    REC_FIXINT_MAX = 0x7F
    # A record of a lease with DNS updates owed (fqdn_fwd or fqdn_rev set) has a ninth
    # element, the flags int (bit 1 forward, bit 2 reverse); every other record keeps the
    # eight, so records written before the flags existed read unchanged.
    REC_FIXARRAY9 = 0x99
    REC_FQDN_FWD = 1
    REC_FQDN_REV = 2


cdef struct RecHead:
    # The leading fields of a record as this schema writes it, read in place (the lease
    # index's start-up walk): client_key points into the record's bytes.
    uint8_t state
    int64_t expires
    int64_t issued
    int64_t subnet_id
    const uint8_t* client_key
    Py_ssize_t client_key_len


@cython.final
@cython.no_gc
@cython.freelist(64)
cdef class Lease:
    # Read from Python through member descriptors (see _lease.pyx), read-only.
    cdef object ip
    cdef object client_key
    cdef object hw_address
    cdef object subnet_id
    cdef object state
    cdef object issued
    cdef object expires
    cdef object hostname
    cdef object relay_info
    cdef object fqdn_fwd
    cdef object fqdn_rev


cdef inline Lease lease_new(object ip, object client_key, object hw_address, object subnet_id,
                            object state, object issued, object expires, object hostname,
                            object relay_info):
    """``Lease(ip, ..., relay_info)`` without the argument parsing of a Python call."""
    cdef Lease x = Lease.__new__(Lease)
    x.ip = ip
    x.client_key = client_key
    x.hw_address = hw_address
    x.subnet_id = subnet_id
    x.state = state
    x.issued = issued
    x.expires = expires
    x.hostname = hostname
    x.relay_info = relay_info
    x.fqdn_fwd = False
    x.fqdn_rev = False
    return x


cdef inline Lease lease_fqdn(Lease x, bint fwd, bint rev):
    """``x`` with its DNS update flags set (a lease just made, not yet shared)."""
    x.fqdn_fwd = True if fwd else False
    x.fqdn_rev = True if rev else False
    return x


# ------------------------------------------------------------------ reading, in place
# Inline here, so that the index's start-up walk (100k records in about 28 ms) compiles them
# into its loop: called through the module's function table the walk of 100k records took
# 2-4% longer (bench_leaseindex.py test_load_100k, four interleaved runs).

cdef inline uint32_t key_ip(const uint8_t* k, Py_ssize_t n) noexcept nogil:
    """The address of a record key, or 0 when it is not one this schema writes (0.0.0.0 is
    never leased)."""
    if n != 4:
        return 0
    return (<uint32_t>k[0] << 24) | (<uint32_t>k[1] << 16) | (<uint32_t>k[2] << 8) | k[3]


cdef inline Py_ssize_t _int_at(const uint8_t* p, Py_ssize_t n, Py_ssize_t i, int64_t* out,
                               bint* big) noexcept nogil:
    """Read the msgpack int at p[i]; return the index after it, or -1 if there is none. A
    uint64 above the int64 range reads as the largest int64 with ``big`` set."""
    cdef uint8_t b
    cdef uint64_t u = 0
    cdef Py_ssize_t width, k
    big[0] = False
    if i >= n:
        return -1
    b = p[i]
    if b <= 0x7F:
        out[0] = b
        return i + 1
    if b >= 0xE0:
        out[0] = <int64_t>(<signed char>b)
        return i + 1
    if 0xCC <= b <= 0xCF:
        width = 1 << (b - 0xCC)
    elif 0xD0 <= b <= 0xD3:
        width = 1 << (b - 0xD0)
    else:
        return -1
    if i + 1 + width > n:
        return -1
    for k in range(width):
        u = (u << 8) | p[i + 1 + k]
    if b <= 0xCF:
        if u > 0x7FFFFFFFFFFFFFFFULL:
            out[0] = 0x7FFFFFFFFFFFFFFFLL
            big[0] = True
        else:
            out[0] = <int64_t>u
    elif width == 1:
        out[0] = <signed char>u
    elif width == 2:
        out[0] = <short>u
    elif width == 4:
        out[0] = <int>u
    else:
        out[0] = <int64_t>u
    return i + 1 + width


cdef inline Py_ssize_t _raw_at(const uint8_t* p, Py_ssize_t n, Py_ssize_t i, bint text,
                               Py_ssize_t* length) noexcept nogil:
    """Start of the msgpack bin (``text``: str) at p[i], its length in ``length``; -1 if there
    is none."""
    cdef Py_ssize_t head, k
    cdef Py_ssize_t size = 0
    cdef uint8_t b
    if i >= n:
        return -1
    b = p[i]
    if text and 0xA0 <= b <= 0xBF:
        length[0] = b & 0x1F
        return i + 1 if i + 1 + length[0] <= n else -1
    if b == (0xD9 if text else 0xC4):
        head = 1
    elif b == (0xDA if text else 0xC5):
        head = 2
    elif b == (0xDB if text else 0xC6):
        head = 4
    else:
        return -1
    if i + 1 + head > n:
        return -1
    for k in range(head):
        size = (size << 8) | p[i + 1 + k]
    if i + 1 + head + size > n:
        return -1
    length[0] = size
    return i + 1 + head


cdef inline Py_ssize_t _head_at(const uint8_t* p, Py_ssize_t n, RecHead* out,
                                bint* big) noexcept nogil:
    # The fields up to the client key; the index after it, or -1. `big`: an int field past
    # the int64 range (saturated in `out`).
    cdef Py_ssize_t pos
    cdef bint b1, b2, b3
    if n < 2 or (p[0] != REC_FIXARRAY8 and p[0] != REC_FIXARRAY9) or p[1] > REC_FIXINT_MAX:
        return -1
    out.state = p[1]
    pos = _int_at(p, n, 2, &out.expires, &b1)
    if pos >= 0:
        pos = _int_at(p, n, pos, &out.issued, &b2)
    if pos >= 0:
        pos = _int_at(p, n, pos, &out.subnet_id, &b3)
    if pos >= 0:
        pos = _raw_at(p, n, pos, False, &out.client_key_len)
    if pos < 0:
        return -1
    big[0] = b1 or b2 or b3
    out.client_key = p + pos
    return pos + out.client_key_len


cdef inline bint read_head(const uint8_t* p, Py_ssize_t n, RecHead* out) noexcept nogil:
    """Read the fields of a record up to its client key in place; False when the record is
    not in the form this schema writes (decode it with :func:`decode_record`). Ints past the
    int64 range saturate; the fields after the client key are not looked at."""
    cdef bint big
    return _head_at(p, n, out, &big) >= 0
