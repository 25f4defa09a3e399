"""Type stub of the compiled fastdhcp._memfile (ext/fastdhcp/_memfile.pyx)."""

from collections.abc import Callable
from typing import Any, final

from fastdhcp._lease import Lease

@final
class RowCounts:
    """What :func:`read_rows` read: rows (blank lines excluded), rows that replaced an earlier
    row of their address, addresses a deletion row removed."""

    @property
    def rows(self) -> int: ...
    @property
    def replaced(self) -> int: ...
    @property
    def deleted(self) -> int: ...

def parse_fast(line: str, width: int, states: tuple[Any, ...],
               kea_lease: Callable[[Lease, int, bool, bool, None], Any]) -> Any:
    """``kea_lease(lease, valid_lifetime, fqdn_fwd, fqdn_rev, None)`` for a row of the fast
    rule, else None."""

def read_rows(data: bytes, pos: int, number: int, width: int, states: tuple[Any, ...],
              kea_lease: Callable[[Lease, int, bool, bool, None], Any],
              slow: Callable[[str, int], Any], leases: dict[int, Lease],
              extras: dict[int, Any]) -> RowCounts:
    """Read the rows of ``data`` from offset ``pos`` (line ``number``) into ``leases`` and
    ``extras``; rows outside the fast rule go to ``slow(line, number)``."""
