"""The HA service against a partner played by a small aiohttp listener (as kea-ha.md's captures
did with a Python listener): heartbeats on their own keep-alive connection, the start-up sync
(dhcp-disable before each page, pages from "start" then after the last address, the notify),
lease updates one per lease to a Kea-like partner and batched to a fastdhcp-like one, and Kea's
treatment of a partner that rejects an update or does not answer."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from fastdhcp.control.protocol import Answer, Request, Result, empty, success
from fastdhcp.ha import messages as m
from fastdhcp.ha.config import HAConfig, parse
from fastdhcp.ha.service import HAService
from fastdhcp.ha.state import HAState
from tests.ha_helpers import Listener, wait_for
from tests.service_helpers import free_tcp_port

S = HAState


def conf(port: int, **params: Any) -> HAConfig:
    raw: dict[str, Any] = {
        "this-server-name": "server1", "mode": "load-balancing",
        "heartbeat-delay": 100, "max-response-delay": 400, "max-ack-delay": 2000,
        "max-unacked-clients": 0, "sync-page-limit": 3,
        "peers": [{"name": "server1", "url": "http://127.0.0.1:1/", "role": "primary"},
                  {"name": "server2", "url": f"http://127.0.0.1:{port}/",
                   "role": "secondary"}]}
    raw.update({k.replace("_", "-"): v for k, v in params.items()})
    problems: list[str] = []
    c = parse(raw, lambda p, v, r: problems.append(f"{p}: {r}"), lambda *a: None)
    assert c is not None, problems
    return c


def lease_json(n: int) -> dict[str, Any]:
    return {"client-id": f"01:02:aa:00:00:00:{n:02x}", "cltt": 1796532750, "fqdn-fwd": False,
            "fqdn-rev": False, "hostname": f"h{n}", "hw-address": f"02:aa:00:00:00:{n:02x}",
            "ip-address": f"198.18.0.{100 + n}", "state": 0, "subnet-id": 1,
            "valid-lft": 3600}


class FakePartner:
    """Kea's side of the conversation, scripted: its state, its leases, its update answers."""

    def __init__(self, leases: int = 7, batch: bool = False) -> None:
        self.state = "ready"
        self.leases = [lease_json(n) for n in range(leases)]
        self.batch = batch
        self.update_result = Result.SUCCESS
        self.update_delay = 0.0
        self.disabled = 0
        #: list-commands answers result 1 this many times first (a multi-worker partner
        #: whose workers are still starting)
        self.list_errors = 0

    async def dispatch(self, req: Request) -> Answer:
        a = req.arguments or {}
        if req.command == "ha-heartbeat":
            return m.heartbeat_answer(S(self.state), __import__("time").time(), ("server2",),
                                      0)
        if req.command == "dhcp-disable":
            self.disabled += 1
            return success(f"DHCPv4 service disabled for {a['max-period']} seconds")
        if req.command == "lease4-get-page":
            start = -1 if a["from"] == "start" else int(ipaddress.IPv4Address(a["from"]))
            out = [x for x in self.leases
                   if int(ipaddress.IPv4Address(x["ip-address"])) > start][:a["limit"]]
            if not out:
                return empty("0 IPv4 lease(s) found.", {"count": 0, "leases": []})
            return success(f"{len(out)} IPv4 lease(s) found.", {"count": len(out),
                                                                 "leases": out})
        if req.command == "ha-sync-complete-notify":
            return success("Server successfully notified about the synchronization "
                           "completion.")
        if req.command == "list-commands":
            if self.list_errors:
                self.list_errors -= 1
                return Answer(Result.ERROR, "worker 0: not running (Connection refused)")
            names = ["ha-heartbeat", "lease4-update"] + ([m.BATCH_COMMAND] if self.batch
                                                         else [])
            return success(arguments=names)
        if req.command in ("lease4-update", "lease4-del", m.BATCH_COMMAND):
            await asyncio.sleep(self.update_delay)
            if self.update_result != Result.SUCCESS:
                return Answer(self.update_result, "forced error")
            if req.command == m.BATCH_COMMAND:
                return success("applied", {"failed-leases": []})
            return success("IPv4 lease updated.")
        return Answer(Result.UNSUPPORTED, f"'{req.command}' command not supported.")


