"""The HA layer in the running server's packet path (docs/high-availability.md): a real server
on loopback, relayed DORA, a scripted partner (tests/ha_helpers.Listener) that reports
load-balancing and answers lease updates as told.

- the scope filter: the partner's clients get no OFFER; ours do;
- the ACK gate: an ACK leaves only after the partner acknowledged the lease's update (one
  lease4-update per lease to a Kea-like partner, one batch per commit to a fastdhcp-like one);
  a rejected update means no ACK (Kea's treatment), and the lease is still durable here;
- partner-down: the partner gone, every client is served and ACKed after the local commit
  alone, each change counted in unsent-update-count.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from fastdhcp._hascope import lb_hash
from fastdhcp.config import loads
from fastdhcp.control.protocol import Answer, Caller, Request, Result, success
from fastdhcp.ha import messages as m
from fastdhcp.ha.state import HAState
from fastdhcp.leases import LeaseState
from tests.control_helpers import control_config_text
from tests.ha_helpers import Listener, ha_toml
from tests.service_helpers import (
    InProcessServer,
    RelayClient,
    dhcp_options,
    free_port,
    free_tcp_port,
    mac,
)

pytestmark = pytest.mark.service

S = HAState


class Partner:
    """server2, scripted: its state, and what it answers to lease updates."""

    def __init__(self, batch: bool) -> None:
        self.state = S.LOAD_BALANCING
        self.batch = batch
        self.update_result = Result.SUCCESS
        self.updates: list[dict[str, Any]] = []  # every lease the server sent, in order
        self.deletes: list[dict[str, Any]] = []

    async def dispatch(self, req: Request) -> Answer:
        a: Any = req.arguments or {}
        if req.command == "ha-heartbeat":
            return m.heartbeat_answer(self.state, time.time(), ("server2",), 0)
        if req.command == "list-commands":
            return success(arguments=["ha-heartbeat", "lease4-update", "lease4-del"]
                           + ([m.BATCH_COMMAND] if self.batch else []))
        if req.command == "lease4-update":
            self.updates.append(a)
            if self.update_result != Result.SUCCESS:
                return Answer(self.update_result, "forced error")
            return success("IPv4 lease updated.")
        if req.command == "lease4-del":
            self.deletes.append(a)
            return success("IPv4 lease deleted.")
        if req.command == m.BATCH_COMMAND:
            # the rows decoded as the receiver does, kept as Kea's maps (what the other
            # branch records) so that the checks read the same for both partners
            updated, deleted = m.parse_batch_args(a)
            self.updates.extend(x.update_arguments() for x in updated)
            self.deletes.extend(x.delete_arguments() for x in deleted)
            if self.update_result != Result.SUCCESS:
                return Answer(self.update_result, "forced error")
            return success("applied", {"failed-leases": []})
        return Answer(Result.UNSUPPORTED, f"'{req.command}' command not supported.")


def pair_text(tmp: Path, port: int, http: int, own: int, metrics: str | None = None,
              heartbeat_delay: int = 100) -> str:
    """server1's config: DHCP on ``port``, partner server2 at ``http``."""
    peers = [("server1", f"http://127.0.0.1:{own}/", "primary"),
             ("server2", f"http://127.0.0.1:{http}/", "secondary")]
    return control_config_text(tmp / "db", port, tmp / "ctl.sock", metrics=metrics) + ha_toml(
        "server1", "load-balancing", peers, heartbeat_delay=heartbeat_delay,
        max_response_delay=400, max_ack_delay=1000, max_unacked_clients=0, sync_leases=False)


@contextmanager
def served(tmp: Path, partner: Partner, metrics: str | None = None,
           text: Callable[[int, int, int], str] | None = None
           ) -> Iterator[tuple[InProcessServer, Listener, int]]:
    port, http, own = free_port(), free_tcp_port(), free_tcp_port()
    with ExitStack() as stack:
        lst = Listener(partner.dispatch, "127.0.0.1", http)
        srv = stack.enter_context(InProcessServer(loads(
            text(port, http, own) if text else pair_text(tmp, port, http, own, metrics))))
        srv.call(lst.start())
        stack.callback(lambda: srv.call(lst.stop()))
        yield srv, lst, port


def wait_state(srv: InProcessServer, want: HAState, timeout: float = 8.0) -> None:
    async def poll() -> None:
        end = asyncio.get_running_loop().time() + timeout
        ha = srv.server.ha
        assert ha is not None
        while ha.state is not want:
            assert asyncio.get_running_loop().time() < end, f"{ha.state} instead of {want}"
            await asyncio.sleep(0.02)
    srv.call(poll(), timeout + 5)


