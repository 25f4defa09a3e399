"""DHCPv4 codec: datagram bytes <-> ``Message``, and replies built into one reused buffer.

Parsing is zero-copy: ``parse()`` validates the datagram once (every option TLV inside its
field, the fixed-length options the server reads, the relay agent sub-options), then keeps the
datagram and, per option code, the offset of its first value. Typed getters decode on access.
Repeated options are concatenated on first access (RFC 3396) in RFC 2131 4.1 order: the
``options`` field, then ``file``, then ``sname`` when option 52 overloads them.

``ReplyBuilder.build()`` writes a reply (RFC 2131 table 3) into a buffer it owns and returns
one ``bytes`` copy of it; the fast path is straight C over the option list, and only replies
that do not fit the client's maximum message size take the overload/drop planner.
"""

import sys

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject, PyObject_GenericGetAttr, PyObject_Hash
from cpython.unicode cimport PyUnicode_CheckExact
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy, memset

from fastdhcp.errors import MalformedPacket

__all__ = ["Message", "ReplyBuilder", "parse", "MalformedPacket"]

# RFC 2131 3: 99.130.83.99
cdef uint32_t MAGIC_COOKIE = 0x63825363

cdef tuple _AREA_NAMES = ("options", "file", "sname")

# Options the planner never drops when a reply is too large (contract, docs/internals.md).
cdef frozenset _REQUIRED = frozenset((54, 51, 82))


# Fixed 4-byte options parse() checks (the server reads them as addresses or seconds).
cdef int[4] _FOUR_BYTE_OPTIONS = [OPT_REQUESTED_IP, OPT_SERVER_ID, OPT_SUBNET_SELECTION,
                                  OPT_LEASE_TIME]


# Fields answered by Message.__getattribute__ (see there).
cdef enum:
    F_MESSAGE_TYPE = 0
    F_REQUESTED_IP = 1
    F_SERVER_ID = 2
    F_CLIENT_ID = 3
    F_PRL = 4
    F_MAX_MESSAGE_SIZE = 5
    F_LEASE_TIME = 6
    F_HOSTNAME = 7
    F_RELAY_AGENT_INFO = 8
    F_CIRCUIT_ID = 9
    F_REMOTE_ID = 10
    F_LINK_SELECTION = 11
    F_SUBNET_SELECTION = 12
    F_GIADDR = 13
    F_CIADDR = 14
    F_CHADDR = 15
    F_OP = 16
    F_HTYPE = 17
    F_HLEN = 18
    F_HOPS = 19
    F_XID = 20
    F_SECS = 21
    F_FLAGS = 22
    F_BROADCAST = 23
    F_YIADDR = 24
    F_SIADDR = 25
    F_SNAME = 26
    F_FILE = 27
    F_OVERLOAD = 28
    F_VENDOR_CLASS = 29
    F_CLIENT_FQDN = 30
    F_SERVER_ID_OVERRIDE = 31
    N_FIELDS = 32

cdef tuple _FIELD_NAMES = tuple(sys.intern(n) for n in (
    "message_type",
    "requested_ip",
    "server_id",
    "client_id",
    "prl",
    "max_message_size",
    "lease_time",
    "hostname",
    "relay_agent_info",
    "circuit_id",
    "remote_id",
    "link_selection",
    "subnet_selection",
    "giaddr",
    "ciaddr",
    "chaddr",
    "op",
    "htype",
    "hlen",
    "hops",
    "xid",
    "secs",
    "flags",
    "broadcast",
    "yiaddr",
    "siaddr",
    "sname",
    "file",
    "overload",
    "vendor_class",
    "client_fqdn",
    "server_id_override",
))
# Open-addressed table of the interned field names, keyed by their cached str hash.
cdef enum:
    FIELD_SLOTS = 64                    # power of two, at least twice N_FIELDS
cdef PyObject *_SLOT_NAME[FIELD_SLOTS]
cdef int _SLOT_FIELD[FIELD_SLOTS]


cdef int _fill_field_table() except -1:
    cdef Py_ssize_t slot
    cdef int i
    for i in range(FIELD_SLOTS):
        _SLOT_NAME[i] = NULL
        _SLOT_FIELD[i] = -1
    for i in range(N_FIELDS):
        slot = PyObject_Hash(_FIELD_NAMES[i]) & (FIELD_SLOTS - 1)
        while _SLOT_NAME[slot] is not NULL:
            slot = (slot + 1) & (FIELD_SLOTS - 1)
        _SLOT_NAME[slot] = <PyObject *>_FIELD_NAMES[i]
        _SLOT_FIELD[slot] = i
    return 0


_fill_field_table()


cdef extern from "Python.h":
    ctypedef struct PyASCIIObject:
        Py_hash_t hash


cdef inline int _field_index(object name) noexcept:
    """Index of ``name`` in the field table by identity (interned names), -1 if not there."""
    cdef PyObject *key = <PyObject *>name
    cdef Py_hash_t h
    cdef Py_ssize_t slot
    if not PyUnicode_CheckExact(name):
        return -1
    h = (<PyASCIIObject *>key).hash         # interned names carry their hash already
    if h == -1:
        return -1
    slot = h & (FIELD_SLOTS - 1)
    while _SLOT_NAME[slot] is not NULL:
        if _SLOT_NAME[slot] == key:
            return _SLOT_FIELD[slot]
        slot = (slot + 1) & (FIELD_SLOTS - 1)
    return -1


