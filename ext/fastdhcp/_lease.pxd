# Typed boundary of fastdhcp._lease: the lease record and the one codec of its LMDB record.

cimport cython
from libc.stdint cimport int64_t, uint8_t, uint32_t


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
    return x


cdef bint read_head(const uint8_t* p, Py_ssize_t n, RecHead* out) noexcept nogil
cdef uint32_t key_ip(const uint8_t* k, Py_ssize_t n) noexcept nogil
