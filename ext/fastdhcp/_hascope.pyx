# cython: language_level=3
"""The HA scope filter, compiled: which queries this server of an HA pair answers now.

Kea's HA hook drops, before any allocation, every query of a client outside the scopes this
server serves, and every query while the HA state has DHCP disabled (waiting, syncing, ready,
in-maintenance). The packet path asks :meth:`ScopeFilter.check` per datagram at C level; the
HA service (``fastdhcp.ha.service``) sets the filter with :meth:`ScopeFilter.set` on every
state or scope change, so the path never calls up into the service.

The load-balancing hash is here, once: RFC 3074 section 6's Pearson hash, as Kea computes it
(kea-ha.md section 5; ``fastdhcp.ha.hash`` documents the rule and re-exports it). A query of
the partner's scope, while the service says communication is interrupted, is kept as a
:class:`MissedQuery` for the service to drain after the burst (Kea's failure detection counts
clients by their ``secs``); otherwise nothing per packet is allocated.
"""

cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t

from fastdhcp._codec cimport Message
from fastdhcp._consts cimport OFF_CHADDR, OFF_HLEN, OFF_SECS, OPT_CLIENT_ID

# RFC 3074 section 6: "a permutation of 0..255" (the table Kea's HA hook uses too)
cdef uint8_t _T[256]
_T[:] = [
    251, 175, 119, 215, 81, 14, 79, 191, 103, 49, 181, 143, 186, 157, 0,
    232, 31, 32, 55, 60, 152, 58, 17, 237, 174, 70, 160, 144, 220, 90, 57,
    223, 59, 3, 18, 140, 111, 166, 203, 196, 134, 243, 124, 95, 222, 179,
    197, 65, 180, 48, 36, 15, 107, 46, 233, 130, 165, 30, 123, 161, 209, 23,
    97, 16, 40, 91, 219, 61, 100, 10, 210, 109, 250, 127, 22, 138, 29, 108,
    244, 67, 207, 9, 178, 204, 74, 98, 126, 249, 167, 116, 34, 77, 193,
    200, 121, 5, 20, 113, 71, 35, 128, 13, 182, 94, 25, 226, 227, 199, 75,
    27, 41, 245, 230, 224, 43, 225, 177, 26, 155, 150, 212, 142, 218, 115,
    241, 73, 88, 105, 39, 114, 62, 255, 192, 201, 145, 214, 168, 158, 221,
    148, 154, 122, 12, 84, 82, 163, 44, 139, 228, 236, 205, 242, 217, 11,
    187, 146, 159, 64, 86, 239, 195, 42, 106, 198, 118, 112, 184, 172, 87,
    2, 173, 117, 176, 229, 247, 253, 137, 185, 99, 164, 102, 147, 45, 66,
    231, 52, 141, 211, 194, 206, 246, 238, 56, 110, 78, 248, 63, 240, 189,
    93, 92, 51, 53, 183, 19, 171, 72, 50, 33, 104, 101, 69, 8, 252, 83, 120,
    76, 135, 85, 54, 202, 125, 188, 213, 96, 235, 136, 208, 162, 129, 190,
    132, 156, 38, 47, 1, 7, 254, 24, 4, 216, 131, 89, 21, 28, 133, 37, 153,
    149, 80, 170, 68, 6, 169, 234, 151,
]

#: the table as bytes (tests, docs)
PEARSON_TABLE = bytes([_T[i] for i in range(256)])

cdef enum:
    _CHADDR_LEN = 16       # chaddr field size: a larger hlen is clipped to it


cdef int pearson(const unsigned char *key, Py_ssize_t n) noexcept:
    """RFC 3074's hash of ``key[:n]``: start from the length, bytes from the last to the
    first."""
    cdef int h = <int>(n & 0xFF)
    cdef Py_ssize_t i
    for i in range(n - 1, -1, -1):
        h = _T[h ^ key[i]]
    return h


cdef int scope_index(Message msg, int servers) except -2:
    """The server index (0 = the primary) of ``msg``'s client over ``servers`` scopes: the
    hash of option 61's whole value, else of chaddr's hlen bytes (kea-ha.md section 5); -1
    when there is nothing to hash. The one rule for the filter and the ``HA_`` classes."""
    cdef const unsigned char *p
    cdef const unsigned char *b = msg._buf
    cdef Py_ssize_t n = msg._view(OPT_CLIENT_ID, &p)
    if n <= 0:
        p = b + OFF_CHADDR
        n = min(<Py_ssize_t>b[OFF_HLEN], <Py_ssize_t>_CHADDR_LEN)
    if n <= 0 or servers <= 0:
        return -1
    return pearson(p, n) % servers