class Host:
    def __init__(self) -> None:
        self.pages: list[list[m.HALease]] = []

    async def apply_leases(self, updated: list[m.HALease],
                           deleted: list[m.HALease]) -> list[m.BatchResult]:
        self.pages.append(updated)
        return []

    async def apply_synced(self, page: list[m.HALease]) -> list[m.BatchResult]:
        return await self.apply_leases(page, [])


async def _pair(partner: FakePartner, **params: Any) -> tuple[HAService, Listener, Host]:
    port = free_tcp_port()
    lst = Listener(partner.dispatch, "127.0.0.1", port)
    await lst.start()
    host = Host()
    svc = HAService(conf(port, **params), host)
    await svc.start()
    return svc, lst, host


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_startup_sync_pages_then_load_balancing() -> None:
    async def body() -> None:
        partner = FakePartner(leases=7)
        svc, lst, host = await _pair(partner)
        try:
            await wait_for(lambda: svc.state is S.LOAD_BALANCING, 5, "load-balancing")
            # 7 leases at limit 3: pages of 3, 3, 1, a dhcp-disable before each, then notify
            sync = [c for c in lst.commands() if c not in ("ha-heartbeat", "list-commands")]
            assert sync[:7] == ["dhcp-disable", "lease4-get-page"] * 3 + [
                "ha-sync-complete-notify"], sync
            froms = [r["arguments"]["from"] for r in lst.requests
                     if r["command"] == "lease4-get-page"]
            assert froms == ["start", "198.18.0.102", "198.18.0.105"]
            dis = next(r for r in lst.requests if r["command"] == "dhcp-disable")
            assert dis == {"arguments": {"max-period": 60, "origin": "ha-partner"},
                           "command": "dhcp-disable", "service": ["dhcp4"]}
            assert [len(p) for p in host.pages] == [3, 3, 1]
            got = [x.page_json() for p in host.pages for x in p]
            assert got == partner.leases  # stored exactly as served
            assert all(r["service"] == ["dhcp4"] for r in lst.requests)
            # heartbeats on one connection, sync on another (two source ports)
            assert len(lst.peers) == 2, lst.peers
            assert [t.new for t in svc.transitions] == [S.SYNCING, S.READY,
                                                        S.LOAD_BALANCING]
        finally:
            await svc.stop()
            await lst.stop()
    run(body())


def test_a_partner_that_could_not_list_its_commands_is_asked_again() -> None:
    """list-commands answered with an error (a multi-worker partner's workers starting) says
    nothing of the partner: it is asked again, not taken for Kea until contact is lost."""
    async def body() -> None:
        partner = FakePartner(leases=0, batch=True)
        partner.list_errors = 2
        svc, lst, host = await _pair(partner)
        try:
            await wait_for(lambda: svc.state is S.LOAD_BALANCING, 5, "load-balancing")
            await wait_for(lambda: partner.list_errors == 0
                           and sum(r["command"] == "list-commands" for r in lst.requests) >= 3,
                           5, "list-commands asked again")
            n0 = len(lst.requests)
            leases = [m.lease_from_json(lease_json(n)) for n in range(3)]
            assert await svc.lease_changed(leases) == frozenset()
            sent = [r["command"] for r in lst.requests[n0:]
                    if r["command"] not in ("ha-heartbeat", "list-commands")]
            assert sent == [m.BATCH_COMMAND]
            assert svc.alloc_share == 0  # a fastdhcp partner: allocation shares
        finally:
            await svc.stop()
            await lst.stop()
    run(body())