cdef inline bint _is_multi(const uint8_t *bits, int code) noexcept:
    return (bits[code >> 3] >> (code & 7)) & 1


cdef inline Py_ssize_t _optview(Message m, int code, const unsigned char **out) except -2:
    """Message._view, inlined into every getter: a single instance needs no call at all."""
    cdef uint16_t off = m._off[code]
    cdef bytes joined
    if off == 0:
        return -1
    if _is_multi(m._multi, code):
        joined = m._join(code)
        out[0] = <const unsigned char *>PyBytes_AS_STRING(joined)
        return PyBytes_GET_SIZE(joined)
    out[0] = m._buf + off
    return m._buf[off - 1]


@cython.final
@cython.freelist(16)
cdef class Message:
    """A parsed DHCPv4 message (RFC 2131 section 2): a read-only view over its datagram.

    Made by :func:`parse` only. Header fields are read from the datagram on access, option
    values are decoded on access; getters never raise.
    """

    def __init__(self) -> None:
        raise TypeError("Message objects are made by fastdhcp._codec.parse()")

    # ---- parsing (called by parse() only) -------------------------------------------------

    cdef int _scan(self, Py_ssize_t start, Py_ssize_t end, int area) except -1:
        """Index the option TLVs of one field; raise MalformedPacket on any overrun."""
        cdef const unsigned char *b = self._buf
        cdef Py_ssize_t i = start
        cdef Py_ssize_t n
        cdef int code
        while i < end:
            code = b[i]
            if code == OPT_PAD:
                i += 1
                continue
            if code == OPT_END:
                end = i
                break
            if i + 1 >= end:
                raise MalformedPacket(
                    f"option {code}: length byte missing at the end of the {_AREA_NAMES[area]} field")
            n = b[i + 1]
            if i + 2 + n > end:
                raise MalformedPacket(
                    f"option {code} (length {n}) runs past the {_AREA_NAMES[area]} field")
            if code == OPT_OVERLOAD:
                # RFC 2131 4.1: 52 only in the options field, once; else it could loop.
                if area != 0:
                    raise MalformedPacket(
                        f"option overload (52) inside the {_AREA_NAMES[area]} field")
                if self._overload:
                    raise MalformedPacket("option overload (52) repeated")
                if n != 1 or b[i + 2] < 1 or b[i + 2] > 3:
                    raise MalformedPacket("option overload (52) must be one byte, 1 to 3")
                self._overload = b[i + 2]
            if self._off[code] == 0:
                self._off[code] = <uint16_t>(i + 2)
            else:
                self._multi[code >> 3] |= <uint8_t>(1 << (code & 7))
            i += 2 + n
        else:
            # Ran to the field end without an end option: fine for sname/file (the field is
            # simply full), malformed for the options field.
            if area == 0:
                raise MalformedPacket("no end option (255) in the options field")
        self._areas[self._n_areas].start = start
        self._areas[self._n_areas].end = end
        self._n_areas += 1
        return 0

    cdef int _validate(self) except -1:
        """Check the lengths of the fixed-size options the server reads, and option 82."""
        cdef const unsigned char *p
        cdef Py_ssize_t n, i
        cdef int code
        n = _optview(self, OPT_MESSAGE_TYPE, &p)
        if n >= 0 and n != 1:
            raise MalformedPacket(f"option 53 (message type) has length {n}, not 1")
        for i in range(4):
            code = _FOUR_BYTE_OPTIONS[i]
            n = _optview(self, code, &p)
            if n >= 0 and n != 4:
                raise MalformedPacket(f"option {code} has length {n}, not 4")
        n = _optview(self, OPT_MAX_SIZE, &p)
        if n >= 0:
            if n != 2:
                raise MalformedPacket(f"option 57 (max message size) has length {n}, not 2")
            if fd_load_be16(p) < MIN_MAX_SIZE:
                raise MalformedPacket(
                    f"option 57 (max message size) is {fd_load_be16(p)}, below 576")
        n = _optview(self, OPT_RELAY_AGENT, &p)
        if n > 0:
            # RFC 3046 2.0: a sequence of sub-option TLVs filling the value exactly.
            i = 0
            while i < n:
                if i + 2 > n:
                    raise MalformedPacket("option 82: sub-option length byte missing")
                if i + 2 + p[i + 1] > n:
                    raise MalformedPacket(
                        f"option 82: sub-option {p[i]} (length {p[i + 1]}) runs past the option")
                i += 2 + p[i + 1]
        return 0

    # ---- option access ----------------------------------------------------------------------

    cdef Py_ssize_t _view(self, int code, const unsigned char **out) except -2:
        """Point ``out`` at option ``code``'s (concatenated) value; its length, or -1 if absent."""
        return _optview(self, code, out)

    cdef bytes _join(self, int code):
        """RFC 3396: concatenate every instance of ``code``, options/file/sname order; cached."""
        cdef bytes joined
        cdef list parts
        cdef const unsigned char *b = self._buf
        cdef Py_ssize_t i, end
        cdef int a
        if self._joined is None:
            self._joined = {}
        else:
            joined = self._joined.get(code)
            if joined is not None:
                return joined
        parts = []
        for a in range(self._n_areas):
            i = self._areas[a].start
            end = self._areas[a].end
            while i < end:
                if b[i] == OPT_PAD:
                    i += 1
                    continue
                if b[i] == code:
                    parts.append(PyBytes_FromStringAndSize(<const char *>b + i + 2, b[i + 1]))
                i += 2 + b[i + 1]
        joined = b"".join(parts)
        self._joined[code] = joined
        return joined

    cdef object _opt_bytes(self, int code):
        cdef const unsigned char *p
        cdef Py_ssize_t n = _optview(self, code, &p)
        if n < 0:
            return None
        return PyBytes_FromStringAndSize(<const char *>p, n)

    cdef long long _opt_u32(self, int code, long long absent):
        cdef const unsigned char *p
        cdef Py_ssize_t n = _optview(self, code, &p)
        if n != 4:
            return absent
        return fd_load_be32(p)

    cdef Py_ssize_t _sub_view(self, int sub, const unsigned char **out) except -2:
        """Point ``out`` at sub-option ``sub`` of option 82 (first instance); -1 if absent."""
        cdef const unsigned char *p
        cdef Py_ssize_t n = _optview(self, OPT_RELAY_AGENT, &p)
        cdef Py_ssize_t i = 0
        while i + 2 <= n:
            if i + 2 + p[i + 1] > n:   # cannot happen after _validate; keeps reads in bounds
                return -1
            if p[i] == sub:
                out[0] = p + i + 2
                return p[i + 1]
            i += 2 + p[i + 1]
        return -1

    cdef uint32_t _sub_u32(self, int sub):
        cdef const unsigned char *p
        if self._sub_view(sub, &p) != 4:
            return 0
        return fd_load_be32(p)

    # ---- header fields and typed getters ------------------------------------------------------
    #
    # Each field is computed in one place, _field(); the properties below are its public face
    # (introspection, docs, stubs). Why __getattribute__ as well: CPython 3.11 does not
    # specialize LOAD_ATTR for getset descriptors, so a property read walks
    # PyObject_GenericGetAttr -> _PyType_Lookup -> getset_get -> wrapper (~100 instructions).
    # The engine reads ~16 fields per packet, so __getattribute__ answers them first by
    # comparing the (interned) attribute name's pointer with a table built at import: this cut
    # the relayed-REQUEST benchmark by about a fifth (bench/RESULTS.md). Names it does not know,
    # or non-interned names, take the generic path and land on the same _field().

    def __getattribute__(self, name):
        cdef int f = _field_index(name)
        if f >= 0:
            return self._field(f)
        return PyObject_GenericGetAttr(self, name)

    cdef object _field(self, int f):
        cdef const unsigned char *b = self._buf
        cdef const unsigned char *p
        cdef Py_ssize_t n
        if b is NULL:                   # Message.__new__(Message) from Python: no datagram
            return None
        if f == F_MESSAGE_TYPE:
            if _optview(self, OPT_MESSAGE_TYPE, &p) != 1:
                return 0
            return p[0]
        elif f == F_REQUESTED_IP:
            return self._opt_u32(OPT_REQUESTED_IP, 0)
        elif f == F_SERVER_ID:
            return self._opt_u32(OPT_SERVER_ID, 0)
        elif f == F_CLIENT_ID:
            return self._opt_bytes(OPT_CLIENT_ID)
        elif f == F_PRL:
            return self._opt_bytes(OPT_PRL)
        elif f == F_MAX_MESSAGE_SIZE:
            if _optview(self, OPT_MAX_SIZE, &p) != 2:
                return 0
            return fd_load_be16(p)
        elif f == F_LEASE_TIME:
            return self._opt_u32(OPT_LEASE_TIME, -1)
        elif f == F_HOSTNAME:
            return self._opt_bytes(OPT_HOSTNAME)
        elif f == F_RELAY_AGENT_INFO:
            return self._opt_bytes(OPT_RELAY_AGENT)
        elif f == F_CIRCUIT_ID:
            n = self._sub_view(SUB_CIRCUIT_ID, &p)
            return None if n < 0 else PyBytes_FromStringAndSize(<const char *>p, n)
        elif f == F_REMOTE_ID:
            n = self._sub_view(SUB_REMOTE_ID, &p)
            return None if n < 0 else PyBytes_FromStringAndSize(<const char *>p, n)
        elif f == F_LINK_SELECTION:
            return self._sub_u32(SUB_LINK_SELECTION)
        elif f == F_SUBNET_SELECTION:
            return self._opt_u32(OPT_SUBNET_SELECTION, 0)
        elif f == F_GIADDR:
            return fd_load_be32(b + OFF_GIADDR)
        elif f == F_CIADDR:
            return fd_load_be32(b + OFF_CIADDR)
        elif f == F_CHADDR:
            return PyBytes_FromStringAndSize(<const char *>b + OFF_CHADDR, b[OFF_HLEN])
        elif f == F_OP:
            return b[OFF_OP]
        elif f == F_HTYPE:
            return b[OFF_HTYPE]
        elif f == F_HLEN:
            return b[OFF_HLEN]
        elif f == F_HOPS:
            return b[OFF_HOPS]
        elif f == F_XID:
            return fd_load_be32(b + OFF_XID)
        elif f == F_SECS:
            return fd_load_be16(b + OFF_SECS)
        elif f == F_FLAGS:
            return fd_load_be16(b + OFF_FLAGS)
        elif f == F_BROADCAST:
            return (fd_load_be16(b + OFF_FLAGS) & BROADCAST_FLAG) != 0
        elif f == F_YIADDR:
            return fd_load_be32(b + OFF_YIADDR)
        elif f == F_SIADDR:
            return fd_load_be32(b + OFF_SIADDR)
        elif f == F_SNAME:
            return PyBytes_FromStringAndSize(<const char *>b + OFF_SNAME, SNAME_LEN)
        elif f == F_FILE:
            return PyBytes_FromStringAndSize(<const char *>b + OFF_FILE, FILE_LEN)
        elif f == F_OVERLOAD:
            return self._overload
        elif f == F_VENDOR_CLASS:
            return self._opt_bytes(OPT_VENDOR_CLASS)
        elif f == F_CLIENT_FQDN:
            return self._opt_bytes(OPT_CLIENT_FQDN)
        elif f == F_SERVER_ID_OVERRIDE:
            return self._sub_u32(SUB_SERVER_ID_OVERRIDE)
        return None

    @property
    def message_type(self) -> int:
        """Option 53 (RFC 2132 9.6), 0 when absent (BOOTP)."""
        return self._field(F_MESSAGE_TYPE)

    @property
    def requested_ip(self) -> int:
        """Option 50 (RFC 2132 9.1), 0 when absent."""
        return self._field(F_REQUESTED_IP)

    @property
    def server_id(self) -> int:
        """Option 54 (RFC 2132 9.7), 0 when absent."""
        return self._field(F_SERVER_ID)

    @property
    def client_id(self) -> bytes | None:
        """Option 61 (RFC 2132 9.14), type byte included."""
        return self._field(F_CLIENT_ID)

    cpdef bytes client_key(self):
        """The key a client's lease and rate are held under: option 61 as sent (type byte
        included; RFC 2131 4.2: the client identifier, when present, names the client), else
        the htype byte followed by the first ``hlen`` bytes of chaddr.

        A client-id of type 1 holding the MAC (RFC 2132 9.14) is the same key as the
        hardware address it names, so a client that starts or stops sending 61 keeps its
        lease. Fewer than two bytes is no key: the engine drops the request (``no-client-id``).
        """
        cdef const unsigned char *p
        cdef Py_ssize_t n = self._view(OPT_CLIENT_ID, &p)
        cdef bytes key
        cdef char *k
        if n > 0:  # _view has joined an option split across instances (RFC 3396)
            return PyBytes_FromStringAndSize(<const char *>p, n)
        n = self._buf[OFF_HLEN]
        key = PyBytes_FromStringAndSize(NULL, n + 1)
        k = PyBytes_AS_STRING(key)
        k[0] = <char>self._buf[OFF_HTYPE]
        memcpy(k + 1, self._buf + OFF_CHADDR, n)
        return key

    @property
    def prl(self) -> bytes | None:
        """Option 55, the parameter request list (RFC 2132 9.8)."""
        return self._field(F_PRL)

    @property
    def max_message_size(self) -> int:
        """Option 57 (RFC 2132 9.10), 0 when absent; parse() guarantees >= 576."""
        return self._field(F_MAX_MESSAGE_SIZE)

    @property
    def lease_time(self) -> int:
        """Option 51 (RFC 2132 9.2), -1 when absent."""
        return self._field(F_LEASE_TIME)

    @property
    def hostname(self) -> bytes | None:
        """Option 12 (RFC 2132 3.14)."""
        return self._field(F_HOSTNAME)

    @property
    def relay_agent_info(self) -> bytes | None:
        """Option 82 raw (RFC 3046), to be echoed verbatim."""
        return self._field(F_RELAY_AGENT_INFO)

    @property
    def circuit_id(self) -> bytes | None:
        """Option 82 sub-option 1 (RFC 3046 3.1)."""
        return self._field(F_CIRCUIT_ID)

    @property
    def remote_id(self) -> bytes | None:
        """Option 82 sub-option 2 (RFC 3046 3.2)."""
        return self._field(F_REMOTE_ID)

    @property
    def link_selection(self) -> int:
        """Option 82 sub-option 5 (RFC 3527), 0 when absent or not 4 bytes."""
        return self._field(F_LINK_SELECTION)

    @property
    def subnet_selection(self) -> int:
        """Option 118 (RFC 3011), 0 when absent."""
        return self._field(F_SUBNET_SELECTION)

    @property
    def giaddr(self) -> int:
        """Relay agent address (RFC 2131 2), host order."""
        return self._field(F_GIADDR)

    @property
    def ciaddr(self) -> int:
        """Client address (RFC 2131 2), host order."""
        return self._field(F_CIADDR)

    @property
    def chaddr(self) -> bytes:
        """The first ``hlen`` bytes of the chaddr field."""
        return self._field(F_CHADDR)

    @property
    def op(self) -> int:
        """1 BOOTREQUEST, 2 BOOTREPLY."""
        return self._field(F_OP)

    @property
    def htype(self) -> int:
        """Hardware address type (1 Ethernet)."""
        return self._field(F_HTYPE)

    @property
    def hlen(self) -> int:
        """Hardware address length (<= 16, checked by parse())."""
        return self._field(F_HLEN)

    @property
    def hops(self) -> int:
        """Relay hops."""
        return self._field(F_HOPS)

    @property
    def xid(self) -> int:
        """Transaction id."""
        return self._field(F_XID)

    @property
    def secs(self) -> int:
        """Seconds since the client began."""
        return self._field(F_SECS)

    @property
    def flags(self) -> int:
        """Flags field; bit 15 is broadcast."""
        return self._field(F_FLAGS)

    @property
    def broadcast(self) -> bool:
        """RFC 2131 4.1: the client cannot receive unicast before it is configured."""
        return self._field(F_BROADCAST)

    @property
    def yiaddr(self) -> int:
        """'Your' address (RFC 2131 2), host order."""
        return self._field(F_YIADDR)

    @property
    def siaddr(self) -> int:
        """Next server address (RFC 2131 2), host order."""
        return self._field(F_SIADDR)

    @property
    def sname(self) -> bytes:
        """The raw 64-byte sname field."""
        return self._field(F_SNAME)

    @property
    def file(self) -> bytes:
        """The raw 128-byte file field."""
        return self._field(F_FILE)

    @property
    def overload(self) -> int:
        """Option 52's value (1 file, 2 sname, 3 both), 0 when absent."""
        return self._field(F_OVERLOAD)

    @property
    def vendor_class(self) -> bytes | None:
        """Option 60 (RFC 2132 9.13)."""
        return self._field(F_VENDOR_CLASS)

    @property
    def client_fqdn(self) -> bytes | None:
        """Option 81 (RFC 4702), raw."""
        return self._field(F_CLIENT_FQDN)

    @property
    def server_id_override(self) -> int:
        """Option 82 sub-option 11 (RFC 5107), 0 when absent or not 4 bytes."""
        return self._field(F_SERVER_ID_OVERRIDE)

    # ---- options ------------------------------------------------------------------------------

    cpdef bint ignore_unrelayed_agent_info(self):
        """RFC 3046 2.1/2.2: a request that was not relayed (giaddr 0) has its option 82
        ignored; True if it had one (now hidden).

        Why not drop such a request: 2.1 makes a relay discard a packet with option 82 from an
        untrusted circuit, since 82 is trusted only when a trusted relay wrote it, and a server
        receiving it directly is that first hop; but 2.2 says servers SHOULD handle 82 in
        unicast messages (a relay MAY add it to a client's unicast RENEW), so dropping would
        refuse good renewals. Like Kea and ISC dhcpd, the request is served as not relayed: it
        selects no subnet by 82.5, matches no circuit-id reservation, overrides no server id,
        and 82 is not echoed (no relay is there to strip it).

        The message becomes a view without option 82: every accessor, C-level or Python, finds
        none (in the options field and in an overloaded file or sname alike); ``data`` stays the
        bytes received. No re-parse: the option's index entry is cleared.
        """
        if fd_load_be32(self._buf + OFF_GIADDR) != 0 or self._off[OPT_RELAY_AGENT] == 0:
            return False
        self._off[OPT_RELAY_AGENT] = 0
        self._multi[OPT_RELAY_AGENT >> 3] &= <uint8_t>~(1 << (OPT_RELAY_AGENT & 7))
        if self._joined is not None:
            self._joined.pop(OPT_RELAY_AGENT, None)
        return True

    def get(self, code: int) -> bytes | None:
        """The value of option ``code``, instances concatenated (RFC 3396); None if absent."""
        cdef long c
        try:
            c = code
        except (TypeError, OverflowError):
            return None
        if c < 1 or c > 254:
            return None
        return self._opt_bytes(<int>c)

    @property
    def codes(self) -> list[int]:
        """Option codes present, in first-seen order (options, then file, then sname)."""
        cdef const unsigned char *b = self._buf
        cdef Py_ssize_t i, end
        cdef int a
        cdef uint8_t seen[32]
        cdef list out = []
        memset(seen, 0, sizeof(seen))
        for a in range(self._n_areas):
            i = self._areas[a].start
            end = self._areas[a].end
            while i < end:
                if b[i] == OPT_PAD:
                    i += 1
                    continue
                if not _is_multi(seen, b[i]):
                    seen[b[i] >> 3] |= <uint8_t>(1 << (b[i] & 7))
                    out.append(b[i])
                i += 2 + b[i + 1]
        return out

    @property
    def options(self) -> dict[int, bytes]:
        """Every option as ``{code: value}`` in first-seen order, repeats concatenated."""
        cdef dict out = {}
        for code in self.codes:
            out[code] = self._opt_bytes(code)
        return out

    def __repr__(self) -> str:
        if self._buf is NULL:
            return "<Message (empty)>"
        return (f"<Message op={self.op} type={self.message_type} xid={self.xid:#010x} "
                f"chaddr={self.chaddr.hex(':')} giaddr={self.giaddr:#010x} codes={self.codes}>")


