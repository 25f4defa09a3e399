"""Defences at the service edge, applied after parsing and before the engine.

Theory of operation
-------------------
A DHCP server must answer every good client, and the protocol gives it no way to tell a good
client from a hostile one: a chaddr or client-id is whatever the sender writes (RFC 2131 7,
RFC 3046 4.0). What the server *can* bound is how much of its work one identity, or one relay,
may take. :class:`EdgeGuard` does three cheap things per request, in this order:

1. **Relay trust** (``server.trusted-relays``). A relayed request (giaddr set) is served only if
   both its giaddr and the datagram's source address are trusted: the first hop (giaddr) decides
   subnet selection and the last hop (source) is who actually talks to us. An empty list trusts
   every relay, as before this existed. Unrelayed requests are not affected.
2. **Per-client rate** (``server.limits.client-rate``): one token bucket per client key (option 61
   client-id, else htype + chaddr: ``Message.client_key``, the key the engine holds leases
   under). A single client repeating itself -- a broken client, or one MAC flooding -- is cut
   here.
3. **Per-relay rate** (``server.limits.relay-rate``): one token bucket per giaddr and one per
   source address of relayed traffic (the same bucket when they are equal). A storm behind one
   relay is cut here and cannot take the capacity other relays need.

The client check runs before the relay check, so a client dropped for its own rate costs its
relay nothing: one flooding MAC does not push its relay's other clients over the relay limit.

Token buckets as GCRA
~~~~~~~~~~~~~~~~~~~~~
A bucket of ``burst`` tokens refilled at ``rate`` per second is stored as one float, its
*theoretical arrival time* (TAT): the time at which the bucket will be full again. With
``T = 1/rate`` and ``tau = (burst - 1) * T`` a request at ``now`` conforms iff
``max(TAT, now) - now <= tau``, and then ``TAT = max(TAT, now) + T``. This is exactly the token
bucket (tokens = ``burst - (max(TAT, now) - now) / T``) with one float per key and no refill
step.

Bounded memory, and why a storm cannot starve good clients
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Each :class:`RateLimiter` keeps at most ``capacity`` keys in an LRU table. A storm of random
MACs fills it and evicts the least recently seen keys. Forgetting a key could let that key
exceed its rate (it would come back with a full bucket), so the TAT of an evicted key whose
bucket was not yet full is folded (``max``) into a fixed array of ``slots`` floats (16 per
table entry by default) indexed by a salted hash of the key; a key that is not in the table
starts from its slot's TAT. Hence:

- *no key ever exceeds its rate by more than its burst*: a key's recalled TAT is at least the
  one it was evicted with, so its bucket is never fuller than it really is (tested against
  the window bound ``n <= burst + rate * span`` through arbitrary eviction sequences);
- *memory is bounded*: ``capacity`` table entries (about 210 bytes each with the key) plus
  8 bytes a slot, whatever the number of keys seen;
- *a storm cannot starve a good client*. A client in the table has its own state, which
  nothing else touches. A client that is not (a good client renews every T1, so a storm has
  usually pushed it out) shares its slot with the keys evicted into it, which is the price of
  the bound above with finite memory. Each of those keys can push the slot at most one
  interval ``T`` further ahead per request it made, and the slot falls back at one second per
  second: a queue with load ``rho = new keys per second / (slots * rate)``. Only when rho
  nears 1 can slots run ahead by more than a burst and refuse a good client; that takes
  10 million new keys a second for the default table (65,536 entries, 16 slots each) at
  10 requests/s, some 40 times more than the server can even receive on a small machine, and
  at 100,000 a second rho is 0.01: a collision then costs the good client about the tokens
  the colliding storm key spent (one, for a DISCOVER storm), out of its burst. Which slot a
  key uses depends on a random salt drawn at start, so an attacker cannot aim its keys at a
  particular client's slot; and the LRU keeps every recently active client in the table,
  where a storm cannot reach its state at all.

Option 82 of a request that was not relayed is the codec's to hide
(``Message.ignore_unrelayed_agent_info``, RFC 3046 2.1), after the guard and before the engine.
"""

from __future__ import annotations

import random
from array import array
from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastdhcp._codec import Message

__all__ = [
    "RateLimiter",
    "RelayTrust",
    "EdgeGuard",
    "DROP_UNTRUSTED_RELAY",
    "DROP_CLIENT_RATE",
    "DROP_RELAY_RATE",
]

#: Drop reasons (``fastdhcp_dropped{reason=...}``).
DROP_UNTRUSTED_RELAY = "untrusted-relay"
DROP_CLIENT_RATE = "rate-limit-client"
DROP_RELAY_RATE = "rate-limit-relay"


