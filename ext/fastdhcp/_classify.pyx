# cython: language_level=3
"""The client-class expression evaluator: a byte-code stack machine over a parsed Message.

:mod:`fastdhcp.bytecode` compiles a tree from :mod:`fastdhcp.expression` once, at config load,
into a :class:`Program`: a flat ``int64`` array of op codes and their literal operands, and one
``bytes`` pool of constants. Per packet, :func:`evaluate` runs it in Kea's RPN order (every
operand is evaluated: no short-circuit) over the message's option offsets; values are
``(pointer, length)`` slices into the datagram, the pool, or a static scratch arena that is
reset per evaluation, so no Python object is made per evaluation (an option repeated per
RFC 3396 is joined once by the codec and cached in the Message).

A run-time error (``addrtotext`` of 5 bytes, ``uint16totext`` of 3, a result larger than the
arena) yields EVAL_ERROR: the class is not assigned, as Kea does, and ``Program.errors`` counts
it. The program is verified when it is made (operands in range, stack never under- or
over-flows), so no compiled input can make the machine read outside its buffers.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdio cimport snprintf
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcmp, memcpy

from fastdhcp._codec cimport Message, fd_load_be16, fd_load_be32
from fastdhcp._consts cimport *

cdef extern from "arpa/inet.h" nogil:
    const char *inet_ntop(int af, const void *src, char *dst, unsigned int size)
    int AF_INET
    int AF_INET6

cdef enum:
    # 256 KiB: a hexstring of the largest joined option (3 x 65 KiB) still fits.
    ARENA = 262144
    N_OPS = 24

cdef unsigned char _arena[ARENA]
cdef Py_ssize_t _used = 0

# operands per op, stack popped, stack pushed (index = op code)
cdef int _ARGS[N_OPS]
cdef int _POP[N_OPS]
cdef int _PUSH[N_OPS]

cdef int _table(int op, int args, int pop) except -1:
    _ARGS[op] = args
    _POP[op] = pop
    _PUSH[op] = 1
    return 0

_table(OP_PUSH, 2, 0)
_table(OP_OPT, 3, 0)
_table(OP_SUB, 3, 0)
_table(OP_PKT4, 1, 0)
_table(OP_PKT, 1, 0)
_table(OP_VENDOR_ENT, 0, 0)
_table(OP_VENDOR_EXISTS, 1, 0)
_table(OP_VENDOR_SUB, 3, 0)
_table(OP_VCLASS_ENT, 0, 0)
_table(OP_VCLASS_EXISTS, 1, 0)
_table(OP_VCLASS_DATA, 2, 0)
_table(OP_SUBSTRING, 3, 1)
_table(OP_SPLIT, 1, 2)
_table(OP_CONCAT, 0, 2)
_table(OP_IFELSE, 0, 3)
_table(OP_HEXSTRING, 0, 2)
_table(OP_TOTEXT, 2, 1)
_table(OP_EQ, 0, 2)
_table(OP_NOT, 0, 1)
_table(OP_AND, 0, 2)
_table(OP_OR, 0, 2)
_table(OP_MEMBER, 1, 0)
_table(OP_VENDOR_CLASS, 2, 0)

cdef const char *_TEXT_NAMES[8]
_TEXT_NAMES[TEXT_UINT8] = b"uint8"
_TEXT_NAMES[TEXT_UINT16] = b"uint16"
_TEXT_NAMES[TEXT_UINT32] = b"uint32"
_TEXT_NAMES[TEXT_INT8] = b"int8"
_TEXT_NAMES[TEXT_INT16] = b"int16"
_TEXT_NAMES[TEXT_INT32] = b"int32"
cdef int _TEXT_WIDTH[8]
_TEXT_WIDTH[:] = [0, 0, 1, 2, 4, 1, 2, 4]

cdef const unsigned char *_HEXDIGITS = b"0123456789abcdef"
cdef const unsigned char *_TRUE = b"true"


class ClassifyError(Exception):
    """An evaluation error, raised only by the Python-facing :meth:`Program.value`."""


cdef inline unsigned char *_alloc(Py_ssize_t n) noexcept:
    global _used
    cdef unsigned char *p
    if n > ARENA - _used:
        return NULL
    p = _arena + _used
    _used += n
    return p


cdef inline Val _u32(uint32_t v) noexcept:
    cdef Val r
    cdef unsigned char *p = _alloc(4)
    r.p = p
    r.n = 4 if p != NULL else -1
    if p != NULL:
        p[0] = v >> 24
        p[1] = (v >> 16) & 0xff
        p[2] = (v >> 8) & 0xff
        p[3] = v & 0xff
    return r


cdef inline Val _slice(const unsigned char *p, Py_ssize_t n) noexcept:
    cdef Val r
    r.p = p
    r.n = n
    return r


cdef inline Val _empty() noexcept:
    return _slice(_TRUE, 0)


cdef inline Val _bool(bint b) noexcept:
    return _slice(NULL, 1 if b else 0)


cdef Py_ssize_t _tlv(const unsigned char *p, Py_ssize_t n, int code,
                     const unsigned char **out) noexcept:
    """Value of the first TLV ``code`` in p[0:n]; -1 if absent (a truncated TLV ends the walk)."""
    cdef Py_ssize_t i = 0
    while i + 2 <= n:
        if i + 2 + p[i + 1] > n:
            return -1
        if p[i] == code:
            out[0] = p + i + 2
            return p[i + 1]
        i += 2 + p[i + 1]
    return -1


cdef Val _text(int code, const unsigned char *p, Py_ssize_t n, int kind) noexcept:
    """Kea's Option::toText: raw bytes for string options, else ``type=NNN, len=LLL: ...``."""
    cdef Val r
    cdef unsigned char *out
    cdef Py_ssize_t i, w, at, k
    cdef int64_t v
    cdef char num[32]
    if kind == TEXT_RAW:
        return _slice(p, n)
    w = _TEXT_WIDTH[kind]
    if w == 0 or n % w != 0:
        kind = TEXT_HEX
        w = 1
    # header 22 bytes + per item "-2147483648(uint32) " (20) or "ff:" (3)
    out = _alloc(32 + n * 21)
    if out == NULL:
        return _slice(NULL, -1)
    at = snprintf(<char *>out, 32, b"type=%03d, len=%03d: ", code, <int>n)
    i = 0
    while i < n:
        if kind == TEXT_HEX:
            if i:
                out[at] = b':'
                at += 1
            out[at] = _HEXDIGITS[p[i] >> 4]
            out[at + 1] = _HEXDIGITS[p[i] & 15]
            at += 2
        else:
            if w == 1:
                v = p[i]
                if kind == TEXT_INT8:
                    v = <int8_t>p[i]
            elif w == 2:
                v = fd_load_be16(p + i)
                if kind == TEXT_INT16:
                    v = <int16_t>fd_load_be16(p + i)
            else:
                v = fd_load_be32(p + i)
                if kind == TEXT_INT32:
                    v = <int32_t>fd_load_be32(p + i)
            if i:
                out[at] = b' '
                at += 1
            k = snprintf(num, 32, b"%lld(%s)", <long long>v, _TEXT_NAMES[kind])
            memcpy(out + at, num, k)
            at += k
        i += w
    return _slice(out, at)


