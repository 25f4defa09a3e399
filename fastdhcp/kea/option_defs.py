"""Kea's ``option-def`` (custom DHCPv4 options): their definitions, and option-data given in
their csv-format encoded to the bytes Kea would send.

fastdhcp has no option definitions of its own: an option it does not know is given by code with
hex data. So an option-data entry that uses a Kea definition is carried as ``CODE = "hex"``, the
payload Kea builds for it (Kea's ``OptionDefinition`` wire rules: integers big-endian, booleans
one byte, addresses four bytes, strings as they are; an array repeats its type). Definitions
with ``record-types`` or ``encapsulate``, and types without a fixed rule here, are reported as
unsupported where they are defined.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["CustomDef", "TYPES", "parse_def", "encode_csv"]

#: Kea type name -> struct format of one item (None: a variable-length item).
TYPES: dict[str, str | None] = {
    "uint8": "!B", "uint16": "!H", "uint32": "!I", "int8": "!b", "int16": "!h", "int32": "!i",
    "boolean": "!B", "ipv4-address": None, "string": None, "binary": None,
}
_VARIABLE = ("string", "binary")  # no arrays of these in Kea either


@dataclass(frozen=True, slots=True)
class CustomDef:
    """One Kea ``option-def`` of the dhcp4 space that fastdhcp can encode."""

    name: str
    code: int
    type: str
    array: bool


def parse_def(entry: Any) -> tuple[CustomDef | None, list[tuple[str, str]]]:
    """A definition from one ``option-def`` entry, or None; with (key, reason) for each part
    that cannot be carried (the key is relative to the entry)."""
    problems: list[tuple[str, str]] = []
    if not isinstance(entry, dict):
        return None, [("", "expected a map")]
    name, code, type_ = entry.get("name"), entry.get("code"), entry.get("type")
    if not isinstance(name, str) or not name:
        problems.append(("name", "an option definition needs a name"))
    if not isinstance(code, int) or isinstance(code, bool) or not 1 <= code <= 254:
        problems.append(("code", "an option definition needs a code 1 to 254"))
    if entry.get("space", "dhcp4") != "dhcp4":
        problems.append(("space", "fastdhcp has options of the dhcp4 space only"))
    if entry.get("record-types"):
        problems.append(("record-types", "a record option: encode it yourself as hex by code"))
    if entry.get("encapsulate"):
        problems.append(("encapsulate", "fastdhcp has no option spaces to encapsulate"))
    if type_ not in TYPES:
        problems.append(("type", f"{type_!r}: not a type fastdhcp encodes (give the option "
                                 "by code with hex data)"))
    array = entry.get("array", False) is True
    if array and type_ in _VARIABLE:
        problems.append(("array", f"an array of {type_}: Kea has none either"))
    if problems:
        return None, problems
    assert isinstance(name, str) and isinstance(code, int) and isinstance(type_, str)
    return CustomDef(name, code, type_, array), []


def encode_csv(d: CustomDef, data: str) -> bytes:
    """``data`` (csv-format text) as option ``d``'s payload; raises ValueError with a reason."""
    if d.type == "string":
        if not data:
            raise ValueError("an empty string option")
        return data.encode("utf-8")
    if d.type == "binary":
        try:
            return bytes.fromhex("".join(c for c in data if c not in ": "))
        except ValueError:
            raise ValueError("not hex") from None
    items = [x.strip() for x in data.split(",")]
    if not d.array and len(items) != 1:
        raise ValueError(f"{len(items)} values for an option of one {d.type}")
    out = bytearray()
    for item in items:
        if d.type == "ipv4-address":
            try:
                out += ipaddress.IPv4Address(item).packed
            except ValueError:
                raise ValueError(f"{item!r} is not an IPv4 address") from None
            continue
        if d.type == "boolean":
            flags = {"true": 1, "1": 1, "false": 0, "0": 0}
            if item.lower() not in flags:
                raise ValueError(f"{item!r} is not true or false")
            out.append(flags[item.lower()])
            continue
        fmt = TYPES[d.type]
        assert fmt is not None
        try:
            out += struct.pack(fmt, int(item, 0))
        except (ValueError, struct.error):
            raise ValueError(f"{item!r} is not a {d.type}") from None
    return bytes(out)
