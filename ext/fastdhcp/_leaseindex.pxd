# Typed boundary of fastdhcp._leaseindex: the in-memory indexes of the committed lease table.

cimport cython
from libc.stdint cimport int64_t, uint32_t, uint64_t

# ST_DEFAULT and ST_DECLINED (the states that mark an address used, ACTIVE_STATES)
from fastdhcp._consts cimport ST_DECLINED, ST_DEFAULT

cdef struct Fp:
    # 128-bit fingerprint of a client key: two independently keyed 64-bit hashes.
    uint64_t lo
    uint64_t hi


cdef struct Rec:
    # One slot per lease record, keyed by address; ip == 0 marks an empty slot (0.0.0.0 is
    # never leased). exp: 0 while the record is not active, else 1 + `expires` clamped to
    # [0, 2**32 - 2]. lo: the low half of the fingerprint of the record's client key (with the
    # address it finds that client's entry: a client entry names one address).
    uint32_t ip
    uint32_t exp
    uint64_t lo


cdef struct Cli:
    # One slot per client: the address of its current record; ip == 0 marks an empty slot.
    # Home slot from fp.lo. issued: that record's `issued` (clamped), used only while loading.
    Fp fp
    uint32_t ip
    uint32_t issued


@cython.final
cdef class LeaseIndex:
    cdef Rec* _recs
    cdef uint64_t _rmask          # capacity - 1 (capacity: a power of two)
    cdef Py_ssize_t _rcount       # records
    cdef Py_ssize_t _active       # records with exp != 0
    cdef Cli* _clis
    cdef uint64_t _cmask
    cdef Py_ssize_t _ccount
    cdef uint64_t* _heap          # min-heap of exp << 32 | ip, checked against _recs on use
    cdef Py_ssize_t _hlen
    cdef Py_ssize_t _hcap
    cdef uint64_t _hash_mask
    cdef uint64_t _seed

    cdef Rec* _rfind(self, uint32_t ip) noexcept nogil
    cdef Rec* _rinsert(self, uint32_t ip) except NULL
    cdef void _rdelete(self, Rec* slot) noexcept nogil
    cdef int _rgrow(self) except -1
    cdef Cli* _cfind(self, Fp fp) noexcept nogil
    cdef Cli* _cfind_ip(self, uint64_t lo, uint32_t ip) noexcept nogil
    cdef int _cset(self, Fp fp, uint32_t ip, uint32_t issued) except -1
    cdef void _cdelete(self, Cli* slot) noexcept nogil
    cdef int _cgrow(self) except -1
    cdef int _hpush(self, uint64_t key) except -1
    cdef uint64_t _hpop(self) noexcept nogil
    cdef void _hsift_down(self, Py_ssize_t i) noexcept nogil
    cdef int _hcompact(self) except -1
    cdef int _fp(self, object client_key, Fp* out) except -1
    cdef int _set_exp(self, Rec* r, uint32_t exp) except -1
    cdef int put_c(self, uint32_t ip, Fp fp, int64_t expires, bint active) except -1
    cdef int load_c(self, uint32_t ip, Fp fp, int64_t expires, int64_t issued,
                    bint active) except -1
