# Declarations of the compiled relay-mode DORA load driver (see _loadgen.pyx).

cimport cython
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t


from fastdhcp._sysnet cimport (
    AF_INET, CLOCK_MONOTONIC, CLOCK_REALTIME, CMSG_DATA, CMSG_FIRSTHDR, CMSG_NXTHDR,
    IPPROTO_UDP, MSG_DONTWAIT, SCM_TIMESTAMPNS, SO_RCVBUF, SO_RCVBUFFORCE, SO_REUSEADDR,
    SO_SNDBUF, SO_SNDBUFFORCE, SO_TIMESTAMPNS, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK,
    SOL_SOCKET, bind, clock_gettime, cmsghdr, htonl, htons, in_addr, in_addr_t, iovec,
    mmsghdr, msghdr, ntohl, recvmmsg, sendmmsg, setsockopt, sockaddr, sockaddr_in, socket_c,
    socklen_t, time_t, timespec,
)


cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    enum: POLLIN
    enum: POLLOUT
    ctypedef unsigned long nfds_t
    int ppoll(pollfd* fds, nfds_t nfds, const timespec* tmo, const void* sigmask)


cdef extern from "<sys/resource.h>" nogil:
    struct timeval:
        long tv_sec
        long tv_usec
    struct rusage:
        timeval ru_utime
        timeval ru_stime
    enum: RUSAGE_THREAD
    int getrusage(int who, rusage* usage)


cdef enum:
    PKT_LEN = 300          # what real clients and perfdhcp send (BOOTP minimum)
    SEND_BATCH = 64        # datagrams per sendmmsg
    RECV_BATCH = 64        # datagrams per recvmmsg
    RECV_BUF = 1536        # one reply; DHCP replies over loopback fit easily
    RECV_ROUNDS = 8        # recvmmsg calls per loop turn before sending again
    RECV_CTL = 64          # control buffer per reply: one SCM_TIMESTAMPNS
    # log-linear histogram: exact below 64 ns, then 32 sub-buckets per power of two (3 %)
    HIST_SUB_BITS = 5
    HIST_SUB = 32
    HIST_BUCKETS = 1216    # covers up to 2^41 ns (~37 min)


cdef enum SlotState:
    SLOT_FREE = 0
    SLOT_DISCOVER = 1      # DISCOVER sent, waiting for the OFFER
    SLOT_REQUEST = 2       # REQUEST sent, waiting for the ACK/NAK
    SLOT_DONE = 3


cdef enum DhcpType:
    DHCPDISCOVER = 1
    DHCPOFFER = 2
    DHCPREQUEST = 3
    DHCPACK = 5
    DHCPNAK = 6


# One exchange in flight; the ring is indexed by (xid - xid_base) & mask.
cdef struct Slot:
    uint32_t xid
    uint8_t state
    uint32_t client       # client index: chaddr = first_mac + client
    uint32_t yiaddr_n     # offered address, network order (copied into option 50)
    uint32_t server_id_n  # offer's option 54, network order (copied into option 54)
    int64_t t_sent        # monotonic ns of the last send of this exchange (timeouts)
    int64_t t_sent_rt     # CLOCK_REALTIME ns of the same send (latency vs kernel rx stamp)


@cython.final
cdef class Driver:
    # configuration
    cdef int fd
    cdef sockaddr_in server
    cdef uint32_t relay_n
    cdef uint64_t first_mac
    cdef uint32_t clients
    cdef double rate
    cdef uint32_t window
    cdef int64_t duration_ns
    cdef int64_t max_exchanges    # -1: no limit
    cdef int64_t timeout_ns
    cdef int64_t tick_ns          # 0: wake on every event; else batch work per tick
    cdef bint collect

    # templates: whole datagrams, only xid/chaddr/50/54 patched per packet
    cdef unsigned char disc_tmpl[PKT_LEN]
    cdef unsigned char req_tmpl[PKT_LEN]
    cdef int off_req_50
    cdef int off_req_54

    # exchange ring
    cdef Slot* ring
    cdef uint32_t ring_mask
    cdef uint32_t xid_base
    cdef uint32_t head           # next sequence number to start
    cdef uint32_t tail           # oldest sequence number possibly in flight
    cdef uint32_t next_client
    cdef int64_t inflight

    # send queue
    cdef unsigned char* sbuf
    cdef mmsghdr* smsgs
    cdef iovec* siov
    cdef uint32_t* sq_slot
    cdef int sq_n

    # receive batch
    cdef unsigned char* rbuf
    cdef mmsghdr* rmsgs
    cdef iovec* riov
    cdef sockaddr_in* rsrc
    cdef unsigned char* rctl

    # run state
    cdef bint started_run
    cdef bint stopping
    cdef bint finished
    cdef int64_t t_start
    cdef int64_t t_end
    cdef int64_t t_stop
    cdef int64_t t_drain_end
    cdef int64_t t_last_done
    cdef int64_t cpu_ns

    # counters
    cdef public uint64_t discovers
    cdef public uint64_t offers
    cdef public uint64_t requests
    cdef public uint64_t acks
    cdef public uint64_t naks
    cdef public uint64_t timeouts
    cdef public uint64_t stray
    cdef public uint64_t malformed
    cdef public uint64_t send_errors
    cdef public uint64_t send_waits     # sendmmsg found the socket buffer full
    cdef public uint64_t turns          # loop turns (wakeups + busy turns)

    # latency histograms (ns, log-linear buckets)
    cdef uint64_t* hist_offer
    cdef uint64_t* hist_ack

    # ACKed (client, address) pairs when collect is on
    cdef uint32_t* acked
    cdef uint64_t acked_n
    cdef uint64_t acked_cap

    cdef void _fill_template(self, unsigned char* p, uint32_t xid, uint32_t client) noexcept nogil
    cdef int _enqueue_discover(self, int64_t now) noexcept nogil
    cdef int _enqueue_request(self, uint32_t idx) noexcept nogil
    cdef void _flush(self) noexcept nogil
    cdef void _grow_acked(self) noexcept nogil
    cdef void _on_reply(self, const unsigned char* p, Py_ssize_t n, int64_t now,
                        int64_t rx_rt) noexcept nogil
    cdef int _receive(self, int64_t now) noexcept nogil
    cdef void _expire(self, int64_t now, bint all_) noexcept nogil
    cdef void _finish(self, int64_t now) noexcept nogil
    cdef int _step(self, int64_t until) noexcept nogil
