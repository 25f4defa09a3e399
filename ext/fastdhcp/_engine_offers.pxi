# fastdhcp._engine, part: the offer table. Included by _engine.pyx (one C module: the
# functions below are direct C calls; Cython allows no include inside a class body,
# so the Engine's methods of this concern are functions taking the Engine first).
#
# Addresses held between OFFER and REQUEST (memory only, offer-lifetime): ``_offers`` by
# client, ``_offered`` by address, and the heap ``reclaim`` expires them from.


@cython.final
@cython.freelist(256)
@cython.no_gc
cdef class _Offer:
    """An address held for one client between OFFER and REQUEST (memory only).

    Made by ``Engine._hold`` only. It refers to nothing but bytes and tuples of ints and bytes
    (``key``, ``sub``), so it can be in no reference cycle: kept out of the cyclic GC, which
    would otherwise walk every held offer."""


cdef inline bint _earlier(_Offer a, _Offer b) noexcept:
    return a.at < b.at or (a.at == b.at and a.seq < b.seq)


cdef _drop_offer(Engine self, bytes key, _Offer offer):
    """Forget ``key``'s offer and free its address unless something else claims it."""
    if self._offers.get(key) is offer:
        del self._offers[key]
    _unsub(self, offer)
    if self._offered.get(offer.ip) == key:
        del self._offered[offer.ip]
        _settle(self, offer.ip)


cdef _hold(Engine self, bytes key, uint32_t ip, double expires, bint alone, object sub,
              bint renews):
    if self._sub_offers:
        # (Callers drop the client's previous offer first; this keeps the count right
        # should one ever be replaced here.)
        old = self._offers.get(key)
        if old is not None:
            _unsub(self, <_Offer>old)
    cdef _Offer offer = _Offer.__new__(_Offer)
    offer.ip = ip
    offer.expires = expires
    offer.alone = alone
    offer.renews = renews
    offer.probing = False  # ping-check marks it (_probe_mark) once the OFFER is built
    offer.key = key
    if sub is not None:
        offer.sub = sub
        self._sub_offers[sub] = self._sub_offers.get(sub, 0) + 1
    self._offers[key] = offer
    self._offered[ip] = key
    offer.at = expires
    _heap_push(self, offer)

# The offer heap holds the offers themselves (no entry tuple, float and int per offer),
# ordered on (at, seq). Every offer in _offers is in it once; an offer whose expiry moved
# later stays at its old place and is queued again at its expiry when reclaim reaches
# it; one that is dropped or replaced stays until reclaim pops and discards it.


cdef _heap_push(Engine self, _Offer offer):
    cdef list heap = self._offer_heap
    cdef Py_ssize_t pos = len(heap), parent
    cdef _Offer up
    self._seq += 1
    offer.seq = self._seq
    heap.append(offer)
    while pos > 0:
        parent = (pos - 1) >> 1
        up = <_Offer>heap[parent]
        if not _earlier(offer, up):
            break
        heap[pos] = up
        pos = parent
    heap[pos] = offer


cdef _Offer _heap_pop(Engine self):
    cdef list heap = self._offer_heap
    cdef _Offer last = <_Offer>heap.pop()
    cdef _Offer top, c
    cdef Py_ssize_t n = len(heap), pos = 0, child
    if n == 0:
        return last
    top = <_Offer>heap[0]
    while True:
        child = 2 * pos + 1
        if child >= n:
            break
        c = <_Offer>heap[child]
        if child + 1 < n and _earlier(<_Offer>heap[child + 1], c):
            child += 1
            c = <_Offer>heap[child]
        if not _earlier(c, last):
            break
        heap[pos] = c
        pos = child
    heap[pos] = last
    return top
