"""LmdbLeaseStore against MemoryLeaseStore (the oracle), plus durability and error cases.

The oracle of a store state is a fresh MemoryLeaseStore into which every committed batch and then
every still-staged lease (in flight or pending) is staged in order: "committed + staged". After
every step of a random stage / commit / pipelined commit / failed commit / reopen sequence, every
read of the LMDB store must equal the oracle's.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import signal
import subprocess
import sys
import textwrap
from array import array

import lmdb
import msgpack
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fastdhcp.errors import StoreError
from fastdhcp.leases import Lease, LeaseState, MemoryLeaseStore
from fastdhcp.store import SCHEMA_VERSION, LmdbLeaseStore, delete_lease

BASE = 0xC6120000  # 198.18.0.0
IPS = [BASE + i for i in range(12)]
CLIENTS = [b"\x01" + bytes([0xAA, 0, 0, 0, 0, i]) for i in range(6)]
STATES = [int(s) for s in LeaseState]


def lease_strategy() -> st.SearchStrategy[Lease]:
    return st.builds(
        Lease,
        ip=st.sampled_from(IPS),
        client_key=st.sampled_from(CLIENTS),
        hw_address=st.binary(max_size=16),
        subnet_id=st.integers(0, 2**32 - 1),
        state=st.sampled_from(STATES),
        issued=st.integers(0, 2**40),
        expires=st.integers(0, 40),
        hostname=st.text(max_size=20),
        relay_info=st.binary(max_size=40),
    )


def oracle(*seqs: list[Lease]) -> MemoryLeaseStore:
    model = MemoryLeaseStore()
    for seq in seqs:
        for lease in seq:
            model.stage(lease)
    return model


def reopened(*seqs: list[Lease]) -> MemoryLeaseStore:
    """The oracle of a store reopened over these writes: the same records, and for a client
    with several records the one start-up picks: active first, then the newest ``issued``
    (which the index keeps as 32 bits), then the highest address."""
    model = oracle(*seqs)
    model.take_pending()
    best: dict[bytes, Lease] = {}
    for lease in model:  # address order
        prev = best.get(lease.client_key)
        rank = (lease.active, min(max(lease.issued, 0), 2**32 - 1))
        if prev is None or rank >= (prev.active, min(max(prev.issued, 0), 2**32 - 1)):
            best[lease.client_key] = lease
    model._by_client = {k: x.ip for k, x in best.items()}
    return model


def assert_same(store: LmdbLeaseStore, model: MemoryLeaseStore) -> None:
    for ip in IPS:
        assert store.get(ip) == model.get(ip), ip
    for key in CLIENTS:
        assert store.get_by_client(key) == model.get_by_client(key), key
    for now in (-1, 0, 7, 20, 40, 10**12):
        for limit in (0, 1, 3, 100):
            assert store.expired(now, limit) == model.expired(now, limit), (now, limit)
    got = store.active_addresses()
    assert isinstance(got, array) and got.typecode == "I"
    assert list(got) == sorted(model.active_addresses())
    assert len(store) == len(model)
    assert list(store) == list(model)


class Fault(Exception):
    pass


def _fail(batch: list[Lease]) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class StoreMachine(RuleBasedStateMachine):
    """Random stage / commit / fail / reopen sequences, checked against the oracle."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.dir = tempfile.mkdtemp(prefix="fastdhcp-store-")
        self.store = LmdbLeaseStore(self.dir, sync=False, map_size=1 << 20)
        # What the last reopen loaded (records and the client entries start-up chose), and
        # the batches committed since.
        self.base: list[Lease] = []
        self.committed: list[Lease] = []
        self.inflight: list[Lease] | None = None
        self.pending: list[Lease] = []

    @rule(leases=st.lists(lease_strategy(), min_size=1, max_size=4))
    def stage(self, leases: list[Lease]) -> None:
        for lease in leases:
            self.store.stage(lease)
            self.pending.append(lease)

    @precondition(lambda self: self.inflight is None)
    @rule()
    def take(self) -> None:
        # Close the batch but do not write it yet: the next stages fill batch N+1.
        self.inflight = self.store.take_pending()
        assert self.inflight == self.pending
        self.pending = []

    @precondition(lambda self: self.inflight is not None)
    @rule()
    def commit_inflight(self) -> None:
        assert self.inflight is not None
        self.store.write(self.inflight)
        self.store.committed(self.inflight)
        self.committed.extend(self.inflight)
        self.inflight = None

    @precondition(lambda self: bool(self.inflight))
    @rule()
    def fail_inflight(self) -> None:
        assert self.inflight is not None
        self.store._before_commit = _fail
        try:
            with pytest.raises(StoreError, match="No space left"):
                self.store.write(self.inflight)
        finally:
            self.store._before_commit = None
        self.store.failed(self.inflight)
        self.inflight = None

    @precondition(lambda self: self.inflight is None)
    @rule()
    def commit_all(self) -> None:
        batch = self.store.take_pending()
        self.store.write(batch)
        self.store.committed(batch)
        self.committed.extend(batch)
        self.pending = []

    @precondition(lambda self: self.inflight is None and not self.pending)
    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = LmdbLeaseStore(self.dir, sync=False, map_size=1 << 20)
        self.base = list(reopened(self.base, self.committed))
        self.committed = []

    @invariant()
    def reads_match_oracle(self) -> None:
        model = reopened(self.base, [])
        for lease in [*self.committed, *(self.inflight or []), *self.pending]:
            model.stage(lease)
        assert_same(self.store, model)

    def teardown(self) -> None:
        self.store.close()
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


