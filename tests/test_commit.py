"""GroupCommitter's writer thread: one dedicated thread, the hand-off each way, failures of any
kind, and the contract under many small pipelined batches (docs/internals.md).

The store is the in-memory reference store with a recording ``write``, so these tests do not
depend on LMDB; every body runs on both loops (asyncio and uvloop).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

import pytest
import uvloop

from fastdhcp.commit import LARGE_BATCH, LOW_RATE_STRETCH, SMALL_BATCH, GroupCommitter
from fastdhcp.leases import Lease, MemoryLeaseStore

BASE = 0xC6120000  # 198.18.0.0


def mk(i: int) -> Lease:
    return Lease(BASE + i, b"\x01" + i.to_bytes(6, "big"), i.to_bytes(6, "big"), 1, 0, 100,
                 1000 + i, "", b"")


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):  # type: ignore[no-untyped-def]
    """Run a coroutine to completion on the chosen loop, bounded in time."""

    def runner(coro: Any, timeout: float = 60.0) -> Any:
        async def bounded() -> Any:
            return await asyncio.wait_for(coro, timeout)

        if request.param == "uvloop":
            return uvloop.run(bounded())
        return asyncio.run(bounded())

    return runner


class RecordingStore(MemoryLeaseStore):
    """Records, for each write, the thread it ran on and the leases it made durable; ``fail``
    makes the next writes raise the given exceptions, one each."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.durable: set[int] = set()
        self.writes = 0
        self.fail: list[BaseException] = []
        self.failed_batches: list[list[int]] = []

    def write(self, batch: list[Lease]) -> None:
        with self.lock:
            self.threads.append(threading.current_thread())
            exc = self.fail.pop(0) if self.fail else None
        if exc is not None:
            raise exc
        super().write(batch)
        with self.lock:
            self.writes += 1
            self.durable.update(x.ip for x in batch)

    def failed(self, batch: list[Lease]) -> None:
        self.failed_batches.append([x.ip for x in batch])
        super().failed(batch)