def macs(scope: int, n: int, start: int = 0) -> list[bytes]:
    """n MACs the load-balancing hash puts in server ``scope`` (0 primary, 1 secondary)."""
    out = []
    i = start
    while len(out) < n:
        if lb_hash(mac(i)) % 2 == scope:
            out.append(mac(i))
        i += 1
    return out


def _ip(n: int | str) -> str:
    return str(ipaddress.IPv4Address(n))


@pytest.mark.parametrize("batch", [False, True], ids=["kea-like", "fastdhcp-like"])
def test_scope_filter_and_ack_gate(tmp_path: Path, batch: bool) -> None:
    partner = Partner(batch)
    with served(tmp_path, partner) as (srv, _lst, port), RelayClient(port, timeout=1.5) as rc:
        wait_state(srv, S.LOAD_BALANCING)
        ours, theirs = macs(0, 4), macs(1, 2)
        # ours: DORA, and the partner heard of each lease before its ACK
        for i, hw in enumerate(ours[:2]):
            _, ack = rc.dora(hw, 0x100 + 16 * i)
            assert ack.yiaddr != "0.0.0.0"
            got = [u for u in partner.updates if u["ip-address"] == ack.yiaddr]
            assert got and got[-1]["hw-address"] == hw.hex(":"), partner.updates
        # theirs: dropped before the engine, silently, counted
        for i, hw in enumerate(theirs):
            with pytest.raises(TimeoutError):
                rc.exchange("discover", hw, 0x200 + i)
        assert srv.server.metrics.dropped.get("ha-not-for-us") == len(theirs)
        # a rejected update: the OFFER comes, the ACK does not (the lease is durable here)
        partner.update_result = Result.ERROR
        offer = rc.exchange("discover", ours[2], 0x300)
        with pytest.raises(TimeoutError):
            rc.exchange("request", ours[2], 0x301, options=[
                ("server_id", dhcp_options(offer)["server_id"]),
                ("requested_addr", offer.yiaddr)])
        assert srv.server.metrics.dropped.get("ha-update-failed", 0) >= 1
        assert any(u["ip-address"] == offer.yiaddr for u in partner.updates)
        assert srv.server.store.get(int(ipaddress.IPv4Address(offer.yiaddr))) is not None


