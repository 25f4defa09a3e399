"""The durable lease table: LMDB, group-committed (RFC 2131 3.1 step 4: commit, then ACK).

A lease database directory holds one LMDB environment, ``data.mdb`` / ``lock.mdb``, fsynced on
every commit when ``sync=True``. It is the only durable truth (see docs/durability.md):

- ``leases``: 4-byte big-endian IPv4 -> msgpack array
  ``[state, expires, issued, subnet_id, client_key, hw_address, hostname, relay_info]``
  (state first so that a scan can tell an active lease from its second byte); the one codec
  of these records is ``fastdhcp._lease`` (the index's start-up walk reads them through it too);
- ``hosts``: reservations added through the control channel (layout in :mod:`fastdhcp.hosts`,
  which owns it; the store only moves its bytes);
- ``meta``: ``schema-version`` (4-byte big-endian) and ``instance`` (16 random bytes naming this
  database); ``kea-import``, the resume marker of ``fastdhcp import-kea``
  (:mod:`fastdhcp.kea.lease_import`, which owns its layout). Keys an earlier version kept
  there (``clean-shutdown``, ``boot-id``, ``batch-seq``, ``last-batch``) are left alone and
  unused.

The two derived views, addresses by client key and active leases by expiry, live in memory
(:class:`fastdhcp._leaseindex.LeaseIndex`, about 60 bytes per record): start-up builds them in
the same compiled scan of ``leases`` that the pool bitmaps need, and the writer thread updates
them after each commit. A random-keyed index kept in LMDB dirties one page per new client per
commit and had to be rebuilt after a power loss (minutes at 10 million leases); in memory it
costs neither, and every start-up is the same one scan. Index answers are checked against the
lease they point at before they are believed, so a record changed behind the index (a lease
deleted by ``fastdhcp leases delete``) makes an answer slower to find, never wrong.

Threads: every method runs on the caller's thread (the event loop) except :meth:`write`, which
the :class:`~fastdhcp.commit.GroupCommitter` runs in its writer thread. Loop reads use short
LMDB read transactions, the in-memory index (whose every call is atomic under the GIL) and the
staged overlay, and never wait for the writer, except for the few microseconds of a map resize.
"""

from __future__ import annotations

import bisect
import ipaddress
import os
import threading
import time
from array import array
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import lmdb

from fastdhcp._lease import decode_record, encode_record, record_key, record_state
from fastdhcp._leaseindex import LeaseIndex
from fastdhcp.commit import GroupCommitter
from fastdhcp.errors import StoreError
from fastdhcp.leases import Lease, LeaseState

if TYPE_CHECKING:
    from fastdhcp.slices import WorkerScope

__all__ = [
    "SCHEMA_VERSION",
    "LmdbLeaseStore",
    "GroupCommitter",
    "delete_lease",
]

#: Version of the on-disk layout described in the module docstring.
SCHEMA_VERSION = 1

_MIB = 1 << 20
_DEFAULT_MAP_SIZE = 1 << 30
#: Grow the map when a commit leaves it fuller than this (so MapFullError stays the exception).
_GROW_AT = 0.75
#: Files of the index environment earlier versions kept beside data.mdb (removed at open).
_OLD_INDEX_FILES = ("index.mdb", "index.mdb-lock")

#: Named databases the environment may hold: leases, meta, hosts (fastdhcp.hosts), and room for
#: more (LMDB fixes the number when the environment is opened).
_MAX_DBS = 8

_META_SCHEMA = b"schema-version"
_META_INSTANCE = b"instance"

#: Records decoded per read transaction when streaming the table (bounds how long a reader
#: pins old pages, and lets a map resize slip in between chunks).
_CHUNK = 4096
#: Records indexed per read transaction at start-up.
_SCAN_CHUNK = 1 << 20
#: Ranges up to which :meth:`LmdbLeaseStore.active_counts` counts in one pass (see there).
_COUNT_RANGES = 32
#: Longest a loop read txn is reused while no batch commits (seconds).
_READ_TXN_AGE = 0.5

#: The key of an address's record, in ``leases`` and in ``lease-extras`` alike.
_ip4 = record_key


def _ipstr(ip: int) -> str:
    return str(ipaddress.IPv4Address(ip))


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text or type(exc).__name__


