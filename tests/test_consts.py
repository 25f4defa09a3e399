"""One definition, read twice: the C enums of ext/fastdhcp/_consts.pxd (what the compiled
modules use) against the Python enums that mirror them (fastdhcp.consts, fastdhcp.leases)."""

from __future__ import annotations

import re
from enum import IntEnum
from pathlib import Path

import pytest

from fastdhcp.consts import MessageType, Outcome
from fastdhcp.leases import LeaseState

PXD = Path(__file__).resolve().parent.parent / "ext" / "fastdhcp" / "_consts.pxd"


def _pxd_values() -> dict[str, int]:
    names: dict[str, int] = {}
    for m in re.finditer(r"^    ([A-Z][A-Z0-9_]*) = (0x[0-9A-Fa-f]+|\d+)", PXD.read_text(), re.M):
        assert m.group(1) not in names, f"{m.group(1)} defined twice in {PXD.name}"
        names[m.group(1)] = int(m.group(2), 0)
    return names


@pytest.mark.parametrize(("enum", "prefix"), [(MessageType, ""), (Outcome, "OUT_"),
                                               (LeaseState, "ST_")])
def test_python_enums_mirror_the_pxd(enum: type[IntEnum], prefix: str) -> None:
    pxd = _pxd_values()
    short = {"EXPIRED_RECLAIMED": "EXPIRED"}  # the C name is shorter
    for member in enum:
        name = prefix + short.get(member.name, member.name)
        assert pxd.get(name) == member.value, f"{enum.__name__}.{member.name} vs {name}"
    in_pxd = {n for n in pxd if n.startswith(prefix)} if prefix else set()
    assert in_pxd <= {prefix + short.get(m.name, m.name) for m in enum}, in_pxd

