"""The private HA link of a multi-worker server (fastdhcp.ha.link, service.worker_ha,
service.front_ha): its bodies, a worker's side against a scripted supervisor on a real Unix
socket, and the supervisor's host that stores the partner's leases through their owners.

The whole path (real workers, a real partner: fastdhcp and Kea 2.2) is in
tests/interop/test_ha_failover.py (the ``2-workers`` cases)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastdhcp._hascope import MissedQuery
from fastdhcp.config import ControlSocket, SocketType, loads
from fastdhcp.control.channel import ControlChannel
from fastdhcp.control.fanout import Owners
from fastdhcp.control.merge import WorkerAnswer
from fastdhcp.control.protocol import Answer, Caller, CommandError, Request, Result, success
from fastdhcp.ha import link
from fastdhcp.ha import messages as m
from fastdhcp.ha.messages import HALease
from fastdhcp.service.front_ha import FrontHA
from fastdhcp.service.worker_ha import WorkerHA
from tests.ha_helpers import ha_toml

OPEN = link.LinkState(True, 2, 0b01, False, 0)
OTHER = link.LinkState(True, 2, 0b11, True, None)
BASE = 0xC6120500  # 198.18.5.0


def lease(i: int) -> HALease:
    return HALease(BASE + 10 + i, bytes([2, 0, 0, 0, i >> 8 & 255, i & 255]), 600, 1_800_000_000)


# ------------------------------------------------------------------ the bodies


def test_link_state_round_trip_and_its_errors() -> None:
    for s in (OPEN, OTHER, link.LinkState.closed()):
        assert link.LinkState.from_json(json.loads(json.dumps(s.to_json()))) == s
    closed = link.LinkState.closed()
    assert not closed.enabled and closed.mask == 0  # a worker serves nobody until told
    good = OPEN.to_json()
    for key, value, says in (("enabled", 1, "booleans"), ("servers", 3, "'servers'"),
                             ("mask", -1, "'mask'"), ("share", 2, "'share'"),
                             ("analyze", None, "booleans")):
        with pytest.raises(CommandError) as exc:
            link.LinkState.from_json({**good, key: value})
        assert says in exc.value.text
    with pytest.raises(CommandError):
        link.LinkState.from_json([good])


def test_refused_missed_and_apply_bodies() -> None:
    refused, state = link.parse_refused({"refused": [BASE + 1, BASE + 2],
                                         "state": OPEN.to_json()})
    assert refused == {BASE + 1, BASE + 2} and state == OPEN
    for bad in ({"refused": ["198.18.5.1"], "state": OPEN.to_json()},
                {"refused": [1 << 32], "state": OPEN.to_json()}, {"state": OPEN.to_json()},
                {"refused": [], "state": None}, None):
        with pytest.raises(CommandError):
            link.parse_refused(bad)
    qs = [MissedQuery(b"\x01abc", b"\x02" * 6, 12), MissedQuery(None, b"\x04" * 6, 0)]
    back = link.parse_missed_args(json.loads(json.dumps(link.missed_args(qs))))
    assert [(q.client_id, q.chaddr, q.secs) for q in back] == \
        [(q.client_id, q.chaddr, q.secs) for q in qs]
    with pytest.raises(CommandError) as exc:
        link.parse_missed_args({"queries": [[None, "0202", 70000]]})
    assert "queries[0]" in exc.value.text
    args = m.batch_request([lease(1)], [])["arguments"]
    assert link.parse_apply_args({**args, "sync": True}) == (args, True)
    assert link.parse_apply_args(args) == (args, False)
    with pytest.raises(CommandError):
        link.parse_apply_args({**args, "sync": "yes"})


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.sampled_from(["refused", "state", "queries", "sync",
                                                       "enabled", "servers", "mask", "share",
                                                       "analyze", "rows"]), inner,
                                      max_size=5), max_leaves=20))
def test_the_link_parsers_refuse_anything_with_a_command_error(value: Any) -> None:
    """Whatever arrives on the link, each parser answers or raises CommandError (which the
    channel answers as result 1): never another exception."""
    for parse in (link.LinkState.from_json, link.parse_refused, link.parse_missed_args,
                  link.parse_apply_args):
        try:
            parse(value)
        except CommandError:
            pass


# ------------------------------------------------------------------ a worker's side


class Supervisor:
    """A scripted supervisor on a real Unix socket: answers the link's commands as told."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.state = OPEN
        self.refuse: set[int] = set()
        self.requests: list[Request] = []
        self.hold: asyncio.Event | None = None  # set: COMMITTED waits for it
        self._channel = ControlChannel(self.dispatch)

    async def dispatch(self, req: Request, caller: Caller) -> Answer:
        self.requests.append(req)
        if req.command == link.STATE:
            return success(arguments=self.state.to_json())
        if req.command == link.COMMITTED:
            updated, deleted = m.parse_batch_args(req.arguments)
            if self.hold is not None:
                await self.hold.wait()
            ips = {x.ip for x in (*updated, *deleted)}
            return success(arguments={"refused": sorted(ips & self.refuse),
                                      "state": self.state.to_json()})
        if req.command == link.MISSED:
            return success()
        return Answer(Result.UNSUPPORTED, "no")

    async def __aenter__(self) -> Supervisor:
        await self._channel.start((ControlSocket(SocketType.UNIX, self.path),))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.close()


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 30))


