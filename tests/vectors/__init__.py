"""Annotated DHCPv4 byte vectors (``*.hex`` beside this file) and their loader.

Format: hex bytes, whitespace ignored; ``#`` starts a comment that runs to the end of the
line; ``XX*N`` stands for the byte XX repeated N times (for zero-filled sname/file/padding).
"""

from __future__ import annotations

import re
from pathlib import Path

VECTORS = Path(__file__).resolve().parent

_RUN = re.compile(r"^([0-9a-fA-F]{2})\*(\d+)$")


def load_hex(text: str) -> bytes:
    """Decode annotated hex text (see the module docstring) into bytes."""
    out = bytearray()
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        for token in line.split():
            m = _RUN.match(token)
            if m:
                out += bytes([int(m.group(1), 16)]) * int(m.group(2))
            else:
                out += bytes.fromhex(token)
    return bytes(out)


def vector(name: str) -> bytes:
    """The bytes of ``tests/vectors/<name>.hex``."""
    return load_hex((VECTORS / f"{name}.hex").read_text())


def names() -> list[str]:
    """Every vector name in the directory."""
    return sorted(p.stem for p in VECTORS.glob("*.hex"))