def lb_hash(const unsigned char[:] key) -> int:
    """RFC 3074's hash of ``key`` (0..255)."""
    if key.shape[0] == 0:
        return 0
    return pearson(&key[0], key.shape[0])


@cython.final
@cython.freelist(32)
cdef class MissedQuery:
    """A query of the partner's scope seen while communication is interrupted."""

    def __init__(self, client_id, bytes chaddr, int secs):
        self.client_id = client_id
        self.chaddr = chaddr
        self.secs = secs


@cython.final
cdef class ScopeFilter:
    """What the packet path answers now; set by the HA service, read per query.

    A new filter passes nothing (an HA server starts in waiting, DHCP off) until the service
    sets it. ``not_for_us`` and ``disabled`` count the queries dropped each way since the
    service last took them (``take_not_for_us``, ``take_disabled``).
    """

    def __init__(self):
        self.enabled = False
        self.servers = 2
        self.mask = 0
        self.analyze = False
        self.not_for_us = 0
        self.disabled = 0
        self._missed = []

    def set(self, bint enabled, int servers, unsigned int mask, bint analyze):
        """The state's answer: DHCP on or off, how many scopes the hash spreads clients over
        (2 load-balancing, 1 hot-standby), which of them are served (bit i = server i,
        primary first), whether to keep missed queries."""
        if servers < 1 or servers > 2:
            raise ValueError(f"servers must be 1 or 2, not {servers}")
        self.enabled = enabled
        self.servers = servers
        self.mask = mask
        self.analyze = analyze
        if not analyze:
            self._missed = []

    def answers(self, client_id, bytes chaddr) -> bool:
        """What :meth:`check` decides for this client (tests, and queries from Python)."""
        cdef const unsigned char[:] key
        cdef int idx
        if not self.enabled:
            return False
        key = client_id if client_id else chaddr
        if key.shape[0] == 0:
            return self.mask == (1u << self.servers) - 1
        idx = pearson(&key[0], key.shape[0]) % self.servers
        return bool(self.mask & (1u << idx))

    def take_not_for_us(self) -> int:
        """The queries dropped as the partner's since the last call (then zero)."""
        n, self.not_for_us = self.not_for_us, 0
        return n

    def take_disabled(self) -> int:
        """The queries dropped with DHCP disabled since the last call (then zero)."""
        n, self.disabled = self.disabled, 0
        return n

    def drain(self) -> list:
        """The missed queries kept since the last drain (then forgotten)."""
        out, self._missed = self._missed, []
        return out

    cpdef int check(self, Message msg) except -1:
        """HA_PASS (0), HA_NOT_FOR_US (1) or HA_DISABLED (2) for this query (Kea filters
        every message type by scope). cpdef on a final class: the packet path calls it in C;
        the bench calls it from Python."""
        cdef int k
        if not self.enabled:
            self.disabled += 1
            return HA_DISABLED
        if self.mask == (1u << self.servers) - 1:  # every scope (partner-down): no hash
            return HA_PASS
        if self.mask:  # (none served, as a hot-standby standby: nothing to hash)
            # nothing to hash (-1): only a server of every scope answers (above)
            k = scope_index(msg, self.servers)
            if k >= 0 and self.mask & (1u << k):
                return HA_PASS
        self.not_for_us += 1
        if self.analyze and len(self._missed) < 4096:  # bounded between two drains
            self._keep(msg, msg._buf)
        return HA_NOT_FOR_US

    cdef _keep(self, Message msg, const unsigned char *b):
        cdef const unsigned char *p
        cdef Py_ssize_t n = msg._view(OPT_CLIENT_ID, &p)
        cid = PyBytes_FromStringAndSize(<const char*>p, n) if n > 0 else None
        hl = min(<Py_ssize_t>b[OFF_HLEN], <Py_ssize_t>_CHADDR_LEN)
        self._missed.append(MissedQuery(
            cid, PyBytes_FromStringAndSize(<const char*>(b + OFF_CHADDR), hl),
            (b[OFF_SECS] << 8) | b[OFF_SECS + 1]))
