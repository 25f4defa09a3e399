# Declarations of fastdhcp._packetpath: the service's compiled per-datagram path.

cimport cython
from libc.stdint cimport uint32_t

from fastdhcp._codec cimport Message
from fastdhcp._engine cimport Engine
from fastdhcp._hascope cimport ScopeFilter
from fastdhcp._sockio cimport Outgoing


cdef enum:
    MAX_BUCKETS = 32       # latency histogram bounds the flush can sum in C


@cython.final
cdef class HeldAck:
    cdef readonly object endpoint  # the service's Endpoint the ACK leaves from
    cdef readonly Outgoing out
    cdef readonly double held_at   # monotonic
    cdef readonly object lease     # the binding (fastdhcp._lease.Lease) it acknowledges


@cython.final
cdef class HeldOffer:
    cdef readonly object endpoint  # the service's Endpoint the OFFER leaves from
    cdef readonly Outgoing out
    cdef readonly Message msg      # the DISCOVER, handled again if the address is in use
    cdef readonly bytes key        # its client key (Engine.ping_result)
    cdef readonly uint32_t ip      # the address to probe (Decision.probe)
    cdef readonly double held_at   # monotonic
    cdef readonly int tries        # addresses of this DISCOVER found in use before this one


@cython.final
cdef class PacketPath:
    cdef Engine engine
    cdef object metrics           # fastdhcp.metrics.Metrics
    cdef object report            # fastdhcp.pathreport.PathReport
    cdef object l2_dest           # (endpoint, Decision) -> int: the layer-2 unicast address
    cdef object guard             # fastdhcp.limits.EdgeGuard | None
    cdef object hold              # takes a list of held ACK tokens (GroupCommitter.hold_many)
    cdef object probe             # takes a list of HeldOffer (the service's ping-check), or None
    cdef bint debug
    cdef ScopeFilter ha           # the HA scope filter, or None
    cdef object leasequery        # (endpoint, Message, src_ip, now, t0) -> Outgoing | None
    cdef list received            # metrics.received / metrics.sent: counts by message type
    cdef list sent
    cdef object offer_latency     # metrics.offer_latency / ack_latency (Histogram)
    cdef object ack_latency
    cdef double bounds[MAX_BUCKETS]
    cdef int nbounds
    cdef uint32_t worker          # this worker's index and the worker count (1: one process)
    cdef uint32_t workers
    cdef readonly long long others  # datagrams another worker's (broadcasts), not handled
    cdef object forward           # (ep, msg, data, src_ip, src_port) -> bool, or None
    cdef bint forward_all         # offer DISCOVER/SELECTING to `forward` too
    cdef bint injecting           # handling a forwarded datagram (never forwarded again)
    cdef readonly long long forwarded  # datagrams handed to another worker

    cpdef int read(self, object ep, int limit, double now, double t0) except -1
    cdef _event(self, object kind, str where, uint32_t src_ip, int src_port, Message msg,
                str reason)
    cdef _datagram(self, object ep, str where, object link, list out, list held, list probes,
                   bytes data, uint32_t src_ip, int src_port, double now, double t0)
    cdef _decide(self, object ep, str where, object link, list out, list held, list probes,
                 Message msg, int mtype, uint32_t src_ip, int src_port, double now, double t0,
                 int tries)
    cpdef int redo(self, HeldOffer offer, double now) except -1
    cpdef int inject(self, object ep, bytes data, uint32_t src_ip, int src_port, double now,
                     double t0) except -1
    cpdef flush(self, object ep)
    cpdef deliver(self, list held)
    cdef int _bucket(self, double v) noexcept
