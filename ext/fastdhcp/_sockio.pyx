# cython: language_level=3
"""Batched UDP I/O for the service: one ``recvmmsg`` reads up to 64 datagrams, one
``sendmmsg`` sends up to 64 replies.

Why: on loopback and on a busy link, most of the cost of a UDP request/reply pair is per
system call (and per wake-up of the peer), not per byte. Reading a burst in one call and
sending the replies of that burst (or of one group commit) in one call is what lets a Python
server get near a C one (TESTING.md: uvloop + batched I/O within 10% of C).

``DatagramIO(sock)`` wraps a non-blocking ``AF_INET`` UDP socket (which it keeps alive):
- ``recv(max_count) -> list[(data: bytes, src_ip: int, src_port: int, truncated: bool)]``:
  at most ``min(max_count, 64)`` datagrams, ``[]`` when none is waiting; raises ``OSError`` on
  an error other than EAGAIN/EINTR. ``truncated`` is True for a datagram longer than 65536
  bytes (its data is cut).
- ``discard(max_count) -> int``: read and drop up to ``max_count`` datagrams (a disabled
  service, dhcp-disable); how many.
- ``send(items) -> list[(index, errno)]``: ``items`` is a list of tuples whose first three
  elements are ``(data: bytes, dest_ip: int, dest_port: int)``; returns the ones that could not
  be sent (empty when all left). EAGAIN (send buffer full) fails the rest of the batch.
Addresses are host-order ints, as everywhere inside fastdhcp.

``PaceTimer()`` is a one-shot ``CLOCK_MONOTONIC`` timerfd for the service's read pacing, which
wants paces finer than uvloop's timers (whole milliseconds): watch ``fd`` for readability,
``arm(seconds)`` (microsecond resolution), ``clear()`` once it fired, ``disarm()``, ``close()``.

Both calls release the GIL although they never block for long: under saturation those
releases are the windows in which the group-commit writer thread gets the GIL without waiting
for a forced switch. Keeping the GIL here was measured: at 20,000 DORA/s the writer starved
(24-50 % of exchanges lost, against none with the releases).
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport uint32_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset


@cython.final
@cython.freelist(128)
cdef class Outgoing:
    """One datagram for :meth:`DatagramIO.send`: ``data`` to ``dest_ip:dest_port`` (host
    order). A reply also carries its ``message_type`` and the monotonic ``received_at`` of its
    request (0 for datagrams that are not replies)."""

    def __init__(self, bytes data, uint32_t dest_ip, int dest_port, int message_type=0,
                 double received_at=0.0):
        self.data = data
        self.dest_ip = dest_ip
        self.dest_port = dest_port
        self.message_type = message_type
        self.received_at = received_at

    def __repr__(self):
        return (f"Outgoing({len(self.data)} bytes to {self.dest_ip:#010x}:{self.dest_port}, "
                f"type {self.message_type})")


@cython.final
cdef class DatagramIO:
    """Batched send/receive on one non-blocking UDP socket (see the module docstring)."""

    def __cinit__(self, sock):
        cdef int i
        self.sock = sock
        self.fd = sock.fileno()
        self.rmsgs = <mmsghdr*>calloc(RECV_BATCH, sizeof(mmsghdr))
        self.riov = <iovec*>calloc(RECV_BATCH, sizeof(iovec))
        self.raddr = <sockaddr_in*>calloc(RECV_BATCH, sizeof(sockaddr_in))
        self.rbuf = <unsigned char*>calloc(RECV_BATCH, RECV_SIZE)
        self.smsgs = <mmsghdr*>calloc(SEND_BATCH, sizeof(mmsghdr))
        self.siov = <iovec*>calloc(SEND_BATCH, sizeof(iovec))
        self.saddr = <sockaddr_in*>calloc(SEND_BATCH, sizeof(sockaddr_in))
        if (self.rmsgs == NULL or self.riov == NULL or self.raddr == NULL or self.rbuf == NULL
                or self.smsgs == NULL or self.siov == NULL or self.saddr == NULL):
            raise MemoryError()
        for i in range(RECV_BATCH):
            self.riov[i].iov_base = self.rbuf + <size_t>i * RECV_SIZE
            self.riov[i].iov_len = RECV_SIZE
        for i in range(SEND_BATCH):
            self.saddr[i].sin_family = AF_INET

    def __dealloc__(self):
        free(self.rmsgs)
        free(self.riov)
        free(self.raddr)
        free(self.rbuf)
        free(self.smsgs)
        free(self.siov)
        free(self.saddr)

    cdef int recv_c(self, int max_count) except -1:
        """Read up to ``max_count`` (at most 64) waiting datagrams into the receive slots;
        their count, 0 when none is waiting. Slot ``i``: ``riov[i]`` (data), ``rmsgs[i].msg_len``,
        ``raddr[i]``, ``rmsgs[i].msg_hdr.msg_flags`` (MSG_TRUNC). Valid until the next call."""
        cdef int i, n
        cdef unsigned int vlen = RECV_BATCH if max_count > RECV_BATCH else max_count
        cdef mmsghdr* m
        if max_count <= 0:
            return 0
        # msg_namelen and msg_flags are results: reset them for every call
        for i in range(<int>vlen):
            m = &self.rmsgs[i]
            m.msg_hdr.msg_name = &self.raddr[i]
            m.msg_hdr.msg_namelen = sizeof(sockaddr_in)
            m.msg_hdr.msg_iov = &self.riov[i]
            m.msg_hdr.msg_iovlen = 1
            m.msg_hdr.msg_control = NULL
            m.msg_hdr.msg_controllen = 0
            m.msg_hdr.msg_flags = 0
        while True:
            with nogil:
                n = recvmmsg(self.fd, self.rmsgs, vlen, MSG_DONTWAIT, NULL)
            if n >= 0:
                return n
            if errno == EINTR:
                continue
            if errno == EAGAIN:
                return 0
            raise OSError(errno, "recvmmsg failed")

    cpdef list recv(self, int max_count):
        """Up to ``max_count`` (at most 64) waiting datagrams; see the module docstring."""
        cdef int i
        cdef int n = self.recv_c(max_count)
        cdef list out = []
        cdef mmsghdr* m
        for i in range(n):
            m = &self.rmsgs[i]
            out.append((
                PyBytes_FromStringAndSize(<char*>self.riov[i].iov_base,
                                          min(<size_t>m.msg_len, <size_t>RECV_SIZE)),
                ntohl(self.raddr[i].sin_addr.s_addr),
                ntohs(self.raddr[i].sin_port),
                (m.msg_hdr.msg_flags & MSG_TRUNC) != 0,
            ))
        return out

    cpdef int discard(self, int max_count) except -1:
        """Read and throw away up to ``max_count`` waiting datagrams (any number, in batches of
        64), making no object for them; how many. What a disabled service does (dhcp-disable):
        the socket is still drained, so its buffer does not fill and nothing queued while
        disabled is answered, late, after dhcp-enable."""
        cdef int n = 0, got
        while n < max_count:
            got = self.recv_c(max_count - n)
            n += got
            if got < <int>RECV_BATCH:  # drained
                break
        return n

    cpdef list send(self, list items):
        """Send every :class:`Outgoing` of ``items``; returns ``[(index, errno)]`` of the ones
        that failed."""
        cdef Py_ssize_t total = len(items), base = 0, k
        cdef int count, off, r, err
        cdef list failed = []
        cdef Outgoing item
        cdef bytes data
        cdef mmsghdr* m
        while base < total:
            count = <int>min(total - base, <Py_ssize_t>SEND_BATCH)
            for k in range(count):
                item = <Outgoing?>items[base + k]
                data = item.data
                self.siov[k].iov_base = PyBytes_AS_STRING(data)
                self.siov[k].iov_len = <size_t>PyBytes_GET_SIZE(data)
                self.saddr[k].sin_addr.s_addr = htonl(item.dest_ip)
                self.saddr[k].sin_port = htons(<unsigned short>item.dest_port)
                m = &self.smsgs[k]
                memset(m, 0, sizeof(mmsghdr))
                m.msg_hdr.msg_name = &self.saddr[k]
                m.msg_hdr.msg_namelen = sizeof(sockaddr_in)
                m.msg_hdr.msg_iov = &self.siov[k]
                m.msg_hdr.msg_iovlen = 1
            off = 0
            while off < count:
                with nogil:
                    r = sendmmsg(self.fd, self.smsgs + off, <unsigned int>(count - off), 0)
                if r > 0:
                    off += r
                    continue
                err = errno if r < 0 else EAGAIN
                if err == EINTR:
                    continue
                if err == EAGAIN:
                    # the send buffer is full: the rest of the batch fails
                    for k in range(off, total - base):
                        failed.append((base + k, err))
                    return failed
                failed.append((base + off, err))  # this datagram failed; go on with the next
                off += 1
            base += count
        return failed


@cython.final
cdef class PaceTimer:
    """A one-shot monotonic timer as a file descriptor (timerfd); see the module docstring."""

    def __cinit__(self):
        self.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if self.fd < 0:
            raise OSError(errno, "timerfd_create failed")
        self.armed = False

    def __dealloc__(self):
        if self.fd >= 0:
            close(self.fd)

    def fileno(self) -> int:
        return self.fd

    cpdef arm(self, double seconds):
        """Fire once, ``seconds`` from now (at least a microsecond: a zero would disarm)."""
        cdef itimerspec its
        cdef long long ns = <long long>(seconds * 1e9)
        if self.fd < 0:
            raise ValueError("PaceTimer is closed")
        if ns < 1000:
            ns = 1000
        memset(&its, 0, sizeof(its))
        its.it_value.tv_sec = ns // 1000000000
        its.it_value.tv_nsec = ns % 1000000000
        if timerfd_settime(self.fd, 0, &its, NULL) != 0:
            raise OSError(errno, "timerfd_settime failed")
        self.armed = True

    cpdef disarm(self):
        """Cancel a pending expiry (and forget one that fired unread)."""
        cdef itimerspec its
        if self.fd < 0:
            return
        memset(&its, 0, sizeof(its))
        if timerfd_settime(self.fd, 0, &its, NULL) != 0:
            raise OSError(errno, "timerfd_settime failed")
        self.clear()
        self.armed = False

    cpdef int clear(self) except -1:
        """Consume the expiry so the descriptor stops being readable; 1 if it had fired."""
        cdef unsigned long long n = 0
        cdef ssize_t r
        if self.fd < 0:
            return 0
        r = read(self.fd, &n, sizeof(n))
        if r == sizeof(n):
            self.armed = False
            return 1
        if errno == EAGAIN or errno == EINTR:
            return 0
        raise OSError(errno, "timerfd read failed")

    def remaining(self) -> float:
        """Seconds until it fires; 0.0 when not armed (or already fired)."""
        cdef itimerspec its
        if self.fd < 0 or timerfd_gettime(self.fd, &its) != 0:
            return 0.0
        return its.it_value.tv_sec + its.it_value.tv_nsec * 1e-9

    def close(self) -> None:
        if self.fd >= 0:
            close(self.fd)
            self.fd = -1
        self.armed = False
