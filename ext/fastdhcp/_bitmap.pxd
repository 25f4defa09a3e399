# Typed boundary of fastdhcp._bitmap: every cdef field and method of PoolBitmap, so that other
# compiled modules can `from fastdhcp._bitmap cimport PoolBitmap` and call the C-level methods.

cimport cython
from libc.stdint cimport int64_t, uint32_t, uint64_t

cdef enum:
    # Summary levels above the address words. 64**4 == 2**24 addresses, the contract's largest
    # pool, needs three summary levels to end in a single top word; one spare.
    MAX_SUMMARY_LEVELS = 4


@cython.final
cdef class PoolBitmap:
    # _lvl[0] points at the address words (1 bit per address, 1 = used; bits past `last` in the
    # final word are kept 1). _lvl[k], 1 <= k <= _top, is a summary: bit j is 1 while child j of
    # level k-1 still has a free address under it (level 0: word j != ~0; above: word j != 0).
    # _lvl[_top] is a single word. All levels share one allocation, owned by _block.
    cdef uint64_t* _block
    cdef uint64_t* _lvl[MAX_SUMMARY_LEVELS + 1]
    cdef uint32_t _nw[MAX_SUMMARY_LEVELS + 1]   # words per level
    cdef size_t _nblock                          # words in _block
    cdef int _top                                # index of the single-word top level (>= 1)
    cdef uint32_t _first
    cdef uint32_t _last
    cdef uint32_t _size                          # last - first + 1, 1 .. 2**24
    cdef uint32_t _used                          # addresses marked used
    cdef uint32_t _cursor                        # next-fit starts here (offset, < _size)
    cdef bint _busy                              # reserve_many is running without the GIL

    cdef int64_t _word_after(self, uint32_t w) noexcept nogil
    cdef int64_t _find_from(self, uint32_t off) noexcept nogil
    cdef int64_t _next_fit(self) noexcept nogil
    cdef void _set_used(self, uint32_t off) noexcept nogil
    cdef void _set_free(self, uint32_t off) noexcept nogil
    cdef void _rebuild(self, uint32_t lo_word, uint32_t hi_word) noexcept nogil
    cdef int _check_idle(self) except -1
    cdef int _offset(self, object addr, uint32_t* off) except -1
    cdef int64_t allocate_c(self, int64_t hint) except -1
    cdef Py_ssize_t reserve_buffer(self, const uint32_t[:] addrs) except -1
