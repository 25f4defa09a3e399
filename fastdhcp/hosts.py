"""The hosts table: reservations added through the control channel (Kea's host_cmds), kept in
the ``hosts`` named database of the lease environment, so that they are as durable as the
leases and survive restarts and reloads.

Layout of ``hosts`` (every integer big-endian, so that keys sort as numbers):

- ``h`` + subnet id (4) + identifier type (1) + identifier -> the host record (msgpack, see
  :func:`_pack`). The engine's per-packet lookup is one B-tree search of this key: the
  table is memory-mapped, nothing per host is held in memory, and only a record found is
  decoded.
- ``a`` + IPv4 (4) -> subnet id (4) + identifier type (1) + identifier: who holds a reserved
  address. Subnets do not overlap, so an address names its subnet: one reservation per
  address, as Kea's default ``ip-reservations-unique``.
- ``p`` + subnet id (4) + host id (4) -> subnet id + identifier type + identifier: the paging order
  of ``reservation-get-page`` (``from`` is these 8 bytes as one integer).
- ``#`` -> ``[next host id, hosts by identifier type...]``, updated in the same transaction.

Writes run in the server's one writer thread (``GroupCommitter.run_in_writer``), each a
single LMDB transaction that checks its own preconditions again (two commands racing for the
same identifier: the second is refused, nothing half applied). Reads on the loop use the
store's read transaction (per packet) or short transactions of their own (pages).
"""

from __future__ import annotations

import enum
import re
import struct
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack

from fastdhcp._hostfilter import HostFilter
from fastdhcp.config import FixedFields, Reservation
from fastdhcp.options import decode_option, option_name
from fastdhcp.store import LmdbLeaseStore

__all__ = ["Host", "HostConflict", "HostTable", "IdentifierType", "Written",
           "format_identifier", "parse_identifier"]


class IdentifierType(enum.IntEnum):
    """How a host is identified; the values are Kea's (``Host::IdentifierType``)."""

    HW_ADDRESS = 0
    CIRCUIT_ID = 2
    CLIENT_ID = 3
    FLEX_ID = 4

    @property
    def key(self) -> str:
        """Kea's name: the JSON key of the identifier and the ``identifier-type`` value."""
        return _KEYS[self]

    @classmethod
    def from_key(cls, key: str) -> IdentifierType | None:
        """The type Kea calls ``key``, or None."""
        return _BY_KEY.get(key)


_KEYS = {
    IdentifierType.HW_ADDRESS: "hw-address",
    IdentifierType.CIRCUIT_ID: "circuit-id",
    IdentifierType.CLIENT_ID: "client-id",
    IdentifierType.FLEX_ID: "flex-id",
}
_BY_KEY = {v: k for k, v in _KEYS.items()}

#: Identifier lengths each type may have (chaddr; RFC 2132 9.14; RFC 3046 3.1; Kea's flex-id).
_LENGTHS = {
    IdentifierType.HW_ADDRESS: (1, 16),
    IdentifierType.CLIENT_ID: (2, 255),
    IdentifierType.CIRCUIT_ID: (1, 255),
    IdentifierType.FLEX_ID: (1, 255),
}
_HEX_SEP = re.compile(r"[:\-.\s]")


