# Declarations of fastdhcp._classify: the client-class expression evaluator.
# The op codes below are mirrored by fastdhcp.bytecode.Op (checked by tests/test_classify_bytecode.py).

cimport cython
from libc.stdint cimport int64_t, uint32_t, uint64_t
from fastdhcp._codec cimport Message

cdef enum:
    OP_PUSH = 1            # off len
    OP_OPT = 2             # code access textkind
    OP_SUB = 3             # code sub access
    OP_PKT4 = 4            # field
    OP_PKT = 5             # field
    OP_VENDOR_ENT = 6
    OP_VENDOR_EXISTS = 7   # ent
    OP_VENDOR_SUB = 8      # ent sub access
    OP_VCLASS_ENT = 9
    OP_VCLASS_EXISTS = 10  # ent
    OP_VCLASS_DATA = 11    # ent index
    OP_SUBSTRING = 12      # start len all
    OP_SPLIT = 13          # field
    OP_CONCAT = 14
    OP_IFELSE = 15
    OP_HEXSTRING = 16
    OP_TOTEXT = 17         # width signed
    OP_EQ = 18
    OP_NOT = 19
    OP_AND = 20
    OP_OR = 21
    OP_MEMBER = 22         # class id
    OP_VENDOR_CLASS = 23   # off len: option 60 present and equal to the constant

    ACC_HEX = 0
    ACC_TEXT = 1
    ACC_EXISTS = 2

    # how .text renders an option (Kea's Option::toText for its type)
    TEXT_RAW = 0
    TEXT_HEX = 1
    TEXT_UINT8 = 2
    TEXT_UINT16 = 3
    TEXT_UINT32 = 4
    TEXT_INT8 = 5
    TEXT_INT16 = 6
    TEXT_INT32 = 7

    EVAL_FALSE = 0
    EVAL_TRUE = 1
    EVAL_ERROR = 2


# One value on the evaluator's stack: a byte slice (into the datagram, the constant pool or
# the scratch arena), or a boolean in n (p NULL).
cdef struct Val:
    const unsigned char *p
    Py_ssize_t n


# What the link tells about one datagram (pkt.iface, pkt.src, pkt.dst, pkt.len).
cdef struct ClassifyLink:
    const unsigned char *iface
    Py_ssize_t iface_len
    uint32_t src
    uint32_t dst
    uint32_t length


@cython.final
cdef class ClassSet:
    cdef uint64_t *_bits
    cdef int _nwords
    cdef int _capacity

    cdef inline bint has(self, int cid) noexcept:
        return 0 <= cid < self._capacity and (self._bits[cid >> 6] >> (cid & 63)) & 1
    cdef inline void set(self, int cid) noexcept:
        if 0 <= cid < self._capacity:
            self._bits[cid >> 6] |= (<uint64_t>1) << (cid & 63)
    cdef void clear_all(self) noexcept


@cython.final
cdef class Program:
    cdef int64_t *_ops
    cdef Py_ssize_t _n_ops
    cdef bytes _pool
    cdef const unsigned char *_pool_p
    cdef Val *_stack
    cdef Py_ssize_t _depth
    cdef readonly bint boolean
    cdef readonly unsigned long long errors

    cdef int _verify(self) except -1
    cdef int _run(self, Message msg, const ClassifyLink *link, ClassSet classes) except -1


# The engine's entry: EVAL_TRUE, EVAL_FALSE or EVAL_ERROR (counted in prog.errors); never raises.
cdef int evaluate(Program prog, Message msg, const ClassifyLink *link, ClassSet classes) noexcept
