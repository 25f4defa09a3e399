# Typed boundary of fastdhcp._hostfilter: the engine cimports HostFilter to ask, per packet and
# without a Python call, whether the hosts table may hold a client.

cimport cython
from libc.stdint cimport uint32_t, uint64_t


@cython.final
cdef class HostFilter:
    cdef uint64_t* _bits              # 2**_log2 bits
    cdef uint32_t _log2
    cdef uint64_t _mask               # 2**_log2 - 1
    cdef readonly Py_ssize_t added    # keys added since made (deletes leave their bits)

    cdef void _set(self, uint64_t h) noexcept
    cdef bint _test(self, uint64_t h) noexcept
    cdef bint may_hold(self, uint32_t subnet_id, int kind, const unsigned char *ident,
                       Py_ssize_t n) noexcept
