"""Read pacing, the switch interval and the garbage-collector freezes of the running server
(fastdhcp.service docstring).

A socket that had datagrams leaves epoll and is read again by a timer; the first timer tick that
finds nothing puts it back. The tests drive the ticks by hand (a pace of an hour never fires by
itself), so the states are checked without any timing assumption. Replies are checked with
scapy; every test runs on uvloop and on the stock asyncio loop.
"""

from __future__ import annotations

import gc
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from service_helpers import InProcessServer, RelayClient, config_text, dhcp_options, free_port, mac

from fastdhcp import netio, service
from fastdhcp.config import loads
from fastdhcp.service import endpoints
from fastdhcp.service import server as server_module

pytestmark = pytest.mark.service

LOOPS = ["uvloop", "asyncio"]
HOUR = 3600.0


def _never_by_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paces of an hour whatever the arrival rate: ticks fire only when a test fires them."""
    monkeypatch.setattr(endpoints, "READ_PACE", HOUR)
    monkeypatch.setattr(endpoints, "PACE_TARGET", 10**12)


def _config(tmp_path: Path, port: int, extra_server: str = "") -> Any:
    text = config_text(tmp_path / "db", port, extra_server=extra_server)
    return loads(text, str(tmp_path / "fastdhcp.toml"))


def _endpoint(srv: InProcessServer) -> Any:
    (ep,) = srv.server.endpoints.values()
    return ep


def _state(srv: InProcessServer) -> tuple[bool, bool, int]:
    """(paced, a tick pending, DISCOVERs received), read on the loop."""
    def read() -> tuple[bool, bool, int]:
        ep = _endpoint(srv)
        return ep.paced, ep.pace is not None or ep.timer.armed, srv.server.metrics.received[1]
    return srv.call_soon(read)  # type: ignore[no-any-return]


def _tick(srv: InProcessServer) -> None:
    """Fire the pending pace tick now (as its timer would)."""
    def fire() -> None:
        ep = _endpoint(srv)
        assert ep.pace is not None or ep.timer.armed
        if ep.pace is not None:
            ep.pace.cancel()
        ep.timer.disarm()
        srv.server._on_pace(ep)
    srv.call_soon(fire)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_paced_ticks_carry_the_commits(tmp_path: Path, loop_kind: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """While a socket is paced the committer is polled by the ticks (fastdhcp.commit): a held
    ACK leaves on a tick after its commit, not on a wake-up of its own; back in epoll, the
    committer wakes the loop itself again."""
    _never_by_itself(monkeypatch)
    port = free_port()
    with InProcessServer(_config(tmp_path, port), loop_kind) as srv, RelayClient(port) as c:
        def polled() -> bool:
            return srv.call_soon(lambda: srv.server.committer.polled)  # type: ignore[no-any-return]

        assert not polled()
        offer = c.exchange("discover", mac(1), 0x301)
        assert _state(srv) == (True, True, 1) and polled()
        sid = dhcp_options(offer)["server_id"]
        c.send_raw(c.build("request", mac(1), 0x302, options=[
            ("server_id", sid), ("requested_addr", offer.yiaddr)]))
        _tick(srv)  # reads the REQUEST: its ACK is held, its batch not yet due
        c.sock.settimeout(0.3)
        with pytest.raises(TimeoutError):  # nothing ticks: no commit, or no hand-over
            c.recv(0x302)
        ack = None
        for _ in range(50):  # each tick polls: the batch starts, then its ACK is handed over
            _tick(srv)
            c.sock.settimeout(0.1)
            try:
                ack = c.recv(0x302)
                break
            except TimeoutError:
                continue
        assert ack is not None and dhcp_options(ack)["message-type"] == 5
        assert ack.yiaddr == offer.yiaddr
        while _state(srv)[0]:  # quiet ticks put the socket back into epoll
            _tick(srv)
        assert not polled()
        # unpaced: the writer wakes the loop, a DORA completes with no tick at all
        monkeypatch.setattr(endpoints, "READ_PACE", 0.0)
        offer2, ack2 = c.dora(mac(2), 0x400)
        assert dhcp_options(ack2)["message-type"] == 5 and ack2.yiaddr == offer2.yiaddr


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_paced_socket_is_read_by_ticks_then_returns_to_epoll(
        tmp_path: Path, loop_kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _never_by_itself(monkeypatch)
    port = free_port()
    with InProcessServer(_config(tmp_path, port), loop_kind) as srv, RelayClient(port) as c:
        assert _state(srv) == (False, False, 0)
        # A lone request is answered at once (epoll), and the socket goes to pacing.
        offer1 = c.exchange("discover", mac(1), 0x101)
        assert dhcp_options(offer1)["message-type"] == 2
        assert _state(srv) == (True, True, 1)
        # While paced, requests wait in the socket for the tick (nothing reads them before).
        for i in (2, 3, 4):
            c.send_raw(c.build("discover", mac(i), 0x100 + i))
        c.sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            c.recv(0x102)
        assert _state(srv) == (True, True, 1)
        # The tick reads all three in one burst and answers them; it found datagrams, so
        # another tick is scheduled.
        _tick(srv)
        c.sock.settimeout(5.0)
        offers = [c.recv(0x100 + i) for i in (2, 3, 4)]
        assert [bytes(o.chaddr)[:6] for o in offers] == [mac(2), mac(3), mac(4)]
        assert all(dhcp_options(o)["message-type"] == 2 for o in offers)
        assert _state(srv) == (True, True, 4)
        # A tick that finds nothing puts the socket back into epoll ...
        _tick(srv)
        assert _state(srv) == (False, False, 4)
        # ... where the next request is answered at once again.
        offer5 = c.exchange("discover", mac(5), 0x105)
        assert bytes(offer5.chaddr)[:6] == mac(5)
        assert _state(srv) == (True, True, 5)
        _tick(srv)
        assert _state(srv) == (False, False, 5)
        # With the shipped pace, a full DORA works (the REQUEST is read by a real tick; the
        # ACK leaves on the commit).
        monkeypatch.setattr(endpoints, "READ_PACE", 0.001)
        offer, ack = c.dora(mac(6), 0x200)
        assert dhcp_options(ack)["message-type"] == 5 and ack.yiaddr == offer.yiaddr
        assert srv.server.metrics.internal_errors == 0


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_stop_while_paced_cancels_the_tick(
        tmp_path: Path, loop_kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _never_by_itself(monkeypatch)
    port = free_port()
    with InProcessServer(_config(tmp_path, port), loop_kind) as srv, RelayClient(port) as c:
        c.exchange("discover", mac(1), 0x11)
        assert _state(srv)[:2] == (True, True)
        ep = _endpoint(srv)
        srv.stop()
        assert ep.pace is None and not ep.paced and ep.closed
        assert srv.server.metrics.internal_errors == 0


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_burst_of_requests_is_fully_answered_with_the_real_pace(
        tmp_path: Path, loop_kind: str) -> None:
    """With the shipped pace, a burst larger than one read batch is answered completely (the
    tick after a full batch reads again without waiting) and the socket ends up in epoll."""
    n = service.READ_BATCH * 2 + 17
    port = free_port()
    with InProcessServer(_config(tmp_path, port), loop_kind) as srv, RelayClient(port) as c:
        # room for every reply at once (we are root: past net.core.rmem_max)
        c.sock.setsockopt(socket.SOL_SOCKET, netio.SO_RCVBUFFORCE, netio.RCVBUF)
        for i in range(n):  # 90 clients (the test pool has 100 addresses), 3 DISCOVERs each
            c.send_raw(c.build("discover", mac(1000 + i % 90), 0x5000 + i))
        got = set()
        while len(got) < n:
            data, _ = c.sock.recvfrom(65536)
            got.add(int.from_bytes(data[4:8], "big"))
        assert got == {0x5000 + i for i in range(n)}
        m = srv.server.metrics
        assert m.received[1] == n and m.sent[2] == n
        deadline_ticks = 0
        while _state(srv)[0] and deadline_ticks < 1000:  # bounded: quiet ticks end pacing
            c.sock.settimeout(0.01)
            try:
                c.sock.recvfrom(65536)
            except TimeoutError:
                pass
            deadline_ticks += 1
        assert _state(srv)[:2] == (False, False)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_switch_interval_lowered_while_serving_and_restored(tmp_path: Path,
                                                             loop_kind: str) -> None:
    before = sys.getswitchinterval()
    port = free_port()
    with InProcessServer(_config(tmp_path, port), loop_kind) as srv:
        assert sys.getswitchinterval() == pytest.approx(service.SWITCH_INTERVAL)
        srv.stop()
        assert sys.getswitchinterval() == pytest.approx(before)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_gc_freezes_while_serving_and_unfreezes_at_stop(
        tmp_path: Path, loop_kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "GC_FREEZE_INTERVAL", HOUR)  # the periodic freeze by hand
    port = free_port()
    with InProcessServer(_config(tmp_path, port), loop_kind) as srv, RelayClient(port) as c:
        at_start = gc.get_freeze_count()
        assert at_start > 0  # the start-up heap is out of every collection
        kept = [[i] for i in range(5000)]  # tracked containers, alive across the freeze
        srv.call_soon(srv.server._gc_freeze)
        assert gc.get_freeze_count() >= at_start + len(kept) // 2
        offer, ack = c.dora(mac(1), 0x300)  # frozen or not, objects are still freed and used
        assert dhcp_options(ack)["message-type"] == 5 and ack.yiaddr == offer.yiaddr
        srv.stop()
        assert gc.get_freeze_count() == 0
        assert len(kept) == 5000


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_read_pace_zero_keeps_every_socket_in_epoll(
        tmp_path: Path, loop_kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # `server.read-pace-ms = 0`: no pacing at all, whatever the built-in default.
    _never_by_itself(monkeypatch)
    port = free_port()
    cfg = _config(tmp_path, port, "read-pace-ms = 0")
    assert cfg.server.read_pace_ms == 0
    with InProcessServer(cfg, loop_kind) as srv, RelayClient(port) as c:
        for i in (1, 2, 3):
            offer, ack = c.dora(mac(i), 0x300 + i)
            assert dhcp_options(ack)["message-type"] == 5 and ack.yiaddr == offer.yiaddr
            assert _state(srv)[:2] == (False, False)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_reload_to_pace_zero_returns_a_paced_socket_to_epoll(
        tmp_path: Path, loop_kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _never_by_itself(monkeypatch)
    port = free_port()
    with InProcessServer(_config(tmp_path, port), loop_kind) as srv, RelayClient(port) as c:
        c.exchange("discover", mac(1), 0x401)
        assert _state(srv)[:2] == (True, True)
        srv.call_soon(srv.server.reload, _config(tmp_path, port, "read-pace-ms = 0"))
        # The tick that was pending reads nothing; with the pace off it must not leave the
        # socket out of epoll.
        _tick(srv)
        assert _state(srv)[:2] == (False, False)
        offer = c.exchange("discover", mac(2), 0x402)
        assert dhcp_options(offer)["message-type"] == 2
        assert _state(srv)[:2] == (False, False)


def test_pace_for_aims_at_the_target_within_its_bounds() -> None:
    target, shortest = service.PACE_TARGET, service.MIN_PACE
    assert service.pace_for(0.0, 0.002) == 0.002  # rate unknown: the longest pace
    assert service.pace_for(6000.0, 0.002) == 0.002  # 3,000 DORA/s: capped at the longest
    assert service.pace_for(target * 1000.0, 0.002) == pytest.approx(0.001)
    assert service.pace_for(22_000.0, 0.002) == pytest.approx(target / 22_000.0)  # 11,000/s
    assert service.pace_for(target * 10**7, 0.002) == shortest  # never below the shortest
    assert service.pace_for(1.0, shortest / 2) == shortest / 2  # a longest under it is kept
    for rate in (1.0, 50.0, 999.0, 12_345.0, 10**7):
        assert shortest <= service.pace_for(rate, 0.004) <= 0.004


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_pace_follows_the_arrival_rate(tmp_path: Path, loop_kind: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The next tick is PACE_TARGET datagrams away at the socket's measured arrival rate (a
    moving average), up to the longest pace. The rate is made slow here (last read moved a
    second back) so that the paces are seconds long and the check tolerates any machine."""
    monkeypatch.setattr(endpoints, "READ_PACE", HOUR)
    monkeypatch.setattr(endpoints, "PACE_TARGET", 16)
    port = free_port()
    with InProcessServer(_config(tmp_path, port), loop_kind) as srv, RelayClient(port) as c:
        def after(seconds_back: float, xids: range) -> tuple[float, float]:
            """Send ``xids``, pretend the last read was ``seconds_back`` ago, tick; returns
            (rate estimate, seconds to the next tick)."""
            for x in xids:  # they wait in the socket: nothing reads it before the tick
                c.send_raw(c.build("discover", mac(x), x))

            def step() -> tuple[float, float]:
                ep = _endpoint(srv)
                ep.last_read -= seconds_back
                ep.timer.disarm()
                srv.server._on_pace(ep)
                return ep.rate, ep.timer.remaining()
            return srv.call_soon(step)  # type: ignore[no-any-return]

        c.exchange("discover", mac(1), 1)  # from epoll: paced, rate unknown
        assert srv.call_soon(lambda: (_endpoint(srv).paced, _endpoint(srv).rate)) == (True, 0.0)
        rate, wait = after(1.0, range(0x10, 0x18))  # 8 datagrams in ~1 s
        assert 7.0 <= rate <= 8.0
        assert 1.9 <= wait <= 2.0 + 0.3  # 16 datagrams at 8/s
        rate2, wait2 = after(0.5, range(0x20, 0x28))  # 8 in ~0.5 s: 16/s, averaged in
        assert rate + 0.25 * (14.0 - rate) <= rate2 <= rate + 0.25 * (16.0 - rate)
        assert 16 / rate2 - 0.05 <= wait2 <= 16 / rate2 + 0.3
        for x in [*range(0x10, 0x18), *range(0x20, 0x28)]:
            assert dhcp_options(c.recv(x))["message-type"] == 2


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_pace_timer_readiness_without_expiry(tmp_path: Path, loop_kind: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A timer readiness whose expiry was already consumed or reset is skipped while a tick is
    still to come, and reads at once when none is (the socket is out of epoll: never stuck)."""
    _never_by_itself(monkeypatch)
    port = free_port()
    with InProcessServer(_config(tmp_path, port), loop_kind) as srv, RelayClient(port) as c:
        c.exchange("discover", mac(1), 0x501)
        assert _state(srv) == (True, True, 1)
        c.send_raw(c.build("discover", mac(2), 0x502))
        srv.call_soon(srv.server._on_pace_timer, _endpoint(srv))  # armed, an hour to go
        assert _state(srv) == (True, True, 1)  # skipped: the tick is still to come

        def lose_the_tick() -> None:
            ep = _endpoint(srv)
            ep.timer.disarm()
            srv.server._on_pace_timer(ep)
        srv.call_soon(lose_the_tick)  # no tick to come: read now
        assert dhcp_options(c.recv(0x502))["message-type"] == 2
        assert _state(srv) == (True, True, 2)


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_the_rate_outlives_a_short_return_to_epoll(tmp_path: Path, loop_kind: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A tick that finds the socket empty puts it back in epoll; the next datagram within
    PACE_MEMORY resumes pacing at the rate measured before, not at the longest pace (a bursty
    sender empties the socket between bursts: restarting at the longest pace each time made
    the OFFER p90 the whole 2 ms). Past PACE_MEMORY the rate is unknown again."""
    monkeypatch.setattr(endpoints, "READ_PACE", HOUR)
    monkeypatch.setattr(endpoints, "PACE_TARGET", 16)
    port = free_port()
    with InProcessServer(_config(tmp_path, port), loop_kind) as srv, RelayClient(port) as c:
        c.exchange("discover", mac(1), 1)  # from epoll: paced, rate unknown

        def measured() -> float:
            ep = _endpoint(srv)
            ep.rate = 8.0  # as if measured: 16 datagrams are 2 s away
            ep.timer.disarm()
            srv.server._on_pace(ep)  # finds nothing: back to epoll
            return ep.rate
        assert srv.call_soon(measured) == 8.0
        assert _state(srv)[:2] == (False, False)
        c.exchange("discover", mac(2), 2)  # from epoll again, at once
        paced, rate, wait = srv.call_soon(lambda: (_endpoint(srv).paced, _endpoint(srv).rate,
                                                   _endpoint(srv).timer.remaining()))
        assert paced and rate > 0.0 and wait < 60.0  # not the hour-long longest pace

        def stale() -> None:
            ep = _endpoint(srv)
            ep.timer.disarm()
            srv.server._on_pace(ep)  # empty: back to epoll
            ep.last_read -= endpoints.PACE_MEMORY + 1.0
        srv.call_soon(stale)
        c.exchange("discover", mac(3), 3)
        assert srv.call_soon(lambda: (_endpoint(srv).paced, _endpoint(srv).rate)) == (True, 0.0)
