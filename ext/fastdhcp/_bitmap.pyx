"""Per-pool free-address bitmaps: the allocator behind every dynamic pool.

Theory of operation. A pool is a contiguous range of 1 to 2**24 IPv4 addresses. Level 0 holds one
bit per address (1 = used) in 64-bit words; bits past ``last`` in the final word are kept 1 so
they are never handed out. Above it sit summary levels of a 64-ary tree: bit j of a level-1
word is 1 while address word j still has a 0 bit, bit j of a level-k word (k >= 2) is 1 while
word j of level k-1 is non-zero. Levels are added until the top one is a single word, so a
2**24 pool has 2**18 address words, then 2**12, 64 and 1 summary words (three summary levels:
with only one, finding the next non-full word near exhaustion could mean scanning thousands of
summary words; with two, up to 64). Finding the first free address at or after an offset reads
at most two words per level (climb until a masked word has a bit, then descend with
count-trailing-zeros), i.e. at most 8 word reads at any fill; marking an address used or free
touches a parent word only when a child word becomes full or stops being full.

Next-fit: a search starts at a rotating cursor, which moves just past each address the search
hands out (wrapping at the end of the pool), so a just-released address is not given out again
until the cursor comes round. A hint that is free and inside the pool is taken as is and does
not move the cursor: it is the client's own (previous or requested) address, not a search.

Memory for 2**24 addresses: 2,097,152 + 32,768 + 512 + 8 bytes in one block, plus the object.

Not thread-safe: one event loop owns a pool. ``reserve_many`` runs its loop without the GIL (the
start-up rebuild); while it runs, other mutating calls on the same pool raise RuntimeError.
"""

cimport cython
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact
from cpython.mem cimport PyMem_RawCalloc, PyMem_RawFree
from libc.stdint cimport int64_t, uint32_t, uint64_t

from operator import index as _index

from fastdhcp.errors import AddressNotInPool, DoubleFree, PoolExhausted


cdef extern from *:
    int __builtin_ctzll(unsigned long long x) nogil
    void __builtin_prefetch(const void* addr) nogil


cdef enum:
    MAX_POOL_SIZE = 1 << 24
    MAX_ADDRESS = 0xFFFFFFFF


cdef uint64_t ALL_ONES = ~(<uint64_t>0)


cdef inline int ctz(uint64_t x) noexcept nogil:
    # Only ever called with x != 0 (__builtin_ctzll(0) is undefined).
    return __builtin_ctzll(x)


cdef str _ip(int64_t n):
    """Dotted quad for error messages."""
    return f"{(n >> 24) & 255}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


cdef inline int64_t _as_address(object addr) except? -2:
    """The integer value of ``addr``, or -1 when it cannot be an IPv4 address (too big or small
    for 64 bits); raises TypeError for non-integers. -1 is also what a negative int gives: both
    mean "outside any pool"."""
    cdef int overflow = 0
    cdef long long v
    if not PyLong_CheckExact(addr):
        addr = _index(addr)
    v = PyLong_AsLongLongAndOverflow(addr, &overflow)
    if overflow != 0 or v < 0 or v > MAX_ADDRESS:
        return -1
    return v