cdef inline Val _access(int acc, int code, const unsigned char *p, Py_ssize_t n,
                       int text_kind) noexcept:
    """An option's (or sub-option's) value as ``.exists``, ``.hex`` or ``.text`` asks: ``n`` < 0
    is absent (false, or the empty string)."""
    if acc == ACC_EXISTS:
        return _bool(n >= 0)
    if n < 0:
        return _empty()
    if acc == ACC_HEX:
        return _slice(p, n)
    return _text(code, p, n, text_kind)


cdef inline Py_ssize_t _vivso(Message msg, int64_t ent, const unsigned char **data) except -2:
    """The data of the first option 125 block if its enterprise is ``ent`` (0 = any); -1 if not."""
    cdef const unsigned char *p
    cdef Py_ssize_t n = msg._view(OPT_VIVSO, &p)
    cdef Py_ssize_t dl
    if n < 5:
        return -1
    if ent != 0 and fd_load_be32(p) != <uint32_t>ent:
        return -1
    dl = p[4]
    if dl > n - 5:
        dl = n - 5
    data[0] = p + 5
    return dl


@cython.final
cdef class ClassSet:
    """The classes a packet is in so far, as a bit set of class ids (``member()`` reads it).

    The config gives every class an id; the engine resets the set per packet and adds the
    ids in Kea's assignment order.
    """

    def __cinit__(self, int capacity=256):
        if capacity < 1 or capacity > 1 << 20:
            raise ValueError("capacity must be 1 .. 2**20")
        self._nwords = (capacity + 63) >> 6
        self._capacity = capacity
        self._bits = <uint64_t *>calloc(self._nwords, sizeof(uint64_t))
        if self._bits == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self._bits)

    cdef void clear_all(self) noexcept:
        cdef int i
        for i in range(self._nwords):
            self._bits[i] = 0

    def add(self, int cid) -> None:
        """Put the packet in class ``cid``."""
        if not 0 <= cid < self._capacity:
            raise ValueError(f"class id {cid} outside 0..{self._capacity - 1}")
        self.set(cid)

    def clear(self) -> None:
        """Empty the set."""
        self.clear_all()

    def __contains__(self, int cid) -> bool:
        return self.has(cid)


