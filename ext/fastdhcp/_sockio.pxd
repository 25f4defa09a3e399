# Declarations for fastdhcp._sockio: batched UDP I/O (recvmmsg/sendmmsg) for the service.

from libc.stdint cimport uint16_t, uint32_t


cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void* iov_base
        size_t iov_len


cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        uint32_t s_addr

    struct sockaddr_in:
        unsigned short sin_family
        uint16_t sin_port
        in_addr sin_addr

    uint16_t htons(uint16_t v)
    uint16_t ntohs(uint16_t v)
    uint32_t htonl(uint32_t v)
    uint32_t ntohl(uint32_t v)


cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t

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

    struct timespec:
        pass

    enum:
        AF_INET
        MSG_DONTWAIT
        MSG_TRUNC

    int recvmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags, timespec* timeout)
    int sendmmsg(int fd, mmsghdr* vec, unsigned int vlen, int flags)


cdef enum:
    RECV_BATCH = 64        # datagrams per recvmmsg call
    RECV_SIZE = 65536      # bytes per receive slot: the largest UDP payload fits
    SEND_BATCH = 64        # datagrams per sendmmsg call


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

    cpdef list recv(self, int max_count)
    cpdef list send(self, list items)
