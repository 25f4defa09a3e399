# cython: language_level=3
"""Compiled core of the relay-mode DORA load driver (``fastdhcp.loadgen``).

The driver plays a DHCP relay agent (RFC 2131 section 4.1, RFC 1542): it owns
``relay_ip:server_port`` (or ``relay_ip:relay_port``: Kea moved to a test port with ``-p``
still answers relays at giaddr:67), writes giaddr = relay_ip and hops = 1 into every DISCOVER,
and the server answers the relay there.

Theory of operation: an exchange is one client's DISCOVER -> OFFER -> REQUEST -> ACK. Exchange
number ``seq`` uses xid = xid_base + seq and lives in ``ring[seq & ring_mask]`` until it is
answered or times out, so a reply is matched with one subtraction and one compare. Exchanges
start in sequence order, so the oldest one still in flight is found at ``tail``; timeouts are
taken from there. Packets are copies of two 300-byte templates with xid, chaddr and options
50/54 patched in; replies are read in place (op, xid, chaddr, yiaddr, options 53 and 54) without
any Python object. Sends and receives are batched with sendmmsg/recvmmsg on a non-blocking
socket. Two ways to wait: with a tick (the default, 1-4 ms) the loop does one turn per tick,
reading every reply that came meanwhile and sending every DISCOVER that fell due, so a wakeup
(tens of microseconds of CPU on a VM) is shared by many packets; with tick 0 it sleeps in ppoll
until the next reply, the next send slot or the next timeout. Latencies do not depend on the
mode: they end at the kernel's receive stamp (SO_TIMESTAMPNS), not when the loop reads the
reply. The whole loop runs without the GIL; Python gets control back between slices (progress
reports, signals).

Latencies (DISCOVER->OFFER and REQUEST->ACK) go to two log-linear histograms of nanoseconds:
exact below 64 ns, then 32 linear buckets per power of two (relative error under 3.2 %).
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, realloc
from libc.string cimport memcpy, memset

import os
import socket


cdef extern from *:
    """
    static inline int fdhcp_clz64(unsigned long long v) { return __builtin_clzll(v); }
    """
    int fdhcp_clz64(unsigned long long v) nogil


cdef extern from "<unistd.h>" nogil:
    int close(int fd)


# chaddr counter space: 48-bit MAC addresses
cdef uint64_t MAC_MASK = (<uint64_t>1 << 48) - 1


cdef inline int64_t mono_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline int64_t real_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline int64_t thread_cpu_ns() noexcept nogil:
    cdef rusage ru
    if getrusage(RUSAGE_THREAD, &ru) != 0:
        return 0
    return ((<int64_t>ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000
            + (<int64_t>ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000)


cdef inline uint32_t load_be32(const unsigned char* p) noexcept nogil:
    return ((<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16)
            | (<uint32_t>p[2] << 8) | <uint32_t>p[3])


cdef inline void store_be32(unsigned char* p, uint32_t v) noexcept nogil:
    p[0] = (v >> 24) & 0xFF
    p[1] = (v >> 16) & 0xFF
    p[2] = (v >> 8) & 0xFF
    p[3] = v & 0xFF


cdef inline void store_mac(unsigned char* p, uint64_t mac) noexcept nogil:
    cdef int i
    for i in range(6):
        p[i] = (mac >> (40 - 8 * i)) & 0xFF


cdef inline int hist_bucket(uint64_t v) noexcept nogil:
    cdef int e, b
    if v < 2 * HIST_SUB:
        return <int>v
    e = 63 - fdhcp_clz64(v)
    b = (e - HIST_SUB_BITS + 1) * HIST_SUB + <int>((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1))
    if b >= HIST_BUCKETS:
        b = HIST_BUCKETS - 1
    return b


cdef inline double bucket_mid(int b) noexcept nogil:
    """Middle of bucket b in ns (the reported value of any sample in it)."""
    cdef int e, sub
    cdef uint64_t low, width
    if b < 2 * HIST_SUB:
        return <double>b
    e = b // HIST_SUB + HIST_SUB_BITS - 1
    sub = b % HIST_SUB
    width = (<uint64_t>1) << (e - HIST_SUB_BITS)
    low = (<uint64_t>(HIST_SUB + sub)) << (e - HIST_SUB_BITS)
    return <double>low + (<double>width - 1.0) / 2.0


cdef double hist_percentile(const uint64_t* h, double q) noexcept nogil:
    """Smallest bucket whose cumulative count reaches q * total, in ms; 0.0 when empty."""
    cdef uint64_t total = 0, cum = 0, target
    cdef int b
    for b in range(HIST_BUCKETS):
        total += h[b]
    if total == 0:
        return 0.0
    target = <uint64_t>(q * <double>total)
    if <double>target < q * <double>total:
        target += 1
    if target < 1:
        target = 1
    for b in range(HIST_BUCKETS):
        cum += h[b]
        if cum >= target:
            return bucket_mid(b) / 1e6
    return bucket_mid(HIST_BUCKETS - 1) / 1e6


def _bucket_of(uint64_t ns):
    """Histogram bucket of a latency in ns (exposed for tests)."""
    return hist_bucket(ns)


def _bucket_mid(int b):
    """Reported value in ns of bucket b (exposed for tests)."""
    return bucket_mid(b)


def _percentile_of(samples_ns, double q):
    """Percentile in ms that the driver reports for these samples (exposed for tests)."""
    cdef uint64_t* h = <uint64_t*>calloc(HIST_BUCKETS, sizeof(uint64_t))
    if h == NULL:
        raise MemoryError()
    try:
        for v in samples_ns:
            h[hist_bucket(<uint64_t>v)] += 1
        return hist_percentile(h, q)
    finally:
        free(h)


cdef bytes _template(int msg_type, bytes relay, bint with_50_54):
    """A 300-byte BOOTREQUEST as a relay forwards it (RFC 2131 table 1, RFC 1542)."""
    cdef bytearray p = bytearray(PKT_LEN)
    p[0] = 1                    # op BOOTREQUEST
    p[1] = 1                    # htype ethernet
    p[2] = 6                    # hlen
    p[3] = 1                    # hops: one relay
    p[24:28] = relay                            # giaddr
    p[236:240] = b"\x63\x82\x53\x63"
    opts = bytearray([53, 1, msg_type])
    if with_50_54:
        opts += bytes([50, 4, 0, 0, 0, 0, 54, 4, 0, 0, 0, 0])
    opts += bytes([55, 6, 1, 3, 6, 15, 51, 54, 255])
    p[240:240 + len(opts)] = opts
    return bytes(p)


@cython.final
cdef class Driver:
    """One load run: a bound relay socket, the exchange ring, counters and histograms.

    Driven by ``fastdhcp.loadgen.run_load``; ``step(seconds)`` runs the loop without the GIL
    for at most that long and returns True once the run is over.
    """

    def __cinit__(self):
        self.fd = -1
        self.ring = NULL
        self.sbuf = NULL
        self.smsgs = NULL
        self.siov = NULL
        self.sq_slot = NULL
        self.rbuf = NULL
        self.rmsgs = NULL
        self.riov = NULL
        self.rsrc = NULL
        self.rctl = NULL
        self.hist_offer = NULL
        self.hist_ack = NULL
        self.acked = NULL

    def __init__(self, str server_ip, int server_port, str relay_ip, *, uint32_t clients=100_000,
                 double rate=0.0, uint32_t window=256, double duration=5.0,
                 max_exchanges=None, double timeout=1.0, uint64_t first_mac=0,
                 double tick=0.001, bint collect=False, int relay_port=0):
        cdef sockaddr_in local
        cdef int one = 1, bufsize = 8 << 20
        cdef uint64_t need, size
        cdef int i
        if clients < 1:
            raise ValueError("clients must be >= 1")
        if window < 1:
            raise ValueError("window must be >= 1")
        if not (0 <= rate < 1e9 and 0 <= duration < 1e9 and 0 <= timeout < 1e6
                and 0 <= tick < 1e3):
            raise ValueError("rate, duration, timeout and tick must be finite and >= 0")
        if not 0 < server_port < 65536 or not 0 <= relay_port < 65536:
            raise ValueError("ports must be 1..65535")
        if relay_port == 0:
            # A server answers a relay at giaddr on the server port (RFC 2131 4.1); some
            # servers moved to a test port still answer at giaddr:67 (Kea's -p): relay_port.
            relay_port = server_port
        server_n = socket.inet_aton(server_ip)
        relay_b = socket.inet_aton(relay_ip)
        self.first_mac = first_mac & MAC_MASK
        self.clients = clients
        self.rate = rate
        self.window = window
        self.duration_ns = <int64_t>(duration * 1e9)
        self.max_exchanges = -1 if max_exchanges is None else max(0, int(max_exchanges))
        self.timeout_ns = <int64_t>(timeout * 1e9)
        self.tick_ns = <int64_t>(tick * 1e9)
        self.collect = collect
        memcpy(&self.relay_n, PyBytes_AS_STRING(relay_b), 4)

        memset(&self.server, 0, sizeof(sockaddr_in))
        self.server.sin_family = AF_INET
        self.server.sin_port = htons(server_port)
        memcpy(&self.server.sin_addr.s_addr, PyBytes_AS_STRING(server_n), 4)

        memcpy(self.disc_tmpl, PyBytes_AS_STRING(_template(DHCPDISCOVER, relay_b, False)),
               PKT_LEN)
        memcpy(self.req_tmpl, PyBytes_AS_STRING(_template(DHCPREQUEST, relay_b, True)),
               PKT_LEN)
        self.off_req_50 = 240 + 3 + 2
        self.off_req_54 = 240 + 3 + 6 + 2

        # The ring must hold every exchange that can be in flight: the window in closed loop,
        # rate x (two phases' timeouts + slack) in open loop. A full ring forces the oldest
        # exchange out as a timeout.
        if rate > 0:
            need = <uint64_t>(rate * (2.0 * timeout + 1.0)) + SEND_BATCH * 4
        else:
            need = <uint64_t>window + SEND_BATCH * 4
        size = 1024
        while size < need and size < (1 << 21):
            size <<= 1
        self.ring_mask = <uint32_t>(size - 1)
        self.ring = <Slot*>calloc(size, sizeof(Slot))
        self.sbuf = <unsigned char*>calloc(SEND_BATCH, PKT_LEN)
        self.smsgs = <mmsghdr*>calloc(SEND_BATCH, sizeof(mmsghdr))
        self.siov = <iovec*>calloc(SEND_BATCH, sizeof(iovec))
        self.sq_slot = <uint32_t*>calloc(SEND_BATCH, sizeof(uint32_t))
        self.rbuf = <unsigned char*>calloc(RECV_BATCH, RECV_BUF)
        self.rmsgs = <mmsghdr*>calloc(RECV_BATCH, sizeof(mmsghdr))
        self.riov = <iovec*>calloc(RECV_BATCH, sizeof(iovec))
        self.rsrc = <sockaddr_in*>calloc(RECV_BATCH, sizeof(sockaddr_in))
        self.rctl = <unsigned char*>calloc(RECV_BATCH, RECV_CTL)
        self.hist_offer = <uint64_t*>calloc(HIST_BUCKETS, sizeof(uint64_t))
        self.hist_ack = <uint64_t*>calloc(HIST_BUCKETS, sizeof(uint64_t))
        if (self.ring == NULL or self.sbuf == NULL or self.smsgs == NULL or self.siov == NULL
                or self.sq_slot == NULL or self.rbuf == NULL or self.rmsgs == NULL
                or self.riov == NULL or self.rsrc == NULL or self.rctl == NULL
                or self.hist_offer == NULL
                or self.hist_ack == NULL):
            raise MemoryError()
        for i in range(SEND_BATCH):
            self.siov[i].iov_base = self.sbuf + i * PKT_LEN
            self.siov[i].iov_len = PKT_LEN
            self.smsgs[i].msg_hdr.msg_name = &self.server
            self.smsgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in)
            self.smsgs[i].msg_hdr.msg_iov = &self.siov[i]
            self.smsgs[i].msg_hdr.msg_iovlen = 1
        for i in range(RECV_BATCH):
            self.riov[i].iov_base = self.rbuf + i * RECV_BUF
            self.riov[i].iov_len = RECV_BUF
            self.rmsgs[i].msg_hdr.msg_name = &self.rsrc[i]
            self.rmsgs[i].msg_hdr.msg_iov = &self.riov[i]
            self.rmsgs[i].msg_hdr.msg_iovlen = 1

        self.xid_base = int.from_bytes(os.urandom(4), "little")
        self.head = 0
        self.tail = 0
        self.next_client = 0
        self.inflight = 0

        self.fd = socket_c(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP)
        if self.fd < 0:
            raise OSError(errno, os.strerror(errno))
        setsockopt(self.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(int))
        # Kernel receive stamps: latencies stay exact although replies are read in batches.
        setsockopt(self.fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(int))
        # Deep buffers so a burst of replies is not lost while the loop is busy sending;
        # the FORCE variants pass rmem_max when we are root, else the plain ones cap it.
        if setsockopt(self.fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof(int)) != 0:
            setsockopt(self.fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(int))
        if setsockopt(self.fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsize, sizeof(int)) != 0:
            setsockopt(self.fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(int))
        memset(&local, 0, sizeof(sockaddr_in))
        local.sin_family = AF_INET
        local.sin_port = htons(relay_port)
        local.sin_addr.s_addr = self.relay_n
        if bind(self.fd, <sockaddr*>&local, sizeof(sockaddr_in)) != 0:
            err = errno
            close(self.fd)
            self.fd = -1
            raise OSError(err, f"cannot bind relay address {relay_ip}:{relay_port}: "
                               f"{os.strerror(err)}")

    def __dealloc__(self):
        if self.fd >= 0:
            close(self.fd)
            self.fd = -1
        free(self.ring)
        free(self.sbuf)
        free(self.smsgs)
        free(self.siov)
        free(self.sq_slot)
        free(self.rbuf)
        free(self.rmsgs)
        free(self.riov)
        free(self.rsrc)
        free(self.rctl)
        free(self.hist_offer)
        free(self.hist_ack)
        free(self.acked)

    def close(self):
        """Close the relay socket (idempotent); counters stay readable."""
        if self.fd >= 0:
            close(self.fd)
            self.fd = -1

    # ---- hot path (no GIL) ----

    cdef void _fill_template(self, unsigned char* p, uint32_t xid, uint32_t client) noexcept nogil:
        store_be32(p + 4, xid)
        store_mac(p + 28, (self.first_mac + client) & MAC_MASK)

    cdef int _enqueue_discover(self, int64_t now) noexcept nogil:
        cdef Slot* s
        cdef uint32_t idx
        cdef unsigned char* p
        if self.head - self.tail > self.ring_mask:
            # Ring full: the oldest exchange has waited longer than the ring was sized for.
            s = &self.ring[self.tail & self.ring_mask]
            if s.state == SLOT_DISCOVER or s.state == SLOT_REQUEST:
                s.state = SLOT_DONE
                self.timeouts += 1
                self.inflight -= 1
            self.tail += 1
        if self.sq_n == SEND_BATCH:
            self._flush()
        idx = self.head & self.ring_mask
        s = &self.ring[idx]
        s.xid = self.xid_base + self.head
        s.state = SLOT_DISCOVER
        s.client = self.next_client
        s.t_sent = now
        self.next_client += 1
        if self.next_client >= self.clients:
            self.next_client = 0
        self.head += 1
        self.inflight += 1
        self.discovers += 1
        p = self.sbuf + self.sq_n * PKT_LEN
        memcpy(p, self.disc_tmpl, PKT_LEN)
        self._fill_template(p, s.xid, s.client)
        self.sq_slot[self.sq_n] = idx
        self.sq_n += 1
        return 0

    cdef int _enqueue_request(self, uint32_t idx) noexcept nogil:
        cdef Slot* s = &self.ring[idx]
        cdef unsigned char* p
        if self.sq_n == SEND_BATCH:
            self._flush()
        p = self.sbuf + self.sq_n * PKT_LEN
        memcpy(p, self.req_tmpl, PKT_LEN)
        self._fill_template(p, s.xid, s.client)
        # RFC 2131 4.3.2 SELECTING: 'requested IP address' = yiaddr, 'server identifier' =
        # the chosen server's identifier, ciaddr 0; same xid as the DISCOVER.
        memcpy(p + self.off_req_50, &s.yiaddr_n, 4)
        memcpy(p + self.off_req_54, &s.server_id_n, 4)
        self.sq_slot[self.sq_n] = idx
        self.sq_n += 1
        self.requests += 1
        return 0

    cdef void _flush(self) noexcept nogil:
        cdef int off = 0, r, i, waits = 0
        cdef int64_t t, t_rt
        cdef pollfd pfd
        cdef timespec ts
        cdef Slot* s
        while off < self.sq_n:
            r = sendmmsg(self.fd, self.smsgs + off, self.sq_n - off, 0)
            if r > 0:
                t = mono_ns()
                t_rt = real_ns()
                for i in range(off, off + r):
                    s = &self.ring[self.sq_slot[i]]
                    s.t_sent = t
                    s.t_sent_rt = t_rt
                off += r
            elif r < 0 and errno == EINTR:
                continue
            elif r < 0 and errno == EAGAIN and waits < 100:
                # Send buffer full (rare on loopback): wait for room, bounded.
                waits += 1
                self.send_waits += 1
                pfd.fd = self.fd
                pfd.events = POLLOUT
                pfd.revents = 0
                ts.tv_sec = 0
                ts.tv_nsec = 10000000
                ppoll(&pfd, 1, &ts, NULL)
            else:
                # This datagram is lost; its exchange will time out like a dropped one.
                self.send_errors += 1
                off += 1
        self.sq_n = 0

    cdef void _on_reply(self, const unsigned char* p, Py_ssize_t n, int64_t now,
                        int64_t rx_rt) noexcept nogil:
        cdef uint32_t xid, idx
        cdef Slot* s
        cdef Py_ssize_t i
        cdef unsigned char code, ln, mtype = 0
        cdef uint32_t sid_n = 0
        cdef uint64_t mac
        cdef int k
        cdef int64_t lat
        if n < 240 or p[0] != 2 or p[236] != 99 or p[237] != 130 or p[238] != 83 or p[239] != 99:
            self.malformed += 1
            return
        xid = load_be32(p + 4)
        idx = (xid - self.xid_base) & self.ring_mask
        s = &self.ring[idx]
        if s.xid != xid or (s.state != SLOT_DISCOVER and s.state != SLOT_REQUEST):
            self.stray += 1         # late (after its timeout), duplicate, or not ours
            return
        mac = (self.first_mac + s.client) & MAC_MASK
        for k in range(6):
            if p[28 + k] != ((mac >> (40 - 8 * k)) & 0xFF):
                self.stray += 1
                return
        # Option scan of the main area only: 53 and 54 are always there in replies to us.
        i = 240
        while i < n:
            code = p[i]
            if code == 0:
                i += 1
                continue
            if code == 255 or i + 1 >= n:
                break
            ln = p[i + 1]
            if i + 2 + ln > n:
                self.malformed += 1
                return
            if code == 53 and ln == 1:
                mtype = p[i + 2]
            elif code == 54 and ln == 4:
                memcpy(&sid_n, p + i + 2, 4)
            i += 2 + ln
        lat = rx_rt - s.t_sent_rt
        if lat < 0:
            lat = 0                 # the wall clock stepped back during the exchange
        if mtype == DHCPOFFER and s.state == SLOT_DISCOVER:
            self.offers += 1
            self.hist_offer[hist_bucket(<uint64_t>lat)] += 1
            memcpy(&s.yiaddr_n, p + 16, 4)
            s.server_id_n = sid_n if sid_n != 0 else self.server.sin_addr.s_addr
            s.state = SLOT_REQUEST
            s.t_sent = now
            self._enqueue_request(idx)
        elif mtype == DHCPACK and s.state == SLOT_REQUEST:
            self.acks += 1
            self.hist_ack[hist_bucket(<uint64_t>lat)] += 1
            s.state = SLOT_DONE
            self.inflight -= 1
            self.t_last_done = now
            if self.collect:
                if self.acked_n == self.acked_cap:
                    self._grow_acked()
                if self.acked_n < self.acked_cap:
                    self.acked[2 * self.acked_n] = s.client
                    self.acked[2 * self.acked_n + 1] = load_be32(p + 16)
                    self.acked_n += 1
        elif mtype == DHCPNAK:
            self.naks += 1
            s.state = SLOT_DONE
            self.inflight -= 1
            self.t_last_done = now
        else:
            self.stray += 1         # e.g. a second OFFER for the same exchange

    cdef void _grow_acked(self) noexcept nogil:
        cdef uint64_t cap = self.acked_cap * 2 if self.acked_cap else 4096
        cdef uint32_t* a = <uint32_t*>realloc(self.acked, cap * 2 * sizeof(uint32_t))
        if a != NULL:
            self.acked = a
            self.acked_cap = cap

    cdef int _receive(self, int64_t now) noexcept nogil:
        cdef int total = 0, r, i, rounds
        cdef int64_t t, t_rt, rx
        cdef cmsghdr* c
        cdef timespec* stamp
        for rounds in range(RECV_ROUNDS):
            for i in range(RECV_BATCH):
                self.rmsgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in)
                self.rmsgs[i].msg_hdr.msg_control = self.rctl + i * RECV_CTL
                self.rmsgs[i].msg_hdr.msg_controllen = RECV_CTL
                self.rmsgs[i].msg_hdr.msg_flags = 0
            r = recvmmsg(self.fd, self.rmsgs, RECV_BATCH, MSG_DONTWAIT, NULL)
            if r < 0 and errno == EINTR:
                continue
            if r <= 0:
                break
            t = mono_ns()
            t_rt = real_ns()
            for i in range(r):
                rx = t_rt
                c = CMSG_FIRSTHDR(&self.rmsgs[i].msg_hdr)
                while c != NULL:
                    if c.cmsg_level == SOL_SOCKET and c.cmsg_type == SCM_TIMESTAMPNS:
                        stamp = <timespec*>CMSG_DATA(c)
                        rx = <int64_t>stamp.tv_sec * 1000000000 + stamp.tv_nsec
                        break
                    c = CMSG_NXTHDR(&self.rmsgs[i].msg_hdr, c)
                self._on_reply(self.rbuf + i * RECV_BUF, self.rmsgs[i].msg_len, t, rx)
            total += r
            if r < RECV_BATCH:
                break
        return total

    cdef void _expire(self, int64_t now, bint all_) noexcept nogil:
        cdef Slot* s
        while self.tail != self.head:
            s = &self.ring[self.tail & self.ring_mask]
            if s.state == SLOT_DISCOVER or s.state == SLOT_REQUEST:
                if not all_ and now - s.t_sent < self.timeout_ns:
                    break
                s.state = SLOT_DONE
                self.timeouts += 1
                self.inflight -= 1
            self.tail += 1

    cdef void _finish(self, int64_t now) noexcept nogil:
        self.finished = 1

    cdef int _step(self, int64_t until) noexcept nogil:
        cdef int64_t now, due, n, wake, t, k
        cdef int got
        cdef bint backlog
        cdef Slot* s
        cdef pollfd pfd
        cdef timespec ts
        now = mono_ns()
        if not self.started_run:
            self.started_run = 1
            self.t_start = now
            self.t_end = now + self.duration_ns
        while True:
            now = mono_ns()
            self.turns += 1
            if not self.stopping and (now >= self.t_end or (
                    self.max_exchanges >= 0 and <int64_t>self.discovers >= self.max_exchanges)):
                self.stopping = 1
                self.t_stop = now
                self.t_drain_end = now + self.timeout_ns
            if self.stopping:
                if self.inflight == 0:
                    self._finish(now)
                    return 1
                if now >= self.t_drain_end:
                    self._expire(now, 1)
                    self._finish(now)
                    return 1
            got = self._receive(now)
            if self.sq_n:
                self._flush()
            self._expire(now, 0)
            n = 0
            backlog = 0
            if not self.stopping:
                if self.rate > 0:
                    # Open loop: the i-th DISCOVER is due at t_start + i / rate.
                    due = <int64_t>(<double>(now - self.t_start) * self.rate * 1e-9) + 1
                    n = due - <int64_t>self.discovers
                else:
                    # Closed loop: keep `window` exchanges in flight.
                    n = <int64_t>self.window - self.inflight
                if self.max_exchanges >= 0 and n > self.max_exchanges - <int64_t>self.discovers:
                    n = self.max_exchanges - <int64_t>self.discovers
                if n > 4 * SEND_BATCH:
                    n = 4 * SEND_BATCH
                    backlog = 1
                if n > 0:
                    for k in range(n):
                        self._enqueue_discover(now)
                    self._flush()
            if now >= until:
                return 0
            if self.tick_ns > 0 and not backlog:
                # Batched mode: one turn per tick reads every reply that came meanwhile and
                # sends every DISCOVER that fell due, so wakeups and syscalls are shared by
                # many packets; latencies stay exact thanks to the kernel receive stamps.
                wake = now + self.tick_ns
                if wake > until:
                    wake = until
                if self.stopping:
                    if self.t_drain_end < wake:
                        wake = self.t_drain_end
                elif self.t_end < wake:
                    wake = self.t_end
                t = mono_ns()
                if wake > t:
                    ts.tv_sec = (wake - t) // 1000000000
                    ts.tv_nsec = (wake - t) % 1000000000
                    ppoll(NULL, 0, &ts, NULL)
            elif self.tick_ns == 0 and got == 0 and n <= 0:
                # Event mode, idle: sleep until a reply arrives or the next thing falls due.
                wake = until
                if self.stopping:
                    if self.t_drain_end < wake:
                        wake = self.t_drain_end
                else:
                    if self.t_end < wake:
                        wake = self.t_end
                    if self.rate > 0:
                        t = self.t_start + <int64_t>(<double>self.discovers / self.rate * 1e9)
                        if t < wake:
                            wake = t
                if self.tail != self.head:
                    s = &self.ring[self.tail & self.ring_mask]
                    if s.state == SLOT_DISCOVER or s.state == SLOT_REQUEST:
                        t = s.t_sent + self.timeout_ns
                        if t < wake:
                            wake = t
                if wake > now:
                    pfd.fd = self.fd
                    pfd.events = POLLIN
                    pfd.revents = 0
                    ts.tv_sec = (wake - now) // 1000000000
                    ts.tv_nsec = (wake - now) % 1000000000
                    ppoll(&pfd, 1, &ts, NULL)

    # ---- Python-facing ----

    def step(self, double seconds):
        """Run the loop (GIL released) for at most `seconds`; True when the run is over."""
        cdef int done
        cdef int64_t until, c0
        if self.finished:
            return True
        if self.fd < 0:
            raise ValueError("driver is closed")
        with nogil:
            c0 = thread_cpu_ns()
            until = mono_ns() + <int64_t>(seconds * 1e9)
            done = self._step(until)
            self.cpu_ns += thread_cpu_ns() - c0
        return bool(done)

    @property
    def in_flight(self):
        """Exchanges sent and not yet answered nor timed out."""
        return self.inflight

    @property
    def done(self):
        """True once the run is over (stopped and drained or timed out)."""
        return bool(self.finished)

    @property
    def elapsed(self):
        """Seconds from the first DISCOVER to the later of the last send and the last answer."""
        cdef int64_t end
        if not self.started_run:
            return 0.0
        if self.stopping:
            end = self.t_stop
            if self.t_last_done > end:
                end = self.t_last_done
        else:
            end = mono_ns()
        return (end - self.t_start) / 1e9

    @property
    def cpu_seconds(self):
        """CPU time (user + system) of the thread(s) that ran the loop."""
        return self.cpu_ns / 1e9

    def percentiles(self, str which):
        """{'p50','p90','p99','p99.9'} in ms of 'offer' (DISCOVER->OFFER) or 'ack' latencies."""
        cdef uint64_t* h
        if which == "offer":
            h = self.hist_offer
        elif which == "ack":
            h = self.hist_ack
        else:
            raise ValueError(which)
        return {
            "p50": hist_percentile(h, 0.5),
            "p90": hist_percentile(h, 0.9),
            "p99": hist_percentile(h, 0.99),
            "p99.9": hist_percentile(h, 0.999),
        }

    def histogram(self, str which):
        """Non-empty buckets as [(bucket value in ns, count)] of 'offer' or 'ack'."""
        cdef uint64_t* h = self.hist_offer if which == "offer" else self.hist_ack
        return [(bucket_mid(b), h[b]) for b in range(HIST_BUCKETS) if h[b]]

    def acked_leases(self):
        """[(chaddr as int, yiaddr as int)] of every ACK, in arrival order (collect=True)."""
        cdef uint64_t i
        return [((self.first_mac + self.acked[2 * i]) & MAC_MASK, self.acked[2 * i + 1])
                for i in range(self.acked_n)]
