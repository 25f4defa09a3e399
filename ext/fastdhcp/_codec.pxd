# Declarations of fastdhcp._codec: every cdef field and method of the compiled codec.
# Other compiled modules may `cimport fastdhcp._codec` and use Message/ReplyBuilder at C level.

cimport cython
from libc.stdint cimport uint8_t, uint16_t, uint32_t


cdef extern from "hton.h":
    uint16_t fd_load_be16(const unsigned char *p) noexcept nogil
    uint32_t fd_load_be32(const unsigned char *p) noexcept nogil
    void fd_store_be16(unsigned char *p, uint16_t v) noexcept nogil
    void fd_store_be32(unsigned char *p, uint32_t v) noexcept nogil


# The wire layout and option codes are in fastdhcp/_consts.pxd (one definition for every
# compiled module).
from fastdhcp._consts cimport *

cdef enum:
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
    cpdef bint ignore_unrelayed_agent_info(self)
    cpdef bytes client_key(self)


@cython.final
cdef class ReplyBuilder:
    cdef unsigned char *_buf
    cdef Py_ssize_t _len

    cdef Py_ssize_t _header(self, Message request, int msg_type, uint32_t ciaddr,
                            uint32_t yiaddr, uint32_t siaddr) noexcept
    cdef bytes reply(self, Message request, int msg_type, uint32_t ciaddr, uint32_t yiaddr,
                     uint32_t siaddr, list options, long flags, bytes sname, bytes file)
    cdef bytes _slow(self, Message request, int msg_type, list items, Py_ssize_t limit,
                     int fields)


cpdef Message parse(object data)
