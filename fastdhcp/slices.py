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

from fastdhcp.config import Config, Pool

# Knuth's multiplicative constant (2^32 / golden ratio): a MAC's low bits are often sequential
# (one vendor block), so the product's high half, which depends on every input bit, is taken.
# Public: the compiled packet path's broadcast filter reads these three at import
# (ext/fastdhcp/_packetpath.pyx), so kernel, Python and C use one definition.
STEER_MIX = 2654435761
STEER_SHIFT = 16
# Payload offset of the last four bytes of a 6-byte chaddr: BOOTP chaddr starts at 28.
CHADDR_TAIL_OFFSET = 30
#: Fewest addresses per worker in a pool before check-config warns: below it a slice can run
#: out while others have room (docs/scaling.md "Uneven slices"), and nothing moves a client
#: to another worker's slice.
MIN_ADDRESSES_PER_WORKER = 1000

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


def reservation_owners(config: Config, n: int) -> dict[int, int]:
    """Reserved address -> owning worker, for reservations found by hw-address: the worker
    their client is steered to (``steer(hw-address)``), wherever the address lies, so that
    the worker that receives the client's datagrams can bind its reservation without
    forwarding. Reservations by client-id or circuit-id cannot be steered and keep the
    address's owner (:func:`owner`)."""
    out: dict[int, int] = {}
    if n == 1:
        return out
    for s in config.subnets:
        for r in s.reservations:
            if r.ip and r.hw_address is not None:
                out.setdefault(r.ip, steer(r.hw_address, n))
    return out


@dataclass(frozen=True, slots=True)
class WorkerScope:
    """What worker ``worker`` of ``workers`` owns under ``config``: its pool slices, the
    addresses outside every pool with ``ip % workers == worker``, and the reservations
    :func:`reservation_owners` gives it. The engine builds its bitmaps from
    :meth:`range_of`, the store indexes :meth:`scan_ranges` and checks :meth:`owns` in every
    commit (docs/scaling.md "enforced twice")."""

    worker: int
    workers: int
    pools: tuple[Pool, ...]
    reserved: dict[int, int]

    @classmethod
    def of(cls, config: Config, worker: int, workers: int) -> WorkerScope:
        """The scope of ``worker`` under ``config``."""
        if not 0 <= worker < workers:
            raise ValueError(f"worker {worker} of {workers}")
        pools = tuple(sorted((p for s in config.subnets for p in s.pools),
                             key=lambda p: p.first))
        return cls(worker, workers, pools, reservation_owners(config, workers))

    def range_of(self, pool: Pool) -> tuple[int, int] | None:
        """``(first, last)`` of this worker's slice of ``pool``, or None when it is empty."""
        s = pool_slices(pool, self.workers)[self.worker]
        return (s.first, s.last) if s.last >= s.first else None

    def owner_of(self, ip: int) -> int:
        """The worker that may write the lease record of ``ip``: a hw-address reservation's
        steering (:func:`reservation_owners`), else :func:`owner`."""
        who = self.reserved.get(ip)
        return owner(ip, self.pools, self.workers) if who is None else who

    def owns(self, ip: int) -> bool:
        """True if only this worker may write the lease record of ``ip``."""
        return self.owner_of(ip) == self.worker

    def scan_ranges(self) -> list[tuple[int, int]]:
        """Ascending, disjoint ``(first, last)`` key ranges of ``leases`` that hold every
        record this worker owns (and records of others, which :meth:`owns` filters out): its
        slices, the gaps between pools (owned ``ip % n``) and its reservations inside other
        slices. O(its records + records outside pools) at start-up, not O(table)."""
        out: list[tuple[int, int]] = []
        at = 0
        for p in self.pools:
            if p.first > at:
                out.append((at, p.first - 1))
            r = self.range_of(p)
            if r is not None:
                out.append(r)
            at = max(at, p.last + 1)
        if at <= 0xFFFFFFFF:
            out.append((at, 0xFFFFFFFF))
        out.extend((ip, ip) for ip, w in self.reserved.items() if w == self.worker)
        out.sort()
        merged: list[tuple[int, int]] = []
        for first, last in out:
            if merged and first <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        return merged


def pool_warnings(config: Config) -> list[str]:
    """One line per pool that gives fewer than :data:`MIN_ADDRESSES_PER_WORKER` addresses to
    each of ``[server] workers`` workers (what check-config and serve print as warnings)."""
    n = config.server.workers
    if n <= 1:
        return []
    out = []
    for i, s in enumerate(config.subnets):
        for j, p in enumerate(s.pools):
            if p.size // n < MIN_ADDRESSES_PER_WORKER:
                out.append(f"subnet4[{i}].pools[{j}]: '{p.text}' gives {p.size // n} "
                           f"addresses to each of server.workers = {n} workers (fewer than "
                           f"{MIN_ADDRESSES_PER_WORKER}: a worker's slice may run out while "
                           "others have room)")
    return out


def steer(chaddr: bytes, n: int) -> int:
    """The worker a client with hardware address ``chaddr`` is steered to (what
    `steering_program` computes in the kernel)."""
    if n == 1:
        return 0
    tail = int.from_bytes(chaddr[2:6].ljust(4, b"\0"), "big")
    return (((tail * STEER_MIX) & 0xFFFFFFFF) >> STEER_SHIFT) % n


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
        (_BPF_ALU_MUL_K, 0, 0, STEER_MIX),
        (_BPF_ALU_RSH_K, 0, 0, STEER_SHIFT),
        (_BPF_ALU_MOD_K, 0, 0, n),
        (_BPF_RET_A, 0, 0, 0),
    ]
    return b"".join(struct.pack("=HBBI", *i) for i in ins)
