"""The fast row rule of Kea's memfile lease file, in C (``fastdhcp.kea.memfile`` holds the
format's description and the checked rule, which is the rule).

A row Kea writes (dotted-quad address, 6-byte hwaddr and client-id in 2-digit hex, decimal
ints, flags 0/1/true/false, a hostname without escapes, a state 0-3, no user context) is read
here straight from the file's bytes into a :class:`~fastdhcp._lease.Lease`: no str per line or
per field. Every other row, well-formed or not, goes to the caller's checked rule, which
builds the same lease or names the field at fault. The fast rule accepts a subset of the
checked rule's rows and builds what it builds (tests/test_kea_migrate_inputs.py).

Measured on bench/import_kea.py's file (1.1M rows, a million leases): the read phase took 4.7 s
with the rule in Python (``str.split`` per line and per field, ~12 objects a row), 1.0 s here
(6 objects a row: the lease, its two bytes and three ints; much of the rest is the kernel
faulting in fresh pages for them).
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Contains, PyDict_SetItem
from cpython.long cimport PyLong_FromUnsignedLong, PyLong_FromUnsignedLongLong
from cpython.unicode cimport PyUnicode_AsUTF8String, PyUnicode_DecodeUTF8
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memchr

from fastdhcp._lease cimport Lease, lease_new

__all__ = ["RowCounts", "parse_fast", "read_rows"]

cdef enum:
    # Columns the fast rule reads (address .. state); a user_context column (index 10) must
    # be empty and later ones (Kea 2.6's pool_id) are not read, as in the checked rule.
    NREAD = 10
    MAX_FIELDS = 64
    HTYPE_ETHERNET = 1
    HW_LEN = 6
    MAX_ID_LEN = 64  # the checked rule's 2-digit hex form: up to 64 bytes (memfile._FAST_HEX)

cdef uint64_t U32_MAX = 0xFFFFFFFFULL
cdef uint64_t EXPIRE_LIMIT = 1ULL << 63


cdef struct Row:
    uint32_t ip
    uint64_t valid
    uint64_t expire
    uint64_t subnet_id
    bint fwd
    bint rev
    int state
    const uint8_t* hw
    const uint8_t* cid
    Py_ssize_t cid_len
    const uint8_t* host
    Py_ssize_t host_len


@cython.final
cdef class RowCounts:
    """What :func:`read_rows` read: rows (blank lines excluded), rows that replaced an earlier
    row of their address, addresses a deletion row removed."""

    cdef readonly Py_ssize_t rows
    cdef readonly Py_ssize_t replaced
    cdef readonly Py_ssize_t deleted


cdef inline int _hexval(uint8_t c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    c |= 0x20
    if 97 <= c <= 102:
        return c - 87
    return -1


cdef inline bint _hexbytes(const uint8_t* p, Py_ssize_t n, uint8_t* out) noexcept nogil:
    # aa:bb:..:zz (n == 3k - 1) into k bytes
    cdef Py_ssize_t i, k = 0
    cdef int hi, lo
    i = 0
    while i < n:
        hi = _hexval(p[i])
        lo = _hexval(p[i + 1])
        if hi < 0 or lo < 0 or (i + 2 < n and p[i + 2] != 58):
            return False
        out[k] = <uint8_t>((hi << 4) | lo)
        k += 1
        i += 3
    return True


cdef inline bint _decimal(const uint8_t* p, Py_ssize_t n, uint64_t* out) noexcept nogil:
    # 1-19 ASCII digits (no sign, space or underscore, which int() would take: checked rule)
    cdef uint64_t v = 0
    cdef Py_ssize_t i
    if n < 1 or n > 19:
        return False
    for i in range(n):
        if not 48 <= p[i] <= 57:
            return False
        v = v * 10 + (p[i] - 48)
    out[0] = v
    return True


cdef inline int _flag(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    if n == 1 and (p[0] == 48 or p[0] == 49):
        return p[0] - 48
    if n == 4 and p[0] == 116 and p[1] == 114 and p[2] == 117 and p[3] == 101:
        return 1
    if n == 5 and p[0] == 102 and p[1] == 97 and p[2] == 108 and p[3] == 115 and p[4] == 101:
        return 0
    return -1


cdef inline bint _quad(const uint8_t* p, Py_ssize_t n, uint32_t* out) noexcept nogil:
    # a.b.c.d, each part 0-255 in decimal without a leading zero (inet_aton, which the checked
    # rule calls, reads 010 as octal and takes other forms: those rows go there)
    cdef uint32_t ip = 0, part
    cdef int parts = 0, digits
    cdef Py_ssize_t i = 0
    while True:
        part = 0
        digits = 0
        while i < n and 48 <= p[i] <= 57:
            if digits == 1 and part == 0:
                return False
            part = part * 10 + (p[i] - 48)
            digits += 1
            i += 1
        if digits == 0 or digits > 3 or part > 255:
            return False
        ip = (ip << 8) | part
        parts += 1
        if parts == 4:
            break
        if i >= n or p[i] != 46:
            return False
        i += 1
    if i != n:
        return False
    out[0] = ip
    return True


cdef bint _fast(const uint8_t* p, Py_ssize_t n, Py_ssize_t width, Row* r) noexcept nogil:
    """Split one line (without its line break) at its commas and read the fields; False
    unless it is a row of the fast rule."""
    cdef const uint8_t* start[NREAD + 1]
    cdef Py_ssize_t length[NREAD + 1]
    cdef Py_ssize_t f = 0, i = 0, s = 0, want = NREAD + 1 if width > NREAD else NREAD
    cdef const uint8_t* c
    cdef int v
    if width < NREAD or width > MAX_FIELDS:
        return False
    # field boundaries: the first `want` fields, and exactly width - 1 commas in all
    while True:
        c = <const uint8_t*>memchr(p + s, 44, n - s)
        if f < want:
            start[f] = p + s
            length[f] = (c - (p + s)) if c is not NULL else n - s
        f += 1
        if c is NULL:
            break
        s = (c - p) + 1
        if f >= width:
            return False  # more fields than the header names
    if f != width or (width > NREAD and length[NREAD] != 0):
        return False
    if not _quad(start[0], length[0], &r.ip):
        return False
    if length[1] != 3 * HW_LEN - 1:
        return False
    r.hw = start[1]
    r.cid = start[2]
    r.cid_len = length[2]
    if r.cid_len != 0 and (r.cid_len % 3 != 2 or r.cid_len < 5
                           or r.cid_len > 3 * MAX_ID_LEN - 1):
        return False
    if not (_decimal(start[3], length[3], &r.valid) and _decimal(start[4], length[4], &r.expire)
            and _decimal(start[5], length[5], &r.subnet_id)):
        return False
    if r.valid > U32_MAX or r.expire >= EXPIRE_LIMIT or r.subnet_id > U32_MAX:
        return False
    v = _flag(start[6], length[6])
    if v < 0:
        return False
    r.fwd = v
    v = _flag(start[7], length[7])
    if v < 0:
        return False
    r.rev = v
    r.host = start[8]
    r.host_len = length[8]
    if memchr(r.host, 38, r.host_len) is not NULL:
        return False  # &#xHH escapes: the checked rule unescapes
    if length[9] != 1 or not 48 <= start[9][0] <= 51:
        return False
    r.state = start[9][0] - 48
    return True


cdef Lease _lease(Row* r, tuple states):
    """The lease of a fast row, or None when a hex field is not hex (the checked rule then
    says which)."""
    cdef uint8_t hw[HW_LEN]
    cdef uint8_t key[MAX_ID_LEN + 1]
    cdef Py_ssize_t klen
    cdef object hw_b, key_b, host
    if not _hexbytes(r.hw, 3 * HW_LEN - 1, hw):
        return None
    if r.cid_len:
        klen = (r.cid_len + 1) // 3
        if not _hexbytes(r.cid, r.cid_len, key):
            return None
    else:
        key[0] = HTYPE_ETHERNET
        for klen in range(HW_LEN):
            key[klen + 1] = hw[klen]
        klen = HW_LEN + 1
    try:
        host = PyUnicode_DecodeUTF8(<const char*>r.host, r.host_len, NULL)
    except UnicodeDecodeError:
        return None
    hw_b = PyBytes_FromStringAndSize(<const char*>hw, HW_LEN)
    key_b = PyBytes_FromStringAndSize(<const char*>key, klen)
    return lease_new(PyLong_FromUnsignedLong(r.ip), key_b, hw_b,
                     PyLong_FromUnsignedLongLong(r.subnet_id), states[r.state],
                     PyLong_FromUnsignedLongLong(r.expire - r.valid if r.expire >= r.valid
                                                 else 0),
                     PyLong_FromUnsignedLongLong(r.expire), host, b"")


def parse_fast(str line not None, Py_ssize_t width, tuple states not None, kea_lease):
    """``kea_lease(lease, valid_lifetime, fqdn_fwd, fqdn_rev, None)`` for a row of the fast
    rule (``line`` without its line break, of a file of ``width`` columns; ``states``: the
    lease state of Kea's state 0..3), else None."""
    cdef bytes raw = PyUnicode_AsUTF8String(line)
    cdef Row r
    cdef Lease lease
    if not _fast(<const uint8_t*>PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), width, &r):
        return None
    lease = _lease(&r, states)
    if lease is None:
        return None
    return kea_lease(lease, PyLong_FromUnsignedLongLong(r.valid), r.fwd, r.rev, None)


