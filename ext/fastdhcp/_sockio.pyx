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
- ``send(items) -> list[(index, errno)]``: ``items`` is a list of :class:`Outgoing`; returns
  the ones that could not be sent (empty when all left). EAGAIN (send buffer full) fails the
  rest of the batch.
Addresses are host-order ints, as everywhere inside fastdhcp.

UDP GSO (``UDP_SEGMENT``, Linux 4.18): the replies of one batch that go to the same unicast
address and port with the same size (a relay's replies: one giaddr:67, and the replies of one
subnet are mostly one size) leave as one message of up to 64 datagrams, a ``UDP_SEGMENT``
control message giving the size, inside the same ``sendmmsg``. The kernel walks routing,
the IP and UDP output and the socket accounting once per message instead of once per
datagram and cuts it into the datagrams at the last moment (in the device, or where the
receiver's socket gets them), so the relay still receives every reply as its own datagram.
Broadcasts (255.255.255.255) and datagrams larger than an Ethernet MTU's payload are sent
one by one. ``DatagramIO(sock, gso=False)`` never tries; a kernel or socket without it
(the socket option probe fails, or a send fails with EIO or ENOPROTOOPT) turns it off for
the socket for good (``gso`` False, ``gso_errno`` why) and the batch's rest is sent one by
one; a GSO message refused with EINVAL (a path MTU below the size) is re-sent one by one
(``gso_fallbacks``). ``gso_sends`` and ``gso_datagrams`` count what left that way.

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
from libc.errno cimport EAGAIN, EINTR, EINVAL, EIO, ENOPROTOOPT, errno
from libc.stdint cimport uint16_t, uint32_t
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

    def __cinit__(self, sock, bint gso=True):
        cdef int i, val = 0
        cdef socklen_t vlen = sizeof(val)
        self.sock = sock
        self.fd = sock.fileno()
        self.rmsgs = <mmsghdr*>calloc(RECV_BATCH, sizeof(mmsghdr))
        self.riov = <iovec*>calloc(RECV_BATCH, sizeof(iovec))
        self.raddr = <sockaddr_in*>calloc(RECV_BATCH, sizeof(sockaddr_in))
        self.rbuf = <unsigned char*>calloc(RECV_BATCH, RECV_SIZE)
        self.smsgs = <mmsghdr*>calloc(SEND_BATCH, sizeof(mmsghdr))
        self.siov = <iovec*>calloc(SEND_BATCH, sizeof(iovec))
        self.saddr = <sockaddr_in*>calloc(SEND_BATCH, sizeof(sockaddr_in))
        self.scmsg = <unsigned char*>calloc(SEND_BATCH, CMSG_SLOT)
        if (self.rmsgs == NULL or self.riov == NULL or self.raddr == NULL or self.rbuf == NULL
                or self.smsgs == NULL or self.siov == NULL or self.saddr == NULL
                or self.scmsg == NULL):
            raise MemoryError()
        for i in range(RECV_BATCH):
            self.riov[i].iov_base = self.rbuf + <size_t>i * RECV_SIZE
            self.riov[i].iov_len = RECV_SIZE
        for i in range(SEND_BATCH):
            self.saddr[i].sin_family = AF_INET
        self.gso = False
        self.gso_errno = 0
        if gso:
            # a kernel without UDP GSO does not know the option (ENOPROTOOPT)
            if getsockopt(self.fd, SOL_UDP, UDP_SEGMENT, &val, &vlen) == 0:
                self.gso = True
            else:
                self.gso_errno = errno

    def __dealloc__(self):
        free(self.rmsgs)
        free(self.riov)
        free(self.raddr)
        free(self.rbuf)
        free(self.smsgs)
        free(self.siov)
        free(self.saddr)
        free(self.scmsg)

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

    cdef int _plan(self, list items, Py_ssize_t base, int count) except -1:
        """Lay out ``items[base:base + count]`` (at most SEND_BATCH) as messages: with GSO on,
        datagrams of one unicast destination and size share a message (in their order, at
        the place of the first); the others have one each. Returns the number of messages."""
        cdef int k, j, n, nmsg = 0, slot = 0, size
        cdef uint32_t ip
        cdef int port
        cdef Py_ssize_t total
        cdef Outgoing item, other
        cdef bytes data
        cdef char used[SEND_BATCH]
        cdef cmsghdr* c
        cdef mmsghdr* m
        memset(used, 0, sizeof(used))
        for k in range(count):
            if used[k]:
                continue
            used[k] = 1
            item = <Outgoing?>items[base + k]
            data = item.data
            size = <int>PyBytes_GET_SIZE(data)
            ip = item.dest_ip
            port = item.dest_port
            self.msg_start[nmsg] = slot
            self._slot(slot, k, data, ip, port)
            slot += 1
            n = 1
            if self.gso and ip != 0xFFFFFFFF and 0 < size <= GSO_MAX_SIZE:
                total = size
                for j in range(k + 1, count):
                    if n >= GSO_MAX_SEGMENTS or total + size > GSO_MAX_BYTES:
                        break
                    if used[j]:
                        continue
                    other = <Outgoing?>items[base + j]
                    if (other.dest_ip != ip or other.dest_port != port
                            or PyBytes_GET_SIZE(other.data) != size):
                        continue
                    used[j] = 1
                    self._slot(slot, j, other.data, ip, port)
                    slot += 1
                    n += 1
                    total += size
            m = &self.smsgs[nmsg]
            memset(m, 0, sizeof(mmsghdr))
            m.msg_hdr.msg_name = &self.saddr[self.msg_start[nmsg]]
            m.msg_hdr.msg_namelen = sizeof(sockaddr_in)
            m.msg_hdr.msg_iov = &self.siov[self.msg_start[nmsg]]
            m.msg_hdr.msg_iovlen = n
            if n > 1:
                m.msg_hdr.msg_control = self.scmsg + <size_t>nmsg * CMSG_SLOT
                m.msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t))
                c = CMSG_FIRSTHDR(&m.msg_hdr)
                c.cmsg_level = SOL_UDP
                c.cmsg_type = UDP_SEGMENT
                c.cmsg_len = CMSG_LEN(sizeof(uint16_t))
                (<uint16_t*>CMSG_DATA(c))[0] = <uint16_t>size
            self.msg_count[nmsg] = n
            nmsg += 1
        return nmsg

    cdef void _slot(self, int slot, int k, bytes data, uint32_t ip, int port) noexcept:
        self.slot_item[slot] = k
        self.siov[slot].iov_base = PyBytes_AS_STRING(data)
        self.siov[slot].iov_len = <size_t>PyBytes_GET_SIZE(data)
        self.saddr[slot].sin_addr.s_addr = htonl(ip)
        self.saddr[slot].sin_port = htons(<unsigned short>port)

    cdef void _unplan(self, int first, int nslots) noexcept:
        """Re-lay the ``nslots`` slots from message ``first`` on as one message per datagram
        (after the kernel refused a GSO message): message ``first + i`` sends slot
        ``msg_start[first] + i`` (never ahead of it: every message had a slot)."""
        cdef int i, s0 = self.msg_start[first]
        cdef mmsghdr* m
        for i in range(nslots):
            m = &self.smsgs[first + i]
            memset(m, 0, sizeof(mmsghdr))
            self.msg_start[first + i] = s0 + i
            self.msg_count[first + i] = 1
            m.msg_hdr.msg_name = &self.saddr[s0 + i]
            m.msg_hdr.msg_namelen = sizeof(sockaddr_in)
            m.msg_hdr.msg_iov = &self.siov[s0 + i]
            m.msg_hdr.msg_iovlen = 1

    cpdef list send(self, list items):
        """Send every :class:`Outgoing` of ``items``; returns ``[(index, errno)]`` of the ones
        that failed (see the module docstring for UDP GSO)."""
        cdef Py_ssize_t total = len(items), base = 0
        cdef Py_ssize_t k
        cdef int count, nmsg, off, r, err, i, s, slots
        cdef list failed = []
        while base < total:
            count = <int>min(total - base, <Py_ssize_t>SEND_BATCH)
            nmsg = self._plan(items, base, count)
            off = 0
            while off < nmsg:
                with nogil:
                    r = sendmmsg(self.fd, self.smsgs + off, <unsigned int>(nmsg - off), 0)
                if r > 0:
                    for i in range(off, off + r):
                        if self.msg_count[i] > 1:
                            self.gso_sends += 1
                            self.gso_datagrams += self.msg_count[i]
                    off += r
                    continue
                err = errno if r < 0 else EAGAIN
                if err == EINTR:
                    continue
                if err == EAGAIN:
                    # the send buffer is full: the rest of the batch fails
                    for s in range(self.msg_start[off], count):
                        failed.append((base + self.slot_item[s], err))
                    for k in range(base + count, total):
                        failed.append((k, err))
                    return failed
                if self.msg_count[off] > 1 and (err == EIO or err == ENOPROTOOPT
                                                or err == EINVAL):
                    # the kernel refused the GSO message: the rest one datagram a message
                    # (EIO, ENOPROTOOPT: this socket or kernel cannot; EINVAL: this size
                    # cannot, e.g. above the path MTU)
                    if err == EINVAL:
                        self.gso_fallbacks += 1
                    else:
                        self.gso = False
                        self.gso_errno = err
                    slots = count - self.msg_start[off]
                    self._unplan(off, slots)
                    nmsg = off + slots
                    continue
                for s in range(self.msg_start[off], self.msg_start[off] + self.msg_count[off]):
                    failed.append((base + self.slot_item[s], err))  # this message failed
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