class RateLimiter:
    """Token buckets of ``burst`` tokens refilled at ``rate`` per second, one per key, in a
    table of at most ``capacity`` keys (LRU) backed by a fixed eviction memory of ``slots``
    floats (default 16 per entry; see the module docstring). ``now`` is a monotonic time in
    seconds supplied by the caller; ``seed`` fixes the slot salt (tests)."""

    __slots__ = ("rate", "burst", "capacity", "_interval", "_tolerance", "_table", "_memory",
                 "_slots", "_salt", "evictions")

    #: eviction-memory slots per table entry (see the module docstring)
    SLOTS_PER_ENTRY = 16

    def __init__(self, rate: float, burst: int, capacity: int, *, slots: int | None = None,
                 seed: int | None = None) -> None:
        if not rate > 0:
            raise ValueError("rate must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self.capacity = int(capacity)
        self._interval = 1.0 / self.rate
        self._tolerance = (self.burst - 1) * self._interval
        self._table: OrderedDict[Hashable, float] = OrderedDict()
        self._slots = max(1, int(slots)) if slots is not None else (
            self.SLOTS_PER_ENTRY * self.capacity)
        self._memory = array("d", bytes(8 * self._slots))  # 0.0 = nothing remembered
        # The salt keeps an attacker from choosing keys that land in a good client's slot.
        self._salt = random.SystemRandom().getrandbits(62) if seed is None else seed
        #: keys evicted from the table so far
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._table)

    def _slot(self, key: Hashable) -> int:
        return hash((self._salt, key)) % self._slots

    def allow(self, key: Hashable, now: float) -> bool:
        """Take one token from ``key``'s bucket at time ``now``; False if it has none."""
        table = self._table
        tat = table.get(key)
        if tat is None:
            tat = self._memory[self._slot(key)]
            if len(table) >= self.capacity:
                self._evict(now)
        else:
            table.move_to_end(key)
        if tat < now:
            tat = now
        if tat - now > self._tolerance:
            table[key] = tat
            return False
        table[key] = tat + self._interval
        return True

    def _evict(self, now: float) -> None:
        key, tat = self._table.popitem(last=False)
        self.evictions += 1
        if tat > now:  # not full yet: remember the debt, or the key could skip it
            i = self._slot(key)
            if tat > self._memory[i]:
                self._memory[i] = tat

    def tokens(self, key: Hashable, now: float) -> float:
        """Tokens ``key`` has at ``now`` (for tests and diagnostics; does not touch LRU order)."""
        tat = self._table.get(key)
        if tat is None:
            tat = self._memory[self._slot(key)]
        return self.burst - max(tat - now, 0.0) / self._interval


class RelayTrust:
    """The ``server.trusted-relays`` allow-list: inclusive (first, last) ranges of host-order
    IPv4 addresses; single addresses are a set lookup."""

    __slots__ = ("_exact", "_ranges")

    def __init__(self, ranges: tuple[tuple[int, int], ...]) -> None:
        self._exact = frozenset(a for a, b in ranges if a == b)
        self._ranges = tuple((a, b) for a, b in ranges if a != b)

    def __contains__(self, ip: int) -> bool:
        if ip in self._exact:
            return True
        for a, b in self._ranges:
            if a <= ip <= b:
                return True
        return False


class EdgeGuard:
    """Relay trust and rate limits for one server configuration (``ServerConfig``).

    ``check(msg, src_ip, now)`` returns None to serve the request or a drop reason; ``now`` is
    monotonic seconds. Built only when something is configured (:meth:`from_config` returns
    None otherwise, so the packet path pays nothing).
    """

    __slots__ = ("trust", "clients", "relays")

    def __init__(self, trust: RelayTrust | None, clients: RateLimiter | None,
                 relays: RateLimiter | None) -> None:
        self.trust = trust
        self.clients = clients
        self.relays = relays

    @classmethod
    def from_config(cls, server: Any, previous: EdgeGuard | None = None) -> EdgeGuard | None:
        """The guard for ``server`` (a ``ServerConfig``); limiters whose settings did not
        change are taken over from ``previous`` with their state (a reload is not a reset)."""
        lim = server.limits
        trust = RelayTrust(server.trusted_relays) if server.trusted_relays else None

        def limiter(rate: float, burst: int | None, size: int,
                    old: RateLimiter | None) -> RateLimiter | None:
            if rate <= 0:
                return None
            b = burst if burst else max(1, int(rate + 0.999999))
            if old is not None and (old.rate, old.burst, old.capacity) == (rate, b, size):
                return old
            return RateLimiter(rate, b, size)

        clients = limiter(lim.client_rate, lim.client_burst, lim.client_table_size,
                          previous.clients if previous else None)
        relays = limiter(lim.relay_rate, lim.relay_burst, lim.relay_table_size,
                         previous.relays if previous else None)
        if trust is None and clients is None and relays is None:
            return None
        return cls(trust, clients, relays)

    def check(self, msg: Message, src_ip: int, now: float) -> str | None:
        """None if ``msg`` (received from ``src_ip``) may go to the engine, else why not."""
        giaddr = msg.giaddr
        if giaddr:
            trust = self.trust
            if trust is not None and not (giaddr in trust and src_ip in trust):
                return DROP_UNTRUSTED_RELAY
        clients = self.clients
        if clients is not None and not clients.allow(msg.client_key(), now):
            return DROP_CLIENT_RATE
        relays = self.relays
        if relays is not None and giaddr:
            if not relays.allow(giaddr, now):
                return DROP_RELAY_RATE
            if src_ip != giaddr and not relays.allow(src_ip, now):
                return DROP_RELAY_RATE
        return None