class LmdbLeaseStore:
    """A :class:`~fastdhcp.leases.LeaseStore` on LMDB, durable when :meth:`write` returns.

    ``path`` is a directory that must exist (``create=True`` makes it). ``sync=False`` skips the
    fsync of each commit (MDB_NOSYNC): leases survive a crash of the process but not of the
    machine. ``map_size`` is the initial map size in bytes; the map doubles by itself when a
    commit leaves it more than 3/4 full (up to ``max_map_size`` if given). ``readonly=True``
    opens the database beside a running server (the CLI): no staging, no writes; its index is
    built on first use. Raises :class:`StoreError` naming the path and the cause when the
    database cannot be opened: missing or read-only directory, damaged file or record, other
    schema version.
    """

    #: Bits of each client-key hash the index keeps (tests lower it to force collisions).
    index_hash_bits = 64

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sync: bool = True,
        map_size: int = _DEFAULT_MAP_SIZE,
        readonly: bool = False,
        max_map_size: int | None = None,
        create: bool = False,
        scope: WorkerScope | None = None,
    ) -> None:
        self.path = os.fspath(path)
        #: a multi-worker server's worker (docs/scaling.md): its index holds only the records
        #: the scope owns, and every commit checks ownership (:meth:`_check_batch`)
        self.scope = scope
        #: leases the commit check refused, for the loop (:meth:`take_rejected`)
        self._rejected: list[Lease] = []
        #: records on disk the commit check found that the index did not have
        self._learned: list[Lease] = []
        #: commits refused by the commit check, lease by lease (metrics)
        self.rejected_total = 0
        self.sync = sync
        self.readonly = readonly
        self._max_map_size = max_map_size
        self._closed = False
        # Serializes loop reads against map resizes done by the writer thread: LMDB forbids a
        # resize while a transaction of this process is active.
        self._map_lock = threading.Lock()
        # Staged overlay (loop thread only): newest staged lease per address, and the last
        # staged address per client key with the lease that set it.
        self._staged: dict[int, Lease] = {}
        self._staged_clients: dict[bytes, tuple[int, Lease]] = {}
        self._pending: list[Lease] = []
        #: Test hook, run in the lease write txn after the puts and before the commit.
        self._before_commit: Any = None
        self._index: LeaseIndex | None = None
        # LMDB handles are typed Any: the lmdb stubs make every value `bytes | memoryview`,
        # while this module never opens transactions with buffers=True (values are bytes).
        self._env: Any = None
        self._rtxn: Any = None  # the loop's read txn (see _loop_txn)
        self._rtxn_stale = True
        self._rtxn_at = 0.0
        try:
            self._open(sync, map_size, create)
        except BaseException:
            self._close_env()
            raise

    # ----------------------------------------------------------------------------- opening

    def _err(self, what: str, exc: BaseException | str) -> StoreError:
        cause = exc if isinstance(exc, str) else _cause(exc)
        return StoreError(f"{self.path}: {what}: {cause}")

    def _open(self, sync: bool, map_size: int, create: bool) -> None:
        path = self.path
        if not os.path.isdir(path):
            if os.path.exists(path):
                raise self._err("cannot open lease database", "not a directory")
            if create and not self.readonly:
                try:
                    os.makedirs(path, exist_ok=True)
                except OSError as exc:
                    raise self._err("cannot create lease database directory", exc) from exc
            else:
                raise self._err("cannot open lease database", "directory does not exist")
        if self.readonly and not os.path.exists(os.path.join(path, "data.mdb")):
            raise self._err("cannot open lease database", "no data.mdb in directory")
        if not self.readonly and not os.access(path, os.W_OK):
            raise self._err("cannot open lease database", "directory is not writable")
        try:
            self._env = lmdb.open(
                path,
                # Read-only: whatever size the writer gave it.
                map_size=0 if self.readonly else map_size,
                max_dbs=_MAX_DBS,
                sync=sync,
                metasync=sync,
                readonly=self.readonly,
                create=not self.readonly,
                lock=True,
                max_spare_txns=2,
            )
            self._leases = self._env.open_db(b"leases", create=not self.readonly)
            self._meta = self._env.open_db(b"meta", create=not self.readonly)
        except lmdb.ReadonlyError as exc:
            raise self._err("cannot open lease database", "read-only file system") from exc
        except (lmdb.Error, OSError) as exc:
            if isinstance(exc, lmdb.NotFoundError) and self.readonly:
                raise self._err(
                    "cannot open lease database", "not a fastdhcp lease database"
                ) from exc
            raise self._err("cannot open lease database", exc) from exc
        self._open_hosts()
        self._open_extras()
        if self.readonly:
            self._check_schema()
        else:
            self._start_writer()
            # A database grown past `map_size` by an earlier run opens at its used size: grow
            # it now rather than at the first MapFullError.
            self._maybe_grow(self._env)
            self._remove_old_index()
            self._index = self._build_index()

    def _open_hosts(self) -> None:
        """Open the ``hosts`` database (fastdhcp.hosts); read-only, a database written before
        it existed has none (None: no hosts)."""
        self._hosts: Any = None
        try:
            self._hosts = self._env.open_db(b"hosts", create=not self.readonly)
        except lmdb.NotFoundError:
            if not self.readonly:
                raise
        except lmdb.Error as exc:
            raise self._err("cannot open the hosts table", exc) from exc

    def _open_extras(self) -> None:
        """Open ``lease-extras`` (what Kea's lease commands carry beyond the lease record:
        :mod:`fastdhcp.control.lease_extras`); None in a read-only database written before it
        existed."""
        self._extras: Any = None
        try:
            self._extras = self._env.open_db(b"lease-extras", create=not self.readonly)
        except lmdb.NotFoundError:
            if not self.readonly:
                raise
        except lmdb.Error as exc:
            raise self._err("cannot open the lease extras table", exc) from exc

    def _check_schema(self) -> None:
        with self._begin() as txn:
            version = txn.get(_META_SCHEMA, db=self._meta)
        self._check_version(version)

    def _check_version(self, version: bytes | None) -> None:
        if version is None or len(version) != 4:
            raise self._err("cannot open lease database", "not a fastdhcp lease database")
        found = int.from_bytes(version, "big")
        if found != SCHEMA_VERSION:
            raise self._err(
                "cannot open lease database",
                f"schema version {found}, this fastdhcp reads version {SCHEMA_VERSION}",
            )

    def _start_writer(self) -> None:
        """Check the schema, or create it (with the random ``instance`` naming the database)."""
        assert self._env is not None
        try:
            with self._env.begin(write=True) as txn:
                version = txn.get(_META_SCHEMA, db=self._meta)
                if version is None:
                    if txn.stat(self._leases)["entries"]:
                        raise self._err(
                            "cannot open lease database", "leases without a schema version"
                        )
                    txn.put(_META_SCHEMA, SCHEMA_VERSION.to_bytes(4, "big"), db=self._meta)
                    txn.put(_META_INSTANCE, os.urandom(16), db=self._meta)
                else:
                    self._check_version(version)
            self._env.sync(True)
        except StoreError:
            raise
        except (lmdb.Error, OSError) as exc:
            raise self._err("cannot open lease database", exc) from exc

    def _remove_old_index(self) -> None:
        # An earlier version's index environment: derived data nothing reads any more.
        for name in _OLD_INDEX_FILES:
            try:
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise self._err(f"cannot remove the old index file {name}", exc) from exc

    def _build_index(self) -> LeaseIndex:
        """Index every committed record (a worker's: those its scope owns, one key range per
        slice): one compiled pass over ``leases`` in chunks."""
        index = LeaseIndex(self.index_hash_bits)
        odd: list[tuple[bytes, bytes]] = []
        scope = self.scope
        ranges = [(0, 0xFFFFFFFF)] if scope is None else scope.scan_ranges()
        for first, last_ip in ranges:
            after: bytes | None = _ip4(first - 1) if first > 0 else None
            stop = _ip4(last_ip)
            while True:
                try:
                    # Chunks: a map resize by the writer (readonly: by the server) can slip in.
                    with self._map_lock, self._begin() as txn:
                        cur = self._cursor_after(txn, after)
                        if cur is None:
                            break
                        items = (cur.iternext() if scope is None
                                 else _owned(cur.iternext(), stop, scope))
                        n, last, more = index.load(items, _SCAN_CHUNK)
                except lmdb.Error as exc:
                    raise self._err("lease table scan failed", exc) from exc
                odd.extend(more)
                if n < _SCAN_CHUNK or last is None:
                    break
                after = last
        for key, raw in odd:
            # Records in another msgpack form (not written by this version): decode them.
            lease = self._decode(key, raw)
            if lease.ip == 0:
                continue  # 0.0.0.0 can never be leased: nothing to index
            try:
                index.put_loaded(
                    lease.ip, lease.client_key, lease.expires, lease.issued, lease.active
                )
            except (ValueError, TypeError) as exc:
                raise self._err(
                    f"lease record with key {bytes(key).hex()} is damaged", exc
                ) from exc
        return index

    def _cursor_after(self, txn: Any, after: bytes | None) -> Any:
        """A cursor on ``leases`` at the first key after ``after`` (all keys: None), or None
        when there is none. Lets a long scan go in chunks of short read transactions."""
        cur = txn.cursor(db=self._leases)
        found = cur.set_range(after) if after is not None else cur.first()
        if found and after is not None and cur.key() == after:
            found = cur.next()
        return cur if found else None

    def _the_index(self) -> LeaseIndex:
        # A read-only store (the CLI) builds its index when first asked.
        if self._index is None:
            self._index = self._build_index()
        return self._index

    # ----------------------------------------------------------------------------- closing

    def close(self) -> None:
        """Close the environment. Call after the committer closed (nothing is pending)."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self.readonly and self._env is not None:
                self._env.sync(True)
        except (lmdb.Error, OSError) as exc:
            raise self._err("cannot close lease database cleanly", exc) from exc
        finally:
            self._close_env()

    def _close_env(self) -> None:
        with self._map_lock:
            self._reset_loop_txn()
        if self._env is not None:
            self._env.close()
        self._env = None

    def __enter__(self) -> LmdbLeaseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------- reading

    def _begin(self, env: Any = None) -> Any:
        env = env if env is not None else self._env
        if env is None:
            raise StoreError(f"{self.path}: lease database is closed")
        try:
            return env.begin()
        except lmdb.MapResizedError:
            # Another process grew the map: adopt its size (no txn of ours is active here).
            env.set_mapsize(0)
            return env.begin()

    def _decode(self, key: bytes, raw: bytes) -> Lease:
        try:
            return decode_record(key, raw)
        except Exception as exc:
            raise self._err(
                f"lease record for {_ipstr(int.from_bytes(key, 'big'))} is damaged", exc
            ) from exc

    def _loop_txn(self) -> Any:
        """The loop's read txn; call with _map_lock held.

        Kept open between lookups (a begin costs more than the lookup) and renewed when a
        batch committed or failed (the overlay just dropped it: readers must see the commit)
        or after _READ_TXN_AGE seconds (so that other processes' writes show, and old pages are
        not pinned).
        """
        now = time.monotonic()
        txn = self._rtxn
        if txn is None or self._rtxn_stale or now - self._rtxn_at > _READ_TXN_AGE:
            self._reset_loop_txn()
            self._rtxn = txn = self._begin()
            self._rtxn_stale = False
            self._rtxn_at = now
        return txn

    def _reset_loop_txn(self) -> None:
        # With _map_lock held (the writer's resize, close, and renewal take it).
        if self._rtxn is not None:
            self._rtxn.abort()
        self._rtxn = None

    def _read(self, ip: int) -> Lease | None:
        key = _ip4(ip)
        try:
            with self._map_lock:
                raw = self._loop_txn().get(key, db=self._leases)
        except lmdb.Error as exc:
            raise self._err("lease read failed", exc) from exc
        return None if raw is None else self._decode(key, raw)

    def get(self, ip: int) -> Lease | None:
        """The newest version of the lease for ``ip``: staged first, then committed."""
        lease = self._staged.get(ip)
        if lease is not None:
            return None if lease.state == LeaseState.DELETED else lease
        if not self.readonly and ip not in self._index:  # type: ignore[operator]
            # The writer's index has an entry for every record of the table, by exact address
            # (the start-up scan, then every commit): none means none, and the B-tree search
            # of a never-used address, one per new client's REQUEST, is skipped. Only records
            # this process did not write could be missed, and no tool adds any (the CLI only
            # deletes, which leaves an entry that the read below then finds gone).
            return None
        return self._read(ip)

    def get_by_client(self, client_key: bytes) -> Lease | None:
        """The lease last staged or committed for ``client_key``, if it still holds it."""
        entry = self._staged_clients.get(client_key)
        ip = entry[0] if entry is not None else self._the_index().client(client_key)
        if ip is None:
            return None
        lease = self.get(ip)
        if lease is not None and lease.client_key == client_key:
            return lease
        return None  # the address went to another client (or a fingerprint collision)

    def expired(self, now: float, limit: int) -> list[Lease]:
        """Up to ``limit`` active leases with ``expires <= now``, oldest first."""
        if limit <= 0:
            return []
        staged = self._staged
        index = self._the_index()
        out: list[Lease] = []
        for ip in index.due(int(now), limit, staged):
            lease = self._read(ip)
            if lease is None:
                # Deleted behind the index (the CLI): forget it, or it would hold a place
                # among the `limit` oldest for ever.
                if not self.readonly:
                    index.remove(ip)
                continue
            if lease.active and lease.expires <= now:
                out.append(lease)
        out.extend(x for x in staged.values() if x.active and x.expires <= now)
        out.sort(key=lambda x: (x.expires, x.ip))
        return out[:limit]

    def active_addresses(self) -> array[int]:
        """Every address whose newest lease is active, ascending, as an ``array('I')``.

        From the in-memory index (built by the compiled start-up scan) plus the staged overlay.
        """
        out = self._the_index().active()
        if self._staged:
            out = self._apply_overlay(out)
        return out

    def _apply_overlay(self, committed: array[int]) -> array[int]:
        drop = {ip for ip, x in self._staged.items() if not x.active}
        add = {ip for ip, x in self._staged.items() if x.active}
        merged = sorted(add.union(ip for ip in committed if ip not in drop))
        return array("I", merged)

    def __len__(self) -> int:
        """Number of lease records (committed, plus staged addresses not yet in the table)."""
        try:
            with self._map_lock, self._begin() as txn:
                n: int = txn.stat(self._leases)["entries"]
                for ip, lease in self._staged.items():
                    stored = txn.get(_ip4(ip), db=self._leases) is not None
                    if lease.state == LeaseState.DELETED:
                        n -= stored
                    else:
                        n += not stored
        except lmdb.Error as exc:
            raise self._err("lease table read failed", exc) from exc
        return n

    def _iter_committed(self) -> Iterator[Lease]:
        # Chunked: each chunk is one short read txn, so a long export never pins old pages
        # for long nor blocks a map resize.
        after: bytes | None = None
        while True:
            records: list[tuple[bytes, bytes]] = []
            try:
                with self._map_lock, self._begin() as txn:
                    cur = self._cursor_after(txn, after)
                    if cur is not None:
                        for item in cur.iternext():
                            records.append(item)
                            if len(records) >= _CHUNK:
                                break
            except lmdb.Error as exc:
                raise self._err("lease table read failed", exc) from exc
            for key, raw in records:
                yield self._decode(key, raw)
            if len(records) < _CHUNK:
                return
            after = records[-1][0]

    def __iter__(self) -> Iterator[Lease]:
        """Every lease record in address order (staged versions replace committed ones)."""
        staged = sorted(self._staged.items())
        i = 0
        for lease in self._iter_committed():
            while i < len(staged) and staged[i][0] < lease.ip:
                if staged[i][1].state != LeaseState.DELETED:
                    yield staged[i][1]
                i += 1
            if i < len(staged) and staged[i][0] == lease.ip:
                if staged[i][1].state != LeaseState.DELETED:
                    yield staged[i][1]
                i += 1
            else:
                yield lease
        for _, lease in staged[i:]:
            if lease.state != LeaseState.DELETED:
                yield lease

    def page(self, after: int | None, limit: int) -> list[Lease]:
        """Up to ``limit`` records with an address above ``after`` (from the first: None),
        ascending, staged versions first and staged deletions hidden. Short read
        transactions of at most ``limit`` records each: the loop can call it between
        packets (about 1 ms per 1,000 records)."""
        out: list[Lease] = []
        cursor = after
        while len(out) < limit:
            want = limit - len(out)
            records: list[tuple[bytes, bytes]] = []
            try:
                with self._map_lock, self._begin() as txn:
                    cur = self._cursor_after(txn, None if cursor is None else _ip4(cursor))
                    if cur is not None:
                        for item in cur.iternext():
                            records.append(item)
                            if len(records) >= want:
                                break
            except lmdb.Error as exc:
                raise self._err("lease table read failed", exc) from exc
            full = len(records) >= want
            # the staged versions within the span these records cover (to the end if short)
            lo = -1 if cursor is None else cursor
            hi = int.from_bytes(records[-1][0], "big") if full else 1 << 32
            merged = {int.from_bytes(k, "big"): (k, raw) for k, raw in records}
            chunk: dict[int, Lease] = {}
            for ip, (k, raw) in merged.items():
                chunk[ip] = self._decode(k, raw)
            for ip, lease in self._staged.items():
                if lo < ip <= hi:
                    chunk[ip] = lease
            for ip in sorted(chunk):
                if chunk[ip].state != LeaseState.DELETED:
                    out.append(chunk[ip])
            if not full:
                break
            cursor = hi
        return out[:limit]

    def iter_committed(self) -> Iterator[Lease]:
        """Every committed lease record in address order (what another process would see)."""
        return self._iter_committed()

    # ----------------------------------------------------------------------------- staging

    def stage(self, lease: Lease) -> None:
        """Make ``lease`` visible to readers now and add it to the pending batch."""
        if self.readonly:
            raise StoreError(f"{self.path}: lease database is open read-only")
        self._staged[lease.ip] = lease
        if lease.state != LeaseState.DELETED:
            self._staged_clients[lease.client_key] = (lease.ip, lease)
        else:
            # A deletion ends the client's entry only if it named this address (the client
            # may since hold another one); the tombstone in the entry then answers None, as
            # the index will once the deletion is committed (LeaseIndex.remove).
            entry = self._staged_clients.get(lease.client_key)
            named = (entry[0] if entry is not None
                     else self._the_index().client(lease.client_key))
            if named is None or named == lease.ip:
                self._staged_clients[lease.client_key] = (lease.ip, lease)
        self._pending.append(lease)

    def take_pending(self) -> list[Lease]:
        """Close the pending batch and return it (possibly empty)."""
        batch, self._pending = self._pending, []
        return batch

    @property
    def pending_count(self) -> int:
        """Leases staged since the last :meth:`take_pending`."""
        return len(self._pending)

    def _drop(self, batch: list[Lease]) -> None:
        staged = self._staged
        clients = self._staged_clients
        for lease in batch:
            if staged.get(lease.ip) is lease:
                del staged[lease.ip]
            entry = clients.get(lease.client_key)
            if entry is not None and entry[1] is lease:
                del clients[lease.client_key]

    def committed(self, batch: list[Lease]) -> None:
        """``batch`` is durable (and indexed): drop it from the overlay."""
        self._rtxn_stale = True
        self._drop(batch)

    def failed(self, batch: list[Lease]) -> None:
        """``batch`` did not commit: forget its staged versions (readers see the last commit)."""
        self._rtxn_stale = True
        self._drop(batch)

    # ----------------------------------------------------------------------------- writing

    def write(self, batch: list[Lease], *, meta: Mapping[bytes, bytes] | None = None,
              extras: Mapping[int, bytes] | None = None) -> None:
        """Commit ``batch`` in one LMDB write txn (fsynced if ``sync``), then index it; durable
        on return. ``meta`` and ``extras`` (``lease-extras`` values by address) are put in the
        same transaction: a bulk import's resume marker commits with its batch, or not at all.

        Runs in the writer thread. Nothing of the batch is written if it raises
        :class:`StoreError`. Grows the map and retries on MapFullError.
        """
        if self.readonly:
            raise StoreError(f"{self.path}: lease database is open read-only")
        if self._env is None:
            raise StoreError(f"{self.path}: lease database is closed")
        if not batch and not meta and not extras:
            return
        rejected: list[Lease] = []
        while True:
            try:
                rejected = self._write_leases(batch, meta, extras)
                break
            except lmdb.MapFullError as exc:
                if not self._grow(self._env, exc):
                    raise self._err(
                        f"commit of {len(batch)} leases failed: map full at "
                        f"{self._env.info()['map_size']} bytes and cannot grow",
                        exc,
                    ) from exc
            except StoreError:
                raise
            except lmdb.PanicError as exc:
                self._reopen_after_panic()
                raise self._err(f"commit of {len(batch)} leases failed", exc) from exc
            except (lmdb.Error, OSError) as exc:
                raise self._err(
                    f"commit of {len(batch)} leases failed", _cause(exc) + self._space_note()
                ) from exc
        # One atomic call under the GIL: loop readers see the batch indexed or not at all
        # (and until committed() they find it in the overlay either way).
        assert self._index is not None
        index = self._index
        if rejected:
            self.rejected_total += len(rejected)
            self._rejected.extend(rejected)
            refused = {id(x) for x in rejected}
            batch = [x for x in batch if id(x) not in refused]
            if self._learned:
                index.apply(self._learned)
                self._learned = []
        if any(x.state == LeaseState.DELETED for x in batch):
            final = {x.ip: x for x in batch}
            index.apply([x for x in batch if x.state != LeaseState.DELETED])
            for ip, x in final.items():
                if x.state == LeaseState.DELETED:
                    index.remove(ip)
        else:
            index.apply(batch)
        self._maybe_grow(self._env)

    def _write_leases(self, batch: list[Lease], meta: Mapping[bytes, bytes] | None = None,
                      extras: Mapping[int, bytes] | None = None) -> list[Lease]:
        """Write ``batch``; returns the leases the commit check refused (not written)."""
        assert self._env is not None
        try:
            txn_ctx = self._env.begin(write=True)
        except lmdb.MapResizedError:
            # Another worker grew the map: adopt its size (no txn of ours is active here).
            with self._map_lock:
                self._reset_loop_txn()
                self._env.set_mapsize(0)
            txn_ctx = self._env.begin(write=True)
        with txn_ctx as txn:
            rejected = self._check_batch(txn, batch) if self.scope is not None else []
            if rejected:
                refused = {id(x) for x in rejected}
                batch = [x for x in batch if id(x) not in refused]
            # Final value per key (a batch may hold an address twice: the later version wins),
            # put in key order with one putmulti call.
            final = {lease.ip: lease for lease in batch}
            values = {_ip4(ip): encode_record(x) for ip, x in final.items()
                      if x.state != LeaseState.DELETED}
            gone = [_ip4(ip) for ip, x in final.items() if x.state == LeaseState.DELETED]
            if values:
                txn.cursor(db=self._leases).putmulti(sorted(values.items()))
            for key in gone:
                txn.delete(key, db=self._leases)
            for mkey, mvalue in (meta or {}).items():
                txn.put(mkey, mvalue, db=self._meta)
            for ip, value in sorted((extras or {}).items()):
                txn.put(_ip4(ip), value, db=self._extras)
            if self._before_commit is not None:
                self._before_commit(batch)
        return rejected

    def _check_batch(self, txn: Any, batch: list[Lease]) -> list[Lease]:
        """The commit check of a worker (docs/scaling.md "enforced twice"), inside the write
        transaction, which LMDB serializes across processes, so it is authoritative: a lease
        whose address this worker does not own, or an active lease over a record that is
        active for another client key, is refused. The batch is walked in order, so a
        reclaim staged before a new binding of the same address counts as the record."""
        assert self.scope is not None
        owns = self.scope.owns
        seen: dict[int, Lease | None] = {}
        refused: list[Lease] = []
        self._learned = []
        for lease in batch:
            ip = lease.ip
            if not owns(ip):
                refused.append(lease)
                continue
            if lease.state in (LeaseState.DEFAULT, LeaseState.DECLINED):
                if ip in seen:
                    cur = seen[ip]
                else:
                    raw = txn.get(_ip4(ip), db=self._leases)
                    cur = None if raw is None else self._decode(_ip4(ip), raw)
                if cur is not None and cur.active and cur.client_key != lease.client_key:
                    refused.append(lease)
                    if ip not in seen:
                        self._learned.append(cur)  # written behind our index: index it
                    continue
            seen[ip] = None if lease.state == LeaseState.DELETED else lease
        return refused

    def take_rejected(self) -> list[Lease]:
        """The leases the commit check refused since the last call (loop thread, after the
        batch's outcome was handed over)."""
        out, self._rejected = self._rejected, []
        return out

    # ----------------------------------------------------------------------------- map size

    def _maybe_grow(self, env: lmdb.Environment) -> None:
        info = env.info()
        used = (info["last_pgno"] + 1) * env.stat()["psize"]
        if used > info["map_size"] * _GROW_AT:
            self._grow(env, None)

    def _grow(self, env: lmdb.Environment, exc: BaseException | None) -> bool:
        """Double the map (the writer thread, between transactions). False if it cannot."""
        current = env.info()["map_size"]
        new = max(current * 2, current + 64 * _MIB)
        if self._max_map_size is not None:
            new = min(new, self._max_map_size)
        if new <= current:
            return False
        try:
            with self._map_lock:
                self._reset_loop_txn()  # LMDB: no active txn in the process during a resize
                env.set_mapsize(new)
        except lmdb.Error:
            return False
        return True

    def _reopen_after_panic(self) -> None:
        # MDB_PANIC leaves the environment unusable until it is reopened; the data on disk
        # is the last committed state.
        with self._map_lock:
            assert self._env is not None
            self._reset_loop_txn()
            size = self._env.info()["map_size"]
            self._env.close()
            self._env = lmdb.open(
                self.path,
                map_size=size,
                max_dbs=_MAX_DBS,
                sync=self.sync,
                metasync=self.sync,
                lock=True,
                max_spare_txns=2,
            )
            self._leases = self._env.open_db(b"leases")
            self._meta = self._env.open_db(b"meta")
            self._hosts = self._env.open_db(b"hosts")
            self._extras = self._env.open_db(b"lease-extras")

    # ------------------------------------------------------------------------- hosts (cmd_hosts)
    # The bytes of the hosts table; fastdhcp.hosts gives them their meaning.

    def host_get(self, key: bytes) -> bytes | None:
        """The committed value of ``key`` in ``hosts`` (loop thread: the loop's read txn, as
        :meth:`get`; a memory-mapped B-tree search, nothing cached). None when absent."""
        if self._hosts is None:
            return None
        try:
            with self._map_lock:
                raw: bytes | None = self._loop_txn().get(key, db=self._hosts)
        except lmdb.Error as exc:
            raise self._err("hosts table read failed", exc) from exc
        return raw

    def host_range(self, start: bytes, stop: bytes, limit: int, *,
                   keys_only: bool = False) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` (key, value) of ``hosts`` with ``start <= key < stop``, in key
        order, from one short read transaction (page on with the last key + b"\\0");
        ``keys_only``: every value is b"" (nothing copied out of the map but the keys)."""
        out: list[tuple[bytes, bytes]] = []
        if self._hosts is None or limit <= 0:
            return out
        try:
            with self._map_lock, self._begin() as txn:
                cur = txn.cursor(db=self._hosts)
                if not cur.set_range(start):
                    return out
                for item in cur.iternext(keys=True, values=not keys_only):
                    key, value = (item, b"") if keys_only else item
                    if key >= stop:
                        break
                    out.append((key, value))
                    if len(out) >= limit:
                        break
        except lmdb.Error as exc:
            raise self._err("hosts table read failed", exc) from exc
        return out

    def host_write(self, fn: Any) -> Any:
        """Run ``fn(txn, db)`` in one write transaction on ``hosts`` and commit it (fsynced if
        ``sync``): durable on return, nothing written if it raises. The writer thread only
        (``GroupCommitter.run_in_writer``), or a process that serves nothing (tools, tests).
        ``fn`` may run again after the map grew (MapFullError): it must only read and write
        through ``txn``. Returns what ``fn`` returned."""
        if self.readonly:
            raise StoreError(f"{self.path}: lease database is open read-only")
        if self._env is None:
            raise StoreError(f"{self.path}: lease database is closed")
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    result = fn(txn, self._hosts)
                break
            except lmdb.MapFullError as exc:
                if not self._grow(self._env, exc):
                    raise self._err("hosts table write failed: map full", exc) from exc
            except lmdb.Error as exc:
                raise self._err("hosts table write failed",
                                _cause(exc) + self._space_note()) from exc
        self._maybe_grow(self._env)
        return result

    # ------------------------------------------------------------------ lease extras (cmd_leases)

    def meta_get(self, key: bytes) -> bytes | None:
        """The committed ``meta`` value of ``key`` (loop thread), or None."""
        try:
            with self._map_lock:
                return self._loop_txn().get(key, db=self._meta)  # type: ignore[no-any-return]
        except lmdb.Error as exc:
            raise self._err("meta read failed", exc) from exc

    def extras_get(self, ip: int) -> bytes | None:
        """The committed ``lease-extras`` value of ``ip`` (loop thread), or None."""
        if self._extras is None:
            return None
        try:
            with self._map_lock:
                raw: bytes | None = self._loop_txn().get(_ip4(ip), db=self._extras)
                return raw
        except lmdb.Error as exc:
            raise self._err("lease extras read failed", exc) from exc

    def extras_empty(self) -> bool:
        """Whether the committed ``lease-extras`` table has no entry (loop thread): a batch
        with nothing to store then has nothing to remove either, at one lookup, not one per
        address."""
        if self._extras is None:
            return True
        try:
            with self._map_lock:
                return int(self._loop_txn().stat(self._extras)["entries"]) == 0
        except lmdb.Error as exc:
            raise self._err("lease extras read failed", exc) from exc

    def extras_write(self, changes: dict[int, bytes | None]) -> None:
        """Put (or, for None, delete) ``lease-extras`` values in one write transaction, durable
        on return. The writer thread only (``GroupCommitter.run_in_writer``)."""
        if self._extras is None or self._env is None:
            raise StoreError(f"{self.path}: lease database is closed or read-only")
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    if (not any(changes.values())
                            and txn.stat(self._extras)["entries"] == 0):
                        return  # deletions from an empty table (a wipe of plain leases)
                    for ip, value in sorted(changes.items()):
                        if value is None:
                            txn.delete(_ip4(ip), db=self._extras)
                        else:
                            txn.put(_ip4(ip), value, db=self._extras)
                break
            except lmdb.MapFullError as exc:
                if not self._grow(self._env, exc):
                    raise self._err("lease extras write failed: map full", exc) from exc
            except lmdb.Error as exc:
                raise self._err("lease extras write failed",
                                _cause(exc) + self._space_note()) from exc
        self._rtxn_stale = True
        self._maybe_grow(self._env)

    def hosts_changed(self) -> None:
        """A hosts write committed (loop thread): the loop's next read sees it."""
        self._rtxn_stale = True

    # ----------------------------------------------------------------------------- misc

    def _space_note(self) -> str:
        # LMDB reports a short write (a full file system) as EIO: say what the disk says.
        try:
            st = os.statvfs(self.path)
        except OSError:
            return ""
        free = st.f_bavail * st.f_frsize
        if free < 4 * _MIB:
            return f" (file system full: {free} bytes free)"
        return ""

    @property
    def map_size(self) -> int:
        """Current map size of the lease environment in bytes."""
        assert self._env is not None
        return int(self._env.info()["map_size"])

    def delete(self, ip: int) -> Lease | None:
        """Delete the committed record of ``ip`` (admin use; not part of the commit protocol).

        Returns the deleted lease or None. Runs its own write transaction, so call it only
        when no batch is being written by this store (the CLI opens its own handle).
        """
        if self.readonly:
            raise StoreError(f"{self.path}: lease database is open read-only")
        lease = _delete(self, ip)
        if self._index is not None:
            self._index.remove(ip)
        return lease

    # ----------------------------------------------------------------- statistics (cmd_stats)

    def active_counts(self, ranges: Sequence[tuple[int, int]]) -> list[int]:
        """Addresses whose newest lease is active, per range ``(first, last)`` (inclusive;
        ascending, disjoint): the in-memory index counted in one compiled pass, then the
        staged overlay applied. The statistics' per-subnet ``assigned-addresses``.

        Measured at a million active records: the counting pass takes 3 ms for one to four
        ranges, 10 ms for 64 (a search per record); the sorted active addresses and two
        bisections per range take 10 ms whatever the number of ranges, so past
        :data:`_COUNT_RANGES` ranges that is used.
        """
        index = self._the_index()
        firsts = [r[0] for r in ranges]
        if len(ranges) <= _COUNT_RANGES:
            counts = index.count_active(ranges)
        else:
            active = index.active()
            counts = [bisect.bisect_right(active, last) - bisect.bisect_left(active, first)
                      for first, last in ranges]
        if self._staged:
            for ip, lease in self._staged.items():
                was = index.expiry(ip) is not None
                if lease.active == was:
                    continue
                i = bisect.bisect_right(firsts, ip) - 1
                if i >= 0 and ip <= ranges[i][1]:
                    counts[i] += 1 if lease.active else -1
        return counts

    def declined_addresses(self) -> array[int]:
        """Every address whose newest record is DECLINED, ascending, as an ``array('I')``.

        One pass over the raw records in chunks of short read transactions: the codec reads
        the state of a record this schema writes in place, so only the odd record is decoded
        (about 0.25 s per million records). The statistics view runs it once, at start-up, and
        follows declines and reclaims by the engine's counters from there.
        """
        declined: set[int] = set()
        after: bytes | None = None
        while True:
            n = 0
            last: bytes | None = None
            try:
                with self._map_lock, self._begin() as txn:
                    cur = self._cursor_after(txn, after)
                    if cur is not None:
                        for key, raw in cur.iternext():
                            n += 1
                            state = record_state(raw)
                            if state is None:
                                state = self._decode(key, raw).state
                            if state == LeaseState.DECLINED and (
                                    self.scope is None
                                    or self.scope.owns(int.from_bytes(key, "big"))):
                                declined.add(int.from_bytes(key, "big"))
                            if n >= _SCAN_CHUNK:
                                last = bytes(key)
                                break
            except lmdb.Error as exc:
                raise self._err("lease table read failed", exc) from exc
            if last is None:
                break
            after = last
        for ip, lease in self._staged.items():
            if lease.state == LeaseState.DECLINED:
                declined.add(ip)
            else:
                declined.discard(ip)
        return array("I", sorted(declined))


def _owned(items: Iterator[tuple[bytes, bytes]], stop: bytes,
           scope: WorkerScope) -> Iterator[tuple[bytes, bytes]]:
    """The records of ``items`` (a cursor's, ascending) up to key ``stop`` that ``scope``
    owns."""
    owns = scope.owns
    for key, raw in items:
        if key > stop:
            return
        if owns(int.from_bytes(key, "big")):
            yield key, raw


def _delete(store: LmdbLeaseStore, ip: int) -> Lease | None:
    assert store._env is not None
    key = _ip4(ip)
    try:
        with store._env.begin(write=True) as txn:
            raw = txn.get(key, db=store._leases)
            if raw is None:
                return None
            lease = store._decode(key, raw)
            txn.delete(key, db=store._leases)
    except lmdb.Error as exc:
        raise store._err(f"cannot delete lease {_ipstr(ip)}", exc) from exc
    return lease


def delete_lease(path: str | os.PathLike[str], ip: int) -> Lease | None:
    """Delete the lease of ``ip`` from the database at ``path``, safe beside a running server.

    One normal LMDB write transaction (it waits for the server's writer, never the reverse).
    A running server's in-memory index still lists the address until it next looks at it and
    finds the record gone.
    """
    store = LmdbLeaseStore.__new__(LmdbLeaseStore)
    store.path = os.fspath(path)
    store.readonly = False
    store._env = None
    if not os.path.isdir(store.path) or not os.path.exists(os.path.join(store.path, "data.mdb")):
        raise StoreError(f"{store.path}: cannot open lease database: no data.mdb in directory")
    try:
        # map_size=0: the size the database was last grown to (a smaller one would leave no
        # room for the pages the delete copies).
        store._env = lmdb.open(store.path, max_dbs=4, create=False, lock=True, map_size=0)
        store._leases = store._env.open_db(b"leases", create=False)
        store._meta = store._env.open_db(b"meta", create=False)
    except lmdb.ReadonlyError as exc:
        _close(store)
        raise StoreError(f"{store.path}: cannot open lease database: read-only") from exc
    except (lmdb.Error, OSError) as exc:
        _close(store)
        raise StoreError(f"{store.path}: cannot open lease database: {_cause(exc)}") from exc
    try:
        with store._env.begin() as txn:
            store._check_version(txn.get(_META_SCHEMA, db=store._meta))
        return _delete(store, ip)
    finally:
        _close(store)


def _close(store: LmdbLeaseStore) -> None:
    if store._env is not None:
        store._env.close()
    store._env = None
