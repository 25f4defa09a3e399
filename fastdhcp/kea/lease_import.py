"""Import Kea memfile lease files into fastdhcp's lease database, resumably.

Three phases, so that bad input writes nothing:

1. **read** every file in the order given (``leases4.csv.2`` before ``leases4.csv``, as Kea's
   loader reads LFC's output before the live file), the later row for an address replacing the
   earlier one and a ``valid_lifetime`` 0 row deleting it (Kea's ``LeaseFileLoader``). A
   malformed row stops the import with its file, line number and field, unless
   ``skip_bad_lines`` (then it is counted, reported and skipped).
2. **check** each lease against the configured subnets: an address outside every subnet, or in
   a subnet whose id is not the lease's ``subnet_id``, is reported and skipped (never moved).
3. **write** the leases in address order, ``batch`` at a time, one LMDB transaction per batch
   (:meth:`fastdhcp.store.LmdbLeaseStore.write`, fsynced when ``sync``), each transaction also
   putting the resume marker ``meta[kea-import]``: the fingerprint of the input and how many
   leases of it are committed. An interrupted import rerun with the same input resumes after the
   last committed batch; a batch is in the database whole or not at all, and no lease is
   written twice. A database that already holds leases from anything else is refused: the
   import is the first thing written to a new database.
"""

from __future__ import annotations

import gc
import hashlib
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import msgpack

from fastdhcp.control.lease_extras import LeaseExtras
from fastdhcp.kea.memfile import BadLine, KeaLease, header_width, read_rows
from fastdhcp.leases import Lease
from fastdhcp.store import LmdbLeaseStore

if TYPE_CHECKING:
    from fastdhcp.config import Config

__all__ = ["MARKER_KEY", "ImportError_", "ImportReport", "SubnetRange", "read_lease_files",
           "check_subnets", "import_leases", "subnet_ranges"]

#: The meta key of the resume marker: msgpack ``[fingerprint (32 bytes), committed, total]``.
MARKER_KEY = b"kea-import"
#: Leases per transaction. With ``sync = true`` the cost of a commit is its dirty pages, and
#: address-ordered keys fill pages densely: 8192 leases dirty ~100 pages per fsync.
DEFAULT_BATCH = 8192
#: Problems printed in full; beyond it they are counted (a million bad rows is one story).
MAX_LISTED = 50


class ImportError_(Exception):  # noqa: N801 - the builtin ImportError means something else
    """The import cannot go on; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class SubnetRange:
    """A configured subnet: its id and its first and last address (host order)."""

    id: int
    first: int
    last: int


@dataclass(slots=True)
class ImportReport:
    """What an import read, kept, skipped and wrote."""

    rows: int = 0  #: lease rows read (header excluded)
    replaced: int = 0  #: rows that replaced an earlier row of the same address
    deleted: int = 0  #: addresses a valid_lifetime 0 row deleted
    bad_lines: int = 0  #: malformed rows skipped (skip_bad_lines)
    outside: int = 0  #: leases skipped for their subnet
    written: int = 0  #: leases committed by this run
    resumed_at: int = 0  #: leases a previous run had committed already
    total: int = 0  #: leases to be in the database when the import is complete
    problems: list[str] = field(default_factory=list)  #: the first MAX_LISTED problems

    def problem(self, line: str) -> None:
        """Keep ``line`` if fewer than MAX_LISTED are kept."""
        if len(self.problems) < MAX_LISTED:
            self.problems.append(line)

    def summary(self) -> str:
        """One line for the operator."""
        parts = [f"{self.rows} rows read", f"{self.total} leases imported"]
        if self.resumed_at and not self.written:
            parts.append("all of them by an earlier run (nothing written now)")
        elif self.resumed_at:
            parts.append(f"{self.resumed_at} of them by an earlier interrupted run")
        parts.append(f"{self.replaced} rows superseded by a later row")
        if self.deleted:
            parts.append(f"{self.deleted} deleted by a later row")
        if self.bad_lines:
            parts.append(f"{self.bad_lines} malformed rows skipped")
        if self.outside:
            parts.append(f"{self.outside} leases outside the configured subnets skipped")
        return ", ".join(parts)


@dataclass(slots=True)
class _Read:
    """The result of phase 1: the newest lease per address, the rows of those whose fqdn flags
    or user context are set, and the input's fingerprint."""

    leases: dict[int, Lease]
    extras: dict[int, KeaLease]
    fingerprint: bytes


