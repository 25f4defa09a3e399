"""GroupCommitter: ACKs never before their batch is durable, pipelining, failures, disk full.

Every test body runs on both loops (asyncio and uvloop). The writer can be paused: a store whose
``write`` waits on a gate and records when the real write returned.
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import threading
import time

import pytest
import uvloop

from fastdhcp.commit import GroupCommitter
from fastdhcp.errors import StoreError
from fastdhcp.leases import Lease, MemoryLeaseStore
from fastdhcp.store import GroupCommitter as ReExported
from fastdhcp.store import LmdbLeaseStore

BASE = 0xC6120000  # 198.18.0.0


def mk(i: int, client: int | None = None) -> Lease:
    c = i if client is None else client
    return Lease(
        BASE + i, b"\x01" + c.to_bytes(6, "big"), c.to_bytes(6, "big"), 1, 0, 100, 1000 + i, "", b""
    )


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    """Run a coroutine to completion on the chosen loop, bounded in time."""

    def runner(coro, timeout=60.0):
        async def bounded():
            return await asyncio.wait_for(coro, timeout)

        if request.param == "uvloop":
            return uvloop.run(bounded())
        return asyncio.run(bounded())

    return runner


class PausableStore(LmdbLeaseStore):
    """write() waits for ``gate``; ``events`` records when each real write returned."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.events: list[tuple[str, object]] = []
        self.lock = threading.Lock()

    def write(self, batch: list[Lease]) -> None:
        self.entered.set()
        assert self.gate.wait(30)
        super().write(batch)
        with self.lock:
            self.events.append(("written", tuple(x.ip for x in batch)))


