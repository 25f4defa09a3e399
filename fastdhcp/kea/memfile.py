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
from dataclasses import dataclass
from typing import Any

from fastdhcp.leases import Lease, LeaseState

__all__ = ["HEADER", "REQUIRED", "BadLine", "KeaLease", "Columns", "parse_row", "format_row",
           "kea_state", "client_id_of"]

#: The header Kea 2.2 writes (and the one :func:`format_row` rows follow).
HEADER = ("address", "hwaddr", "client_id", "valid_lifetime", "expire", "subnet_id",
          "fqdn_fwd", "fqdn_rev", "hostname", "state", "user_context")
#: Columns a lease file must have; ``pool_id`` (Kea 2.6) and anything later are optional.
REQUIRED = HEADER[:10]
INFINITE = 0xFFFFFFFF
_HTYPE_ETHERNET = 1  # a client key without option 61 is htype + chaddr (fastdhcp.leases)

#: Kea's lease states (lease.h) -> fastdhcp's. Kea 2.6's 3 (released) is fastdhcp's too.
_STATES = {"0": LeaseState.DEFAULT, "1": LeaseState.DECLINED,
           "2": LeaseState.EXPIRED_RECLAIMED, "3": LeaseState.RELEASED}
_ESCAPED = re.compile(r"&#x([0-9a-fA-F]{2})")
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


@dataclass(frozen=True, slots=True)
class Columns:
    """Where each column is in a file's rows (files may order or extend them)."""

    address: int
    hwaddr: int
    client_id: int
    valid_lifetime: int
    expire: int
    subnet_id: int
    fqdn_fwd: int
    fqdn_rev: int
    hostname: int
    state: int
    user_context: int | None  #: None: the file has no user_context column
    width: int  #: columns in the header

    @classmethod
    def from_header(cls, header: list[str]) -> Columns:
        """The layout of ``header``; raises :class:`BadLine` when a required column is missing."""
        names = [h.strip() for h in header]
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise BadLine("header", ",".join(header),
                          f"not a Kea DHCPv4 lease file header: no column {', '.join(missing)}")
        at = {name: i for i, name in enumerate(names)}
        return cls(at["address"], at["hwaddr"], at["client_id"], at["valid_lifetime"],
                   at["expire"], at["subnet_id"], at["fqdn_fwd"], at["fqdn_rev"],
                   at["hostname"], at["state"], at.get("user_context"), len(names))


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
    if len(text) % 3 == 2:
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
    if text in ("0", "1"):
        return text == "1"
    if text in ("true", "false"):  # what some hand-written files hold; Kea reads them too
        return text == "true"
    raise BadLine(field, text, "expected 0 or 1")


def parse_row(row: list[str], cols: Columns) -> KeaLease:
    """One lease file row as a :class:`KeaLease`; raises :class:`BadLine`."""
    if len(row) < cols.width and not (cols.user_context is not None
                                      and len(row) == cols.width - 1):
        raise BadLine("row", ",".join(row),
                      f"{len(row)} fields, the header names {cols.width}")
    text = row[cols.address]
    try:
        ip = int.from_bytes(socket.inet_aton(text), "big")
        if text.count(".") != 3:
            raise OSError
    except OSError:
        raise BadLine("address", text, "not an IPv4 address") from None
    hw = _hex("hwaddr", row[cols.hwaddr])
    if len(hw) > 20:
        raise BadLine("hwaddr", row[cols.hwaddr], "longer than 20 bytes")
    cid = _hex("client_id", row[cols.client_id])
    if len(cid) == 1:
        raise BadLine("client_id", row[cols.client_id], "a client-id has at least 2 bytes")
    valid = _uint("valid_lifetime", row[cols.valid_lifetime], INFINITE)
    expire = _uint("expire", row[cols.expire], (1 << 63) - 1)
    subnet_id = _uint("subnet_id", row[cols.subnet_id], INFINITE)
    fwd = _flag("fqdn_fwd", row[cols.fqdn_fwd])
    rev = _flag("fqdn_rev", row[cols.fqdn_rev])
    hostname = _unescape(row[cols.hostname])
    state = _STATES.get(row[cols.state])
    if state is None:
        raise BadLine("state", row[cols.state],
                      "expected 0 (default), 1 (declined), 2 (expired-reclaimed) or 3 (released)")
    ctx: dict[str, Any] | None = None
    if cols.user_context is not None and cols.user_context < len(row):
        raw = _unescape(row[cols.user_context])
        if raw:
            try:
                ctx = json.loads(raw)
            except ValueError as exc:
                raise BadLine("user_context", raw, f"not JSON: {exc}") from None
            if not isinstance(ctx, dict):
                raise BadLine("user_context", raw, "not a JSON map")
    key = cid if cid else bytes((_HTYPE_ETHERNET,)) + hw
    issued = expire - valid if expire >= valid else 0
    return KeaLease(Lease(ip, key, hw, subnet_id, state, issued, expire, hostname),
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
        "1" if fqdn_fwd else "0",
        "1" if fqdn_rev else "0",
        _escape(lease.hostname),
        str(kea_state(lease.state)),
        ctx,
    ]