def test_updates_per_lease_to_kea_batched_to_fastdhcp() -> None:
    async def body() -> None:
        for batch in (False, True):
            partner = FakePartner(leases=0, batch=batch)
            svc, lst, host = await _pair(partner)
            try:
                await wait_for(lambda s=svc: s.state is S.LOAD_BALANCING,  # type: ignore[misc]
                               5, "load-balancing")
                leases = [m.lease_from_json(lease_json(n)) for n in range(4)]
                n0 = len(lst.requests)
                refused = await svc.lease_changed(leases[:3], leases[3:])
                assert refused == frozenset()
                sent = [r["command"] for r in lst.requests[n0:]
                        if r["command"] not in ("ha-heartbeat", "list-commands")]
                if batch:
                    assert sent == [m.BATCH_COMMAND]
                else:
                    assert sorted(sent) == ["lease4-del"] + ["lease4-update"] * 3
                    upd = next(r for r in lst.requests[n0:] if r["command"] ==
                               "lease4-update")
                    assert upd["arguments"]["force-create"] is True
                    assert "expire" in upd["arguments"] and "cltt" not in upd["arguments"]
            finally:
                await svc.stop()
                await lst.stop()
    run(body())


def test_ack_waits_for_the_partner_and_a_rejected_update_gets_no_ack() -> None:
    async def body() -> None:
        partner = FakePartner(leases=0)
        svc, lst, host = await _pair(partner, heartbeat_delay=2000, max_response_delay=6000)
        try:
            await wait_for(lambda: svc.state is S.LOAD_BALANCING, 8, "load-balancing")
            lease = m.lease_from_json(lease_json(1))
            partner.update_delay = 0.3
            t0 = asyncio.get_running_loop().time()
            assert await svc.lease_changed([lease]) == frozenset()
            assert asyncio.get_running_loop().time() - t0 >= 0.3  # held for the answer
            partner.update_delay = 0.0
            partner.update_result = Result.ERROR
            assert await svc.lease_changed([lease]) == frozenset({lease.ip})
            assert svc.state is S.COMMUNICATION_RECOVERY
            # in communication-recovery: queued, ACK at once
            partner.update_result = Result.SUCCESS
            assert await svc.lease_changed([lease]) == frozenset()
            svc.poke()
            await wait_for(lambda: svc.state is S.LOAD_BALANCING, 5, "back to LB")
            assert lst.commands()[-2:].count("lease4-update") >= 1  # the backlog went out
        finally:
            await svc.stop()
            await lst.stop()
    run(body())


def test_partner_gone_is_partner_down_and_counts_unsent() -> None:
    async def body() -> None:
        partner = FakePartner(leases=0)
        svc, lst, host = await _pair(partner)
        try:
            await wait_for(lambda: svc.state is S.LOAD_BALANCING, 5, "load-balancing")
            await lst.stop()  # the partner dies
            await wait_for(lambda: svc.state is S.PARTNER_DOWN, 5, "partner-down")
            assert svc.machine.scopes() == ("server1", "server2")
            st = svc.status()[0]["ha-servers"]["remote"]  # type: ignore[index]
            assert st["communication-interrupted"] is True
            lease = m.lease_from_json(lease_json(1))
            assert await svc.lease_changed([lease]) == frozenset()
            assert svc.heartbeat_answer().arguments["unsent-update-count"] == 1
        finally:
            await svc.stop()
    run(body())