@cython.final
cdef class Program:
    """One compiled expression (made by :func:`fastdhcp.bytecode.compile_node`)."""

    def __cinit__(self, ops, bytes pool, bint boolean):
        cdef Py_ssize_t i, n = len(ops)
        self._ops = <int64_t *>malloc((n + 1) * sizeof(int64_t))
        if self._ops == NULL:
            raise MemoryError()
        for i in range(n):
            self._ops[i] = ops[i]
        self._n_ops = n
        self._pool = pool
        self._pool_p = <const unsigned char *>PyBytes_AS_STRING(pool)
        self.boolean = boolean
        self.errors = 0
        self._stack = NULL
        self._verify()
        self._stack = <Val *>malloc((self._depth + 1) * sizeof(Val))
        if self._stack == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self._ops)
        free(self._stack)

    cdef int _verify(self) except -1:
        cdef Py_ssize_t pc = 0, depth = 0, top = 0
        cdef int64_t op, a0, a1, a2
        cdef Py_ssize_t plen = PyBytes_GET_SIZE(self._pool)
        while pc < self._n_ops:
            op = self._ops[pc]
            if op < 1 or op >= N_OPS or _ARGS[op] + pc + 1 > self._n_ops:
                raise ValueError(f"bad op {op} at {pc}")
            a0 = self._ops[pc + 1] if _ARGS[op] > 0 else 0
            a1 = self._ops[pc + 2] if _ARGS[op] > 1 else 0
            a2 = self._ops[pc + 3] if _ARGS[op] > 2 else 0
            if op == OP_PUSH or op == OP_VENDOR_CLASS:
                if a0 < 0 or a1 < 0 or a0 + a1 > plen:
                    raise ValueError(f"constant outside the pool at {pc}")
            elif op == OP_OPT or op == OP_SUB or op == OP_VENDOR_SUB:
                if not (0 <= a1 <= 0xFFFFFFFF and 0 <= a0 <= 0xFFFFFFFF):
                    raise ValueError(f"bad operand at {pc}")
                if op == OP_OPT and (a0 > 255 or not 0 <= a1 <= ACC_EXISTS
                                     or not 0 <= a2 <= TEXT_INT32):
                    raise ValueError(f"bad option operands at {pc}")
                if op != OP_OPT and (a1 > 255 or not 0 <= a2 <= ACC_EXISTS):
                    raise ValueError(f"bad sub-option operands at {pc}")
            elif op == OP_PKT4 and not 0 <= a0 <= 8 or op == OP_PKT and not 0 <= a0 <= 3:
                raise ValueError(f"bad field at {pc}")
            elif op == OP_TOTEXT and a0 not in (0, 1, 2, 4):
                raise ValueError(f"bad width at {pc}")
            if depth < _POP[op]:
                raise ValueError(f"stack underflow at {pc}")
            depth += _PUSH[op] - _POP[op]
            if depth > top:
                top = depth
            pc += 1 + _ARGS[op]
        if depth != 1:
            raise ValueError(f"program leaves {depth} values, not 1")
        self._depth = top
        return 0

    cdef int _run(self, Message msg, const ClassifyLink *link, ClassSet classes) except -1:
        """Run the program; the result is _stack[0] (n == -1 is a run-time error)."""
        global _used
        cdef const int64_t *ops = self._ops
        cdef Val *st = self._stack
        cdef Py_ssize_t sp = 0, pc = 0, n, i, j, k, start, ln, field
        cdef const unsigned char *p
        cdef const unsigned char *q
        cdef unsigned char *out
        cdef const unsigned char *b = msg._buf
        cdef int64_t op, a0, a1, a2
        cdef Val x, y, z
        cdef char txt[64]
        cdef int64_t v
        _used = 0
        while pc < self._n_ops:
            op = ops[pc]
            a0 = ops[pc + 1] if _ARGS[op] > 0 else 0
            a1 = ops[pc + 2] if _ARGS[op] > 1 else 0
            a2 = ops[pc + 3] if _ARGS[op] > 2 else 0
            pc += 1 + _ARGS[op]
            if op == OP_PUSH:
                x = _slice(self._pool_p + a0, a1)
            elif op == OP_OPT:
                n = msg._view(<int>a0, &p)
                x = _access(<int>a1, <int>a0, p, n, <int>a2)
            elif op == OP_SUB or op == OP_VENDOR_SUB:
                if op == OP_SUB:
                    # Only option 82 is unpacked into sub-options before classification (Kea
                    # unpacks a received 43 afterwards; other options have no sub-options).
                    n = msg._view(<int>a0, &p) if a0 == OPT_RELAY_AGENT else -1
                else:
                    n = _vivso(msg, a0, &p)
                if n >= 0:
                    n = _tlv(p, n, <int>a1, &q)
                x = _access(<int>a2, <int>a1, q, n, TEXT_HEX)
            elif op == OP_PKT4:
                if a0 == 0:
                    n = b[OFF_HLEN]
                    x = _slice(b + OFF_CHADDR, n if n <= CHADDR_LEN else CHADDR_LEN)
                elif a0 == 1:
                    x = _u32(b[OFF_HLEN])
                elif a0 == 2:
                    x = _u32(b[OFF_HTYPE])
                elif a0 == 3:
                    x = _slice(b + OFF_CIADDR, 4)
                elif a0 == 4:
                    x = _slice(b + OFF_GIADDR, 4)
                elif a0 == 5:
                    x = _slice(b + OFF_YIADDR, 4)
                elif a0 == 6:
                    x = _slice(b + OFF_SIADDR, 4)
                elif a0 == 7:
                    n = msg._view(OPT_MESSAGE_TYPE, &p)
                    x = _u32(p[0] if n >= 1 else 0)
                else:
                    x = _slice(b + OFF_XID, 4)
            elif op == OP_PKT:
                if a0 == 0:
                    x = _slice(link.iface, link.iface_len) if link.iface != NULL else _empty()
                elif a0 == 1:
                    x = _u32(link.src)
                elif a0 == 2:
                    x = _u32(link.dst)
                else:
                    x = _u32(link.length)
            elif op == OP_VENDOR_ENT or op == OP_VCLASS_ENT:
                n = msg._view(OPT_VIVSO if op == OP_VENDOR_ENT else OPT_VIVCO, &p)
                x = _slice(p, 4) if n >= 4 else _empty()
            elif op == OP_VENDOR_EXISTS:
                x = _bool(_vivso(msg, a0, &p) >= 0)
            elif op == OP_VCLASS_EXISTS or op == OP_VCLASS_DATA:
                n = msg._view(OPT_VIVCO, &p)
                if n >= 4 and (a0 == 0 or fd_load_be32(p) == <uint32_t>a0):
                    if op == OP_VCLASS_EXISTS:
                        x = _bool(True)
                    else:
                        # Kea 2.2 reads length-prefixed tuples after the enterprise id: the
                        # RFC 3925 data-len byte makes the whole block tuple 0.
                        x = _empty()
                        i = 4
                        k = 0
                        while i < n:
                            ln = p[i]
                            if i + 1 + ln > n:
                                break
                            if k == a1:
                                x = _slice(p + i + 1, ln)
                                break
                            k += 1
                            i += 1 + ln
                else:
                    x = _bool(False) if op == OP_VCLASS_EXISTS else _empty()
            elif op == OP_MEMBER:
                x = _bool(classes is not None and classes.has(<int>a0))
            elif op == OP_VENDOR_CLASS:
                n = msg._view(OPT_VENDOR_CLASS, &p)
                x = _bool(n == a1 and memcmp(p, self._pool_p + a0, n) == 0)
            else:
                # operators over the stack
                sp -= _POP[op]
                x = st[sp]
                if op == OP_SUBSTRING:
                    n = x.n
                    start = a0
                    if n == 0 or start >= n or start < -n:
                        x = _empty()
                    else:
                        if start < 0:
                            start += n
                        ln = n if a2 else a1
                        if ln < 0:
                            ln = -ln
                            if ln <= start:
                                start -= ln
                            else:
                                ln = start
                                start = 0
                        if ln > n - start:
                            ln = n - start
                        x = _slice(x.p + start, ln)
                elif op == OP_SPLIT:
                    y = st[sp + 1]
                    if x.n == 0 or y.n == 0:
                        pass   # empty string -> '', empty delimiters -> the string itself
                    else:
                        field = 1
                        i = 0
                        start = 0
                        z = _empty()
                        while i <= x.n:
                            if i == x.n or memchr_(y.p, y.n, x.p[i]):
                                if field == a0:
                                    z = _slice(x.p + start, i - start)
                                    break
                                field += 1
                                start = i + 1
                            i += 1
                        x = z
                elif op == OP_CONCAT:
                    y = st[sp + 1]
                    out = _alloc(x.n + y.n)
                    if out == NULL:
                        return _overflow(st)
                    memcpy(out, x.p, x.n)
                    memcpy(out + x.n, y.p, y.n)
                    x = _slice(out, x.n + y.n)
                elif op == OP_IFELSE:
                    x = st[sp + 1] if x.n else st[sp + 2]
                elif op == OP_HEXSTRING:
                    y = st[sp + 1]
                    out = _alloc(x.n * 2 + (x.n - 1) * y.n if x.n else 0)
                    if out == NULL and x.n:
                        return _overflow(st)
                    k = 0
                    for i in range(x.n):
                        if i:
                            memcpy(out + k, y.p, y.n)
                            k += y.n
                        out[k] = _HEXDIGITS[x.p[i] >> 4]
                        out[k + 1] = _HEXDIGITS[x.p[i] & 15]
                        k += 2
                    x = _slice(out, k) if x.n else _empty()
                elif op == OP_TOTEXT:
                    if x.n == 0:
                        x = _empty()
                    else:
                        if a0 == 0:
                            if x.n != 4 and x.n != 16:
                                return _overflow(st)
                            inet_ntop(AF_INET if x.n == 4 else AF_INET6, x.p, txt, 64)
                            k = 0
                            while txt[k]:
                                k += 1
                        elif x.n != a0:
                            return _overflow(st)
                        else:
                            if a0 == 1:
                                v = <int8_t>x.p[0]
                                if not a1:
                                    v = x.p[0]
                            elif a0 == 2:
                                v = <int16_t>fd_load_be16(x.p)
                                if not a1:
                                    v = fd_load_be16(x.p)
                            else:
                                v = <int32_t>fd_load_be32(x.p)
                                if not a1:
                                    v = fd_load_be32(x.p)
                            k = snprintf(txt, 64, b"%lld", <long long>v)
                        out = _alloc(k)
                        if out == NULL:
                            return _overflow(st)
                        memcpy(out, txt, k)
                        x = _slice(out, k)
                elif op == OP_EQ:
                    y = st[sp + 1]
                    x = _bool(x.n == y.n and (x.n == 0 or memcmp(x.p, y.p, x.n) == 0))
                elif op == OP_NOT:
                    x = _bool(not x.n)
                elif op == OP_AND:
                    x = _bool(x.n and st[sp + 1].n)
                else:
                    x = _bool(x.n or st[sp + 1].n)
            if x.n < 0:
                return _overflow(st)
            st[sp] = x
            sp += 1
        return 0

    def value(self, Message msg, iface=b"", src=0, dst=0, length=None, ClassSet classes=None):
        """Evaluate over ``msg`` and return the value: bytes for a string program, ``b'true'``
        / ``b'false'`` for a boolean one (Kea's representation). Raises ClassifyError on a
        run-time error. For tests and tools; the engine calls :func:`evaluate`."""
        cdef ClassifyLink link
        cdef bytes name = bytes(iface)
        link.iface = <const unsigned char *>PyBytes_AS_STRING(name)
        link.iface_len = PyBytes_GET_SIZE(name)
        link.src = <uint32_t>src
        link.dst = <uint32_t>dst
        link.length = <uint32_t>(len(msg.data) if length is None else length)
        self._run(msg, &link, classes)
        if self._stack[0].n < 0:
            self.errors += 1
            raise ClassifyError("run-time error (Kea: the class is not assigned)")
        if self.boolean:
            return b"true" if self._stack[0].n else b"false"
        return PyBytes_FromStringAndSize(<const char *>self._stack[0].p, self._stack[0].n)

    def eval(self, Message msg, iface=b"", src=0, dst=0, length=None, ClassSet classes=None):
        """Evaluate a boolean program: EVAL_TRUE (1), EVAL_FALSE (0) or EVAL_ERROR (2)."""
        cdef ClassifyLink link
        cdef bytes name = bytes(iface)
        if not self.boolean:
            raise TypeError("not a boolean expression")
        link.iface = <const unsigned char *>PyBytes_AS_STRING(name)
        link.iface_len = PyBytes_GET_SIZE(name)
        link.src = <uint32_t>src
        link.dst = <uint32_t>dst
        link.length = <uint32_t>(len(msg.data) if length is None else length)
        return evaluate(self, msg, &link, classes)

    @property
    def ops(self):
        """The byte-code, as a list of ints (for tests and docs)."""
        return [self._ops[i] for i in range(self._n_ops)]