def parse_identifier(kind: IdentifierType, text: object) -> bytes:
    """An identifier as Kea takes it: hex (``01:02:aa``, ``0102aa``), or for every type but
    hw-address text in single quotes (``'ge-0/0/1'``). Raises ValueError with the reason."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must be a non-empty string")
    t = text.strip()
    if kind is not IdentifierType.HW_ADDRESS and len(t) >= 2 and t[0] == t[-1] == "'":
        data = t[1:-1].encode("utf-8")
    else:
        digits = _HEX_SEP.sub("", t[2:] if t[:2].lower() == "0x" else t)
        try:
            if len(digits) % 2:
                raise ValueError
            data = bytes.fromhex(digits)
        except ValueError:
            quoted = "" if kind is IdentifierType.HW_ADDRESS else ", or text in single quotes"
            raise ValueError(f"'{text}' is not a valid string of hexadecimal digits "
                             f"(such as 01:02:aa:bb{quoted})") from None
    lo, hi = _LENGTHS[kind]
    if not lo <= len(data) <= hi:
        raise ValueError(f"a {kind.key} has {lo} to {hi} bytes, not {len(data)}")
    return data


def format_identifier(kind: IdentifierType, data: bytes) -> str:
    """As Kea shows it: hw-address lower-case hex with colons, the others upper-case hex."""
    if kind is IdentifierType.HW_ADDRESS:
        return ":".join(f"{b:02x}" for b in data)
    return data.hex().upper()


def _ipstr(ip: int) -> str:
    return f"{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}"


@dataclass(frozen=True, slots=True)
class Host:
    """One reservation, from the hosts table (``host_id`` > 0) or the config file (0)."""

    subnet_id: int
    kind: IdentifierType
    identifier: bytes
    ip: int = 0
    """The reserved address, 0 for none."""
    hostname: str = ""
    options: dict[int, bytes] = field(default_factory=dict)
    """This host's own options, encoded (the subnet's are merged in at lookup)."""
    option_data: tuple[dict[str, Any], ...] = ()
    """The option-data entries as given (normalized to Kea's shape), for answers."""
    next_server: int = 0
    server_hostname: str = ""
    boot_file_name: str = ""
    client_classes: tuple[str, ...] = ()
    user_context: dict[str, Any] | None = None
    host_id: int = 0

    def to_json(self) -> dict[str, Any]:
        """Kea's host object (``Host::toElement4``)."""
        out: dict[str, Any] = {
            "boot-file-name": self.boot_file_name,
            "client-classes": list(self.client_classes),
            self.kind.key: format_identifier(self.kind, self.identifier),
            "hostname": self.hostname,
            "next-server": _ipstr(self.next_server),
            "option-data": [dict(o) for o in self.option_data],
            "server-hostname": self.server_hostname,
            "subnet-id": self.subnet_id,
        }
        if self.ip:
            out["ip-address"] = _ipstr(self.ip)
        if self.user_context is not None:
            out["user-context"] = self.user_context
        return dict(sorted(out.items()))

    @classmethod
    def from_config(cls, subnet_id: int, r: Reservation,
                    subnet_options: dict[int, bytes]) -> Host:
        """A config-file reservation as a Host (its own options: those that differ from the
        subnet's, as the config merged them)."""
        if r.hw_address is not None:
            kind, ident = IdentifierType.HW_ADDRESS, r.hw_address
        elif r.client_id is not None:
            kind, ident = IdentifierType.CLIENT_ID, r.client_id
        else:
            assert r.circuit_id is not None
            kind, ident = IdentifierType.CIRCUIT_ID, r.circuit_id
        own = {c: v for c, v in r.options.items() if subnet_options.get(c) != v}
        return cls(subnet_id, kind, ident, r.ip, r.hostname, own,
                   tuple(_option_json(c, v) for c, v in own.items()))


def _option_json(code: int, value: bytes) -> dict[str, Any]:
    shown = decode_option(code, value)
    if isinstance(shown, list):
        text = ", ".join(str(x) for x in shown)
    elif isinstance(shown, bool):
        text = "true" if shown else "false"
    else:
        text = str(shown)
    name = option_name(code)
    return {"always-send": False, "code": code, "csv-format": name != str(code),
            "data": text, "name": name, "space": "dhcp4"}


@dataclass(frozen=True, slots=True)
class Written:
    """What a write of the table did, for :meth:`HostTable.written` on the loop."""

    counts: dict[IdentifierType, int]
    """Hosts by identifier type after it."""
    added: tuple[Host, ...] = ()
    """The hosts it added."""
    deleted: Host | None = None
    """The host it deleted (None: there was none)."""


class HostConflict(ValueError):
    """A write refused because the table already holds what it would add: ``key`` is the
    argument at fault (``hw-address``..., ``ip-address``)."""

    def __init__(self, key: str, text: str) -> None:
        super().__init__(text)
        self.key = key


# -- records --------------------------------------------------------------------------------

_RECORD_VERSION = 1
_COUNTS = b"#"
_H = b"h"
_A = b"a"
_P = b"p"
_SID_KIND = struct.Struct(">IB")
_SID_HID = struct.Struct(">II")
_U32 = struct.Struct(">I")
#: typed here once, as msgpack ships no annotations
_packb: Callable[[object], bytes] = msgpack.Packer(use_bin_type=True).pack


def _unpackb_tuple(raw: bytes) -> Any:
    return msgpack.unpackb(raw, use_list=False)


def _pack(h: Host) -> bytes:
    return _packb((
        _RECORD_VERSION, h.host_id, h.subnet_id, int(h.kind), h.identifier, h.ip, h.hostname,
        sorted(h.options.items()), list(h.option_data), h.next_server, h.server_hostname,
        h.boot_file_name, list(h.client_classes), h.user_context,
    ))


def _unpack(raw: bytes) -> Host:
    rec = msgpack.unpackb(raw, use_list=True)
    (_v, hid, sid, kind, ident, ip, hostname, options, option_data, next_server,
     server_hostname, boot_file_name, classes, user_context) = rec[:14]
    return Host(sid, IdentifierType(kind), ident, ip, hostname,
                {c: v for c, v in options}, tuple(option_data), next_server,
                server_hostname, boot_file_name, tuple(classes), user_context, hid)


def _hkey(sid: int, kind: int, ident: bytes) -> bytes:
    return _H + _SID_KIND.pack(sid, kind) + ident


def _owner(sid: int, kind: int, ident: bytes) -> bytes:
    return _SID_KIND.pack(sid, kind) + ident


def _from_owner(v: bytes) -> tuple[int, int, bytes]:
    sid, kind = _SID_KIND.unpack_from(v)
    return sid, kind, v[5:]


_KINDS = tuple(IdentifierType)


def _counts_of(raw: bytes | None) -> tuple[int, dict[IdentifierType, int]]:
    if raw is None:
        return 1, {k: 0 for k in _KINDS}
    rec = msgpack.unpackb(raw)
    return rec[0], {k: rec[1 + i] for i, k in enumerate(_KINDS)}


def _counts_raw(next_hid: int, counts: dict[IdentifierType, int]) -> bytes:
    return _packb([next_hid, *(counts[k] for k in _KINDS)])


# -- the table ------------------------------------------------------------------------------


class HostTable:
    """The hosts of one lease database (``store``). Reads on the loop thread; the ``*_fn``
    methods make the callables that change it, to run in the writer thread through
    ``store.host_write`` (the control channel: ``GroupCommitter.run_in_writer``), after
    which the loop calls :meth:`written` with what they returned."""

    def __init__(self, store: LmdbLeaseStore) -> None:
        self._store = store
        self._get = store.host_get
        raw = store.host_get(_COUNTS)
        _, self._counts = _counts_of(raw)
        #: Which clients may have a host (fastdhcp._hostfilter): the engine searches the
        #: B-tree only for those. Sized for twice the hosts there are now (at least 2^20),
        #: filled by one pass over the keys.
        self.filter = HostFilter(max(2 * len(self), 1 << 20))
        for key in self._keys(_H, b"i"):
            self.filter.add_key(key)

    def _keys(self, start: bytes, stop: bytes) -> Iterator[bytes]:
        """Every key in ``start`` .. ``stop``, in chunks of short read transactions."""
        while True:
            rows = self._store.host_range(start, stop, 65536, keys_only=True)
            for key, _ in rows:
                yield key
            if len(rows) < 65536:
                return
            start = rows[-1][0] + b"\0"

    # ---------------------------------------------------------------------- per packet

    def count(self, kind: IdentifierType) -> int:
        """Hosts of this identifier type (the engine skips lookups of a type with none)."""
        return self._counts[kind]

    def __len__(self) -> int:
        return sum(self._counts.values())

    def find(self, subnet_id: int, kind: int, ident: bytes) -> bytes | None:
        """The raw record of the host (subnet, type, identifier), or None: one B-tree search
        in the loop's read transaction. What the engine calls per packet."""
        return self._get(_H + _SID_KIND.pack(subnet_id, kind) + ident)

    def reserved(self, ip: int) -> bool:
        """Whether an API host reserves ``ip`` (one B-tree search)."""
        return self._get(_A + _U32.pack(ip)) is not None

    @staticmethod
    def engine_reservation(raw: bytes, subnet_options: dict[int, bytes]) -> Reservation:
        """The record as the engine's :class:`~fastdhcp.config.Reservation`, options merged
        host > subnet > global as the config merges a reservation's. Reads only the fields
        the engine uses (the engine calls it once per host it meets, then caches)."""
        rec = _unpackb_tuple(raw)
        kind, ident, ip, hostname, own = rec[3], rec[4], rec[5], rec[6], rec[7]
        fixed = FixedFields(rec[9] or None, rec[10] or None, rec[11] or None)
        if own:
            merged = dict(subnet_options)
            merged.update(own)
            opts = dict(sorted(merged.items()))
        else:
            opts = subnet_options
        return Reservation(ip, ident if kind == 0 else None, ident if kind == 3 else None,
                           ident if kind == 2 else None, hostname, opts,
                           client_classes=tuple(rec[12]), own_options=dict(own) if own else {},
                           fixed=fixed)

    def addresses(self) -> array[int]:
        """Every address reserved here, ascending, as an ``array('I')`` (the bitmaps mark
        them used at start-up): read in chunks of short transactions."""
        return array("I", (_U32.unpack_from(k, 1)[0] for k in self._keys(_A, b"b")))

    # ---------------------------------------------------------------------- commands

    def get(self, subnet_id: int, kind: IdentifierType, ident: bytes) -> Host | None:
        """The host (subnet, type, identifier), or None."""
        raw = self.find(subnet_id, kind, ident)
        return None if raw is None else _unpack(raw)

    def at(self, ip: int) -> Host | None:
        """The host reserving ``ip``, or None."""
        owner = self._get(_A + _U32.pack(ip))
        if owner is None:
            return None
        return self.get(*_from_owner_typed(owner))

    def page(self, subnet_id: int | None, after: int, limit: int) -> tuple[list[Host], int]:
        """Up to ``limit`` hosts in paging order after position ``after`` (0: from the
        start), of one subnet or all; and the position of the last one (``from`` next)."""
        if after + 1 >= 1 << 64:
            return [], after
        if subnet_id is None:
            start, stop = _P + (after + 1).to_bytes(8, "big"), b"q"
        else:
            lo = subnet_id << 32
            start = _P + max(after + 1, lo).to_bytes(8, "big")
            stop = _P + ((subnet_id + 1) << 32).to_bytes(8, "big")
        hosts: list[Host] = []
        last = after
        for key, owner in self._store.host_range(start, stop, limit):
            sid, kind, ident = _from_owner_typed(owner)
            h = self.get(sid, kind, ident)
            last = int.from_bytes(key[1:9], "big")
            if h is not None:
                hosts.append(h)
        return hosts, last

    def in_subnet(self, subnet_id: int) -> list[Host]:
        """Every host of one subnet, in paging order."""
        out: list[Host] = []
        after = 0
        while True:
            hosts, last = self.page(subnet_id, after, 4096)
            out.extend(hosts)
            if last == after:
                return out
            after = last

    # ---------------------------------------------------------------------- writes

    def add_fn(self, host: Host) -> Callable[[Any, Any], Written]:
        """A write adding ``host`` (its ``host_id`` is given here); raises
        :class:`HostConflict` if its identifier in its subnet, or its address, is taken."""
        return self.add_many_fn([host])

    def delete_fn(self, subnet_id: int, kind: IdentifierType, ident: bytes
                  ) -> Callable[[Any, Any], Written]:
        """A write deleting the host (subnet, type, identifier)."""

        def delete(txn: Any, db: Any) -> Written:
            hkey = _hkey(subnet_id, kind, ident)
            next_hid, counts = _counts_of(txn.get(_COUNTS, db=db))
            raw = txn.get(hkey, db=db)
            if raw is None:
                return Written(counts)
            h = _unpack(raw)
            txn.delete(hkey, db=db)
            if h.ip:
                txn.delete(_A + _U32.pack(h.ip), db=db)
            txn.delete(_P + _SID_HID.pack(subnet_id, h.host_id), db=db)
            counts[kind] = max(0, counts[kind] - 1)
            txn.put(_COUNTS, _counts_raw(next_hid, counts), db=db)
            return Written(counts, deleted=h)

        return delete

    def add_many_fn(self, hosts: list[Host]) -> Callable[[Any, Any], Written]:
        """One write adding every host of ``hosts`` (bulk loads: tools, benchmarks), with the
        checks of :meth:`add_fn`, all or nothing."""

        def add(txn: Any, db: Any) -> Written:
            next_hid, counts = _counts_of(txn.get(_COUNTS, db=db))
            for host in hosts:
                _add_one(txn, db, host, next_hid, counts)
                next_hid += 1
            txn.put(_COUNTS, _counts_raw(next_hid, counts), db=db)
            return Written(counts, tuple(hosts))

        return add

    def written(self, w: Written) -> None:
        """A write committed (loop thread): the hosts it added go into the filter, its counts
        are taken, and the next read sees it. Call before ``Engine.host_written``."""
        for h in w.added:
            self.filter.add_key(_hkey(h.subnet_id, h.kind, h.identifier))
        self._counts = dict(w.counts)
        self._store.hosts_changed()


    def learned(self, key: tuple[int, IdentifierType, bytes] | None) -> None:
        """Another process sharing the table wrote it (a worker of a multi-worker server:
        the control front tells the others): the next read sees the write, the counts are
        re-read, and the host ``key`` (subnet id, type, identifier) goes into the filter.
        Call before ``Engine.host_written``."""
        self._store.hosts_changed()
        _, self._counts = _counts_of(self._get(_COUNTS))
        if key is not None:
            self.filter.add_key(_hkey(*key))


def _add_one(txn: Any, db: Any, host: Host, hid: int, counts: dict[IdentifierType, int]
             ) -> None:
    hkey = _hkey(host.subnet_id, host.kind, host.identifier)
    if txn.get(hkey, db=db) is not None:
        raise HostConflict(host.kind.key, f"a host with {host.kind.key} "
                           f"{format_identifier(host.kind, host.identifier)} "
                           f"already exists in subnet {host.subnet_id}")
    akey = _A + _U32.pack(host.ip)
    if host.ip and txn.get(akey, db=db) is not None:
        raise HostConflict("ip-address", f"address {_ipstr(host.ip)} is already reserved")
    if hid >= 1 << 32:
        raise HostConflict("subnet-id", "host ids exhausted (4294967295 hosts added)")
    owner = _owner(host.subnet_id, host.kind, host.identifier)
    txn.put(hkey, _pack(_replace_hid(host, hid)), db=db)
    if host.ip:
        txn.put(akey, owner, db=db)
    txn.put(_P + _SID_HID.pack(host.subnet_id, hid), owner, db=db)
    counts[host.kind] += 1


def _from_owner_typed(v: bytes) -> tuple[int, IdentifierType, bytes]:
    sid, kind, ident = _from_owner(v)
    return sid, IdentifierType(kind), ident


def _replace_hid(h: Host, hid: int) -> Host:
    return Host(h.subnet_id, h.kind, h.identifier, h.ip, h.hostname, h.options, h.option_data,
                h.next_server, h.server_hostname, h.boot_file_name, h.client_classes,
                h.user_context, hid)
