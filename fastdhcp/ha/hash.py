"""The load-balancing hash, as Kea's HA hook computes it (RFC 3074 section 6, kea-ha.md §5).

Both peers of a load-balancing pair must put every client in the same scope, or a client gets
two answers (or none). What Kea does, verified on 36 clients of a capture:

- the key is the whole value of option 61 (client identifier) **including its type byte** when
  the packet has one; otherwise the ``hlen`` bytes of ``chaddr`` (the hardware type is not part
  of it);
- the hash is RFC 3074's Pearson hash: start from the key's length (mod 256), then for each key
  byte **from the last to the first** ``h = T[h ^ byte]``;
- the server index is ``h % 2`` over the pair ordered primary first: 0 is the primary's scope,
  1 the secondary's.

The variants a capture ruled out (forward byte order, a start value of 0, the client-id without
its type byte, the htype byte before the MAC) each misplace a third to a half of the clients.

The table and the hash itself live in the compiled ``fastdhcp._hascope`` (the packet path's
scope filter hashes each query there); this module re-exports them with the key rule.
"""

from __future__ import annotations

# the table and the hash are compiled once, for the packet path's scope filter too
from fastdhcp._hascope import PEARSON_TABLE, lb_hash

__all__ = ["PEARSON_TABLE", "hash_key", "lb_hash", "server_index"]


def hash_key(client_id: bytes | None, chaddr: bytes) -> bytes | None:
    """What is hashed: option 61's whole value (type byte included) if present and not
    empty, else the ``hlen`` bytes of chaddr (pass ``chaddr[:hlen]``); None when neither
    (Kea then cannot place the client: no scope serves it)."""
    if client_id:
        return client_id
    if chaddr:
        return chaddr
    return None


def server_index(client_id: bytes | None, chaddr: bytes, servers: int = 2) -> int | None:
    """The index, primary first, of the server whose scope the client is in (None when the
    packet carries neither a client identifier nor a hardware address)."""
    key = hash_key(client_id, chaddr)
    if key is None:
        return None
    return lb_hash(key) % servers
