"""fastdhcp.ha.coalesce: commit batches waiting behind the requests in flight go out merged,
each address once with its latest change; each batch gets the outcome of its own addresses;
a failed request fails only its own waiters; a cancelled waiter leaves the others alone; and
the HA service sends a fastdhcp partner's updates through it (few requests for many commits)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fastdhcp.ha import messages as m
from fastdhcp.ha.coalesce import Outcome, UpdateCoalescer
from fastdhcp.ha.peer import COMMANDS_CONNECTIONS
from fastdhcp.ha.state import HAState
from tests.ha_helpers import wait_for
from tests.test_ha_service import FakePartner, _pair, lease_json


def lease(n: int, hw: int = 0) -> m.HALease:
    d = lease_json(n)
    d["hw-address"] = f"02:bb:00:00:{hw:02x}:{n:02x}"
    return m.lease_from_json(d)


class FakeSend:
    """Records each request; holds it until released; fails the addresses it is told to."""

    def __init__(self) -> None:
        self.requests: list[tuple[list[m.HALease], list[m.HALease]]] = []
        self.gate = asyncio.Event()
        self.failed: set[int] = set()
        self.rejected: set[int] = set()
        self.raise_next: Exception | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, updated: list[m.HALease],
                       deleted: list[m.HALease]) -> tuple[set[int], set[int]]:
        self.requests.append((updated, deleted))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.gate.wait()
            if self.raise_next is not None:
                exc, self.raise_next = self.raise_next, None
                raise exc
            return set(self.failed), set(self.rejected)
        finally:
            self.in_flight -= 1


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_batches_waiting_go_out_merged_with_their_own_outcomes() -> None:
    async def body() -> None:
        send = FakeSend()
        c = UpdateCoalescer(send, slots=1)
        first = asyncio.ensure_future(c.send([lease(0)], []))
        await _settle()
        later = [asyncio.ensure_future(c.send([lease(n)], [])) for n in (1, 2, 3)]
        await _settle()
        assert len(send.requests) == 1  # the three wait behind the one in flight
        send.failed = {lease(2).ip}
        send.rejected = {lease(3).ip}
        send.gate.set()
        assert await first == Outcome(frozenset({lease(2).ip}) & {lease(0).ip}, frozenset())
        outs = await asyncio.gather(*later)
        assert [sorted(x.ip for x in r[0]) for r in send.requests] == [
            [lease(0).ip], sorted(lease(n).ip for n in (1, 2, 3))]
        assert outs == [Outcome(frozenset(), frozenset()),
                        Outcome(frozenset({lease(2).ip}), frozenset()),
                        Outcome(frozenset(), frozenset({lease(3).ip}))]
        assert c.requests == 2
    run(body())


def test_an_address_once_with_its_latest_change() -> None:
    async def body() -> None:
        send = FakeSend()
        c = UpdateCoalescer(send, slots=1)
        first = asyncio.ensure_future(c.send([lease(9)], []))
        await _settle()
        a = asyncio.ensure_future(c.send([lease(1, hw=1), lease(2)], []))
        b = asyncio.ensure_future(c.send([lease(1, hw=2)], [lease(2)]))
        await _settle()
        send.gate.set()
        await asyncio.gather(first, a, b)
        updated, deleted = send.requests[1]
        assert [(x.ip, x.hw_address) for x in updated] == [(lease(1).ip,
                                                            lease(1, hw=2).hw_address)]
        assert [x.ip for x in deleted] == [lease(2).ip]
    run(body())


def test_slots_bound_the_requests_in_flight() -> None:
    async def body() -> None:
        send = FakeSend()
        c = UpdateCoalescer(send, slots=3)
        waits = []
        for n in range(20):  # one commit after the other: the first three go alone
            waits.append(asyncio.ensure_future(c.send([lease(n)], [])))
            await _settle()
        assert send.max_in_flight == 3 and len(send.requests) == 3
        send.gate.set()
        await asyncio.gather(*waits)
        assert send.max_in_flight == 3
        assert len(send.requests) <= 6  # 3 alone, the other 17 merged behind them
        assert sorted(x.ip for r in send.requests for x in r[0]) == sorted(
            lease(n).ip for n in range(20))
    run(body())


def test_a_failed_request_fails_its_waiters_only_and_a_cancelled_waiter_is_skipped() -> None:
    async def body() -> None:
        send = FakeSend()
        c = UpdateCoalescer(send, slots=1)
        send.raise_next = RuntimeError("bug")
        first = asyncio.ensure_future(c.send([lease(0)], []))
        await _settle()
        gone = asyncio.ensure_future(c.send([lease(1)], []))
        kept = asyncio.ensure_future(c.send([lease(2)], []))
        await _settle()
        gone.cancel()
        send.gate.set()
        with pytest.raises(RuntimeError):
            await first
        assert await kept == Outcome(frozenset(), frozenset())
        assert gone.cancelled()
        assert [x.ip for x in send.requests[1][0]] == [lease(1).ip, lease(2).ip]
    run(body())
    with pytest.raises(ValueError):
        UpdateCoalescer(FakeSend(), slots=0)


def test_the_service_merges_a_fastdhcp_partners_updates() -> None:
    async def body() -> None:
        partner = FakePartner(leases=0, batch=True)
        svc, lst, _host = await _pair(partner)
        try:
            await wait_for(lambda: svc.state is HAState.LOAD_BALANCING, 5, "load-balancing")
            partner.update_delay = 0.2
            n0 = len(lst.requests)
            commits = [svc.lease_changed([lease(n)]) for n in range(24)]
            assert await asyncio.gather(*commits) == [frozenset()] * 24
            sent = [r for r in lst.requests[n0:] if r["command"] == m.BATCH_COMMAND]
            assert len(sent) <= 2 * COMMANDS_CONNECTIONS, len(sent)
            ips = [x.update_arguments()["ip-address"] for r in sent
                   for x in m.parse_batch_args(r["arguments"])[0]]
            assert sorted(ips) == sorted(lease_json(n)["ip-address"] for n in range(24))
        finally:
            await svc.stop()
            await lst.stop()
    asyncio.run(asyncio.wait_for(body(), 20))