cpdef Message parse(object data):
    """Parse one DHCPv4 datagram (the UDP payload) into a :class:`Message`.

    Raises ``MalformedPacket(reason)`` and nothing else: short or oversized datagram, bad
    magic cookie, hlen > 16, an option running past its field, a misplaced or repeated option
    overload (52, RFC 2131 4.1), no end option in the options field, a fixed-length option of
    the wrong length (53, 50, 54, 118, 51, 57 >= 576), a broken option 82 sub-option.
    """
    cdef bytes b
    cdef Message m
    cdef Py_ssize_t n
    cdef const unsigned char *p
    if type(data) is bytes:
        b = <bytes>data
    else:
        # A copy: a bytearray or memoryview may be reused by the caller after parse().
        try:
            b = memoryview(data).tobytes()
        except TypeError:
            raise MalformedPacket(f"not a bytes-like object: {type(data).__name__}") from None
    n = PyBytes_GET_SIZE(b)
    if n < MIN_MESSAGE:
        raise MalformedPacket(f"too short: {n} bytes, a DHCP message has at least 240")
    if n > MAX_MESSAGE:
        raise MalformedPacket(f"too long: {n} bytes, a UDP payload has at most 65507")
    p = <const unsigned char *>PyBytes_AS_STRING(b)
    if fd_load_be32(p + OFF_COOKIE) != MAGIC_COOKIE:
        raise MalformedPacket("bad magic cookie")
    if p[OFF_HLEN] > CHADDR_LEN:
        raise MalformedPacket(f"hlen {p[OFF_HLEN]} is more than 16")
    m = Message.__new__(Message)
    m.data = b
    m._buf = p
    m._len = n
    m._scan(OFF_OPTIONS, n, 0)
    # RFC 2131 4.1: options field first, then file, then sname.
    if m._overload & OVERLOAD_FILE:
        m._scan(OFF_FILE, OFF_FILE + FILE_LEN, 1)
    if m._overload & OVERLOAD_SNAME:
        m._scan(OFF_SNAME, OFF_SNAME + SNAME_LEN, 2)
    m._validate()
    return m


