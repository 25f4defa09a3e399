# Declarations for fastdhcp._sockio: batched UDP I/O (recvmmsg/sendmmsg) for the service.

cimport cython
from libc.stdint cimport uint16_t, uint32_t


from fastdhcp._sysnet cimport (
    AF_INET, CLOCK_MONOTONIC, MSG_DONTWAIT, MSG_TRUNC, TFD_CLOEXEC, TFD_NONBLOCK, close, htonl,
    htons, iovec, itimerspec, mmsghdr, msghdr, ntohl, ntohs, read, recvmmsg, sendmmsg,
    sockaddr_in, socklen_t, timerfd_create, timerfd_gettime, timerfd_settime,
)


cdef enum:
    RECV_BATCH = 64        # datagrams per recvmmsg call
    RECV_SIZE = 65536      # bytes per receive slot: the largest UDP payload fits
    SEND_BATCH = 64        # datagrams per sendmmsg call


@cython.final
cdef class Outgoing:
    # One datagram to send and where; for a reply, its message type and the monotonic time its
    # request was received (the packet path's latency histograms).
    cdef readonly bytes data
    cdef readonly uint32_t dest_ip
    cdef readonly int dest_port
    cdef readonly int message_type
    cdef readonly double received_at


cdef class DatagramIO:
    cdef int fd
    cdef mmsghdr* rmsgs
    cdef iovec* riov
    cdef sockaddr_in* raddr
    cdef unsigned char* rbuf
    cdef mmsghdr* smsgs
    cdef iovec* siov
    cdef sockaddr_in* saddr
    cdef object sock  # keeps the socket (and so the fd) alive while this object is

    cdef int recv_c(self, int max_count) except -1
    cpdef list recv(self, int max_count)
    cpdef int discard(self, int max_count) except -1
    cpdef list send(self, list items)


@cython.final
cdef class PaceTimer:
    cdef readonly int fd
    cdef readonly bint armed

    cpdef arm(self, double seconds)
    cpdef disarm(self)
    cpdef int clear(self) except -1