def read_rows(bytes data not None, Py_ssize_t pos, Py_ssize_t number, Py_ssize_t width,
              tuple states not None, kea_lease, slow, dict leases not None,
              dict extras not None):
    """Read the rows of ``data`` from offset ``pos`` (the start of line ``number``) to its
    end, as Kea's loader does: the later row of an address replaces the earlier one, a
    ``valid_lifetime`` 0 row deletes the address. ``leases`` gets the lease of each address;
    ``extras`` the :class:`~fastdhcp.kea.memfile.KeaLease` of each address whose fqdn flags or
    user context are set (``kea_lease`` makes one for a fast row).

    A row outside the fast rule goes to ``slow(line, number)`` (the line as str, without its
    line break), which returns its KeaLease, or None to skip it, or raises. ``data`` must be
    UTF-8. Returns the :class:`RowCounts`.
    """
    cdef const uint8_t* base = <const uint8_t*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t end = PyBytes_GET_SIZE(data), n
    cdef const uint8_t* p
    cdef const uint8_t* nl
    cdef Row r
    cdef Lease lease
    cdef object kl, ip
    cdef bint flagged, is_delete
    cdef Py_ssize_t this
    cdef RowCounts counts = RowCounts.__new__(RowCounts)
    if pos < 0 or pos > end:
        raise ValueError("pos outside data")
    while pos < end:
        p = base + pos
        nl = <const uint8_t*>memchr(p, 10, end - pos)
        n = (nl - p) if nl is not NULL else end - pos
        pos += n + 1
        this = number
        number += 1
        if n and p[n - 1] == 13:
            n -= 1
        if n == 0:
            continue  # a blank line (Kea's reader skips them too)
        counts.rows += 1
        lease = None
        if _fast(p, n, width, &r):
            lease = _lease(&r, states)
        if lease is not None:
            flagged = r.fwd or r.rev
            kl = kea_lease(lease, PyLong_FromUnsignedLongLong(r.valid), r.fwd, r.rev,
                           None) if flagged else None
            ip = lease.ip
            is_delete = r.valid == 0
        else:
            kl = slow(PyUnicode_DecodeUTF8(<const char*>p, n, NULL), this)
            if kl is None:
                continue
            lease = kl.lease
            ip = lease.ip
            flagged = kl.user_context is not None or kl.fqdn_fwd or kl.fqdn_rev
            is_delete = kl.valid_lifetime == 0
        if is_delete:
            # Kea's deletion row: the address has no lease from here on.
            if PyDict_Contains(leases, ip):
                del leases[ip]
                counts.deleted += 1
            if extras and PyDict_Contains(extras, ip):
                del extras[ip]
            continue
        if PyDict_Contains(leases, ip):
            counts.replaced += 1
            if extras and not flagged and PyDict_Contains(extras, ip):
                del extras[ip]
        PyDict_SetItem(leases, ip, lease)
        if flagged:
            PyDict_SetItem(extras, ip, kl)
    return counts