@cython.final
cdef class PoolBitmap:
    """Free/used state of one pool of addresses ``first`` .. ``last`` (inclusive, host-order ints).

    ``PoolBitmap(first, last)`` starts with every address free. Raises ValueError when the range
    is empty, outside IPv4 or larger than 2**24 addresses, TypeError for non-integers.
    """

    def __cinit__(self, first, last):
        cdef int64_t f, l
        cdef uint32_t size, n
        cdef size_t total
        cdef int k
        self._block = NULL
        f = _as_address(first)
        l = _as_address(last)
        if f < 0 or l < 0:
            raise ValueError(f"pool bounds must be IPv4 addresses as ints: {first!r}, {last!r}")
        if f > l:
            raise ValueError(f"pool {_ip(f)} - {_ip(l)}: first address is after last address")
        if l - f + 1 > MAX_POOL_SIZE:
            raise ValueError(
                f"pool {_ip(f)} - {_ip(l)}: {l - f + 1} addresses, more than 2**24 in one pool"
            )
        size = <uint32_t>(l - f + 1)
        self._first = <uint32_t>f
        self._last = <uint32_t>l
        self._size = size
        self._used = 0
        self._cursor = 0
        self._busy = False

        # Words per level, up to a single top word; at least one summary level, even for a
        # pool of one word, so the search code has no special case.
        self._nw[0] = (size + 63) >> 6
        total = self._nw[0]
        k = 0
        while True:
            k += 1
            n = (self._nw[k - 1] + 63) >> 6
            self._nw[k] = n
            total += n
            if n == 1:
                break
        self._top = k
        self._nblock = total

        # Raw-domain allocation: traced by tracemalloc, usable without the GIL. calloc leaves the
        # address words zero (all free) without touching the pages of a large pool.
        self._block = <uint64_t*>PyMem_RawCalloc(total, sizeof(uint64_t))
        if self._block == NULL:
            raise MemoryError()
        self._lvl[0] = self._block
        for k in range(1, self._top + 1):
            self._lvl[k] = self._lvl[k - 1] + self._nw[k - 1]
        for k in range(self._top + 1, MAX_SUMMARY_LEVELS + 1):
            self._lvl[k] = NULL
            self._nw[k] = 0

        if size & 63:
            # Padding past `last` is permanently used.
            self._lvl[0][self._nw[0] - 1] = ALL_ONES << (size & 63)
        self._rebuild(0, self._nw[0] - 1)

    def __dealloc__(self):
        if self._block != NULL:
            PyMem_RawFree(self._block)
            self._block = NULL

    # ---- C level ---------------------------------------------------------------------------

    cdef int64_t _word_after(self, uint32_t w) noexcept nogil:
        """Index of the first address word after word ``w`` that has a free bit, or -1.

        Reads only summary words (about 34 KiB for 2**24 addresses, so cache-resident), never
        an address word: the caller may prefetch the result before touching it."""
        cdef uint32_t idx = w + 1
        cdef uint64_t m
        cdef int k = 1
        # Climb: at level k look for a child of level k-1 with index >= idx that has room.
        while True:
            if k > self._top:
                return -1
            w = idx >> 6
            if w >= self._nw[k]:
                return -1
            m = self._lvl[k][w] & (ALL_ONES << (idx & 63))
            if m:
                idx = (w << 6) | ctz(m)
                break
            idx = w + 1
            k += 1
        # Descend: idx is a child of level k-1 that has room; take the lowest path down.
        k -= 1
        while k > 0:
            idx = (idx << 6) | ctz(self._lvl[k][idx])
            k -= 1
        return idx

    cdef int64_t _find_from(self, uint32_t off) noexcept nogil:
        """Offset of the first free address at or after ``off`` (< size), or -1 if none."""
        cdef uint64_t* words = self._lvl[0]
        cdef uint32_t w = off >> 6
        cdef uint64_t m = ~words[w] & (ALL_ONES << (off & 63))
        cdef int64_t wi
        if m:
            return (<int64_t>w << 6) | ctz(m)
        wi = self._word_after(w)
        if wi < 0:
            return -1
        return (wi << 6) | ctz(~words[wi])

    cdef int64_t _next_fit(self) noexcept nogil:
        """Offset the next-fit search gives (the cursor does not move), or -1 if full."""
        cdef int64_t r
        if self._used >= self._size:
            return -1
        r = self._find_from(self._cursor)
        if r < 0 and self._cursor != 0:
            r = self._find_from(0)
        return r

    cdef void _set_used(self, uint32_t off) noexcept nogil:
        """Mark a free address used; clear summary bits of words that became full."""
        cdef uint32_t idx = off >> 6
        cdef uint64_t* words = self._lvl[0]
        cdef uint64_t* s
        cdef int k
        words[idx] |= (<uint64_t>1) << (off & 63)
        self._used += 1
        if words[idx] != ALL_ONES:
            return
        for k in range(1, self._top + 1):
            s = self._lvl[k] + (idx >> 6)
            s[0] &= ~((<uint64_t>1) << (idx & 63))
            if s[0] != 0:
                return
            idx >>= 6

    cdef void _set_free(self, uint32_t off) noexcept nogil:
        """Mark a used address free; set summary bits of words that were full."""
        cdef uint32_t idx = off >> 6
        cdef uint64_t* words = self._lvl[0]
        cdef uint64_t* s
        cdef uint64_t was = words[idx]
        cdef int k
        words[idx] = was & ~((<uint64_t>1) << (off & 63))
        self._used -= 1
        if was != ALL_ONES:
            return
        for k in range(1, self._top + 1):
            s = self._lvl[k] + (idx >> 6)
            was = s[0]
            s[0] = was | ((<uint64_t>1) << (idx & 63))
            if was != 0:
                return
            idx >>= 6

    cdef void _rebuild(self, uint32_t lo_word, uint32_t hi_word) noexcept nogil:
        """Recompute every summary bit above address words lo_word .. hi_word (inclusive)."""
        cdef int k
        cdef uint32_t w, j, jlo, jhi, n
        cdef uint64_t* child
        cdef uint64_t* parent
        cdef uint64_t bits, full
        for k in range(1, self._top + 1):
            child = self._lvl[k - 1]
            parent = self._lvl[k]
            n = self._nw[k - 1]
            # A level-0 word has room unless all ones; a summary word unless zero.
            full = ALL_ONES if k == 1 else 0
            for w in range(lo_word >> 6, (hi_word >> 6) + 1):
                bits = 0
                jlo = w << 6
                jhi = jlo + 64
                if jhi > n:
                    jhi = n
                for j in range(jlo, jhi):
                    if child[j] != full:
                        bits |= (<uint64_t>1) << (j - jlo)
                parent[w] = bits
            lo_word >>= 6
            hi_word >>= 6

    cdef int _check_idle(self) except -1:
        if self._busy:
            raise RuntimeError("PoolBitmap is being changed by reserve_many in another thread")
        return 0

    cdef int _offset(self, object addr, uint32_t* off) except -1:
        """Offset of ``addr`` in the pool, or AddressNotInPool."""
        cdef int64_t a = _as_address(addr)
        if a < self._first or a > self._last:
            raise AddressNotInPool(
                f"{addr!r} is not in pool {_ip(self._first)} - {_ip(self._last)}"
            )
        off[0] = <uint32_t>(a - self._first)
        return 0

    cdef int64_t allocate_c(self, int64_t hint) except -1:
        """C-level allocate for compiled callers: ``hint`` <= 0 means none."""
        cdef uint32_t off
        cdef int64_t r
        self._check_idle()
        if hint >= self._first and hint <= self._last and hint > 0:
            off = <uint32_t>(hint - self._first)
            if not (self._lvl[0][off >> 6] >> (off & 63)) & 1:
                self._set_used(off)
                return hint
        r = self._next_fit()
        if r < 0:
            raise PoolExhausted(
                f"pool {_ip(self._first)} - {_ip(self._last)} has no free address "
                f"({self._size} used)"
            )
        off = <uint32_t>r
        self._set_used(off)
        self._cursor = off + 1 if off + 1 < self._size else 0
        if self._lvl[0][off >> 6] == ALL_ONES:
            # The next search will land in another address word; near exhaustion that word is
            # far away and not in cache. Start loading it now, while the caller does its work.
            r = self._word_after(off >> 6)
            if r >= 0:
                __builtin_prefetch(&self._lvl[0][r])
        return self._first + off

    cdef Py_ssize_t reserve_buffer(self, const uint32_t[:] addrs) except -1:
        """C-level reserve_many."""
        cdef Py_ssize_t i, n = addrs.shape[0]
        cdef Py_ssize_t count = 0
        cdef uint32_t v, off, w
        cdef uint32_t first = self._first, last = self._last
        cdef uint32_t lo = 0xFFFFFFFF, hi = 0
        cdef uint64_t b
        cdef uint64_t* words = self._lvl[0]
        self._check_idle()
        self._busy = True
        try:
            with nogil:
                # Summaries are left alone in the loop (random writes to them would cost more
                # than the address bits) and recomputed once over the touched words.
                for i in range(n):
                    v = addrs[i]
                    if v < first or v > last:
                        continue
                    off = v - first
                    w = off >> 6
                    b = (<uint64_t>1) << (off & 63)
                    if not words[w] & b:
                        words[w] |= b
                        count += 1
                        if w < lo:
                            lo = w
                        if w > hi:
                            hi = w
                if count:
                    self._used += <uint32_t>count
                    self._rebuild(lo, hi)
        finally:
            self._busy = False
        return count

    # ---- Python API --------------------------------------------------------------------------

    def allocate(self, hint=0) -> int:
        """Mark an address used and return it.

        ``hint`` (an address, 0 = none) is taken if it is in the pool and free, without moving
        the cursor. Otherwise the first free address at or after the cursor is taken (wrapping
        to the start of the pool) and the cursor moves just past it. Raises PoolExhausted when
        every address is used.
        """
        return self.allocate_c(_as_address(hint))

    def reserve(self, addr) -> None:
        """Mark ``addr`` used (idempotent: an address already used stays used).

        For fixed reservations, declined addresses in probation, addresses held for an offer and
        leases loaded at start-up. Raises AddressNotInPool outside the pool.
        """
        cdef uint32_t off
        self._check_idle()
        self._offset(addr, &off)
        if not (self._lvl[0][off >> 6] >> (off & 63)) & 1:
            self._set_used(off)

    def free(self, addr) -> None:
        """Mark a used ``addr`` free. Raises DoubleFree if it is already free, AddressNotInPool
        outside the pool. The cursor does not move."""
        cdef uint32_t off
        self._check_idle()
        self._offset(addr, &off)
        if not (self._lvl[0][off >> 6] >> (off & 63)) & 1:
            raise DoubleFree(f"{_ip(self._first + off)} is already free")
        self._set_free(off)

    def is_free(self, addr) -> bool:
        """Whether ``addr`` is free. Raises AddressNotInPool outside the pool."""
        cdef uint32_t off
        self._offset(addr, &off)
        return not (self._lvl[0][off >> 6] >> (off & 63)) & 1

    def contains(self, addr) -> bool:
        """Whether ``addr`` lies in ``first`` .. ``last`` (never raises for an int)."""
        cdef int64_t a = _as_address(addr)
        return a >= self._first and a <= self._last

    def reserve_many(self, const uint32_t[:] addrs not None) -> int:
        """Mark every address of a buffer of uint32 (array('I'), memoryview cast 'I', ...) used.

        Entries outside the pool are skipped; duplicates and already-used addresses count once
        or not at all. Returns how many addresses were newly marked used. The loop runs without
        the GIL; the summary levels are recomputed once afterwards, over the words touched.
        """
        return self.reserve_buffer(addrs)

    @property
    def first(self) -> int:
        """First address of the pool."""
        return self._first

    @property
    def last(self) -> int:
        """Last address of the pool (inclusive)."""
        return self._last

    @property
    def size(self) -> int:
        """Number of addresses in the pool."""
        return self._size

    @property
    def used(self) -> int:
        """Number of addresses marked used."""
        return self._used

    @property
    def free_count(self) -> int:
        """Number of free addresses (size - used)."""
        return self._size - self._used

    def __sizeof__(self) -> int:
        # The object plus its one bit-array block, so sys.getsizeof reports the real footprint.
        return object.__sizeof__(self) + self._nblock * sizeof(uint64_t)

    def __repr__(self) -> str:
        return (
            f"PoolBitmap({_ip(self._first)} - {_ip(self._last)}, "
            f"used={self._used}/{self._size})"
        )
