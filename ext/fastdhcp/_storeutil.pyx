"""Compiled helper of fastdhcp.store: the start-up scan that rebuilds pool bitmaps.

At start-up the server needs every active address, one uint32 each, out of a lease table of
millions of records. The scan reads only the first two bytes of each record (the msgpack array
header and the state, which the schema puts first), so no lease object is made; the addresses go
straight into an ``array('I')``.
"""

cimport cython
from cpython cimport array
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE


@cython.boundscheck(False)
@cython.wraparound(False)
cpdef tuple scan_active(object items, object out, Py_ssize_t limit):
    """Append to ``out`` (an ``array('I')``) the address of every active record in ``items``.

    ``items`` iterates ``(key, value)`` bytes pairs in key order (an LMDB cursor); keys are
    4-byte big-endian IPv4 addresses. Stops after ``limit`` records. Returns ``(count,
    last_key, odd)``: records consumed, the last key seen (None if none), and the pairs whose
    value does not start with this schema's header (the caller decodes those in Python).
    """
    cdef array.array arr = <array.array?>out
    if arr.typecode != 'I' or arr.itemsize != 4:
        raise TypeError("out must be an array('I') of 4-byte items")
    cdef Py_ssize_t n = 0
    cdef Py_ssize_t used = len(arr)
    cdef object key = None
    cdef object value
    cdef const unsigned char* k
    cdef const unsigned char* v
    cdef unsigned int state
    cdef list odd = []
    for key, value in items:
        n += 1
        if (type(key) is not bytes or type(value) is not bytes
                or PyBytes_GET_SIZE(key) != 4 or PyBytes_GET_SIZE(value) < 2):
            odd.append((key, value))
        else:
            v = <const unsigned char*>PyBytes_AS_STRING(value)
            if v[0] != REC_FIXARRAY8 or v[1] > REC_FIXINT_MAX:
                odd.append((key, value))
            else:
                state = v[1]
                if state == REC_STATE_DEFAULT or state == REC_STATE_DECLINED:
                    k = <const unsigned char*>PyBytes_AS_STRING(key)
                    array.resize_smart(arr, used + 1)  # amortized growth
                    arr.data.as_uints[used] = (
                        (<unsigned int>k[0] << 24) | (<unsigned int>k[1] << 16)
                        | (<unsigned int>k[2] << 8) | k[3]
                    )
                    used += 1
        if n >= limit:
            break
    return n, key, odd
