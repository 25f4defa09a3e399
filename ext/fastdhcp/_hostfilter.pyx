"""A Bloom filter over the hosts table's keys (fastdhcp.hosts): whether a client *may* have a
reservation added through the API, answered in a few hundred nanoseconds of C, so that the
engine searches the LMDB B-tree only for clients that probably have one.

Why: with a million hosts, a lookup that misses costs ~3 us of cache misses in the
memory-mapped B-tree (bench/RESULTS.md, "API reservations"), twice per DORA, for every client
without a reservation. The filter holds no Python object per host: one bit array, 16 bits per
expected host (2 MiB for a million; false positives ~0.2% at that load, ~2% at twice it), five
probes from one 64-bit hash. Keys are never removed (a deleted host leaves its bits: a false
positive more, never a miss); the table makes a fresh filter, sized for its hosts, at start-up.

The hash is FNV-1a 64 over the LMDB key ``b"h" + subnet id (4, big-endian) + identifier type
(1) + identifier`` (fastdhcp.hosts' layout), finished by splitmix64; :meth:`HostFilter.add_key`
takes that key, :meth:`HostFilter.may_hold` its parts, and the two agree (tested).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free

cimport cython

__all__ = ["HostFilter"]

cdef enum:
    PROBES = 5
    BITS_PER_KEY = 16
    MIN_LOG2 = 16                     # 8 KiB at least
    MAX_LOG2 = 36                     # 8 GiB: far past any table

cdef uint64_t FNV_OFFSET = 0xcbf29ce484222325ULL
cdef uint64_t FNV_PRIME = 0x100000001b3ULL


cdef inline uint64_t _fnv(uint64_t h, const unsigned char *p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ p[i]) * FNV_PRIME
    return h


cdef inline uint64_t _mix(uint64_t z) noexcept:
    # splitmix64's finalizer: FNV's low bits alone are poorly spread for short keys
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL
    return z ^ (z >> 31)


@cython.final
cdef class HostFilter:
    """``HostFilter(expected)``: room for ``expected`` keys at 16 bits each (at least 8 KiB).
    :meth:`add_key` adds an LMDB key of the hosts table; :meth:`may_hold` (and ``cdef
    may_hold`` for the engine) answers False only for a key never added."""

    def __cinit__(self, Py_ssize_t expected=0):
        cdef uint32_t log2 = MIN_LOG2
        while log2 < MAX_LOG2 and (<uint64_t>1 << log2) < <uint64_t>expected * BITS_PER_KEY:
            log2 += 1
        self._log2 = log2
        self._mask = (<uint64_t>1 << log2) - 1
        self._bits = <uint64_t*>calloc((<size_t>1 << log2) // 64, sizeof(uint64_t))
        if self._bits == NULL:
            raise MemoryError()
        self.added = 0

    def __dealloc__(self):
        free(self._bits)

    @property
    def size_bytes(self) -> int:
        """Memory of the bit array."""
        return (1 << self._log2) // 8

    cdef void _set(self, uint64_t h) noexcept:
        cdef uint64_t h2 = (h >> 32) | 1
        cdef uint64_t b
        cdef int i
        for i in range(PROBES):
            b = (h + <uint64_t>i * h2) & self._mask
            self._bits[b >> 6] |= (<uint64_t>1) << (b & 63)

    cdef bint _test(self, uint64_t h) noexcept:
        cdef uint64_t h2 = (h >> 32) | 1
        cdef uint64_t b
        cdef int i
        for i in range(PROBES):
            b = (h + <uint64_t>i * h2) & self._mask
            if not (self._bits[b >> 6] >> (b & 63)) & 1:
                return False
        return True

    def add_key(self, bytes key):
        """Add one key of the hosts table (``b"h" + subnet id + type + identifier``)."""
        self._set(_mix(_fnv(FNV_OFFSET, <const unsigned char*>PyBytes_AS_STRING(key),
                            PyBytes_GET_SIZE(key))))
        self.added += 1

    cdef bint may_hold(self, uint32_t subnet_id, int kind, const unsigned char *ident,
                       Py_ssize_t n) noexcept:
        cdef unsigned char head[6]
        head[0] = 0x68  # "h"
        head[1] = (subnet_id >> 24) & 255
        head[2] = (subnet_id >> 16) & 255
        head[3] = (subnet_id >> 8) & 255
        head[4] = subnet_id & 255
        head[5] = <uint8_t>kind
        return self._test(_mix(_fnv(_fnv(FNV_OFFSET, head, 6), ident, n)))

    def may_contain(self, uint32_t subnet_id, int kind, bytes ident):
        """Whether (subnet, identifier type, identifier) may have been added (Python-level
        twin of the engine's ``may_hold``, for tests and tools)."""
        return self.may_hold(subnet_id, kind, <const unsigned char*>PyBytes_AS_STRING(ident),
                             PyBytes_GET_SIZE(ident))