cdef inline Py_ssize_t _encoded_len(Py_ssize_t n) noexcept:
    """Bytes option instances take for an n-byte value split per RFC 3396 (255 per instance)."""
    if n == 0:
        return 2
    return n + 2 * ((n + 254) // 255)


cdef inline Py_ssize_t _put(unsigned char *buf, Py_ssize_t pos, int code,
                            const unsigned char *p, Py_ssize_t n) noexcept:
    """Write option ``code`` at ``pos`` as consecutive instances (RFC 3396); new position."""
    cdef Py_ssize_t k
    if n == 0:
        buf[pos] = <unsigned char>code
        buf[pos + 1] = 0
        return pos + 2
    while n > 0:
        k = n if n < 255 else 255
        buf[pos] = <unsigned char>code
        buf[pos + 1] = <unsigned char>k
        memcpy(buf + pos + 2, p, k)
        pos += k + 2
        p += k
        n -= k
    return pos


cdef inline int _check_code(int code) except -1:
    if code < 1 or code > 254 or code == OPT_OVERLOAD:
        raise ValueError(f"option code {code} cannot be set in a reply (1-254, not 52)")
    return 0


cdef inline int _put_field(unsigned char *dst, bytes value, Py_ssize_t size,
                           str name) except -1:
    """A header text field (sname, file): the value, zero-padded to ``size`` (the header was
    zeroed)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(value)
    if n > size:
        raise ValueError(f"{name} is {n} bytes, the header field holds {size}")
    memcpy(dst, PyBytes_AS_STRING(value), n)
    return 0


cdef list _normalize(object options):
    """(code, bytes) pairs in write order: 53 dropped (msg_type decides it), 82 moved last."""
    cdef list head = []
    cdef list tail = []
    cdef int code
    for item in options:
        code, value = item
        _check_code(code)
        if code == OPT_MESSAGE_TYPE:
            continue
        if type(value) is not bytes:
            value = memoryview(value).tobytes()
        if code == OPT_RELAY_AGENT:
            tail.append((code, value))
        else:
            head.append((code, value))
    return head + tail


cdef list _layout(list items, Py_ssize_t cap0, Py_ssize_t cap1, Py_ssize_t cap2):
    """Place whole options in order into up to three areas, forward only (so RFC 2131 4.1
    reading order, options then file then sname, keeps every option's instances in order).

    A value of at most 255 bytes stays one instance; a longer one (already split per RFC 3396,
    so its reader must concatenate) is cut wherever an area ends. An option that fits nowhere
    is dropped whole. Returns [area0, area1, area2, dropped codes]; areas hold (code, chunk).
    """
    cdef Py_ssize_t caps[3]
    cdef Py_ssize_t trial[3]
    cdef int a = 0, aa, j
    cdef Py_ssize_t n, need, k, off
    cdef bint ok
    cdef list areas = [[], [], []]
    cdef list dropped = []
    cdef list placed
    cdef bytes value
    caps[0] = cap0
    caps[1] = cap1
    caps[2] = cap2
    for code, value in items:
        n = len(value)
        for j in range(3):
            trial[j] = caps[j]
        aa = a
        ok = True
        placed = []
        if n <= 255:
            need = n + 2
            while aa < 3 and trial[aa] < need:
                aa += 1
            if aa == 3:
                ok = False
            else:
                trial[aa] -= need
                placed.append((aa, code, value))
        else:
            off = 0
            while off < n:
                while aa < 3 and trial[aa] < 3:     # room for a header and one byte
                    aa += 1
                if aa == 3:
                    ok = False
                    break
                k = min(n - off, 255, trial[aa] - 2)
                trial[aa] -= k + 2
                placed.append((aa, code, value[off:off + k]))
                off += k
        if not ok:
            dropped.append(code)
            continue
        a = aa
        for j in range(3):
            caps[j] = trial[j]
        for k_area, c, chunk in placed:
            (<list>areas[k_area]).append((c, chunk))
    areas.append(dropped)
    return areas


@cython.final
cdef class ReplyBuilder:
    """Builds replies into one buffer it owns (one builder per server, reused for each reply).

    Not thread-safe: the returned ``bytes`` is a copy, but two concurrent builds would share
    the buffer.
    """

    def __cinit__(self):
        self._buf = <unsigned char *>PyMem_Malloc(REPLY_BUFFER)
        if self._buf is NULL:
            raise MemoryError()
        self._len = 0

    def __dealloc__(self):
        if self._buf is not NULL:
            PyMem_Free(self._buf)
            self._buf = NULL

    cdef Py_ssize_t _header(self, Message request, int msg_type, uint32_t ciaddr,
                            uint32_t yiaddr, uint32_t siaddr) noexcept:
        """RFC 2131 table 3 header, magic cookie and option 53; returns the next position."""
        cdef unsigned char *b = self._buf
        cdef const unsigned char *r = request._buf
        memset(b, 0, OFF_OPTIONS)
        b[OFF_OP] = 2                                   # BOOTREPLY
        b[OFF_HTYPE] = r[OFF_HTYPE]
        b[OFF_HLEN] = r[OFF_HLEN]
        memcpy(b + OFF_XID, r + OFF_XID, 4)
        memcpy(b + OFF_FLAGS, r + OFF_FLAGS, 2)
        fd_store_be32(b + OFF_CIADDR, ciaddr)
        fd_store_be32(b + OFF_YIADDR, yiaddr)
        fd_store_be32(b + OFF_SIADDR, siaddr)
        memcpy(b + OFF_GIADDR, r + OFF_GIADDR, 4)
        memcpy(b + OFF_CHADDR, r + OFF_CHADDR, r[OFF_HLEN])   # hlen <= 16, checked by parse()
        fd_store_be32(b + OFF_COOKIE, MAGIC_COOKIE)
        b[OFF_OPTIONS] = OPT_MESSAGE_TYPE
        b[OFF_OPTIONS + 1] = 1
        b[OFF_OPTIONS + 2] = <unsigned char>msg_type
        return OFF_OPTIONS + 3

    def build(self, Message request not None, int msg_type, uint32_t ciaddr, uint32_t yiaddr,
              uint32_t siaddr, object options, long flags=-1, bytes sname=None,
              bytes file=None) -> bytes:
        """Build a reply to ``request`` (RFC 2131 4.3, table 3) and return it as bytes.

        Option 53 (``msg_type``) first, then ``options`` ((code, value) pairs) in the given
        order, option 82 last, then end; values over 255 bytes are split (RFC 3396). The
        message fits ``max(576, request.max_message_size) - 28`` bytes: if the options field
        cannot hold everything, option 52 overloads ``file`` then ``sname``; what still does
        not fit is dropped (never 53, 54, 51 or 82). Padded to 300 bytes (RFC 1542).
        ``flags`` (0-0xFFFF) replaces the request's flags in the reply; -1 (the default) copies
        them (e.g. a DHCPNAK through a relay sets the broadcast bit, RFC 2131 4.1).
        ``sname`` (at most 64 bytes) and ``file`` (at most 128) fill those header fields
        (server-hostname, boot-file-name; zero-padded, RFC 2131 table 3); a field that carries
        a value is never used for overload (RFC 2131 4.1: only fields not holding their own
        contents may carry options), so only the empty ones are.
        Raises ValueError for a code outside 1-254 or 52, ``msg_type`` outside 1-255,
        ``flags`` outside -1-0xFFFF or a too long ``sname``/``file``, and MalformedPacket if
        the request's option 82 alone cannot fit the reply.
        """
        if type(options) is not list:
            options = list(options)
        return self.reply(request, msg_type, ciaddr, yiaddr, siaddr, <list>options, flags,
                          sname, file)

    cdef bytes reply(self, Message request, int msg_type, uint32_t ciaddr, uint32_t yiaddr,
                     uint32_t siaddr, list options, long flags, bytes sname, bytes file):
        """``build`` for compiled callers (the engine): a C call, ``options`` a list."""
        cdef unsigned char *buf = self._buf
        cdef const unsigned char *p
        cdef Py_ssize_t limit, pos, n, mms
        cdef int code, i
        cdef int n82 = 0
        cdef PyObject *ra[4]
        cdef object value, item
        # Header fields that carry their own contents, so cannot be overloaded.
        cdef int fields = ((OVERLOAD_SNAME if sname else 0) | (OVERLOAD_FILE if file else 0))
        if msg_type < 1 or msg_type > 255:
            raise ValueError(f"message type {msg_type} is not 1-255")
        if flags < -1 or flags > 0xFFFF:
            raise ValueError(f"flags {flags} is not 0-0xFFFF (or -1: the request's)")
        if request._buf is NULL:
            raise ValueError("request is not a parsed message (use parse())")
        mms = 0
        if _optview(request, OPT_MAX_SIZE, &p) == 2:
            mms = fd_load_be16(p)
        if mms < MIN_MAX_SIZE:
            mms = MIN_MAX_SIZE
        limit = mms - IP_UDP_HEADERS
        pos = self._header(request, msg_type, ciaddr, yiaddr, siaddr)
        if flags >= 0:
            fd_store_be16(buf + OFF_FLAGS, <uint16_t>flags)
        if sname is not None:
            _put_field(buf + OFF_SNAME, sname, SNAME_LEN, "sname")
        if file is not None:
            _put_field(buf + OFF_FILE, file, FILE_LEN, "file")
        # Fast path: everything fits the options field. Option 82 values are set aside
        # (borrowed from the caller's list, alive for this call) and written last.
        for item in options:
            if type(item) is tuple and PyTuple_GET_SIZE(item) == 2:
                code = <object>PyTuple_GET_ITEM(item, 0)
                value = <object>PyTuple_GET_ITEM(item, 1)
            else:
                code, value = item
            if code == OPT_RELAY_AGENT:
                if n82 == 4 or type(value) is not bytes:
                    return self._slow(request, msg_type, _normalize(options), limit, fields)
                ra[n82] = <PyObject *>value
                n82 += 1
                continue
            if code == OPT_MESSAGE_TYPE:
                continue
            _check_code(code)
            if type(value) is not bytes:
                return self._slow(request, msg_type, _normalize(options), limit, fields)
            n = PyBytes_GET_SIZE(value)
            if pos + _encoded_len(n) + 1 > limit:
                return self._slow(request, msg_type, _normalize(options), limit, fields)
            pos = _put(buf, pos, code, <const unsigned char *>PyBytes_AS_STRING(value), n)
        for i in range(n82):
            n = PyBytes_GET_SIZE(<object>ra[i])
            if pos + _encoded_len(n) + 1 > limit:
                return self._slow(request, msg_type, _normalize(options), limit, fields)
            pos = _put(buf, pos, OPT_RELAY_AGENT,
                       <const unsigned char *>PyBytes_AS_STRING(<object>ra[i]), n)
        buf[pos] = OPT_END
        pos += 1
        if pos < BOOTP_MIN:
            memset(buf + pos, 0, BOOTP_MIN - pos)
            pos = BOOTP_MIN
        self._len = pos
        return PyBytes_FromStringAndSize(<const char *>buf, pos)

    cdef bytes _slow(self, Message request, int msg_type, list items, Py_ssize_t limit,
                     int fields):
        """The reply does not fit the options field: overload file/sname (those of them not in
        ``fields``, the OVERLOAD_* bits of the fields carrying a value), then drop."""
        cdef unsigned char *buf = self._buf
        cdef Py_ssize_t pos, fpos, spos, main_cap
        cdef int overload = 0
        cdef list plan
        # Room in the options field after 53 (3 bytes) and end (1 byte).
        main_cap = limit - OFF_OPTIONS - 3 - 1
        while True:
            plan = _layout(items, main_cap, 0, 0)
            if plan[3]:
                # With overload the options field also carries 52 (3 bytes); file and sname
                # each keep one byte for their end option.
                over = _layout(items, main_cap - 3,
                               0 if fields & OVERLOAD_FILE else FILE_LEN - 1,
                               0 if fields & OVERLOAD_SNAME else SNAME_LEN - 1)
                if over[1] or over[2]:
                    plan = over
            if not any(c in _REQUIRED for c in plan[3]):
                break
            # A required option (54, 51, 82) did not fit: drop the last optional one, retry.
            for j in range(len(items) - 1, -1, -1):
                if items[j][0] not in _REQUIRED:
                    del items[j]
                    break
            else:
                raise MalformedPacket(
                    "the reply's required options (54, 51, 82) do not fit its maximum size")
        # build() already wrote the header (sname/file zeroed) and 53; rewrite the rest.
        pos = OFF_OPTIONS + 3
        if plan[1]:
            overload |= OVERLOAD_FILE
        if plan[2]:
            overload |= OVERLOAD_SNAME
        if overload:
            buf[pos] = OPT_OVERLOAD
            buf[pos + 1] = 1
            buf[pos + 2] = <unsigned char>overload
            pos += 3
        for code, chunk in plan[0]:
            pos = _put(buf, pos, code, <const unsigned char *>PyBytes_AS_STRING(chunk),
                       PyBytes_GET_SIZE(chunk))
        buf[pos] = OPT_END
        pos += 1
        if plan[1]:
            fpos = OFF_FILE
            for code, chunk in plan[1]:
                fpos = _put(buf, fpos, code, <const unsigned char *>PyBytes_AS_STRING(chunk),
                            PyBytes_GET_SIZE(chunk))
            buf[fpos] = OPT_END
        if plan[2]:
            spos = OFF_SNAME
            for code, chunk in plan[2]:
                spos = _put(buf, spos, code, <const unsigned char *>PyBytes_AS_STRING(chunk),
                            PyBytes_GET_SIZE(chunk))
            buf[spos] = OPT_END
        if pos < BOOTP_MIN:
            memset(buf + pos, 0, BOOTP_MIN - pos)
            pos = BOOTP_MIN
        self._len = pos
        return PyBytes_FromStringAndSize(<const char *>buf, pos)
