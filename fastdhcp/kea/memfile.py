"""Kea's memfile lease file (``leases4.csv``, and ``leases4.csv.2`` left by LFC), both ways.

The format (Kea ``src/lib/dhcpsrv/csv_lease_file4.cc``): a header row naming the columns
``address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,
user_context`` (Kea 2.6 adds ``pool_id``), then one row per lease *event*: Kea appends a row at
every change, so an address may appear many times and the later row is the lease's current
version. A row with ``valid_lifetime`` 0 is a deletion (Kea's ``deleteLease`` appends one),
which Kea's loader (``LeaseFileLoader::load``) applies by dropping the address.

Text fields escape ``,`` (and any character Kea escapes) as ``&#xHH``; ``hwaddr`` and
``client_id`` are colon-separated hex; ``expire`` is ``cltt + valid_lifetime`` in unix seconds.

:func:`parse_row` turns one row into a :class:`KeaLease` or raises :class:`BadLine` naming the
field; :func:`format_row` writes a fastdhcp lease as the row Kea 2.x loads.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from fastdhcp import _memfile as _fast
from fastdhcp._memfile import RowCounts
from fastdhcp.control.lease_extras import LeaseExtras
from fastdhcp.leases import Lease, LeaseState

__all__ = ["HEADER", "REQUIRED", "BadLine", "KeaLease", "RowCounts", "header_width", "parse_row",
           "read_rows", "format_row", "kea_state", "client_id_of", "write_csv"]

#: The header Kea 2.2 writes (and the one :func:`format_row` rows follow).
HEADER = ("address", "hwaddr", "client_id", "valid_lifetime", "expire", "subnet_id",
          "fqdn_fwd", "fqdn_rev", "hostname", "state", "user_context")
#: Columns a lease file must have; ``pool_id`` (Kea 2.6) and anything later are optional.
REQUIRED = HEADER[:10]
INFINITE = 0xFFFFFFFF
_HTYPE_ETHERNET = 1  # a client key without option 61 is htype + chaddr (fastdhcp.leases)

#: Kea's lease states (lease.h) -> fastdhcp's. Kea 2.6's 3 (released) is fastdhcp's too.
_STATE_BY_DIGIT = (LeaseState.DEFAULT, LeaseState.DECLINED, LeaseState.EXPIRED_RECLAIMED,
                   LeaseState.RELEASED)
_STATES = {str(k): state for k, state in enumerate(_STATE_BY_DIGIT)}
_ESCAPED = re.compile(r"&#x([0-9a-fA-F]{2})")
#: Colons of the 2-digit form (aa:bb:cc) by byte count - 1, up to a 20-byte hwaddr / client-id
#: of 64 bytes; longer values take the general path.
_FAST_HEX = 3 * 64
_COLONS = tuple(":" * k for k in range(_FAST_HEX // 3 + 1))
_HEX_BYTE = re.compile(r"^[0-9a-fA-F]{1,2}$")
#: Characters Kea's CSVRow::escapeCharacters escapes in text fields (its delimiter) and ones a
#: CSV reader must not see raw in a field (line breaks).
_TO_ESCAPE = {",": "&#x2c", "\n": "&#x0a", "\r": "&#x0d"}


class BadLine(ValueError):
    """A row that is not a lease; ``field`` names the column at fault."""

    def __init__(self, field: str, value: str, reason: str) -> None:
        super().__init__(f"{field}: {value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


def header_width(header: list[str]) -> int:
    """The number of columns of a file with ``header``; raises :class:`BadLine` unless it is
    Kea's (Kea's VersionedCSVFile takes a header that is a leading part of its current one,
    in its order, and rows as wide as the header)."""
    names = [h.strip() for h in header]
    known = (*HEADER, "pool_id")
    if len(names) < len(REQUIRED) or tuple(names) != known[:len(names)]:
        raise BadLine("header", ",".join(header),
                      "not a Kea DHCPv4 lease file header (expected "
                      f"{','.join(HEADER)}[,pool_id])")
    return len(names)


@dataclass(slots=True)
class KeaLease:
    """One row of a lease file: fastdhcp's lease, plus what only the extras table keeps."""

    lease: Lease
    valid_lifetime: int  #: 0: a deletion row
    fqdn_fwd: bool
    fqdn_rev: bool
    user_context: dict[str, Any] | None


