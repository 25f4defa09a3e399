# Declarations of fastdhcp._hascope: the HA scope filter the packet path asks per query.

cimport cython
from libc.stdint cimport uint8_t

from fastdhcp._codec cimport Message


cdef enum:
    HA_PASS = 0            # answer this query
    HA_NOT_FOR_US = 1      # the partner's scope (Kea: HA_BUFFER4_RECEIVE_NOT_FOR_US)
    HA_DISABLED = 2        # DHCP service disabled by the HA state (waiting, syncing, ...)


cdef int pearson(const unsigned char *key, Py_ssize_t n) noexcept
cdef int scope_index(Message msg, int servers) except -2


@cython.final
cdef class MissedQuery:
    cdef readonly object client_id    # bytes | None: option 61's whole value
    cdef readonly bytes chaddr        # chaddr's hlen bytes
    cdef readonly int secs


@cython.final
cdef class ScopeFilter:
    cdef readonly bint enabled        # DHCP service on (a serving HA state)
    cdef readonly int servers         # 2 in load-balancing; 1 in hot-standby (one scope)
    cdef readonly unsigned int mask   # bit i: the scope of server i (primary first) is served
    cdef readonly bint analyze        # keep the missed queries (communication interrupted)
    cdef readonly long long not_for_us
    cdef readonly long long disabled
    cdef list _missed

    cpdef int check(self, Message msg) except -1
    cdef _keep(self, Message msg, const unsigned char *b)