cdef inline bint memchr_(const unsigned char *p, Py_ssize_t n, unsigned char c) noexcept:
    cdef Py_ssize_t i
    for i in range(n):
        if p[i] == c:
            return True
    return False


cdef inline int _overflow(Val *st) noexcept:
    st[0].p = NULL
    st[0].n = -1
    return 0


cdef int evaluate(Program prog, Message msg, const ClassifyLink *link, ClassSet classes) noexcept:
    """Evaluate boolean ``prog`` over ``msg``: EVAL_TRUE, EVAL_FALSE or EVAL_ERROR (counted)."""
    try:
        prog._run(msg, link, classes)
    except BaseException:
        # Only MemoryError from the codec's RFC 3396 join can get here.
        prog.errors += 1
        return EVAL_ERROR
    if prog._stack[0].n < 0:
        prog.errors += 1
        return EVAL_ERROR
    return EVAL_TRUE if prog._stack[0].n else EVAL_FALSE


def evaluate_many(list programs, Message msg, int repeat=1, iface=b"", src=0, dst=0,
                  length=None, ClassSet classes=None):
    """Run :func:`evaluate` for every boolean program of ``programs`` over ``msg``, ``repeat``
    times, from C (no Python call per evaluation); the number of TRUE results. For
    bench/bench_classify.py: what the engine's pass over a class list costs."""
    cdef ClassifyLink link
    cdef bytes name = bytes(iface)
    cdef Program prog
    cdef Py_ssize_t i, r, n = len(programs), hits = 0
    for prog in programs:
        if not prog.boolean:
            raise TypeError("not a boolean expression")
    link.iface = <const unsigned char *>PyBytes_AS_STRING(name)
    link.iface_len = PyBytes_GET_SIZE(name)
    link.src = <uint32_t>src
    link.dst = <uint32_t>dst
    link.length = <uint32_t>(len(msg.data) if length is None else length)
    for r in range(repeat):
        for i in range(n):
            prog = <Program>programs[i]
            if evaluate(prog, msg, &link, classes) == EVAL_TRUE:
                hits += 1
    return hits