def _unescape(text: str) -> str:
    if "&#x" not in text:
        return text
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)


def _escape(text: str) -> str:
    for raw, esc in _TO_ESCAPE.items():
        if raw in text:
            text = text.replace(raw, esc)
    return text


def _hex(field: str, text: str) -> bytes:
    """Kea's colon-separated hex (``HWAddr::fromText``, ``ClientId::fromText``)."""
    if not text:
        return b""
    n = len(text)
    if n % 3 == 2 and n < _FAST_HEX and text[2::3] == _COLONS[n // 3]:
        try:
            return bytes.fromhex(text.replace(":", ""))  # the usual 2-digit form, fast
        except ValueError:
            pass
    parts = text.split(":")
    if not all(_HEX_BYTE.match(p) for p in parts):
        raise BadLine(field, text, "expected hex bytes separated by colons (aa:bb:cc)")
    return bytes(int(p, 16) for p in parts)


def _uint(field: str, text: str, hi: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadLine(field, text, "not an integer") from None
    if not 0 <= value <= hi:
        raise BadLine(field, text, f"out of range 0..{hi}")
    return value


def _flag(field: str, text: str) -> bool:
    if text == "0":
        return False
    if text == "1":
        return True
    if text in ("true", "false"):  # what some hand-written files hold; Kea reads them too
        return text == "true"
    raise BadLine(field, text, "expected 0 or 1")


def _context(text: str) -> dict[str, Any] | None:
    raw = _unescape(text)
    if not raw:
        return None
    try:
        ctx = json.loads(raw)
    except ValueError as exc:
        raise BadLine("user_context", raw, f"not JSON: {exc}") from None
    if not isinstance(ctx, dict):
        raise BadLine("user_context", raw, "not a JSON map")
    return ctx


def parse_row(row: list[str], width: int) -> KeaLease:
    """One lease file row (of a file whose header has ``width`` columns, in Kea's order) as a
    :class:`KeaLease`; raises :class:`BadLine` naming the field at fault.

    The rows Kea writes (6-byte hwaddr, client-id in 2-digit hex, no user context) take the
    compiled fast rule (:func:`fastdhcp._memfile.parse_fast`), which accepts a subset of what
    :func:`_parse_checked` accepts and builds the same lease; anything else, and every bad
    row, goes through the checked path, which is the rule.
    """
    kl: KeaLease | None = _fast.parse_fast(",".join(row), width, _STATE_BY_DIGIT, KeaLease)
    return kl if kl is not None else _parse_checked(row, width)


def read_rows(data: bytes, pos: int, number: int, width: int, leases: dict[int, Lease],
              extras: dict[int, KeaLease], bad: Callable[[int, BadLine], None]) -> RowCounts:
    """Read the rows of the UTF-8 lease file ``data`` from offset ``pos`` (line ``number``)
    to its end into ``leases`` (the newest lease of each address; a ``valid_lifetime`` 0 row
    deletes it, as Kea's loader does) and ``extras`` (the :class:`KeaLease` of each of those
    whose fqdn flags or user context are set). A malformed row is passed to
    ``bad(line_number, error)``, which raises or returns to skip it.

    The rows Kea writes are read by the compiled fast rule straight from ``data`` (about
    0.3 us a row); any other row by :func:`_parse_checked`.
    """
    def slow(line: str, line_number: int) -> KeaLease | None:
        try:
            return _parse_checked(line.split(","), width)
        except BadLine as exc:
            bad(line_number, exc)
            return None

    return _fast.read_rows(data, pos, number, width, _STATE_BY_DIGIT, KeaLease, slow,
                           leases, extras)


def _parse_checked(row: list[str], width: int) -> KeaLease:
    """:func:`parse_row`'s rule, field by field."""
    if len(row) != width:
        raise BadLine("row", ",".join(row), f"{len(row)} fields, the header names {width}")
    address, hwaddr, client_id, valid_s, expire_s, subnet_s, fwd_s, rev_s, host, state_s = (
        row[:10])
    try:
        ip = int.from_bytes(socket.inet_aton(address), "big")
    except OSError:
        ip = -1
    if ip < 0 or address.count(".") != 3:
        raise BadLine("address", address, "not an IPv4 address")
    hw = _hex("hwaddr", hwaddr)
    if len(hw) > 20:
        raise BadLine("hwaddr", hwaddr, "longer than 20 bytes")
    cid = _hex("client_id", client_id)
    if len(cid) == 1:
        raise BadLine("client_id", client_id, "a client-id has at least 2 bytes")
    valid = _uint("valid_lifetime", valid_s, INFINITE)
    expire = _uint("expire", expire_s, (1 << 63) - 1)
    subnet_id = _uint("subnet_id", subnet_s, INFINITE)
    fwd = _flag("fqdn_fwd", fwd_s)
    rev = _flag("fqdn_rev", rev_s)
    state = _STATES.get(state_s)
    if state is None:
        raise BadLine("state", state_s,
                      "expected 0 (default), 1 (declined), 2 (expired-reclaimed) or 3 (released)")
    ctx = _context(row[10]) if width > 10 and row[10] else None
    key = cid if cid else bytes((_HTYPE_ETHERNET,)) + hw
    issued = expire - valid if expire >= valid else 0
    return KeaLease(Lease(ip, key, hw, subnet_id, state, issued, expire,
                          _unescape(host) if "&" in host else host),
                    valid, fwd, rev, ctx)


def client_id_of(lease: Lease) -> bytes:
    """The client-id Kea would have recorded (empty when the key is htype + chaddr)."""
    key = lease.client_key
    if not key or (key[0] == _HTYPE_ETHERNET and key[1:] == lease.hw_address):
        return b""
    return key


def kea_state(state: int) -> int:
    """Kea 2.2's number for a fastdhcp state: a released lease is expired-reclaimed there
    (Kea 2.2 has no released state, and reclaims a released lease at once)."""
    return 2 if state == LeaseState.RELEASED else int(state)


def format_row(lease: Lease, *, fqdn_fwd: bool = False, fqdn_rev: bool = False,
               user_context: dict[str, Any] | None = None) -> list[str]:
    """The :data:`HEADER` row for ``lease`` (text fields escaped as Kea escapes them)."""
    if lease.expires >= INFINITE:
        valid = INFINITE
    else:
        # Kea refuses nothing here, but a 0 lifetime would read as a deletion: at least 1.
        valid = max(lease.expires - lease.issued, 1)
    ctx = "" if user_context is None else _escape(json.dumps(user_context,
                                                             separators=(",", ":")))
    return [
        socket.inet_ntoa(lease.ip.to_bytes(4, "big")),
        lease.hw_address.hex(":"),
        client_id_of(lease).hex(":"),
        str(valid),
        str(lease.expires),
        str(lease.subnet_id),
        "1" if fqdn_fwd or lease.fqdn_fwd else "0",  # the record's flags, or lease4-add's
        "1" if fqdn_rev or lease.fqdn_rev else "0",
        _escape(lease.hostname),
        str(kea_state(lease.state)),
        ctx,
    ]


def write_csv(leases: Iterable[Lease], out: TextIO,
              extras_of: Callable[[Lease], LeaseExtras | None] | None = None) -> int:
    """Write ``leases`` as a Kea 2.x ``leases4.csv`` (header first) to ``out``; returns the
    number of rows. ``extras_of`` gives a lease's user-context and fqdn flags (only extras
    that belong to the lease's client are kept, as the control channel shows them)."""
    out.write(",".join(HEADER) + "\n")
    n = 0
    for lease in leases:
        extras = extras_of(lease) if extras_of is not None else None
        if extras is not None and extras.client_key != lease.client_key:
            extras = None
        if extras is None:
            row = format_row(lease)
        else:
            row = format_row(lease, fqdn_fwd=extras.fqdn_fwd, fqdn_rev=extras.fqdn_rev,
                             user_context=extras.user_context)
        out.write(",".join(row) + "\n")
        n += 1
    return n
