# Declarations of fastdhcp._codec: every cdef field and method of the compiled codec.
# Other compiled modules may `cimport fastdhcp._codec` and use Message/ReplyBuilder at C level.

cimport cython
from libc.stdint cimport uint8_t, uint16_t, uint32_t


cdef extern from "hton.h":
    uint16_t fd_load_be16(const unsigned char *p) noexcept nogil
    uint32_t fd_load_be32(const unsigned char *p) noexcept nogil
    void fd_store_be16(unsigned char *p, uint16_t v) noexcept nogil
    void fd_store_be32(unsigned char *p, uint32_t v) noexcept nogil


# Wire layout (RFC 2131 section 2, figure 1) and option codes (RFC 2132 and later).
cdef enum:
    OFF_OP = 0
    OFF_HTYPE = 1
    OFF_HLEN = 2
    OFF_HOPS = 3
    OFF_XID = 4
    OFF_SECS = 8
    OFF_FLAGS = 10
    OFF_CIADDR = 12
    OFF_YIADDR = 16
    OFF_SIADDR = 20
    OFF_GIADDR = 24
    OFF_CHADDR = 28
    OFF_SNAME = 44
    OFF_FILE = 108
    OFF_COOKIE = 236
    OFF_OPTIONS = 240
    CHADDR_LEN = 16
    SNAME_LEN = 64
    FILE_LEN = 128
    HEADER_LEN = 236
    MIN_MESSAGE = 240            # header + magic cookie
    MAX_MESSAGE = 65507          # 65535 - 20 (IPv4) - 8 (UDP)
    BOOTP_MIN = 300              # RFC 1542 minimum BOOTP message
    MIN_MAX_SIZE = 576           # RFC 2132 9.10: no less than 576
    IP_UDP_HEADERS = 28
    BROADCAST_FLAG = 0x8000

    OPT_PAD = 0
    OPT_HOSTNAME = 12
    OPT_REQUESTED_IP = 50
    OPT_LEASE_TIME = 51
    OPT_OVERLOAD = 52
    OPT_MESSAGE_TYPE = 53
    OPT_SERVER_ID = 54
    OPT_PRL = 55
    OPT_MAX_SIZE = 57
    OPT_VENDOR_CLASS = 60
    OPT_CLIENT_ID = 61
    OPT_CLIENT_FQDN = 81
    OPT_RELAY_AGENT = 82
    OPT_SUBNET_SELECTION = 118
    OPT_END = 255

    SUB_CIRCUIT_ID = 1
    SUB_REMOTE_ID = 2
    SUB_LINK_SELECTION = 5
    SUB_SERVER_ID_OVERRIDE = 11

    # option-overload (52) values: which header fields carry options
    OVERLOAD_FILE = 1
    OVERLOAD_SNAME = 2

    REPLY_BUFFER = 65536


# One options area of the datagram: [start, end) where end is the end option's position or
# the field end. Areas are walked in RFC 2131 4.1 order: options, then file, then sname.
cdef struct OptArea:
    Py_ssize_t start
    Py_ssize_t end


@cython.final
cdef class Message:
    cdef readonly bytes data
    cdef const unsigned char *_buf
    cdef Py_ssize_t _len
    cdef uint8_t _overload
    cdef int _n_areas
    cdef OptArea _areas[3]
    # value offset of the first instance of each option code (0 = absent: no value starts at 0)
    cdef uint16_t _off[256]
    # bit per code: seen more than once (RFC 3396 concatenation needed on access)
    cdef uint8_t _multi[32]
    # code -> concatenated value of repeated options, built on first access
    cdef dict _joined

    cdef object _field(self, int f)
    cdef int _scan(self, Py_ssize_t start, Py_ssize_t end, int area) except -1
    cdef int _validate(self) except -1
    cdef Py_ssize_t _view(self, int code, const unsigned char **out) except -2
    cdef bytes _join(self, int code)
    cdef object _opt_bytes(self, int code)
    cdef long long _opt_u32(self, int code, long long absent)
    cdef Py_ssize_t _sub_view(self, int sub, const unsigned char **out) except -2
    cdef uint32_t _sub_u32(self, int sub)


@cython.final
cdef class ReplyBuilder:
    cdef unsigned char *_buf
    cdef Py_ssize_t _len

    cdef Py_ssize_t _header(self, Message request, int msg_type, uint32_t ciaddr,
                            uint32_t yiaddr, uint32_t siaddr) noexcept
    cdef bytes _slow(self, Message request, int msg_type, list items, Py_ssize_t limit)


cpdef Message parse(object data)
