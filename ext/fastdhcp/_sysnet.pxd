# The C socket, time and byte-order API the compiled I/O modules (_sockio, _loadgen) share:
# declarations only (no module is built from this file; cimporting it costs nothing at run time).

from libc.stdint cimport uint16_t, uint32_t


cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    enum: CLOCK_MONOTONIC
    enum: CLOCK_REALTIME
    int clock_gettime(int clk, timespec* ts)


cdef extern from "<sys/timerfd.h>" nogil:
    struct itimerspec:
        timespec it_interval
        timespec it_value
    enum: TFD_NONBLOCK
    enum: TFD_CLOEXEC
    int timerfd_create(int clockid, int flags)
    int timerfd_settime(int fd, int flags, const itimerspec* new_value, itimerspec* old_value)
    int timerfd_gettime(int fd, itimerspec* curr_value)


cdef extern from "<unistd.h>" nogil:
    ssize_t read(int fd, void* buf, size_t count)
    int close(int fd)


cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void* iov_base
        size_t iov_len


cdef extern from "<netinet/in.h>" nogil:
    ctypedef uint32_t in_addr_t
    struct in_addr:
        in_addr_t s_addr
    struct sockaddr_in:
        unsigned short sin_family
        uint16_t sin_port
        in_addr sin_addr
    enum: IPPROTO_UDP


cdef extern from "<arpa/inet.h>" nogil:
    uint16_t htons(uint16_t v)
    uint16_t ntohs(uint16_t v)
    uint32_t htonl(uint32_t v)
    uint32_t ntohl(uint32_t v)


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    struct sockaddr:
        unsigned short sa_family
    struct msghdr:
        void* msg_name
        socklen_t msg_namelen
        iovec* msg_iov
        size_t msg_iovlen
        void* msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    struct cmsghdr:
        size_t cmsg_len
        int cmsg_level
        int cmsg_type
    enum: AF_INET
    enum: SOCK_DGRAM
    enum: SOCK_NONBLOCK
    enum: SOCK_CLOEXEC
    enum: SOL_SOCKET
    enum: SO_REUSEADDR
    enum: SO_RCVBUF
    enum: SO_SNDBUF
    enum: SO_RCVBUFFORCE
    enum: SO_SNDBUFFORCE
    enum: SO_TIMESTAMPNS
    enum: SCM_TIMESTAMPNS
    enum: MSG_DONTWAIT
    enum: MSG_TRUNC
    cmsghdr* CMSG_FIRSTHDR(msghdr* m)
    size_t CMSG_SPACE(size_t length)
    size_t CMSG_LEN(size_t length)
    cmsghdr* CMSG_NXTHDR(msghdr* m, cmsghdr* c)
    unsigned char* CMSG_DATA(cmsghdr* c)
    int socket_c "socket"(int domain, int type, int protocol)
    int bind(int fd, const sockaddr* addr, socklen_t len)
    int setsockopt(int fd, int level, int name, const void* val, socklen_t len)
    int getsockopt(int fd, int level, int name, void* val, socklen_t* len)
    int recvmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, timespec* timeout)
    int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags)


cdef extern from "<netinet/udp.h>" nogil:
    enum: SOL_UDP
    enum: UDP_SEGMENT  # UDP GSO (Linux 4.18): a cmsg or sockopt with the segment size (uint16)