def test_backlog_does_not_outlive_a_resync_and_what_queues_during_the_flush_goes() -> None:
    """The backlog of one communication-recovery belongs to it: queued, then partner-down and
    back (the partner synced from us), it is dropped, not flushed at the next recovery over the
    newer copies (the split-brain case of tests/interop/test_ha_failover.py: a renewal queued
    before partner-down, flushed after the resync, put an earlier cltt back on the partner).
    A change queued while the flush is in flight goes out before the normal state (left behind
    it would wait for a later recovery and be stale by then)."""
    async def body() -> None:
        partner = FakePartner(leases=0, batch=True)
        orig = partner.dispatch
        down = [False]

        async def maybe(req: Request) -> Answer:
            return Answer(Result.ERROR, "down") if down[0] else await orig(req)
        partner.dispatch = maybe  # type: ignore[method-assign]
        svc, lst, host = await _pair(partner)

        def rows_after(n0: int) -> set[int]:
            return {row[0] for r in lst.requests[n0:] if r["command"] == m.BATCH_COMMAND
                    for row in r["arguments"]["rows"]}

        def batches_after(n0: int) -> int:
            return sum(r["command"] == m.BATCH_COMMAND for r in lst.requests[n0:])

        try:
            await wait_for(lambda: svc.state is S.LOAD_BALANCING, 5, "load-balancing")
            early, fresh, late = (m.lease_from_json(lease_json(n)) for n in (1, 2, 3))
            down[0] = True
            assert await svc.lease_changed([early]) == frozenset({early.ip})
            assert svc.state is S.COMMUNICATION_RECOVERY
            assert await svc.lease_changed([early]) == frozenset()  # queued, ACKed at once
            await wait_for(lambda: svc.state is S.PARTNER_DOWN, 5, "partner-down")
            down[0] = False  # back, ready with the same unsent count: normal at once
            await wait_for(lambda: svc.state is S.LOAD_BALANCING, 5, "load-balancing again")
            n0 = len(lst.requests)
            down[0] = True  # a short outage: communication-recovery, then the flush
            assert await svc.lease_changed([fresh]) == frozenset({fresh.ip})
            assert await svc.lease_changed([fresh]) == frozenset()
            n1 = len(lst.requests)
            partner.update_delay = 0.3
            down[0] = False
            svc.poke()
            await wait_for(lambda: batches_after(n1) > 0, 5, "the flush")
            assert svc.state is S.COMMUNICATION_RECOVERY
            assert await svc.lease_changed([late]) == frozenset()  # queued behind the flush
            await wait_for(lambda: svc.state is S.LOAD_BALANCING, 5, "recovered")
            assert early.ip not in rows_after(n0), "the old backlog was flushed after a resync"
            assert {fresh.ip, late.ip} <= rows_after(n1)
        finally:
            await svc.stop()
            await lst.stop()
    run(body())


@pytest.mark.parametrize("reply", ["bogus-state", "no-date"])
def test_bad_heartbeat_answers_count_as_failures(reply: str) -> None:
    async def body() -> None:
        partner = FakePartner(leases=0)
        orig = partner.dispatch

        async def bad(req: Request) -> Answer:
            if req.command == "ha-heartbeat":
                if reply == "bogus-state":
                    return success("x", {"date-time": "Sun, 06 Dec 2026 04:50:54 GMT",
                                         "state": "bogus-state"})
                return success("x", {"state": "ready"})
            return await orig(req)
        partner.dispatch = bad  # type: ignore[method-assign]
        svc, lst, host = await _pair(partner)
        try:
            # WAITING -> PARTNER-DOWN once max-response-delay passed (kea-ha.md exp1_B)
            await wait_for(lambda: svc.state is S.PARTNER_DOWN, 5, "partner-down")
            assert svc.transitions[0].old is S.WAITING
            assert "lease4-get-page" not in lst.commands()
        finally:
            await svc.stop()
            await lst.stop()
    run(body())


@pytest.mark.parametrize("wait", [False, True])
def test_backup_gets_every_update(wait: bool) -> None:
    async def body() -> None:
        partner, backup = FakePartner(leases=0), FakePartner(leases=0)
        backup.update_result = Result.ERROR
        bport = free_tcp_port()
        blst = Listener(backup.dispatch, "127.0.0.1", bport)
        await blst.start()
        port = free_tcp_port()
        lst = Listener(partner.dispatch, "127.0.0.1", port)
        await lst.start()
        c = conf(port, wait_backup_ack=wait)
        c = conf(port, wait_backup_ack=wait, peers=[
            {"name": p.name, "url": p.url, "role": p.role.value} for p in c.peers] + [
            {"name": "server3", "url": f"http://127.0.0.1:{bport}/", "role": "backup"}])
        svc = HAService(c, Host())
        await svc.start()
        try:
            await wait_for(lambda: svc.state is S.LOAD_BALANCING, 5, "load-balancing")
            lease = m.lease_from_json(lease_json(1))
            refused = await svc.lease_changed([lease])
            # the backup refused it: the ACK is held back only with wait-backup-ack
            assert refused == (frozenset({lease.ip}) if wait else frozenset())
            await wait_for(lambda: "lease4-update" in blst.commands(), 2, "backup update")
            assert "ha-heartbeat" not in blst.commands()  # a backup is no partner
            assert svc.state is S.LOAD_BALANCING  # a backup's refusal is no partner failure
        finally:
            await svc.stop()
            await lst.stop()
            await blst.stop()
    run(body())


