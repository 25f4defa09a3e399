"""Type stub of the compiled fastdhcp._bitmap (ext/fastdhcp/_bitmap.pyx)."""

from typing import final

from typing_extensions import Buffer

@final
class PoolBitmap:
    """Free/used state of one pool of addresses ``first`` .. ``last`` (inclusive, host-order ints,
    1 to 2**24 addresses). Starts all free. ValueError for a bad range, TypeError for non-ints."""

    def __init__(self, first: int, last: int) -> None: ...
    def allocate(self, hint: int = 0) -> int:
        """Take ``hint`` if in the pool and free (cursor unchanged), else the next free address
        at or after the rotating cursor, wrapping (cursor moves past it). 0 = no hint.
        Raises PoolExhausted."""
    def reserve(self, addr: int) -> None:
        """Mark used (idempotent). Raises AddressNotInPool."""
    def free(self, addr: int) -> None:
        """Mark free. Raises DoubleFree if already free, AddressNotInPool outside the pool."""
    def is_free(self, addr: int) -> bool:
        """Raises AddressNotInPool outside the pool."""
    def contains(self, addr: int) -> bool: ...
    def reserve_many(self, addrs: Buffer) -> int:
        """Mark every address of a buffer of uint32 used; out-of-pool entries skipped.
        Returns how many were newly marked used."""
    @property
    def first(self) -> int: ...
    @property
    def last(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def used(self) -> int: ...
    @property
    def free_count(self) -> int: ...
    def __sizeof__(self) -> int: ...
