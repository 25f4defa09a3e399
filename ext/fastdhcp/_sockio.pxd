# Declarations for fastdhcp._sockio: batched UDP I/O (recvmmsg/sendmmsg) for the service.

cimport cython
from libc.stdint cimport uint16_t, uint32_t


from fastdhcp._sysnet cimport (
    AF_INET, CLOCK_MONOTONIC, CMSG_DATA, CMSG_FIRSTHDR, CMSG_LEN, CMSG_SPACE, MSG_DONTWAIT,
    MSG_TRUNC, SOL_UDP, TFD_CLOEXEC, TFD_NONBLOCK, UDP_SEGMENT, close, cmsghdr, getsockopt,
    htonl, htons, iovec, itimerspec, mmsghdr, msghdr, ntohl, ntohs, read, recvmmsg, sendmmsg,
    sockaddr_in, socklen_t, timerfd_create, timerfd_gettime, timerfd_settime,
)


cdef enum:
    RECV_BATCH = 64        # datagrams per recvmmsg call
    RECV_SIZE = 65536      # bytes per receive slot: the largest UDP payload fits
    SEND_BATCH = 64        # datagrams per sendmmsg call
    GSO_MAX_SEGMENTS = 64  # datagrams per UDP GSO message (the kernel's UDP_MAX_SEGMENTS)
    GSO_MAX_BYTES = 65000  # payload of one GSO message: under the 65,507 of one UDP datagram
    GSO_MAX_SIZE = 1472    # largest datagram sent segmented: an Ethernet MTU's UDP payload
    CMSG_SLOT = 32         # bytes of control buffer per message: CMSG_SPACE(2) is 24


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
    cdef iovec* siov           # by slot: a message's datagrams take consecutive slots
    cdef sockaddr_in* saddr    # by slot: a message's destination is that of its first slot
    cdef unsigned char* scmsg  # by message: the UDP_SEGMENT control message of a GSO send
    cdef int slot_item[SEND_BATCH]   # slot -> index of its datagram in the batch
    cdef int msg_start[SEND_BATCH]   # message -> its first slot
    cdef int msg_count[SEND_BATCH]   # message -> how many datagrams (slots) it carries
    cdef object sock  # keeps the socket (and so the fd) alive while this object is
    # UDP GSO (see the module docstring): on until the kernel refuses it; counters cumulative
    cdef readonly bint gso
    cdef readonly int gso_errno        # why it was turned off (0: it was not)
    cdef readonly long long gso_sends      # GSO messages sent (each 2+ datagrams)
    cdef readonly long long gso_datagrams  # datagrams that left inside them
    cdef readonly long long gso_fallbacks  # GSO messages refused and re-sent one by one

    cdef int _plan(self, list items, Py_ssize_t base, int count) except -1
    cdef void _slot(self, int slot, int k, bytes data, uint32_t ip, int port) noexcept
    cdef void _unplan(self, int first, int nslots) noexcept

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
