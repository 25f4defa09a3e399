# Declarations of fastdhcp._packetpath: the service's compiled per-datagram path.

cimport cython
from libc.stdint cimport uint32_t

from fastdhcp._engine cimport Engine


cdef enum:
    MAX_BUCKETS = 32       # latency histogram bounds the flush can sum in C


@cython.final
cdef class PacketPath:
    cdef object server            # fastdhcp.service.Server: the rare cases (logging, ARP)
    cdef object engine
    cdef Engine cengine           # engine when it is the compiled Engine, else None
    cdef object metrics           # fastdhcp.metrics.Metrics
    cdef object guard             # fastdhcp.limits.EdgeGuard | None
    cdef object hold              # takes a list of held ACK tokens (GroupCommitter.hold_many)
    cdef bint debug
    cdef list received            # metrics.received / metrics.sent: counts by message type
    cdef list sent
    cdef object offer_latency     # metrics.offer_latency / ack_latency (Histogram)
    cdef object ack_latency
    cdef double bounds[MAX_BUCKETS]
    cdef int nbounds

    cpdef int read(self, object ep, int limit, double now, double t0) except -1
    cdef _datagram(self, object ep, object link, list out, list held, bytes data,
                   uint32_t src_ip, int src_port, double now, double t0)
    cpdef flush(self, object ep)
    cpdef deliver(self, list tokens)
    cdef int _bucket(self, double v) noexcept