async def until(pred, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


def test_reexported_from_store():
    assert ReExported is GroupCommitter


def test_ack_never_before_its_batch_is_written(tmp_path, run):
    store = PausableStore(str(tmp_path), sync=True)

    async def body():
        loop = asyncio.get_running_loop()
        failed = []

        def on_committed(tokens):
            with store.lock:
                store.events.append(("acked", tuple(tokens)))

        c = GroupCommitter(store, loop, on_committed, lambda *a: failed.append(a), max_wait=0)
        store.gate.clear()
        store.stage(mk(1))
        c.hold("t1")
        c.kick()
        await until(store.entered.is_set)
        # Batch N is in the writer (paused); batch N+1 fills meanwhile.
        for i in range(2, 6):
            store.stage(mk(i))
            c.hold(f"t{i}")
            c.kick()
        assert c.busy
        await asyncio.sleep(0.05)
        assert store.events == []  # nothing acked while the write has not returned
        assert store.get(BASE + 3) == mk(3)  # staged versions are visible at once
        assert store.get_by_client(mk(1).client_key) == mk(1)
        store.gate.set()
        await until(lambda: len(store.events) == 4)
        await c.close()
        assert failed == []
        return list(store.events)

    events = run(body())
    assert events == [
        ("written", (BASE + 1,)),
        ("acked", ("t1",)),
        ("written", tuple(BASE + i for i in range(2, 6))),
        ("acked", ("t2", "t3", "t4", "t5")),
    ]
    store.close()
    with LmdbLeaseStore(str(tmp_path)) as s:
        assert [x.ip for x in s] == [BASE + i for i in range(1, 6)]


def test_batch_closes_at_batch_size_or_max_wait(tmp_path, run):
    store = PausableStore(str(tmp_path), sync=False)

    async def body():
        loop = asyncio.get_running_loop()
        acked = []
        c = GroupCommitter(
            store, loop, acked.append, lambda *a: None, batch_size=4, max_wait=3600.0
        )
        for i in range(3):
            store.stage(mk(i))
            c.hold(i)
            c.kick()
        await asyncio.sleep(0.02)
        assert not store.entered.is_set()  # 3 < batch_size and max_wait far away
        store.stage(mk(3))
        c.hold(3)
        c.kick()
        await until(lambda: acked == [[0, 1, 2, 3]])
        # A small batch goes once max_wait has passed since it opened.
        c.max_wait = 0.01
        store.stage(mk(4))
        c.hold(4)
        c.kick()
        await until(lambda: len(acked) == 2)
        assert acked[1] == [4]
        await c.close()

    run(body())
    store.close()


def test_failed_batch_then_recovery(tmp_path, run):
    store = LmdbLeaseStore(str(tmp_path), sync=True)

    async def body():
        loop = asyncio.get_running_loop()
        acked, failed = [], []
        c = GroupCommitter(store, loop, acked.extend, lambda *a: failed.append(a), max_wait=0)
        store.stage(mk(1))
        c.hold("a")
        c.kick()
        await until(lambda: acked == ["a"])

        def enospc(batch):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        store._before_commit = enospc
        store.stage(mk(1, client=99))
        store.stage(mk(2))
        c.hold("b")
        c.kick()
        await until(lambda: failed)
        leases, tokens, exc = failed[0]
        assert [x.ip for x in leases] == [BASE + 1, BASE + 2]
        assert tokens == ["b"]
        assert isinstance(exc, StoreError) and "No space left on device" in str(exc)
        assert str(tmp_path) in str(exc)
        # Readers see the last committed version again: nothing of the failed batch.
        assert store.get(BASE + 1) == mk(1)
        assert store.get(BASE + 2) is None
        assert store.get_by_client(mk(1, client=99).client_key) is None
        # The fault clears: later batches commit.
        store._before_commit = None
        store.stage(mk(2))
        c.hold("c")
        c.kick()
        await until(lambda: acked == ["a", "c"])
        await c.close()
        assert c.batches == 2 and c.failures == 1

    run(body())
    store.close()
    with LmdbLeaseStore(str(tmp_path)) as s:
        assert list(s) == [mk(1), mk(2)]


def test_close_flushes_everything(tmp_path, run):
    store = LmdbLeaseStore(str(tmp_path), sync=False)

    async def body():
        loop = asyncio.get_running_loop()
        acked = []
        c = GroupCommitter(
            store, loop, acked.extend, lambda *a: None, batch_size=10_000, max_wait=3600.0
        )
        for i in range(1000):
            store.stage(mk(i))
            c.hold(i)
            if i % 100 == 0:
                c.kick()
        store.stage(mk(5000))  # staged, never kicked, no token
        await c.close()
        assert acked == list(range(1000))
        with pytest.raises(RuntimeError):
            c.kick()

    run(body())
    assert len(store) == 1001 and store.pending_count == 0
    store.close()
    with LmdbLeaseStore(str(tmp_path)) as s:
        assert len(s) == 1001 and s.get(BASE + 5000) == mk(5000)


def test_works_with_memory_store(run):
    store = MemoryLeaseStore()

    async def body():
        loop = asyncio.get_running_loop()
        acked = []
        c = GroupCommitter(store, loop, acked.extend, lambda *a: None)
        for i in range(300):
            store.stage(mk(i))
            c.hold(i)
            c.kick()
        await c.close()
        return acked

    assert run(body()) == list(range(300))


def test_tokens_without_leases_are_acked(tmp_path, run):
    store = LmdbLeaseStore(str(tmp_path))

    async def body():
        loop = asyncio.get_running_loop()
        acked = []
        c = GroupCommitter(store, loop, acked.extend, lambda *a: None, max_wait=0)
        c.hold("x")
        c.kick()
        await until(lambda: acked == ["x"])
        await c.close()

    run(body())
    store.close()


# ------------------------------------------------------------------------------ a real full disk


@pytest.fixture
def tiny_fs(tmp_path):
    """A 3 MiB tmpfs mounted for the test (we are root), unmounted in teardown."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_on_tmpfs_then_recovery(tiny_fs, run):
    db = tiny_fs / "db"
    db.mkdir()
    filler = tiny_fs / "filler"
    store = LmdbLeaseStore(str(db), sync=True, map_size=64 << 20)

    async def body():
        loop = asyncio.get_running_loop()
        acked, failed = [], []
        c = GroupCommitter(store, loop, acked.extend, lambda *a: failed.append(a), max_wait=0)
        # Fill the file system, leaving a little room.
        with open(filler, "wb") as f:
            try:
                f.write(b"\0" * (3 << 20))
            except OSError:
                pass
        os.truncate(filler, max(0, filler.stat().st_size - (256 << 10)))
        n = 0
        ok_ips = []
        for _ in range(200):  # bounded: 200 batches of 256 leases at most
            batch_ips = []
            for _ in range(256):
                lease = Lease(*mk(n, client=n + 7).astuple()[:7], "h" * 40)
                store.stage(lease)
                batch_ips.append(lease.ip)
                n += 1
            c.hold(batch_ips)
            c.kick()
            await until(lambda: not c.busy and not store.pending_count)
            if failed:
                break
            ok_ips.extend(batch_ips)
        assert failed, "the file system never filled up"
        leases, tokens, exc = failed[0]
        assert isinstance(exc, StoreError)
        assert str(db) in str(exc)
        # LMDB reports the short write as EIO or ENOSPC; the store adds what statvfs says.
        assert "file system full" in str(exc)
        assert [x.ip for x in leases] == tokens[0]
        # Nothing of the failed batch is visible; everything acked is.
        assert all(store.get(ip) is None for ip in tokens[0])
        assert [ip for ts in acked for ip in ts] == ok_ips
        assert all(store.get(ip) is not None for ip in ok_ips[-300:])
        # Make room: the committer recovers.
        os.unlink(filler)
        for lease in leases:
            store.stage(lease)
        c.hold(tokens[0])
        c.kick()
        await until(lambda: acked and acked[-1] == tokens[0])
        await c.close()
        return ok_ips + tokens[0]

    committed = run(body())
    for ip in committed[:: max(1, len(committed) // 50)]:
        lease = store.get(ip)
        assert lease is not None
        assert store.get_by_client(lease.client_key) == lease
    store.close()
    with LmdbLeaseStore(str(db)) as s:
        assert [x.ip for x in s] == sorted(committed)
        assert len(s.expired(10**12, 10**7)) == len(committed)


def test_a_batch_is_indexed_before_its_overlay_goes(tmp_path):
    """Between write() (writer thread) and committed() (loop) readers see the batch through
    the overlay, after committed() through the index: never neither."""
    store = LmdbLeaseStore(str(tmp_path), sync=False)
    seen = []
    real_apply = store._index.apply

    def apply(batch):
        # The index call is the last thing write() does: the overlay still answers.
        seen.append(store.get_by_client(mk(4).client_key))
        real_apply(batch)
        seen.append(store.get_by_client(mk(4).client_key))

    store._index = _Wrapped(store._index, apply)
    for i in range(10):
        store.stage(mk(i))
    batch = store.take_pending()
    store.write(batch)
    seen.append(store.get_by_client(mk(4).client_key))
    store.committed(batch)
    assert store._staged == {} and store._staged_clients == {}
    seen.append(store.get_by_client(mk(4).client_key))
    assert seen == [mk(4)] * 4
    assert [x.ip for x in store.expired(10**9, 100)] == [BASE + i for i in range(10)]
    store.close()


class _Wrapped:
    """A LeaseIndex with its apply() replaced (the compiled class cannot be patched)."""

    def __init__(self, index, apply):
        self._index = index
        self.apply = apply

    def __getattr__(self, name):
        return getattr(self._index, name)

    def __contains__(self, ip):  # dunders are not looked up through __getattr__
        return ip in self._index


def test_a_failed_batch_leaves_the_index_alone(tmp_path):
    store = LmdbLeaseStore(str(tmp_path), sync=False)
    for i in range(5):
        store.stage(mk(i))
    batch = store.take_pending()
    store.write(batch)
    store.committed(batch)
    store._before_commit = lambda batch: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error"))
    moved = [mk(i, client=100 + i) for i in range(5)]
    for lease in moved:
        store.stage(lease)
    batch = store.take_pending()
    with pytest.raises(StoreError, match="I/O error"):
        store.write(batch)
    store.failed(batch)
    for i in range(5):
        assert store.get_by_client(mk(i).client_key) == mk(i)
        assert store.get_by_client(moved[i].client_key) is None
    store.close()