def scrape(mport: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10).read()
    out = {}
    for line in text.decode().splitlines():
        if line.startswith("fastdhcp_ha_"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def test_partner_down_acks_after_the_local_commit_alone(tmp_path: Path) -> None:
    partner = Partner(batch=True)
    mport = free_tcp_port()
    with served(tmp_path, partner, f"127.0.0.1:{mport}") as (srv, lst, port), \
            RelayClient(port, timeout=2.0) as rc:
        wait_state(srv, S.LOAD_BALANCING)
        _, ack = rc.dora(macs(0, 1, start=500)[0], 0x4F0)  # one update: its round trip
        g = scrape(mport)
        assert g['fastdhcp_ha_state{state="load-balancing"}'] == 1
        assert g['fastdhcp_ha_state{state="waiting"}'] == 0
        assert g['fastdhcp_ha_partner_state{state="load-balancing"}'] == 1
        assert g["fastdhcp_ha_unsent_updates"] == 0
        assert 0 < g["fastdhcp_ha_update_rtt_seconds"] < 5
        srv.call(lst.stop())  # the partner is gone
        wait_state(srv, S.PARTNER_DOWN)
        ha = srv.server.ha
        assert ha is not None and ha.filter.mask == 0b11
        before = ha.machine.unsent_update_count
        seen = len(partner.updates)
        leased = set()
        for i, hw in enumerate(macs(0, 2) + macs(1, 2, start=100)):  # both scopes now
            _, ack = rc.dora(hw, 0x400 + 16 * i)
            leased.add(ack.yiaddr)
        assert len(leased) == 4
        assert ha.machine.unsent_update_count == before + 4
        assert len(partner.updates) == seen  # nothing was sent
        g = scrape(mport)
        assert g['fastdhcp_ha_state{state="partner-down"}'] == 1
        assert g['fastdhcp_ha_partner_state{state="unavailable"}'] == 1
        assert g["fastdhcp_ha_unsent_updates"] == before + 4


@pytest.mark.parametrize("batch", [False, True], ids=["kea-like", "fastdhcp-like"])
def test_release_and_decline_reach_the_partner(tmp_path: Path, batch: bool) -> None:
    partner = Partner(batch)
    with served(tmp_path, partner) as (srv, _lst, port), RelayClient(port, timeout=1.5) as rc:
        wait_state(srv, S.LOAD_BALANCING)
        a, b = macs(0, 2, start=300)
        _, ack_a = rc.dora(a, 0x600)
        _, ack_b = rc.dora(b, 0x610)
        sid = dhcp_options(ack_a)["server_id"]
        rc.send_raw(rc.build("release", a, 0x620, ciaddr=ack_a.yiaddr,
                             options=[("server_id", sid)]))
        rc.send_raw(rc.build("decline", b, 0x630, options=[
            ("server_id", sid), ("requested_addr", ack_b.yiaddr)]))

        async def told() -> None:
            end = asyncio.get_running_loop().time() + 5
            while not (any(d["ip-address"] == ack_a.yiaddr for d in partner.deletes)
                       and any(u["ip-address"] == ack_b.yiaddr and u["state"] == 1
                               for u in partner.updates)):
                assert asyncio.get_running_loop().time() < end, (partner.deletes,
                                                                 partner.updates)
                await asyncio.sleep(0.02)
        srv.call(told(), 10)
        gone = next(d for d in partner.deletes if d["ip-address"] == ack_a.yiaddr)
        assert gone["hw-address"] == a.hex(":")  # the full lease, as Kea deletes it
        dec = [u for u in partner.updates if u["ip-address"] == ack_b.yiaddr][-1]
        assert dec["hw-address"] == "" and "client-id" not in dec  # Kea's declined lease
        assert srv.server.metrics.dropped.get("ha-update-failed", 0) == 0


def test_reload_keeps_the_ha_layer_and_defers_ha_changes(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    partner = Partner(batch=True)
    ports: list[int] = []

    def text(port: int, http: int, own: int) -> str:
        ports[:] = [port, http, own]
        return pair_text(tmp_path, port, http, own)

    with served(tmp_path, partner, text=text) as (srv, _lst, port), \
            RelayClient(port, timeout=1.5) as rc:
        wait_state(srv, S.LOAD_BALANCING)
        server = srv.server
        ha = server.ha
        assert ha is not None
        changed = loads(pair_text(tmp_path, *ports, heartbeat_delay=250))
        with caplog.at_level("WARNING", logger="fastdhcp"):
            result = srv.call_soon(server.apply_config, changed)
        assert result.ok, result
        assert "[high-availability] changes take effect at the next restart" in caplog.text
        assert server.ha is ha and ha.config.heartbeat_delay == 100  # the running one
        # the rebuilt packet path still filters by scope and allocates from the share
        ours, theirs = macs(0, 1, start=700), macs(1, 1, start=700)
        _, ack = rc.dora(ours[0], 0x700)
        assert int(ack.yiaddr.rsplit(".", 1)[1]) % 2 == 0  # the primary's share
        with pytest.raises(TimeoutError):
            rc.exchange("discover", theirs[0], 0x710)


def test_a_partners_batch_applies_what_it_can_and_names_the_rest(tmp_path: Path) -> None:
    """The batched update from a fastdhcp partner goes straight to the engine and one commit
    (no lease4-update per lease) with lease4-update's checks: a lease outside every subnet, or
    with a DNS flag and no hostname, is refused by name in ``failed-leases`` while the rest of
    the batch is stored; a malformed batch is refused whole, nothing applied."""
    partner = Partner(batch=True)
    good = m.HALease(int(ipaddress.IPv4Address("198.18.0.150")), bytes.fromhex("02aa00000001"),
                     3600, int(time.time()), 1, hostname="Good")
    outside = m.HALease(int(ipaddress.IPv4Address("203.0.113.5")), good.hw_address, 3600,
                        good.cltt)
    nameless = m.HALease(good.ip + 1, bytes.fromhex("02aa00000002"), 3600, good.cltt,
                         fqdn_fwd=True)
    caller = Caller("ha", "partner")

    async def send(args: Any) -> Answer:
        return await srv.server.commands.dispatch(srv.server, Request(m.BATCH_COMMAND, args),
                                                  caller)

    with served(tmp_path, partner) as (srv, _lst, _port):
        store = srv.server.store
        answer = srv.call(send(m.batch_request([good, outside, nameless], [])["arguments"]))
        assert answer.result == Result.SUCCESS and answer.text == "1 of 3 IPv4 lease(s) applied."
        failed = {f["ip-address"]: f for f in answer.arguments["failed-leases"]}
        assert set(failed) == {"203.0.113.5", "198.18.0.151"}
        assert failed["203.0.113.5"]["result"] == 1
        assert "failed to find a subnet" in failed["203.0.113.5"]["error-message"]
        assert "No hostname specified" in failed["198.18.0.151"]["error-message"]
        stored = store.get(good.ip)
        assert stored is not None and stored.hostname == "good" and stored.issued == good.cltt
        assert store.get(nameless.ip) is None
        # malformed: result 1 naming the row, nothing of it applied
        later = m.lease_row(m.HALease(good.ip + 2, good.hw_address, 60, good.cltt))
        bad = srv.call(send({"rows": [later, [later[0] + 1, "zz"]]}))
        assert bad.result == Result.ERROR and bad.text.startswith("rows[1]: a row must be")
        assert store.get(good.ip + 2) is None
        # extras stored by lease4-update (a user-context) go when the partner's copy has none
        kea = dict(m.HALease(good.ip + 3, good.hw_address, 3600, good.cltt, 1)
                   .update_arguments(), **{"user-context": {"a": 1}})
        added = srv.call(srv.server.commands.dispatch(srv.server,
                                                      Request("lease4-update", kea), caller))
        assert added.result == Result.SUCCESS and store.extras_get(good.ip + 3) is not None
        plain = m.HALease(good.ip + 3, good.hw_address, 3600, good.cltt + 1, 1)
        assert srv.call(send(m.batch_request([plain], [])["arguments"])).result == 0
        assert store.extras_get(good.ip + 3) is None and store.extras_empty()
        # a delete of the stored lease and of an absent one: both done
        gone = srv.call(send(m.batch_request([], [good, nameless])["arguments"]))
        assert gone.result == Result.SUCCESS and gone.arguments["failed-leases"] == []
        assert store.get(good.ip) is None


def test_a_partners_change_older_than_the_binding_here_is_skipped(tmp_path: Path) -> None:
    """A batched change that arrives after a later copy of the address was stored (a batch
    retransmitted by TCP after the link returned, a stale backlog, behind a resync) is skipped
    and counted as done: an update or a delete whose cltt is before the bound copy's keeps the
    later one (the split-brain case of tests/interop/test_ha_failover.py, where the resynced
    renewal went back to the earlier cltt). A change as recent as the copy (the same second) or
    newer applies, and an ended record (released) does not block a new binding."""
    partner = Partner(batch=True)
    now = int(time.time())
    hw = bytes.fromhex("02aa00000001")
    ip = int(ipaddress.IPv4Address("198.18.0.160"))
    caller = Caller("ha", "partner")

    def lease(cltt: int, host: str, at: int = ip, state: Any = None) -> m.HALease:
        x = m.HALease(at, hw, 3600, cltt, 1, hostname=host)
        return x if state is None else m.HALease(at, b"", 3600, cltt, 1, state=state)

    def send(updated: list[m.HALease], deleted: list[m.HALease]) -> Answer:
        return srv.call(srv.server.commands.dispatch(
            srv.server, Request(m.BATCH_COMMAND, m.batch_request(updated, deleted)["arguments"]),
            caller))

    with served(tmp_path, partner) as (srv, _lst, _port):
        store = srv.server.store
        assert send([lease(now, "later")], []).result == Result.SUCCESS
        # older: an update and a delete, both answered as done, neither applied
        old = send([lease(now - 3, "earlier")], [])
        assert old.result == Result.SUCCESS and old.arguments["failed-leases"] == []
        got = store.get(ip)
        assert got is not None and got.issued == now and got.hostname == "later"
        assert send([], [lease(now - 3, "earlier")]).result == Result.SUCCESS
        assert store.get(ip) is not None
        # the same second, then later: applied
        assert send([lease(now, "same")], []).result == Result.SUCCESS
        got = store.get(ip)
        assert got is not None and got.hostname == "same"
        assert send([], [lease(now + 1, "same")]).result == Result.SUCCESS
        assert store.get(ip) is None
        # a declined copy is a binding too; a stale delete leaves it
        assert send([lease(now + 5, "", state=LeaseState.DECLINED)], []).result == 0
        assert send([], [lease(now + 2, "x")]).result == 0
        got = store.get(ip)
        assert got is not None and got.state == LeaseState.DECLINED
        # an ended record here (released at now + 9) does not block the partner's new binding
        # made at now + 8 (clocks a second apart)
        rel = srv.call(srv.server.commands.dispatch(srv.server, Request("lease4-update", dict(
            lease(now + 9, "gone", ip + 1).update_arguments(), state=2)), caller))
        assert rel.result == Result.SUCCESS
        ended = store.get(ip + 1)
        assert ended is not None and ended.state not in (LeaseState.DEFAULT,
                                                          LeaseState.DECLINED)
        assert send([lease(now + 8, "new", ip + 1)], []).result == Result.SUCCESS
        got = store.get(ip + 1)
        assert got is not None and got.hostname == "new" and got.issued == now + 8