def test_request_headers_and_basic_auth(tmp_path: Any) -> None:
    """What Kea sends (kea-ha.md §1): Host without the port, JSON content type, no
    User-Agent; with basic-auth-user the password file's first line."""
    async def body() -> None:
        pw = tmp_path / "pw"
        pw.write_text("s3cret\nignored\n")
        partner = FakePartner(leases=0)
        port = free_tcp_port()
        lst = Listener(partner.dispatch, "127.0.0.1", port)
        await lst.start()
        c = conf(port)
        peers = [{"name": p.name, "url": p.url, "role": p.role.value} for p in c.peers]
        peers[1].update({"basic-auth-user": "ha", "basic-auth-password-file": str(pw)})
        svc = HAService(conf(port, peers=peers), Host())
        await svc.start()
        try:
            await wait_for(lambda: len(lst.headers) >= 2, 5, "requests")
            h = lst.headers[0]
            assert h["Host"] == "127.0.0.1"
            assert h["Content-Type"] == "application/json"
            assert "User-Agent" not in h
            import base64
            assert h["Authorization"] == "Basic " + base64.b64encode(b"ha:s3cret").decode()
        finally:
            await svc.stop()
            await lst.stop()
    run(body())


def _pki(tmp: Any) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (openssl CLI)."""
    import subprocess

    def run_ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)
    run_ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=ha-test-ca")
    (tmp / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        run_ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={name}")
        run_ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "ext.cnf")
    return {k: str(tmp / k) for k in ("ca.pem", "server.pem", "server.key", "client.pem",
                                     "client.key")}


def test_tls_with_a_client_certificate(tmp_path: Any) -> None:
    """https:// peer: the partner's certificate checked against trust-anchor, ours presented
    (the partner requires one)."""
    import ssl

    from aiohttp import web

    pki = _pki(tmp_path)
    (tmp_path / "other").mkdir()
    pki2 = _pki(tmp_path / "other")

    async def body() -> None:
        partner = FakePartner(leases=0)
        seen: list[Any] = []

        async def handle(request: web.Request) -> web.Response:
            seen.append(request.transport.get_extra_info("peercert")
                        if request.transport else None)
            from fastdhcp.control.protocol import parse_request
            answer = await partner.dispatch(parse_request(await request.json()))
            return web.json_response([answer.to_json()])
        sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki["ca.pem"])
        sctx.load_cert_chain(pki["server.pem"], pki["server.key"])
        sctx.verify_mode = ssl.CERT_REQUIRED
        app = web.Application()
        app.router.add_post("/", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_tcp_port()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=sctx).start()
        c = conf(port)
        peers = [{"name": p.name, "url": p.url, "role": p.role.value} for p in c.peers]
        peers[1].update({"url": f"https://127.0.0.1:{port}/", "trust-anchor": pki["ca.pem"],
                         "cert-file": pki["client.pem"], "key-file": pki["client.key"]})
        svc = HAService(conf(port, peers=peers, sync_leases=False), Host())
        await svc.start()
        try:
            await wait_for(lambda: svc.state is S.LOAD_BALANCING, 5, "load-balancing")
            assert seen and seen[0] is not None  # our client certificate was presented
            assert dict(x[0] for x in seen[0]["subject"])["commonName"] == "client"
            # a trust anchor that did not sign the partner's certificate: no contact at all
            peers[1]["trust-anchor"] = pki2["ca.pem"]
            bad = HAService(conf(port, peers=peers, sync_leases=False), Host())
            await bad.start()
            try:
                await asyncio.sleep(0.6)
                assert bad.state is S.PARTNER_DOWN or bad.state is S.WAITING
                assert bad.machine.partner_state is S.UNAVAILABLE
                assert bad.status()[0]["ha-servers"]["remote"]["in-touch"] is False  # type: ignore[index]
            finally:
                await bad.stop()
        finally:
            await svc.stop()
            await runner.cleanup()
    run(body())