def _ipstr(ip: int) -> str:
    return socket.inet_ntoa(ip.to_bytes(4, "big"))


def read_lease_files(paths: Sequence[str], report: ImportReport, *,
                     skip_bad_lines: bool = False) -> _Read:
    """Phase 1 (see the module docstring); raises :class:`ImportError_` on a bad row unless
    ``skip_bad_lines``, or when a file cannot be read."""
    leases: dict[int, Lease] = {}
    extras: dict[int, KeaLease] = {}
    digest = hashlib.sha256()
    for path in paths:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise ImportError_([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
        if not data.isascii():  # 4 ms for 97 MB, where a decode to check it takes 50
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = data[:exc.start].count(b"\n") + 1
                raise ImportError_([f"{path}:{line}: not UTF-8 text"]) from exc
        with _no_cyclic_gc():
            _read_one(path, data, leases, extras, report, skip_bad_lines)
    return _Read(leases, extras, digest.digest())


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The cyclic GC off (as it was before, after): it would rescan the growing table of
    leases, all of them acyclic, again and again. Measured on 200,000 leases: 20 % of the read
    time, and a third of the write phase (its full collections ran inside the batches'
    sorts)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _read_one(path: str, data: bytes, leases: dict[int, Lease], extras: dict[int, KeaLease],
              report: ImportReport, skip_bad_lines: bool) -> None:
    # Kea's CSVFile has no quoting (a text field escapes its commas as &#x2c): a row is its
    # line split at every comma, as Kea splits it; the csv module would read quotes Kea does
    # not, and costs three times as much.
    if not data:
        return  # an empty file: Kea writes the header at once, but an empty one is no lease
    nl = data.find(b"\n")
    head = data if nl < 0 else data[:nl]
    try:
        width = header_width(head.decode("utf-8").rstrip("\r").split(","))
    except BadLine as exc:
        raise ImportError_([f"{path}:1: {exc}"]) from exc
    if nl < 0:
        return

    def bad(number: int, exc: BadLine) -> None:
        _bad(f"{path}:{number}: {exc}", report, skip_bad_lines)

    counts = read_rows(data, nl + 1, 2, width, leases, extras, bad)
    report.rows += counts.rows
    report.replaced += counts.replaced
    report.deleted += counts.deleted


def _bad(line: str, report: ImportReport, skip: bool) -> None:
    if not skip:
        raise ImportError_([line, "nothing was written (--skip-bad-lines skips such rows)"])
    report.bad_lines += 1
    report.problem(line)


def check_subnets(leases: dict[int, Lease], subnets: Iterable[SubnetRange],
                  report: ImportReport) -> list[Lease]:
    """Phase 2: the leases to write, in address order; the others reported."""
    ranges = sorted(subnets, key=lambda s: s.first)
    ids = {s.id for s in ranges}
    keep: list[Lease] = []
    k = 0
    for ip in sorted(leases):
        lease = leases[ip]
        while k < len(ranges) and ranges[k].last < ip:
            k += 1
        if k == len(ranges) or ranges[k].first > ip:
            report.outside += 1
            report.problem(f"lease {_ipstr(ip)} (subnet-id {lease.subnet_id}): outside "
                           "every configured subnet: skipped")
            continue
        sid = ranges[k].id
        if sid != lease.subnet_id:
            report.outside += 1
            where = ("a subnet-id the config does not have" if lease.subnet_id not in ids
                     else "another subnet's id")
            report.problem(f"lease {_ipstr(ip)}: subnet-id {lease.subnet_id} is {where}; "
                           f"the address is in subnet4 id {sid}: skipped")
            continue
        keep.append(lease)
    return keep


def _marker(fingerprint: bytes, committed: int, total: int) -> bytes:
    packed: bytes = msgpack.packb([fingerprint, committed, total], use_bin_type=True)
    return packed


def _read_marker(raw: bytes | None) -> tuple[bytes, int, int] | None:
    if raw is None:
        return None
    try:
        fp, committed, total = msgpack.unpackb(raw, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    if not isinstance(fp, bytes) or not isinstance(committed, int):
        return None
    return fp, committed, int(total)


def _extras(kl: KeaLease) -> bytes | None:
    if kl.user_context is None and not kl.fqdn_fwd and not kl.fqdn_rev:
        return None
    extras = LeaseExtras(kl.lease.client_key, kl.user_context, kl.fqdn_fwd, kl.fqdn_rev)
    return None if extras.empty else extras.encode()


def import_leases(
    paths: Sequence[str],
    db_path: str,
    subnets: Iterable[SubnetRange],
    *,
    sync: bool = True,
    skip_bad_lines: bool = False,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import ``paths`` into the lease database at ``db_path`` (created if missing).

    Raises :class:`ImportError_` (nothing written by this run) or
    :class:`~fastdhcp.errors.StoreError`. ``progress(committed, total)`` is called after each
    batch.
    """
    with _no_cyclic_gc():
        return _import(paths, db_path, subnets, sync, skip_bad_lines, batch, progress)


def _import(paths: Sequence[str], db_path: str, subnets: Iterable[SubnetRange], sync: bool,
            skip_bad_lines: bool, batch: int,
            progress: Callable[[int, int], None] | None) -> ImportReport:
    report = ImportReport()
    read = read_lease_files(paths, report, skip_bad_lines=skip_bad_lines)
    keep = check_subnets(read.leases, subnets, report)
    report.total = len(keep)
    store = LmdbLeaseStore(db_path, sync=sync, create=True)
    try:
        start = _resume_point(store, read.fingerprint, db_path)
        report.resumed_at = start
        for lo in range(start, len(keep), batch):
            chunk = keep[lo:lo + batch]
            extras = {}
            if read.extras:
                for lease in chunk:
                    kl = read.extras.get(lease.ip)
                    raw = None if kl is None else _extras(kl)
                    if raw is not None:
                        extras[lease.ip] = raw
            done = lo + len(chunk)
            store.write(chunk, extras=extras,
                        meta={MARKER_KEY: _marker(read.fingerprint, done, len(keep))})
            report.written += len(chunk)
            if progress is not None:
                progress(done, len(keep))
        if not keep and start == 0:
            # Nothing to write: still mark the database as this input's import.
            store.write([], meta={MARKER_KEY: _marker(read.fingerprint, 0, 0)})
    finally:
        store.close()
    return report


def _resume_point(store: LmdbLeaseStore, fingerprint: bytes, db_path: str) -> int:
    """How many leases of this input are committed already (0 for a new database)."""
    marker = _read_marker(store.meta_get(MARKER_KEY))
    if marker is None:
        if len(store):
            raise ImportError_([
                f"{db_path}: the lease database already holds {len(store)} leases and no "
                "import-kea marker: import into a new, empty database"])
        return 0
    fp, committed, total = marker
    if fp != fingerprint:
        state = "complete" if committed >= total else f"interrupted at {committed}/{total}"
        raise ImportError_([
            f"{db_path}: holds an import of other lease files ({state}): import into a new, "
            "empty database (or rerun with the same files to resume)"])
    return committed


def subnet_ranges(config: Config) -> list[SubnetRange]:
    """The :class:`SubnetRange` of each subnet of a loaded config."""
    return [SubnetRange(s.id, int(s.network.network_address), int(s.network.broadcast_address))
            for s in config.subnets]