async def until(pred: Any, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


def test_one_dedicated_writer_thread_joined_by_close(run: Any) -> None:
    store = RecordingStore()

    async def body() -> tuple[list[threading.Thread], threading.Thread, list[int]]:
        loop = asyncio.get_running_loop()
        callback_threads = []
        acked: list[str] = []

        def on_committed(tokens: list[str]) -> None:
            callback_threads.append(threading.get_ident())
            acked.extend(tokens)

        c = GroupCommitter(store, loop, on_committed, lambda *a: None, max_wait=0)
        for i in range(1, 6):
            store.stage(mk(i))
            c.hold(f"t{i}")
            c.kick()
            await until(lambda: not c.busy)
        writer = c._thread
        assert writer.is_alive() and writer.name == "fastdhcp-writer"
        await c.close()
        assert not writer.is_alive()  # close() joined it
        assert acked == [f"t{i}" for i in range(1, 6)]
        assert set(callback_threads) == {threading.get_ident()}  # callbacks on the loop
        return store.threads, writer, callback_threads

    threads, writer, _ = run(body())
    assert len(threads) == 5 and set(threads) == {writer}  # every write on that one thread
    assert writer is not threading.main_thread()


def test_base_exception_in_write_fails_the_batch_and_the_next_commits(run: Any) -> None:
    """Whatever ``write`` raises (even a BaseException that is not an Exception), the batch's
    ACKs are withheld, the store's ``failed`` runs, and the committer goes on."""

    class Abort(BaseException):
        pass

    store = RecordingStore()
    store.fail = [Abort("injected"), OSError(28, "No space left on device")]

    async def body() -> tuple[list[str], list[tuple[list[int], list[str], str]]]:
        loop = asyncio.get_running_loop()
        acked: list[str] = []
        failed: list[tuple[list[int], list[str], str]] = []
        c = GroupCommitter(store, loop, acked.extend,
                           lambda leases, tokens, exc: failed.append(
                               ([x.ip for x in leases], list(tokens), type(exc).__name__)),
                           max_wait=0)
        for i in (1, 2, 3):
            store.stage(mk(i))
            c.hold(f"t{i}")
            c.kick()
            await until(lambda: not c.busy)
        await c.close()
        return acked, failed

    acked, failed = run(body())
    assert failed == [([BASE + 1], ["t1"], "Abort"), ([BASE + 2], ["t2"], "OSError")]
    assert store.failed_batches == [[BASE + 1], [BASE + 2]]
    assert acked == ["t3"]
    assert store.durable == {BASE + 3}


def test_close_flushes_what_was_staged_without_a_kick(run: Any) -> None:
    store = RecordingStore()

    async def body() -> list[str]:
        loop = asyncio.get_running_loop()
        acked: list[str] = []
        c = GroupCommitter(store, loop, acked.extend, lambda *a: None, max_wait=3600.0)
        store.stage(mk(1))
        c.hold("t1")
        c.kick()  # max_wait far away: nothing starts
        store.stage(mk(2))  # staged, never kicked
        await asyncio.sleep(0.01)
        assert acked == [] and store.writes == 0
        await c.close()
        return acked

    assert run(body()) == ["t1"]
    assert store.durable == {BASE + 1, BASE + 2}


def test_many_small_pipelined_batches_keep_the_contract(run: Any) -> None:
    """A random stream of holds, kicks and yields (the service's pattern at a few thousand
    DORA/s): every token comes back exactly once, in hold order, and only once its lease is
    durable; one batch in the writer at a time."""
    rng = random.Random(8)
    store = RecordingStore()
    in_flight = [0]
    peak = [0]
    real_write = store.write

    def write(batch: list[Lease]) -> None:
        with store.lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            if rng.random() < 0.3:
                time.sleep(0.0005)  # a slow fsync now and then: the next batch fills
            real_write(batch)
        finally:
            with store.lock:
                in_flight[0] -= 1

    store.write = write  # type: ignore[method-assign]

    async def body() -> list[int]:
        loop = asyncio.get_running_loop()
        acked: list[int] = []

        def on_committed(tokens: list[int]) -> None:
            with store.lock:
                durable = set(store.durable)
            for t in tokens:
                assert BASE + t in durable, f"token {t} acked before its lease was written"
            acked.extend(tokens)

        c = GroupCommitter(store, loop, on_committed, lambda *a: None, batch_size=16,
                           max_wait=0.0005)
        i = 0
        while i < 2000:
            for _ in range(rng.randint(0, 5)):  # one datagram burst
                i += 1
                store.stage(mk(i))
                c.hold(i)
            c.kick()
            if rng.random() < 0.5:
                await asyncio.sleep(0)
        await c.close()
        return acked

    acked = run(body())
    assert acked == list(range(1, len(acked) + 1)) and len(acked) >= 2000
    assert peak[0] == 1
    assert store.durable == {BASE + t for t in acked}


def test_polled_outcomes_wait_for_poll_and_no_timer_is_armed(run: Any) -> None:
    """While ``polled``, the writer leaves its outcome for the next poll() (no wake-up of the
    loop) and an open batch arms no max_wait timer; poll() delivers and starts what is due."""
    store = RecordingStore()

    async def body() -> None:
        loop = asyncio.get_running_loop()
        acked: list[str] = []
        c = GroupCommitter(store, loop, acked.extend, lambda *a: None, max_wait=0.002)
        c.polled = True
        store.stage(mk(1))
        c.hold("t1")
        c.kick()  # opened now, not due yet: without polled this would arm the timer
        assert c._timer is None
        await asyncio.sleep(0.05)  # well past max_wait: nothing started, nobody ticked
        assert store.writes == 0 and acked == []
        c.poll()  # due: starts the write
        assert c.busy
        await until(lambda: store.writes == 1)
        await asyncio.sleep(0.05)  # the writer is done; the loop was not told
        assert acked == [] and c.busy and len(c._results) == 1
        c.poll()
        assert acked == ["t1"] and not c.busy
        # the service stops polling: it clears the flag and polls once more; from then on
        # the writer wakes the loop itself
        store.stage(mk(2))
        c.hold("t2")
        c.kick()
        c.polled = False
        c.poll()  # arms the timer
        assert c._timer is not None
        await until(lambda: acked == ["t1", "t2"])
        await c.close()

    run(body())
    assert store.durable == {BASE + 1, BASE + 2}


def test_close_hands_over_an_outcome_left_for_poll(run: Any) -> None:
    store = RecordingStore()

    async def body() -> list[str]:
        loop = asyncio.get_running_loop()
        acked: list[str] = []
        c = GroupCommitter(store, loop, acked.extend, lambda *a: None, max_wait=0)
        c.polled = True
        store.stage(mk(1))
        c.hold("t1")
        c.kick()
        await until(lambda: len(c._results) == 1)
        store.stage(mk(2))
        c.hold("t2")
        await c.close()  # takes t1's outcome, then commits t2 with the loop woken as usual
        return acked

    assert run(body()) == ["t1", "t2"]
    assert store.durable == {BASE + 1, BASE + 2}


def test_small_batches_stretch_the_window_until_batches_are_large_again(run: Any) -> None:
    """Low rates (batches under SMALL_BATCH) let a batch wait LOW_RATE_STRETCH * max_wait;
    a batch of LARGE_BATCH or more restores max_wait; in between nothing changes."""
    store = RecordingStore()
    n = 0

    async def batch(c: GroupCommitter, acked: list[int], size: int) -> None:
        nonlocal n
        before = len(acked)
        for _ in range(size):
            n += 1
            store.stage(mk(n))
            c.hold(n)
        c.kick()
        await until(lambda: len(acked) == before + size)

    async def body() -> None:
        loop = asyncio.get_running_loop()
        acked: list[int] = []
        c = GroupCommitter(store, loop, acked.extend, lambda *a: None, max_wait=0.001)
        assert c.window == 0.001
        await batch(c, acked, 1)  # a lone lease: a low rate
        assert c.window == pytest.approx(0.001 * LOW_RATE_STRETCH)
        await batch(c, acked, (SMALL_BATCH + LARGE_BATCH) // 2)  # between: unchanged
        assert c.window == pytest.approx(0.001 * LOW_RATE_STRETCH)
        await batch(c, acked, LARGE_BATCH)
        assert c.window == 0.001
        await batch(c, acked, (SMALL_BATCH + LARGE_BATCH) // 2)
        assert c.window == 0.001
        await batch(c, acked, SMALL_BATCH - 1)
        assert c.window == pytest.approx(0.001 * LOW_RATE_STRETCH)
        # the stretched window is what an open batch's timer waits for
        n_before = n
        store.stage(mk(n + 1))
        c.hold(n + 1)
        c.kick()
        assert c._timer is not None
        assert c._timer.when() == pytest.approx(c._opened_at + 0.001 * LOW_RATE_STRETCH)
        await until(lambda: acked[-1] == n_before + 1)
        await c.close()
        assert acked == list(range(1, n_before + 2))

    run(body())