TestStoreModel = StoreMachine.TestCase
TestStoreModel.settings = settings(
    max_examples=100,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# ------------------------------------------------------------------------------------ helpers


def mk(i: int, client: int | None = None, state: int = 0, expires: int = 1000) -> Lease:
    c = i if client is None else client
    return Lease(
        BASE + i,
        b"\x01" + c.to_bytes(6, "big"),
        c.to_bytes(6, "big"),
        7,
        state,
        100 + i,
        expires + i,
        f"host{i}",
        b"\x01\x04eth0",
    )


def commit(store: LmdbLeaseStore, leases: list[Lease]) -> None:
    for lease in leases:
        store.stage(lease)
    batch = store.take_pending()
    store.write(batch)
    store.committed(batch)


@pytest.fixture
def dbdir(tmp_path):
    d = tmp_path / "db"
    d.mkdir()
    return str(d)


# ------------------------------------------------------------------------------ atomicity


def test_failed_batch_leaves_nothing(dbdir):
    store = LmdbLeaseStore(dbdir, sync=True)
    commit(store, [mk(i) for i in range(10)])
    # The batch overwrites 5 committed leases and adds 95 new ones; the fault hits after every
    # put, just before the commit.
    batch_leases = [mk(i, client=1000 + i, expires=5000) for i in range(5, 100)]
    for lease in batch_leases:
        store.stage(lease)
    batch = store.take_pending()
    store._before_commit = _fail
    with pytest.raises(StoreError) as info:
        store.write(batch)
    assert dbdir in str(info.value)
    store.failed(batch)
    store._before_commit = None
    assert_same_as(store, [mk(i) for i in range(10)])
    # Another process's view: nothing of the batch either.
    assert other_process_view(dbdir) == [(BASE + i, mk(i).client_key) for i in range(10)]
    # And the store keeps working.
    commit(store, batch_leases)
    assert store.get(BASE + 99) == batch_leases[-1]
    store.close()


def other_process_view(dbdir: str) -> list[tuple[int, bytes]]:
    """(address, client key) of every committed lease, read by the CLI in another process."""
    out = subprocess.run(
        [sys.executable, "-m", "fastdhcp.leases_cli", "--db", dbdir, "--json", "export"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    return [(int(ipaddress.IPv4Address(r["address"])), bytes.fromhex(r["client-id"])) for r in rows]


def assert_same_as(store: LmdbLeaseStore, leases: list[Lease]) -> None:
    model = oracle(leases)
    assert list(store) == list(model)
    for lease in leases:
        assert store.get_by_client(lease.client_key) == model.get_by_client(lease.client_key)
    assert store.expired(10**9, 10**6) == model.expired(10**9, 10**6)
    assert list(store.active_addresses()) == sorted(model.active_addresses())


def test_staged_visible_before_commit_and_dropped_on_failure(dbdir):
    store = LmdbLeaseStore(dbdir)
    old = mk(1)
    commit(store, [old])
    new = mk(1, client=9, state=int(LeaseState.RELEASED))
    store.stage(new)
    assert store.get(BASE + 1) == new
    assert store.get_by_client(old.client_key) is None  # the address went to client 9
    assert store.get_by_client(new.client_key) == new
    assert list(store.active_addresses()) == []
    batch = store.take_pending()
    store.failed(batch)
    assert store.get(BASE + 1) == old
    assert store.get_by_client(old.client_key) == old
    assert store.get_by_client(new.client_key) is None
    assert list(store.active_addresses()) == [BASE + 1]
    store.close()


# ------------------------------------------------------------------------------ reopen


def test_reopen_restores_every_read(dbdir):
    leases = [mk(i, client=i % 50, state=i % 4, expires=(i * 7919) % 1000) for i in range(500)]
    store = LmdbLeaseStore(dbdir)
    for k in range(0, 500, 64):
        commit(store, leases[k : k + 64])
    store.close()
    store = LmdbLeaseStore(dbdir)
    assert_same_model(store, reopened(leases))
    store.close()


def assert_same_model(store: LmdbLeaseStore, model: MemoryLeaseStore) -> None:
    assert list(store) == list(model)
    assert store.expired(10**9, 10**6) == model.expired(10**9, 10**6)
    assert store.expired(500, 7) == model.expired(500, 7)
    assert list(store.active_addresses()) == sorted(model.active_addresses())
    for c in range(60):
        key = b"\x01" + c.to_bytes(6, "big")
        assert store.get_by_client(key) == model.get_by_client(key), c


def test_a_client_moved_by_the_engine_keeps_its_new_binding_after_restart(dbdir):
    # The engine ends a client's old binding and stages the new one in the same second (same
    # issued); start-up must pick the active record, whatever the addresses' order.
    old = mk(9, client=1)
    ended = Lease(old.ip, old.client_key, old.hw_address, 7, int(LeaseState.RELEASED), 500, 500)
    new = Lease(BASE + 2, old.client_key, old.hw_address, 7, int(LeaseState.DEFAULT), 500, 900)
    with LmdbLeaseStore(dbdir) as s:
        commit(s, [old])
        commit(s, [ended, new])
        assert s.get_by_client(old.client_key) == new
    with LmdbLeaseStore(dbdir) as s:
        assert s.get_by_client(old.client_key) == new


CRASHER = textwrap.dedent(
    """
    import os, signal, sys
    from fastdhcp.store import LmdbLeaseStore
    from fastdhcp.leases import Lease
    store = LmdbLeaseStore(sys.argv[1], sync=True)
    for b in range(8):
        for j in range(64):
            i = b * 64 + j
            lease = Lease(0xC6120000 + i, b"\\x01" + (i % 40).to_bytes(6, "big"), b"hw", 1,
                          i % 4, 100 + i, (i * 7919) % 1000, "", b"")
            store.stage(lease)
        batch = store.take_pending()
        store.write(batch)
        store.committed(batch)
    print("written", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)

CRASH_LEASES = [
    Lease(
        BASE + i,
        b"\x01" + (i % 40).to_bytes(6, "big"),
        b"hw",
        1,
        i % 4,
        100 + i,
        (i * 7919) % 1000,
        "",
        b"",
    )
    for i in range(512)
]


def test_kill_9_then_reopen_restores_every_read(dbdir):
    proc = subprocess.run(
        [sys.executable, "-c", CRASHER, dbdir], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.strip() == "written"
    with LmdbLeaseStore(dbdir) as store:
        assert_same_model(store, reopened(CRASH_LEASES))


def test_old_index_files_are_removed(dbdir):
    # An earlier version kept its indexes in index.mdb beside data.mdb: derived, now unused.
    with LmdbLeaseStore(dbdir) as s:
        commit(s, [mk(i) for i in range(20)])
    for name in ("index.mdb", "index.mdb-lock"):
        with open(os.path.join(dbdir, name), "wb") as f:
            f.write(os.urandom(8192))
    with LmdbLeaseStore(dbdir) as s:
        assert_same_as(s, [mk(i) for i in range(20)])
    assert sorted(os.listdir(dbdir)) == ["data.mdb", "lock.mdb"]


def test_fingerprint_collisions_cost_affinity_never_a_wrong_lease(dbdir, monkeypatch):
    # With 1-bit hashes every client shares one of four fingerprints: the index keeps one
    # address per fingerprint, so most clients lose their entry, but a lookup never returns
    # another client's lease and every other read stays exact.
    monkeypatch.setattr(LmdbLeaseStore, "index_hash_bits", 1)
    leases = [mk(i, client=i % 30, state=i % 4, expires=(i * 31) % 200) for i in range(120)]
    model = oracle(leases)
    with LmdbLeaseStore(dbdir) as s:
        for k in range(0, 120, 16):
            commit(s, leases[k : k + 16])
        for reopen in (False, True):
            if reopen:
                s.close()
                s = LmdbLeaseStore(dbdir)
                model = reopened(leases)
            found = 0
            for c in range(30):
                key = b"\x01" + c.to_bytes(6, "big")
                got = s.get_by_client(key)
                assert got is None or got == model.get_by_client(key)
                found += got is not None
            assert 1 <= found <= 4
            assert list(s) == list(model)
            assert s.expired(10**9, 10**6) == model.expired(10**9, 10**6)
            assert list(s.active_addresses()) == sorted(model.active_addresses())


# ------------------------------------------------------------------------------ map growth


def test_map_grows_by_itself(dbdir):
    store = LmdbLeaseStore(dbdir, sync=False, map_size=256 * 1024)
    first = store.map_size
    leases = [mk(i, expires=i) for i in range(20_000)]
    for k in range(0, len(leases), 2000):
        commit(store, leases[k : k + 2000])
    assert store.map_size > first
    assert len(store) == 20_000
    assert store.get(BASE + 19_999) == leases[-1]
    store.close()
    with LmdbLeaseStore(dbdir, readonly=True) as ro:
        assert sum(1 for _ in ro.iter_committed()) == 20_000
    # Opened again with the small initial size, a grown database still has room to write.
    assert delete_lease(dbdir, BASE + 5) == leases[5]
    with LmdbLeaseStore(dbdir, sync=False, map_size=256 * 1024) as again:
        assert again.map_size > 256 * 1024
        commit(again, [mk(i, expires=i) for i in range(20_000, 24_000)])
        assert len(again) == 23_999


def test_map_full_that_cannot_grow_fails_the_batch(dbdir):
    store = LmdbLeaseStore(dbdir, sync=False, map_size=256 * 1024, max_map_size=256 * 1024)
    small = [mk(i) for i in range(10)]
    commit(store, small)
    big = [mk(i, client=5000 + i) for i in range(10, 10_000)]
    for lease in big:
        store.stage(lease)
    batch = store.take_pending()
    with pytest.raises(StoreError, match="map full") as info:
        store.write(batch)
    assert dbdir in str(info.value)
    store.failed(batch)
    assert_same_as(store, small)
    # Later batches that fit still commit.
    commit(store, [mk(10)])
    assert store.get(BASE + 10) == mk(10)
    store.close()


# ------------------------------------------------------------------------------ bad databases


def test_missing_directory(tmp_path):
    path = str(tmp_path / "nope")
    with pytest.raises(StoreError, match="directory does not exist") as info:
        LmdbLeaseStore(path)
    assert path in str(info.value)
    with pytest.raises(StoreError, match="directory does not exist"):
        LmdbLeaseStore(path, readonly=True)
    with LmdbLeaseStore(path, create=True) as s:
        assert len(s) == 0


def test_path_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(StoreError, match="not a directory") as info:
        LmdbLeaseStore(str(path))
    assert str(path) in str(info.value)


def test_readonly_open_of_empty_directory(dbdir):
    with pytest.raises(StoreError, match="no data.mdb") as info:
        LmdbLeaseStore(dbdir, readonly=True)
    assert dbdir in str(info.value)


def test_damaged_data_file(dbdir):
    with LmdbLeaseStore(dbdir) as s:
        commit(s, [mk(i) for i in range(10)])
    with open(os.path.join(dbdir, "data.mdb"), "r+b") as f:
        f.write(os.urandom(16384))
    for readonly in (False, True):
        with pytest.raises(StoreError) as info:
            LmdbLeaseStore(dbdir, readonly=readonly)
        assert dbdir in str(info.value)
        assert "cannot open lease database" in str(info.value)


def test_not_an_lmdb_file(dbdir):
    with open(os.path.join(dbdir, "data.mdb"), "wb") as f:
        f.write(b"this is not a lease database\n" * 1000)
    with pytest.raises(StoreError, match="cannot open lease database") as info:
        LmdbLeaseStore(dbdir)
    assert dbdir in str(info.value)


def put_raw(dbdir: str, key: bytes, value: bytes) -> None:
    """Write a `leases` record behind the store's back (as a damaged disk or another tool)."""
    env = lmdb.open(dbdir, max_dbs=4)
    db = env.open_db(b"leases")
    with env.begin(write=True) as txn:
        txn.put(key, value, db=db)
    env.close()


def test_damaged_record(dbdir):
    with LmdbLeaseStore(dbdir) as s:
        commit(s, [mk(i) for i in range(3)])
    put_raw(dbdir, (BASE + 1).to_bytes(4, "big"), b"\xc1garbage")
    with LmdbLeaseStore(dbdir, readonly=True) as s:
        with pytest.raises(StoreError, match="198.18.0.1 is damaged") as info:
            s.get(BASE + 1)
        assert dbdir in str(info.value)
        assert s.get(BASE + 2) == mk(2)
    # The server's start-up scan reads every record: it refuses to start, naming the record.
    with pytest.raises(StoreError, match="198.18.0.1 is damaged") as info:
        LmdbLeaseStore(dbdir)
    assert dbdir in str(info.value)


def test_record_under_a_key_that_is_no_address(dbdir):
    with LmdbLeaseStore(dbdir) as s:
        commit(s, [mk(1)])
    x = mk(2)
    rec = (x.state, x.expires, x.issued, x.subnet_id, x.client_key, b"", "", b"")
    put_raw(dbdir, b"\x01\x02\x03\x04\x05", msgpack.packb(rec))
    with pytest.raises(StoreError, match="key 0102030405 is damaged") as info:
        LmdbLeaseStore(dbdir)
    assert dbdir in str(info.value)


def test_other_schema_version(dbdir):
    with LmdbLeaseStore(dbdir) as s:
        commit(s, [mk(1)])
    env = lmdb.open(dbdir, max_dbs=4)
    meta = env.open_db(b"meta")
    with env.begin(write=True) as txn:
        txn.put(b"schema-version", (SCHEMA_VERSION + 1).to_bytes(4, "big"), db=meta)
    env.close()
    for readonly in (False, True):
        with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}") as info:
            LmdbLeaseStore(dbdir, readonly=readonly)
        assert dbdir in str(info.value)
    with pytest.raises(StoreError, match="schema version"):
        delete_lease(dbdir, BASE + 1)


def test_not_a_fastdhcp_database(dbdir):
    env = lmdb.open(dbdir, max_dbs=4)
    db = env.open_db(b"something")
    with env.begin(write=True) as txn:
        txn.put(b"k", b"v", db=db)
    env.close()
    with pytest.raises(StoreError, match="not a fastdhcp lease database") as info:
        LmdbLeaseStore(dbdir, readonly=True)
    assert dbdir in str(info.value)


@pytest.fixture
def rofs(tmp_path):
    """A directory on a read-only tmpfs holding a valid lease database."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], check=True)
    try:
        db = mnt / "db"
        db.mkdir()
        with LmdbLeaseStore(str(db)) as s:
            commit(s, [mk(i) for i in range(5)])
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        yield str(db)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_read_only_directory(rofs):
    with pytest.raises(StoreError) as info:
        LmdbLeaseStore(rofs)
    assert rofs in str(info.value)
    assert "not writable" in str(info.value) or "read-only" in str(info.value)
    # Reading it read-only still works (the CLI on a read-only snapshot).
    with LmdbLeaseStore(rofs, readonly=True) as s:
        assert [x.ip for x in s.iter_committed()] == [BASE + i for i in range(5)]
        assert s.get_by_client(mk(3).client_key) == mk(3)


def test_readonly_store_refuses_writes(dbdir):
    with LmdbLeaseStore(dbdir) as s:
        commit(s, [mk(1)])
    with LmdbLeaseStore(dbdir, readonly=True) as s:
        with pytest.raises(StoreError, match="read-only"):
            s.stage(mk(2))
        with pytest.raises(StoreError, match="read-only"):
            s.write([mk(2)])


# ------------------------------------------------------------------------------ other readers


def test_reader_in_another_process_sees_commits(dbdir):
    store = LmdbLeaseStore(dbdir)
    commit(store, [mk(i) for i in range(100)])
    code = (
        "import sys; from fastdhcp.store import LmdbLeaseStore as S\n"
        "s = S(sys.argv[1], readonly=True)\n"
        "key = bytes.fromhex(sys.argv[2])\n"
        "print(len(s), sum(1 for _ in s.iter_committed()), s.get_by_client(key).ip)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, dbdir, mk(42).client_key.hex()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert out == ["100", "100", str(BASE + 42)]
    # While the writer still has it open, grow past the reader's map: a new reader copes.
    commit(store, [mk(i, expires=i) for i in range(100, 30_000)])
    out = subprocess.run(
        [sys.executable, "-c", code, dbdir, mk(29_999).client_key.hex()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert out == ["30000", "30000", str(BASE + 29_999)]
    store.close()


DELETER = (
    "import sys; from fastdhcp.store import delete_lease\n"
    "print(delete_lease(sys.argv[1], int(sys.argv[2])))"
)


def test_delete_beside_open_store(dbdir):
    store = LmdbLeaseStore(dbdir)
    commit(store, [mk(i) for i in range(10)])
    run = [sys.executable, "-c", DELETER, dbdir, str(BASE + 3)]
    out = subprocess.run(run, capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == repr(mk(3))
    out = subprocess.run(run, capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "None"
    assert store.get(BASE + 3) is None
    assert store.get_by_client(mk(3).client_key) is None
    assert BASE + 3 not in store.expired(10**9, 100)
    assert list(store.active_addresses()) == [BASE + i for i in range(10) if i != 3]
    commit(store, [mk(11)])  # the writer goes on
    store.close()
    with LmdbLeaseStore(dbdir) as s:
        assert len(s) == 10


def test_record_layout(dbdir):
    """The on-disk record is plain msgpack in the documented order (other tools can read it)."""
    with LmdbLeaseStore(dbdir) as s:
        commit(s, [mk(5)])
    env = lmdb.open(dbdir, max_dbs=4, readonly=True)
    db = env.open_db(b"leases", create=False)
    with env.begin() as txn:
        raw = txn.get((BASE + 5).to_bytes(4, "big"), db=db)
    env.close()
    x = mk(5)
    assert msgpack.unpackb(raw) == [
        x.state,
        x.expires,
        x.issued,
        x.subnet_id,
        x.client_key,
        x.hw_address,
        x.hostname,
        x.relay_info,
    ]


def test_records_in_another_msgpack_form_are_indexed(dbdir):
    # A record another msgpack writer produced (array16 header, same fields) still counts.
    with LmdbLeaseStore(dbdir) as s:
        commit(s, [mk(1), mk(2, state=int(LeaseState.RELEASED))])
    env = lmdb.open(dbdir, max_dbs=4)
    db = env.open_db(b"leases")
    x = mk(3)
    raw = b"\xdc\x00\x08" + b"".join(
        msgpack.packb(f)
        for f in (
            x.state,
            x.expires,
            x.issued,
            x.subnet_id,
            x.client_key,
            x.hw_address,
            x.hostname,
            x.relay_info,
        )
    )
    with env.begin(write=True) as txn:
        txn.put((BASE + 3).to_bytes(4, "big"), raw, db=db)
    env.close()
    with LmdbLeaseStore(dbdir) as s:
        assert list(s.active_addresses()) == [BASE + 1, BASE + 3]
        assert s.get_by_client(x.client_key) == x
        assert s.expired(10**9, 10) == [mk(1), x]
        assert s.get(BASE + 3) == x


def test_get_of_an_address_without_record_skips_the_table(dbdir, monkeypatch) -> None:
    """The writer's index has an entry per record, by exact address: an address it does not
    know has no record, and get() answers without a B-tree search; one it knows is read (a
    record deleted behind the server's back is then found gone)."""
    store = LmdbLeaseStore(dbdir)
    try:
        commit(store, [mk(i) for i in range(3)])
        reads: list[int] = []
        real_read = store._read

        def counted(ip: int) -> Lease | None:
            reads.append(ip)
            return real_read(ip)

        monkeypatch.setattr(store, "_read", counted)
        assert store.get(BASE + 7) is None and reads == []  # no record: no read
        assert store.get(BASE + 1) == mk(1) and reads == [BASE + 1]
        run = [sys.executable, "-c", DELETER, dbdir, str(BASE + 2)]  # the CLI, its own process
        out = subprocess.run(run, capture_output=True, text=True, timeout=60, check=True)
        assert out.stdout.strip() == repr(mk(2))
        commit(store, [mk(5)])  # the loop's read snapshot moves on at its next commit
        assert store.get(BASE + 2) is None and reads == [BASE + 1, BASE + 2]
    finally:
        store.close()
