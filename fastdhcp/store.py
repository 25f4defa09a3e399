"""The durable lease table: LMDB, group-committed (RFC 2131 3.1 step 4: commit, then ACK).

Layout of a lease database directory (see docs/durability.md for the reasoning):

``data.mdb`` / ``lock.mdb`` -- the *lease environment*, fsynced on every commit when
``sync=True``. It is the only durable truth:

- ``leases``: 4-byte big-endian IPv4 -> msgpack array
  ``[state, expires, issued, subnet_id, client_key, hw_address, hostname, relay_info]``
  (state first so that a scan can tell an active lease from its second byte);
- ``meta``: ``schema-version`` (4-byte big-endian), ``instance`` (16 random bytes naming this
  database), ``clean-shutdown`` (``b"1"`` after a clean close, ``b"0"`` while a server has it
  open), ``boot-id`` (the kernel boot id when the last writer opened it), ``batch-seq`` (number of
  batches committed, 8 bytes) and ``last-batch`` (the addresses of the last batch, 4 bytes each).

``index.mdb`` / ``index.mdb-lock`` -- the *index environment*, never fsynced (MDB_NOSYNC), derived
from ``leases`` and rebuilt from it at start-up whenever the last shutdown was not clean:

- ``clients``: client key -> ``issued (8 bytes) || IPv4`` of the lease last staged for that
  client (after a rebuild: of its record with the newest ``issued``, then the highest address);
- ``expiry``: ``expires (8 bytes) || IPv4`` -> ``b""`` for every active lease;
- ``meta``: ``schema-version``, the lease environment's ``instance``, and the ``batch-seq`` the
  index reflects.

Start-up trusts the index when it reflects the last batch and either the last shutdown was clean
or the kernel has not rebooted since the last writer opened the database (a crashed process
leaves the page cache, hence the index, intact); replays the last batch when only it is missing
(the writer died between the two commits); otherwise rebuilds the index from ``leases``.

A random-keyed index dirties one page per entry, and what a durable commit costs is its dirty
pages: keeping the indexes out of the fsynced environment is what lets a 256-lease commit cost
a handful of fsynced pages. Index entries are checked against the lease they point at before
they are believed, so an index that lags (a failed index write, a lease deleted by the CLI)
makes answers slower to find, never wrong.

Threads: every method runs on the caller's thread (the event loop) except :meth:`write`, which
the :class:`~fastdhcp.commit.GroupCommitter` runs in its writer thread. Loop reads use short
LMDB read transactions plus the staged overlay and never wait for the writer, except for the
few microseconds of a map resize.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from array import array
from collections.abc import Iterator
from typing import Any

import lmdb
import msgpack

from fastdhcp._storeutil import scan_active
from fastdhcp.commit import GroupCommitter
from fastdhcp.errors import StoreError
from fastdhcp.leases import ACTIVE_STATES, Lease

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
_INDEX_FILE = "index.mdb"

_META_SCHEMA = b"schema-version"
_META_INSTANCE = b"instance"
_META_CLEAN = b"clean-shutdown"
_META_SEQ = b"batch-seq"
_META_LAST_BATCH = b"last-batch"
_META_BOOT = b"boot-id"
_BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


def _boot_id() -> bytes | None:
    """This boot of the kernel: page-cache contents survive while it stays the same."""
    try:
        with open(_BOOT_ID_FILE, "rb") as f:
            return f.read().strip() or None
    except OSError:
        return None


_ACTIVE = frozenset(int(s) for s in ACTIVE_STATES)
#: msgpack fixarray of 8 elements: the first byte of every record this version writes.
_FIXARRAY8 = 0x98
_U64_MAX = (1 << 64) - 1
#: Records decoded per read transaction when streaming the table (bounds how long a reader
#: pins old pages, and lets a map resize slip in between chunks).
_CHUNK = 4096
#: Longest a loop read txn is reused while no batch commits (seconds).
_READ_TXN_AGE = 0.5

_packb = msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape").pack
_unpackb = msgpack.unpackb


def _ip4(ip: int) -> bytes:
    return ip.to_bytes(4, "big")


def _exp8(expires: int) -> bytes:
    # The expiry key is unsigned: clamp so that any int a record can hold has a place in order.
    return min(max(expires, 0), _U64_MAX).to_bytes(8, "big")


def _ipstr(ip: int) -> str:
    return str(ipaddress.IPv4Address(ip))


def _encode(lease: Lease) -> bytes:
    return _packb(
        (
            int(lease.state),
            int(lease.expires),
            int(lease.issued),
            int(lease.subnet_id),
            bytes(lease.client_key),
            bytes(lease.hw_address),
            str(lease.hostname),
            bytes(lease.relay_info),
        )
    )


def _cause(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text or type(exc).__name__


class _IndexOp:
    """What one lease write changes in the index environment (computed in the lease txn)."""

    __slots__ = ("ip4", "old_client", "old_exp", "new_client", "new_exp", "issued")

    def __init__(
        self,
        ip4: bytes,
        old_client: bytes | None,
        old_exp: bytes | None,
        new_client: bytes,
        new_exp: bytes | None,
        issued: int,
    ) -> None:
        self.ip4 = ip4
        self.old_client = old_client
        self.old_exp = old_exp
        self.new_client = new_client
        self.new_exp = new_exp
        self.issued = issued


class LmdbLeaseStore:
    """A :class:`~fastdhcp.leases.LeaseStore` on LMDB, durable when :meth:`write` returns.

    ``path`` is a directory that must exist (``create=True`` makes it). ``sync=False`` skips the
    fsync of each commit (MDB_NOSYNC): leases survive a crash of the process but not of the
    machine. ``map_size`` is the initial map size in bytes; the map doubles by itself when a
    commit leaves it more than 3/4 full (up to ``max_map_size`` if given). ``readonly=True``
    opens the database beside a running server (the CLI): no staging, no writes, no clean-flag
    changes. Raises :class:`StoreError` naming the path and the cause when the database cannot
    be opened: missing or read-only directory, damaged file, other schema version.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sync: bool = True,
        map_size: int = _DEFAULT_MAP_SIZE,
        readonly: bool = False,
        max_map_size: int | None = None,
        create: bool = False,
    ) -> None:
        self.path = os.fspath(path)
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
        # Index lag: batches committed to `leases` whose index update failed (shared with the
        # writer thread under _lag_lock); the loop keeps their overlay entries until indexed.
        self._lag_lock = threading.Lock()
        self._unindexed: list[list[Lease]] = []
        self._index_backlog: list[_IndexOp] = []  # writer thread only
        self._retained: list[list[Lease]] = []  # loop thread only
        #: Test hook, run in the lease write txn after the puts and before the commit.
        self._before_commit: Any = None
        self.rebuilt_index = False  #: True if opening rebuilt the index environment
        self.caught_up = 0  #: leases of a half-indexed last batch replayed at open
        self._seq = 0  # batches committed to `leases` so far (meta batch-seq)
        self._last_batch = b""
        # LMDB handles are typed Any: the lmdb stubs make every value `bytes | memoryview`,
        # while this module never opens transactions with buffers=True (values are bytes).
        self._index: Any = None
        self._env: Any = None
        self._rtxn: Any = None  # the loop's read txns (see _loop_txns)
        self._irtxn: Any = None
        self._rtxn_stale = True
        self._rtxn_at = 0.0
        try:
            self._open(sync, map_size, create)
        except BaseException:
            self._close_envs()
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
                max_dbs=4,
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
        if self.readonly:
            self._instance = self._check_schema()
            self._open_index_readonly()
        else:
            self._instance, clean, same_boot = self._start_writer()
            # A database grown past `map_size` by an earlier run opens at its used size: grow
            # it now rather than at the first MapFullError.
            self._maybe_grow(self._env)
            self._open_index_writer(clean, same_boot)

    def _check_schema(self) -> bytes:
        with self._begin() as txn:
            version = txn.get(_META_SCHEMA, db=self._meta)
            instance = txn.get(_META_INSTANCE, db=self._meta)
        self._check_version(version)
        return instance or b""

    def _check_version(self, version: bytes | None) -> None:
        if version is None or len(version) != 4:
            raise self._err("cannot open lease database", "not a fastdhcp lease database")
        found = int.from_bytes(version, "big")
        if found != SCHEMA_VERSION:
            raise self._err(
                "cannot open lease database",
                f"schema version {found}, this fastdhcp reads version {SCHEMA_VERSION}",
            )

    def _start_writer(self) -> tuple[bytes, bool, bool]:
        """Check or create the schema, read the clean flag, then mark the database in use.

        Also returns whether the machine has not rebooted since the last writer opened the
        database (same kernel boot id): then the never-fsynced index environment is exactly
        what the page cache held when that writer died, so it can be caught up instead of
        rebuilt.
        """
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
                    # A new, empty table: its (empty) index is as good as rebuilt.
                    clean = True
                else:
                    self._check_version(version)
                    clean = txn.get(_META_CLEAN, db=self._meta) == b"1"
                instance = txn.get(_META_INSTANCE, db=self._meta) or b""
                boot = _boot_id()
                same_boot = boot is not None and txn.get(_META_BOOT, db=self._meta) == boot
                seq = txn.get(_META_SEQ, db=self._meta)
                self._seq = int.from_bytes(seq, "big") if seq else 0
                self._last_batch = txn.get(_META_LAST_BATCH, db=self._meta) or b""
                txn.put(_META_CLEAN, b"0", db=self._meta)
                if boot is not None:
                    txn.put(_META_BOOT, boot, db=self._meta)
            # The "in use" mark must be on disk before any lease is, whatever `sync` says.
            self._env.sync(True)
        except StoreError:
            raise
        except (lmdb.Error, OSError) as exc:
            raise self._err("cannot open lease database", exc) from exc
        return instance, clean, same_boot

    def _index_path(self) -> str:
        return os.path.join(self.path, _INDEX_FILE)

    def _open_index_env(self, readonly: bool) -> lmdb.Environment:
        return lmdb.open(
            self._index_path(),
            subdir=False,
            # An existing index keeps the size it grew to (0: take it from the file).
            map_size=0 if os.path.exists(self._index_path()) else _DEFAULT_MAP_SIZE,
            max_dbs=4,
            sync=False,
            metasync=False,
            readonly=readonly,
            create=not readonly,
            lock=True,
            max_spare_txns=2,
        )

    def _open_index_writer(self, clean: bool, same_boot: bool) -> None:
        trusted = False
        try:
            self._index = self._open_index_env(False)
            self._clients = self._index.open_db(b"clients")
            self._expiry = self._index.open_db(b"expiry")
            self._imeta = self._index.open_db(b"meta")
            with self._index.begin() as txn:
                ours = (
                    txn.get(_META_SCHEMA, db=self._imeta) == SCHEMA_VERSION.to_bytes(4, "big")
                    and txn.get(_META_INSTANCE, db=self._imeta) == self._instance
                )
                iseq = txn.get(_META_SEQ, db=self._imeta)
                iseq_n = int.from_bytes(iseq, "big") if iseq else 0
            if ours and iseq_n == self._seq and (clean or same_boot):
                trusted = True
            elif ours and same_boot and iseq_n == self._seq - 1:
                # The writer died between a batch's lease commit and its index commit: replay
                # that one batch (its addresses are journalled in `meta`).
                self._catch_up()
                trusted = True
        except (lmdb.Error, OSError):
            # A damaged index is only a cache of `leases`: throw it away and rebuild.
            trusted = False
            if self._index is not None:
                self._index.close()
                self._index = None
            self._remove_index_files()
        if not trusted:
            self._rebuild_index()

    def _catch_up(self) -> None:
        assert self._env is not None and self._index is not None
        ops = []
        with self._env.begin() as txn:
            for k in range(0, len(self._last_batch), 4):
                key = self._last_batch[k : k + 4]
                raw = txn.get(key, db=self._leases)
                if raw is None:
                    continue  # deleted since (CLI): no entry to add
                lease = self._decode(key, raw)
                new_exp = _exp8(lease.expires) + key if lease.state in _ACTIVE else None
                # Old entries are unknown here; a stale one is ignored by readers.
                ops.append(_IndexOp(key, None, None, lease.client_key, new_exp, lease.issued))
        self._apply_index(ops, force=True)
        self.caught_up = len(ops)

    def _remove_index_files(self) -> None:
        for name in (_INDEX_FILE, _INDEX_FILE + "-lock"):
            try:
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise self._err("cannot remove damaged index", exc) from exc

    def _open_index_readonly(self) -> None:
        if not os.path.exists(self._index_path()):
            return
        try:
            self._index = self._open_index_env(True)
            self._clients = self._index.open_db(b"clients", create=False)
            self._expiry = self._index.open_db(b"expiry", create=False)
            self._imeta = self._index.open_db(b"meta", create=False)
            with self._index.begin() as txn:
                ok = txn.get(_META_INSTANCE, db=self._imeta) == self._instance
        except (lmdb.Error, OSError):
            ok = False
        if not ok and self._index is not None:
            self._index.close()
            self._index = None

    def _rebuild_index(self) -> None:
        """Recreate the index environment from `leases` (after an unclean shutdown)."""
        assert self._env is not None
        if self._index is not None:
            self._index.close()
            self._index = None
        self._remove_index_files()
        try:
            self._index = self._open_index_env(False)
            self._clients = self._index.open_db(b"clients")
            self._expiry = self._index.open_db(b"expiry")
            self._imeta = self._index.open_db(b"meta")
            # Room for the index up front (about as big as `leases`), so that the one
            # rebuild transaction rarely has to start over after MapFullError.
            info = self._env.info()
            need = 2 * (info["last_pgno"] + 1) * self._env.stat()["psize"] + 64 * _MIB
            if need > self._index.info()["map_size"]:
                self._index.set_mapsize(need)
            while True:
                try:
                    # One write transaction for the whole rebuild: each index page is copied
                    # once. (One transaction per chunk copies every leaf page of the random-keyed
                    # `clients` tree again for each chunk: quadratic in the table size.)
                    with self._index.begin(write=True) as txn:
                        self._rebuild_from_leases(txn)
                        txn.put(_META_SCHEMA, SCHEMA_VERSION.to_bytes(4, "big"), db=self._imeta)
                        txn.put(_META_INSTANCE, self._instance, db=self._imeta)
                        txn.put(_META_SEQ, self._seq.to_bytes(8, "big"), db=self._imeta)
                    break
                except lmdb.MapFullError as exc:
                    if not self._grow(self._index, exc):
                        raise self._err("lease index is full", exc) from exc
        except StoreError:
            raise
        except (lmdb.Error, OSError) as exc:
            raise self._err("cannot rebuild lease index", exc) from exc
        self.rebuilt_index = True

    def _rebuild_from_leases(self, itxn: Any) -> None:
        # Stream `leases` in chunks (short read txns); each chunk's index entries are sorted
        # before insertion, for locality in the index pages.
        assert self._env is not None and self._index is not None
        unpackb = msgpack.unpackb
        active = _ACTIVE
        after: bytes | None = None
        chunk = 1 << 18
        while True:
            clients: dict[bytes, bytes] = {}
            expiry: list[bytes] = []
            push = expiry.append
            last = None
            n = 0
            with self._map_lock, self._begin() as txn:
                cur = txn.cursor(db=self._leases)
                found = cur.set_range(after) if after is not None else cur.first()
                if found and after is not None and cur.key() == after:
                    found = cur.next()
                if not found:
                    break
                for key, raw in cur.iternext():
                    try:
                        rec = unpackb(raw, use_list=False)
                        state = rec[0]
                        try:
                            value = rec[2].to_bytes(8, "big") + key
                        except OverflowError:
                            value = _exp8(rec[2]) + key
                        if state in active:
                            try:
                                push(rec[1].to_bytes(8, "big") + key)
                            except OverflowError:
                                push(_exp8(rec[1]) + key)
                        client = rec[4]
                    except Exception as exc:
                        raise self._err(
                            f"lease record for {_ipstr(int.from_bytes(key, 'big'))} is damaged",
                            exc,
                        ) from exc
                    # Newest (issued, address) wins for a client with several records.
                    prev = clients.get(client)
                    if prev is None or value > prev:
                        clients[client] = value
                    last = key
                    n += 1
                    if n >= chunk:
                        break
            expiry.sort()
            self._index_put_many(itxn, clients, expiry)
            if n < chunk or last is None:
                break
            after = last

    def _index_put_many(self, txn: Any, clients: dict[bytes, bytes], expiry: list[bytes]) -> None:
        cur = txn.cursor(db=self._clients)
        # A client may own records in several chunks: keep the newest value (issued ||
        # address), whichever chunk it came from.
        for k, v in cur.getmulti(list(clients)):
            if v > clients[k]:
                clients[k] = v
        cur.putmulti([(k, clients[k]) for k in sorted(clients)])
        txn.cursor(db=self._expiry).putmulti([(k, b"") for k in expiry])

    # ----------------------------------------------------------------------------- closing

    def close(self) -> None:
        """Flush the index, mark the shutdown clean, close. Call after the committer closed."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self.readonly and self._env is not None and self._index is not None:
                if self._index_backlog:
                    self._flush_index([])
                if not self._index_backlog:
                    # Index first: the clean flag promises an index as new as `leases`.
                    self._index.sync(True)
                    with self._env.begin(write=True) as txn:
                        txn.put(_META_CLEAN, b"1", db=self._meta)
                    self._env.sync(True)
        except (lmdb.Error, OSError) as exc:
            raise self._err("cannot close lease database cleanly", exc) from exc
        finally:
            self._close_envs()

    def _close_envs(self) -> None:
        with self._map_lock:
            self._reset_loop_txns()
        for env in (self._index, self._env):
            if env is not None:
                env.close()
        self._index = None
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
            try:
                rec = _unpackb(raw, use_list=False)
            except UnicodeDecodeError:
                # A hostname that was not UTF-8 (written with surrogateescape). Not the
                # default: the error handler argument doubles the cost of every decode.
                rec = _unpackb(raw, use_list=False, unicode_errors="surrogateescape")
            (state, expires, issued, subnet_id, client_key, hw_address, hostname, relay) = rec
            return Lease(
                int.from_bytes(key, "big"),
                client_key,
                hw_address,
                subnet_id,
                state,
                issued,
                expires,
                hostname,
                relay,
            )
        except Exception as exc:
            raise self._err(
                f"lease record for {_ipstr(int.from_bytes(key, 'big'))} is damaged", exc
            ) from exc

    def _loop_txns(self) -> tuple[Any, Any]:
        """The loop's read txns (lease env, index env or None); call with _map_lock held.

        Kept open between lookups (a begin costs more than the lookup) and renewed when a
        batch committed or failed (the overlay just dropped it: readers must see the commit)
        or after _READ_TXN_AGE seconds (so that other processes' writes show, and old pages are
        not pinned).
        """
        now = time.monotonic()
        txn = self._rtxn
        if txn is None or self._rtxn_stale or now - self._rtxn_at > _READ_TXN_AGE:
            self._reset_loop_txns()
            self._rtxn = self._begin()
            if self._index is not None:
                self._irtxn = self._begin(self._index)
            self._rtxn_stale = False
            self._rtxn_at = now
        return self._rtxn, self._irtxn

    def _reset_loop_txns(self) -> None:
        # With _map_lock held (the writer's resize, close, and renewal take it).
        for txn in (self._rtxn, self._irtxn):
            if txn is not None:
                txn.abort()
        self._rtxn = self._irtxn = None

    def _read(self, ip: int) -> Lease | None:
        key = _ip4(ip)
        try:
            with self._map_lock:
                raw = self._loop_txns()[0].get(key, db=self._leases)
        except lmdb.Error as exc:
            raise self._err("lease read failed", exc) from exc
        return None if raw is None else self._decode(key, raw)

    def get(self, ip: int) -> Lease | None:
        """The newest version of the lease for ``ip``: staged first, then committed."""
        lease = self._staged.get(ip)
        if lease is not None:
            return lease
        return self._read(ip)

    def get_by_client(self, client_key: bytes) -> Lease | None:
        """The lease last staged or committed for ``client_key``, if it still holds it."""
        entry = self._staged_clients.get(client_key)
        ip = entry[0] if entry is not None else self._index_client(client_key)
        if ip is None:
            return None
        lease = self.get(ip)
        if lease is not None and lease.client_key == client_key:
            return lease
        return None

    def _index_client(self, client_key: bytes) -> int | None:
        if self._index is None:
            return self._scan_client(client_key)
        try:
            with self._map_lock:
                value = self._loop_txns()[1].get(client_key, db=self._clients)
            if value is None:
                return None
        except lmdb.Error as exc:
            raise self._err("lease index read failed", exc) from exc
        return int.from_bytes(value[8:12], "big")

    def _scan_client(self, client_key: bytes) -> int | None:
        # No index (a read-only open of a database whose index is gone): linear, newest wins.
        best: tuple[int, int] | None = None
        for lease in self._iter_committed():
            if lease.client_key == client_key:
                if best is None or lease.issued >= best[0]:
                    best = (lease.issued, lease.ip)
        return None if best is None else best[1]

    def expired(self, now: float, limit: int) -> list[Lease]:
        """Up to ``limit`` active leases with ``expires <= now``, oldest first."""
        if limit <= 0:
            return []
        staged = self._staged
        out: list[Lease] = []
        if self._index is None:
            out = [x for x in self._iter_committed() if x.active and x.expires <= now]
            out = [x for x in out if x.ip not in staged]
        else:
            try:
                with self._map_lock, self._begin(self._index) as itxn, self._begin() as txn:
                    leases = self._leases
                    for key in itxn.cursor(db=self._expiry).iternext(values=False):
                        exp = int.from_bytes(key[:8], "big")
                        if exp > now:
                            break
                        ip = int.from_bytes(key[8:12], "big")
                        if ip in staged:
                            continue
                        raw = txn.get(key[8:12], db=leases)
                        if raw is None:
                            continue  # deleted behind the index (CLI delete)
                        lease = self._decode(key[8:12], raw)
                        # Believe the entry only if the lease still says so.
                        if lease.active and _exp8(lease.expires) == key[:8]:
                            out.append(lease)
                            if len(out) >= limit:
                                break
            except lmdb.Error as exc:
                raise self._err("lease index read failed", exc) from exc
        out.extend(x for x in staged.values() if x.active and x.expires <= now)
        out.sort(key=lambda x: (x.expires, x.ip))
        return out[:limit]

    def active_addresses(self) -> array:
        """Every address whose newest lease is active, ascending, as an ``array('I')``.

        One cursor pass over ``leases`` in compiled code (:func:`fastdhcp._storeutil.scan_active`)
        that reads the first two bytes of each record (the state is a msgpack fixint there):
        no lease object is made for well-formed records.
        """
        out = array("I")
        odd: list[tuple[bytes, bytes]] = []
        after: bytes | None = None
        while True:
            try:
                # Chunks of 1M records: a map resize by the writer can slip in between.
                with self._map_lock, self._begin() as txn:
                    cur = txn.cursor(db=self._leases)
                    found = cur.set_range(after) if after is not None else cur.first()
                    if found and after is not None and cur.key() == after:
                        found = cur.next()
                    if not found:
                        break
                    n, last, more = scan_active(cur.iternext(), out, 1 << 20)
            except lmdb.Error as exc:
                raise self._err("lease table scan failed", exc) from exc
            odd.extend(more)
            if n < (1 << 20) or last is None:
                break
            after = last
        if odd:
            # Records in another msgpack form (not written by this version): decode them.
            extra = [int.from_bytes(k, "big") for k, v in odd if self._decode(k, v).active]
            if extra:
                out = array("I", sorted([*out, *extra]))
        if self._staged:
            out = self._apply_overlay(out)
        return out

    def _apply_overlay(self, committed: array) -> array:
        drop = {ip for ip, x in self._staged.items() if not x.active}
        add = {ip for ip, x in self._staged.items() if x.active}
        merged = sorted(add.union(ip for ip in committed if ip not in drop))
        return array("I", merged)

    def __len__(self) -> int:
        """Number of lease records (committed, plus staged addresses not yet in the table)."""
        try:
            with self._map_lock, self._begin() as txn:
                n = txn.stat(self._leases)["entries"]
                for ip in self._staged:
                    if txn.get(_ip4(ip), db=self._leases) is None:
                        n += 1
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
                    cur = txn.cursor(db=self._leases)
                    found = cur.set_range(after) if after is not None else cur.first()
                    if found and after is not None and cur.key() == after:
                        found = cur.next()
                    if found:
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
                yield staged[i][1]
                i += 1
            if i < len(staged) and staged[i][0] == lease.ip:
                yield staged[i][1]
                i += 1
            else:
                yield lease
        for _, lease in staged[i:]:
            yield lease

    def iter_committed(self) -> Iterator[Lease]:
        """Every committed lease record in address order (what another process would see)."""
        return self._iter_committed()

    # ----------------------------------------------------------------------------- staging

    def stage(self, lease: Lease) -> None:
        """Make ``lease`` visible to readers now and add it to the pending batch."""
        if self.readonly:
            raise StoreError(f"{self.path}: lease database is open read-only")
        self._staged[lease.ip] = lease
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
        """``batch`` is durable: drop it from the overlay (once its index entries are in too)."""
        self._rtxn_stale = True
        with self._lag_lock:
            lagging = list(self._unindexed)
        if any(b is batch for b in lagging):
            self._retained.append(batch)
        else:
            self._drop(batch)
        self._release_retained(lagging)

    def failed(self, batch: list[Lease]) -> None:
        """``batch`` did not commit: forget its staged versions (readers see the last commit)."""
        self._rtxn_stale = True
        self._drop(batch)
        with self._lag_lock:
            lagging = list(self._unindexed)
        self._release_retained(lagging)

    def _release_retained(self, lagging: list[list[Lease]]) -> None:
        if not self._retained:
            return
        keep = []
        for b in self._retained:
            if any(x is b for x in lagging):
                keep.append(b)
            else:
                self._drop(b)
        self._retained = keep

    # ----------------------------------------------------------------------------- writing

    def write(self, batch: list[Lease]) -> None:
        """Commit ``batch`` in one LMDB write txn (fsynced if ``sync``); durable on return.

        Runs in the writer thread. Nothing of the batch is written if it raises
        :class:`StoreError`. Grows the map and retries on MapFullError.
        """
        if self.readonly:
            raise StoreError(f"{self.path}: lease database is open read-only")
        if self._env is None:
            raise StoreError(f"{self.path}: lease database is closed")
        if not batch:
            if self._index_backlog:
                self._flush_index([])
            return
        while True:
            try:
                ops = self._write_leases(batch)
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
        self._maybe_grow(self._env)
        if not self._flush_index(ops):
            with self._lag_lock:
                self._unindexed.append(batch)

    def _write_leases(self, batch: list[Lease]) -> list[_IndexOp]:
        assert self._env is not None
        ops: list[_IndexOp] = []
        append = ops.append
        db = self._leases
        unpackb = msgpack.unpackb
        active = _ACTIVE
        # Final value per key (a batch may hold an address twice: the later version wins and
        # sees the earlier one as its old record), put in key order with one putmulti call.
        values: dict[bytes, bytes] = {}
        with self._env.begin(write=True) as txn:
            get = txn.get
            for lease in batch:
                key = lease.ip.to_bytes(4, "big")
                old = values.get(key)
                if old is None:
                    old = get(key, db=db)
                values[key] = _encode(lease)
                old_client = old_exp = None
                if old is not None:
                    try:
                        prev = unpackb(old, use_list=False)
                        old_client = prev[4]
                        if prev[0] in active:
                            old_exp = _exp8(prev[1]) + key
                    except Exception:
                        # A damaged old record has no index entries worth removing.
                        old_client = old_exp = None
                new_exp = _exp8(lease.expires) + key if lease.state in active else None
                append(_IndexOp(key, old_client, old_exp, lease.client_key, new_exp, lease.issued))
            txn.cursor(db=db).putmulti(sorted(values.items()))
            # Journal the batch (sequence number and addresses) in the same transaction: after
            # a crash between this commit and the index commit, start-up replays just this.
            txn.put(_META_SEQ, (self._seq + 1).to_bytes(8, "big"), db=self._meta)
            txn.put(_META_LAST_BATCH, b"".join(op.ip4 for op in ops), db=self._meta)
            if self._before_commit is not None:
                self._before_commit(batch)
        self._seq += 1
        return ops

    def _flush_index(self, ops: list[_IndexOp]) -> bool:
        """Apply the backlog then ``ops`` to the index; on failure keep them all for later."""
        assert self._index is not None
        todo = self._index_backlog + ops if self._index_backlog else ops
        while True:
            try:
                self._apply_index(todo)
                break
            except lmdb.MapFullError as exc:
                if self._grow(self._index, exc):
                    continue
                self._index_backlog = todo
                return False
            except (lmdb.Error, OSError):
                self._index_backlog = todo
                return False
        self._index_backlog = []
        with self._lag_lock:
            self._unindexed.clear()
        self._maybe_grow(self._index)
        return True

    def _apply_index(self, ops: list[_IndexOp], force: bool = False) -> None:
        """One index txn: ``ops`` plus the batch sequence number they bring the index to.

        ``force``: write every client entry (catch-up, where old entries are unknown).
        """
        assert self._index is not None
        clients = self._clients
        expiry = self._expiry
        with self._index.begin(write=True) as txn:
            txn.put(_META_SEQ, self._seq.to_bytes(8, "big"), db=self._imeta)
            get = txn.get
            put = txn.put
            delete = txn.delete
            for op in ops:
                if op.old_exp is not None and op.old_exp != op.new_exp:
                    delete(op.old_exp, db=expiry)
                if op.new_exp is not None:
                    put(op.new_exp, b"", db=expiry)
                old = op.old_client
                new = op.new_client
                if force:
                    pass
                elif old == new:
                    # A renewal: most often the index already points here, and a read costs
                    # no dirty page where a write costs one (random keys: one page each).
                    value = get(new, db=clients)
                    if value is not None and value[8:12] == op.ip4:
                        continue
                elif old is not None:
                    value = get(old, db=clients)
                    if value is not None and value[8:12] == op.ip4:
                        delete(old, db=clients)  # the address went to another client
                put(new, _exp8(op.issued) + op.ip4, db=clients)

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
                self._reset_loop_txns()  # LMDB: no active txn in the process during a resize
                env.set_mapsize(new)
        except lmdb.Error:
            return False
        return True

    def _reopen_after_panic(self) -> None:
        # MDB_PANIC leaves the environment unusable until it is reopened; the data on disk
        # is the last committed state.
        with self._map_lock:
            assert self._env is not None
            self._reset_loop_txns()
            size = self._env.info()["map_size"]
            self._env.close()
            self._env = lmdb.open(
                self.path,
                map_size=size,
                max_dbs=4,
                sync=self.sync,
                metasync=self.sync,
                lock=True,
                max_spare_txns=2,
            )
            self._leases = self._env.open_db(b"leases")
            self._meta = self._env.open_db(b"meta")

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

    @property
    def index_lagging(self) -> bool:
        """True while some committed leases are not yet in the index environment."""
        with self._lag_lock:
            return bool(self._unindexed)

    def delete(self, ip: int) -> Lease | None:
        """Delete the committed record of ``ip`` (admin use; not part of the commit protocol).

        Returns the deleted lease or None. Runs its own write transactions, so call it only
        when no batch is being written by this store (the CLI opens its own handle).
        """
        if self.readonly:
            raise StoreError(f"{self.path}: lease database is open read-only")
        return _delete(self, ip)


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
    if store._index is not None:
        # Best effort: a stale index entry is ignored by readers anyway.
        try:
            with store._index.begin(write=True) as txn:
                if lease.state in _ACTIVE:
                    txn.delete(_exp8(lease.expires) + key, db=store._expiry)
                value = txn.get(lease.client_key, db=store._clients)
                if value is not None and value[8:12] == key:
                    txn.delete(lease.client_key, db=store._clients)
        except lmdb.Error:
            pass
    return lease


def delete_lease(path: str | os.PathLike[str], ip: int) -> Lease | None:
    """Delete the lease of ``ip`` from the database at ``path``, safe beside a running server.

    One normal LMDB write transaction (it waits for the server's writer, never the reverse);
    the clean-shutdown flag and the server's start-up protocol are left alone.
    """
    store = LmdbLeaseStore.__new__(LmdbLeaseStore)
    store.path = os.fspath(path)
    store.readonly = False
    store._index = None
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
            instance = txn.get(_META_INSTANCE, db=store._meta)
        if os.path.exists(os.path.join(store.path, _INDEX_FILE)):
            try:
                store._index = lmdb.open(
                    os.path.join(store.path, _INDEX_FILE),
                    subdir=False,
                    max_dbs=4,
                    create=False,
                    sync=False,
                    metasync=False,
                    map_size=0,
                )
                store._clients = store._index.open_db(b"clients", create=False)
                store._expiry = store._index.open_db(b"expiry", create=False)
                imeta = store._index.open_db(b"meta", create=False)
                with store._index.begin() as txn:
                    if txn.get(_META_INSTANCE, db=imeta) != instance:
                        raise lmdb.Error("index belongs to another database")
            except (lmdb.Error, OSError):
                if store._index is not None:
                    store._index.close()
                store._index = None
        return _delete(store, ip)
    finally:
        _close(store)


def _close(store: LmdbLeaseStore) -> None:
    for env in (store._index, store._env):
        if env is not None:
            env.close()
    store._index = None
    store._env = None
