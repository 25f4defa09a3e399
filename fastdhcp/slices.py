"""Which worker owns an address, and which worker a client's datagrams are steered to.

One truth for the multi-worker server (docs/scaling.md): the supervisor's steering program,
each worker's broadcast filter, each worker's allocator and commit check, and the control front
that routes a command to the worker owning its address all ask this module.

- **Ownership by address.** Every pool is cut into ``n`` contiguous slices; worker ``k`` owns
  slice ``k`` (the last slice takes the remainder). An address outside every pool (a
  reservation outside the pools) is owned by ``ip % n``. Contiguous slices keep one worker's
  keys clustered in the LMDB B-tree, so each commit dirties few pages.
- **Steering by chaddr.** A client's datagrams go to worker ``steer(chaddr)``: a hash of the
  last four bytes of the 6-byte MAC (BOOTP offset 30), computed identically by the kernel's
  classic BPF program (`steering_program`) and in user space (`steer`), so a broadcast that
  reached every socket of a reuseport group is kept by exactly one worker.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fastdhcp.config import Pool

# Knuth's multiplicative constant (2^32 / golden ratio): a MAC's low bits are often sequential
# (one vendor block), so the product's high half, which depends on every input bit, is taken.
_MIX = 2654435761
_MIX_SHIFT = 16
# Payload offset of the last four bytes of a 6-byte chaddr: BOOTP chaddr starts at 28.
CHADDR_TAIL_OFFSET = 30

# Classic BPF opcodes (linux/filter.h), for the four-instruction steering program.
_BPF_LD_W_ABS = 0x20
_BPF_ALU_MUL_K = 0x24
_BPF_ALU_RSH_K = 0x74
_BPF_ALU_MOD_K = 0x94
_BPF_RET_A = 0x16


@dataclass(frozen=True, slots=True)
class Slice:
    """Worker ``worker``'s part ``first``..``last`` (inclusive) of one pool."""

    worker: int
    first: int
    last: int

    def contains(self, ip: int) -> bool:
        """True if ``ip`` is in this slice."""
        return self.first <= ip <= self.last


def pool_slices(pool: Pool, n: int) -> list[Slice]:
    """The ``n`` slices of ``pool``, in worker order; a slice may be empty only if the pool
    has fewer than ``n`` addresses (then its ``last`` is ``first - 1``)."""
    if n < 1:
        raise ValueError(f"workers must be at least 1, got {n}")
    step = pool.size // n
    out = []
    for k in range(n):
        first = pool.first + k * step
        last = pool.last if k == n - 1 else first + step - 1
        out.append(Slice(k, first, last))
    return out


def worker_slices(pools: Iterable[Pool], n: int, worker: int) -> list[Slice]:
    """Every slice worker ``worker`` owns across ``pools`` (empty slices left out)."""
    return [s for p in pools for s in pool_slices(p, n)[worker:worker + 1] if s.last >= s.first]


def owner(ip: int, pools: Sequence[Pool], n: int) -> int:
    """The worker that owns ``ip``: its pool's slice, or ``ip % n`` outside every pool."""
    if n == 1:
        return 0
    for p in pools:
        if p.contains(ip):
            step = p.size // n
            if step == 0:
                return n - 1
            return min((ip - p.first) // step, n - 1)
    return ip % n


def steer(chaddr: bytes, n: int) -> int:
    """The worker a client with hardware address ``chaddr`` is steered to (what
    `steering_program` computes in the kernel)."""
    if n == 1:
        return 0
    tail = int.from_bytes(chaddr[2:6].ljust(4, b"\0"), "big")
    return (((tail * _MIX) & 0xFFFFFFFF) >> _MIX_SHIFT) % n


def steering_program(n: int) -> bytes:
    """A ``struct sock_fprog`` body (array of ``struct sock_filter``) for
    ``SO_ATTACH_REUSEPORT_CBPF``: the reuseport socket index ``steer(chaddr, n)``.

    For UDP the program's packet starts at the UDP payload, so ``ld [30]`` reads the chaddr
    tail in network order, as `steer` does.
    """
    if n < 1:
        raise ValueError(f"workers must be at least 1, got {n}")
    ins = [
        (_BPF_LD_W_ABS, 0, 0, CHADDR_TAIL_OFFSET),
        (_BPF_ALU_MUL_K, 0, 0, _MIX),
        (_BPF_ALU_RSH_K, 0, 0, _MIX_SHIFT),
        (_BPF_ALU_MOD_K, 0, 0, n),
        (_BPF_RET_A, 0, 0, 0),
    ]
    return b"".join(struct.pack("=HBBI", *i) for i in ins)