def test_a_worker_serves_nobody_until_the_supervisor_answers(tmp_path: Path) -> None:
    path = str(tmp_path / "ha.sock")

    async def body() -> None:
        w = WorkerHA(path)
        await w.start()
        await asyncio.sleep(0.5)  # no supervisor yet: it keeps asking, serves nobody
        assert not w.filter.enabled and w.alloc_share is None
        async with Supervisor(path):
            for _ in range(100):
                if w.filter.enabled:
                    break
                await asyncio.sleep(0.05)
            assert (w.filter.enabled, w.filter.mask, w.alloc_share) == (True, 0b01, 0)
        await w.stop()
    run(body)


def test_the_ack_gate_asks_the_supervisor(tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    path = str(tmp_path / "ha.sock")

    async def body() -> None:
        w = WorkerHA(path, timeout=5)
        async with Supervisor(path) as sup:
            sup.refuse = {lease(2).ip}
            sup.state = OTHER
            got = await w.lease_changed([lease(1), lease(2)], [lease(3)])
            assert got == {lease(2).ip}
            assert (w.filter.mask, w.filter.analyze) == (0b11, True)  # the answer's state
            # large batches go in chunks the channel takes (each under MAX_ROWS rows)
            sup.requests.clear()
            sup.refuse = {lease(4400).ip}
            got = await w.lease_changed([lease(i) for i in range(4500)])
            assert got == {lease(4400).ip}
            sizes = [len(r.arguments["rows"]) for r in sup.requests]
            assert sorted(sizes) == [500, link.MAX_ROWS, link.MAX_ROWS]
        # the supervisor gone: every ACK of the batch is held back, said once
        with caplog.at_level(logging.ERROR, "fastdhcp.ha"):
            assert await w.lease_changed([lease(5)], [lease(6)]) == {lease(5).ip, lease(6).ip}
            assert await w.lease_changed([lease(7)]) == {lease(7).ip}
        said = [r for r in caplog.records if "did not answer" in r.getMessage()]
        assert len(said) == 1
    run(body)


def test_an_answer_does_not_undo_a_newer_push(tmp_path: Path) -> None:
    path = str(tmp_path / "ha.sock")

    async def body() -> None:
        w = WorkerHA(path, timeout=5)
        async with Supervisor(path) as sup:
            sup.hold = asyncio.Event()
            sup.state = OPEN
            asking = asyncio.ensure_future(w.lease_changed([lease(1)]))
            await asyncio.sleep(0.2)
            w.set_state(OTHER)  # the supervisor's push, while the question is out
            sup.hold.set()
            assert await asking == frozenset()
            assert w.filter.mask == OTHER.mask and w.alloc_share is None
    run(body)


# ------------------------------------------------------------------ the supervisor's side


def front_config(tmp_path: Path) -> Any:
    return loads(f"""
[server]
listen-addresses = ["127.0.0.1"]
workers = 2

[lease-database]
path = "{tmp_path / 'db'}"

[[subnet4]]
id = 1
subnet = "198.18.5.0/24"
pools = ["198.18.5.10 - 198.18.5.250"]
""" + ha_toml("a", "load-balancing", [("a", "http://127.0.0.1:1/", "primary"),
                                      ("b", "http://127.0.0.1:2/", "secondary")]))


class Workers:
    """The front's ``ask`` to two scripted workers: what each was sent, what it answers."""

    def __init__(self, owners: Owners) -> None:
        self.owners = owners
        self.sent: dict[int, list[tuple[str, Any]]] = {0: [], 1: []}
        self.down: set[int] = set()

    async def ask(self, k: int, command: str, arguments: Any) -> WorkerAnswer:
        self.sent[k].append((command, arguments))
        if k in self.down:
            return WorkerAnswer(k, None, "not running")
        if command == link.APPLY:
            updated, deleted = m.parse_batch_args(link.parse_apply_args(arguments)[0])
            wrong = [x for x in (*updated, *deleted) if self.owners.of(x.ip) != k]
            return WorkerAnswer(k, success("applied", {"failed-leases": [
                {"ip-address": str(ipaddress_of(x.ip)), "result": 1,
                 "error-message": "not mine"} for x in wrong]}))
        return WorkerAnswer(k, success())


def ipaddress_of(ip: int) -> str:
    return f"{ip >> 24}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"


def test_the_partners_leases_go_to_their_owners(tmp_path: Path) -> None:
    config = front_config(tmp_path)
    owners = Owners(config, 2)
    workers = Workers(owners)

    async def body() -> None:
        front = FrontHA(config, owners, workers.ask)
        host = front.ha_host
        leases = [lease(i) for i in range(0, 240, 7)]
        assert {owners.of(x.ip) for x in leases} == {0, 1}  # both workers own some
        assert await host.apply_leases(leases[:-2], leases[-2:]) == []
        for k in (0, 1):
            for command, args in workers.sent[k]:
                assert command == link.APPLY and args["sync"] is False
        got = {x.ip for k in (0, 1) for _, a in workers.sent[k]
               for x in (*m.parse_batch_args(link.parse_apply_args(a)[0])[0],
                         *m.parse_batch_args(link.parse_apply_args(a)[0])[1])}
        assert got == {x.ip for x in leases}  # each lease once, to its owner only
        workers.sent = {0: [], 1: []}
        assert await host.apply_synced(leases) == []
        assert all(a["sync"] is True for k in (0, 1) for _, a in workers.sent[k])
        # a worker that does not answer: the whole batch fails (a sync is then retried)
        workers.down = {1}
        with pytest.raises(CommandError) as exc:
            await host.apply_synced(leases)
        assert "worker 1" in exc.value.text and "not running" in exc.value.text
    run(body)


def test_the_front_answers_the_workers_link(tmp_path: Path) -> None:
    """The supervisor's socket for its workers: the state, a commit's question, bad bodies
    answered with their fault (over a real socket, as a worker asks)."""
    from fastdhcp.control.upstream import ask

    config = front_config(tmp_path)
    (tmp_path / "db" / "workers").mkdir(parents=True)
    owners = Owners(config, 2)
    workers = Workers(owners)

    async def body() -> None:
        front = FrontHA(config, owners, workers.ask)
        await front.open()
        try:
            path = front._socket.socket_name
            a = await ask(path, link.STATE, None, 5)
            assert link.LinkState.from_json(a.arguments) == front.service.link_state()
            assert not front.service.link_state().enabled  # waiting: DHCP off
            # a commit's question: the service (partner unknown, not yet started) answers
            a = await ask(path, link.COMMITTED, m.batch_request([lease(1)], [])["arguments"],
                          15)
            assert a.result is Result.SUCCESS, a
            refused, state = link.parse_refused(a.arguments)
            assert refused <= {lease(1).ip} and state == front.service.link_state()
            a = await ask(path, link.COMMITTED, {"rows": [[1, 2]]}, 5)
            assert a.result is Result.ERROR and "rows[0]" in (a.text or "")
            a = await ask(path, link.MISSED, {"queries": "x"}, 5)
            assert a.result is Result.ERROR and "'queries'" in (a.text or "")
            a = await ask(path, "lease4-del", {"ip-address": "198.18.5.10"}, 5)
            assert a.result is Result.UNSUPPORTED
        finally:
            await front.close()
    run(body)
