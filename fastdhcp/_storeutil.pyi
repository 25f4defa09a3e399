"""Type stub of the compiled fastdhcp._storeutil (ext/fastdhcp/_storeutil.pyx)."""

from array import array
from collections.abc import Iterable

def scan_active(
    items: Iterable[tuple[bytes, bytes]], out: array[int], limit: int
) -> tuple[int, bytes | None, list[tuple[bytes, bytes]]]:
    """Append the address of every active record of ``items`` to ``out`` (``array('I')``);
    stop after ``limit`` records. Returns (records consumed, last key, records to decode in
    Python)."""
