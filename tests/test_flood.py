"""DISCOVER storms against a running ``fastdhcp serve`` (a child process, loopback only).

One server, phases in order:

0. measure what the server sustains: a short closed-loop DORA run of ``fastdhcp.loadgen``
   through its own relay and subnet, with no limits configured;
1. bind 200 good clients through relay A; turn the defences on by SIGHUP;
2. storm: DISCOVERs from random MACs through relay C at 5x the measured DORA rate (a separate
   process, sendmmsg; on a 2-core machine shared with the server it tops out near 30,000/s,
   so when the server sustains more than ~6,000 DORA/s the storm runs as fast as it can and
   the ratio reached is printed), into a pool left with 56 free addresses. While it runs every good
   client renews (unicast REQUEST with ciaddr, RFC 2131 4.3.2 RENEWING) and then rebinds
   (REQUEST with ciaddr through relay A, REBINDING), retransmitting like a client; every one
   must be ACKed with its own address. The storm relay is cut by its rate limit (counted);
3. the storm's offers expire after offer-lifetime (2 s here): the pool's use falls back to the
   200 bound clients and 56 new clients can bind;
4. a storm from one MAC through relay D: cut by the client limit (counted), while 50 good
   clients rebind through that same relay and are all ACKed, and the relay limit never fires.

Everything is bounded in count and time; nothing asserts a duration.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dhcp import BOOTP, DHCP

from fastdhcp.loadgen import run_load
from tests.config_builder import config_text
from tests.service_helpers import ROOT, ServeProcess, dhcp_options, free_port, free_tcp_port

SERVER = "127.0.0.1"
RELAY_GOOD = "127.0.0.2"  # the good clients' relay
RELAY_STORM = "127.0.0.3"  # random-MAC storm
RELAY_ONE_MAC = "127.0.0.4"  # one-MAC storm + some good clients
RELAY_MEASURE = "127.0.0.5"  # rate measurement, its own subnet
GOOD = 200
POOL_SIZE = 256  # 127.0.100.10 - 127.0.101.9
OFFER_LIFETIME = 2
CLIENT_TABLE = 4096  # small, so that the storm's MACs overflow it
ROUNDS = 30  # retransmissions per request, at most
ROUND_WAIT = 0.3  # seconds a client waits for an answer before retransmitting


def _config(db: Path, port: int, metrics: str, limits: str) -> str:
    return config_text(
        {"listen-addresses": [SERVER], "port": port, "client-port": port + 1,
         "metrics": metrics, "stats-interval": 1,
         "trusted-relays": ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]},
        server_extra=limits,
        lease_database={"path": db, "sync": False},
        global_={"valid-lifetime": 3600, "offer-lifetime": OFFER_LIFETIME},
        subnets=[{"id": 1, "subnet": "127.0.100.0/23", "pools": ["127.0.100.10 - 127.0.101.9"],
                  "relay": [RELAY_GOOD, RELAY_STORM, RELAY_ONE_MAC]},
                 {"id": 2, "subnet": "127.1.0.0/16", "pools": ["127.1.0.10 - 127.1.255.250"],
                  "relay": [RELAY_MEASURE]}])


def _scrape(address: str) -> dict[str, float]:
    """Prometheus text -> {'name{labels}': value}."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def _dropped(m: dict[str, float], reason: str) -> float:
    return m.get(f'fastdhcp_dropped_total{{reason="{reason}"}}', 0.0)


def _discovers(m: dict[str, float]) -> float:
    return m.get('fastdhcp_packets_received_total{type="discover"}', 0.0)


def _pool_used(m: dict[str, float]) -> float:
    return sum(v for k, v in m.items()
               if k.startswith("fastdhcp_subnet_used{") and 'subnet_id="1"' in k)


def _mac(i: int) -> bytes:
    return bytes([0x02, 0x66, 0]) + i.to_bytes(3, "big")


def _request(kind: str, chaddr: bytes, xid: int, *, giaddr: str = "0.0.0.0",
             ciaddr: str = "0.0.0.0", options: list[Any] | None = None) -> bytes:
    opts: list[Any] = [("message-type", kind), *(options or []), "end"]
    hops = 1 if giaddr != "0.0.0.0" else 0
    return bytes(BOOTP(op=1, htype=1, hlen=6, hops=hops, xid=xid, ciaddr=ciaddr, giaddr=giaddr,
                       chaddr=chaddr + b"\0" * 10) / DHCP(options=opts))


def _exchange_all(sock: socket.socket, dest: tuple[str, int],
                  packets: dict[int, bytes]) -> tuple[dict[int, Any], int]:
    """Send every packet; retransmit the unanswered ones every ROUND_WAIT s, at most ROUNDS
    times. Returns ({xid: scapy reply}, datagrams sent)."""
    got: dict[int, Any] = {}
    sent = 0
    for _ in range(ROUNDS):
        missing = [x for x in packets if x not in got]
        if not missing:
            break
        for x in missing:
            sock.sendto(packets[x], dest)
            sent += 1
        deadline = time.monotonic() + ROUND_WAIT
        while len(got) < len(packets):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                break
            pkt = BOOTP(data)
            if pkt.xid in packets and pkt.xid not in got:
                got[pkt.xid] = pkt
    return got, sent


def _msg_type(pkt: Any) -> str:
    t = dhcp_options(pkt).get("message-type")
    names = {2: "offer", 5: "ack", 6: "nak"}
    return names[t] if t in names else str(t)


def _dora(sock: socket.socket, port: int, relay: str, macs: list[bytes],
          xid0: int) -> dict[bytes, str]:
    """Relayed DORA for ``macs``; returns {chaddr: ACKed address}."""
    disc = {xid0 + i: _request("discover", m, xid0 + i, giaddr=relay) for i, m in enumerate(macs)}
    offers, _ = _exchange_all(sock, (SERVER, port), disc)
    reqs = {}
    for xid, offer in offers.items():
        assert _msg_type(offer) == "offer"
        m = macs[xid - xid0]
        reqs[xid + 0x100000] = _request("request", m, xid + 0x100000, giaddr=relay, options=[
            ("server_id", dhcp_options(offer)["server_id"]), ("requested_addr", offer.yiaddr)])
    acks, _ = _exchange_all(sock, (SERVER, port), reqs)
    out = {}
    for xid, ack in acks.items():
        assert _msg_type(ack) == "ack"
        out[macs[xid - 0x100000 - xid0]] = ack.yiaddr
    return out


_STORM = r"""
import json, random, signal, socket, struct, sys, time
from fastdhcp._sockio import DatagramIO, Outgoing
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))  # the test is done: report and exit
server, port, relay, rate, seconds, count, mode = sys.argv[1:8]
port, rate, seconds, count = int(port), float(rate), float(seconds), int(count)
dest = struct.unpack("!I", socket.inet_aton(server))[0]
gi = socket.inet_aton(relay)
rng = random.Random(7)
def discover(chaddr, xid):
    head = struct.pack("!BBBBIHH4s4s4s4s16s", 1, 1, 6, 1, xid, 0, 0, bytes(4), bytes(4),
                       bytes(4), gi, chaddr + bytes(10))
    body = head + bytes(192) + b"\x63\x82\x53\x63" + b"\x35\x01\x01\xff"
    return body + bytes(300 - len(body))
n = min(count, 50000)
if mode == "one":
    pkts = [discover(b"\x02\xee\xee\xee\xee\xee", i) for i in range(n)]
else:
    pkts = [discover(b"\x02" + rng.randbytes(5), i) for i in range(n)]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((relay, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
io = DatagramIO(s)
items = [Outgoing(p, dest, port) for p in pkts]  # prebuilt: the loop only slices
sent = errors = 0
t0 = time.monotonic()
while sent < count and not stop:
    now = time.monotonic()
    if now - t0 >= seconds:
        break
    due = min(int((now - t0) * rate) + 64, count) - sent
    if due <= 0:
        time.sleep(0.0005)
        continue
    off = sent % n
    batch = items[off:off + min(due, 512)]
    errors += len(io.send(batch))
    sent += len(batch)
elapsed = time.monotonic() - t0
print(json.dumps({"sent": sent, "errors": errors, "elapsed": elapsed}))
"""


def _storm(port: int, relay: str, rate: float, seconds: float, count: int,
           mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _STORM, SERVER, str(port), relay, str(rate), str(seconds),
         str(count), mode], stdout=subprocess.PIPE, text=True, cwd=ROOT)


def _storm_result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Stop the storm (if still running) and return its counts."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    return dict(json.loads(out))


def _free_port_pair() -> int:
    """A server port whose next port (the client port, bound on 0.0.0.0 here) is free too."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("0.0.0.0", port + 1))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair")


def _stacks(srv: ServeProcess) -> str:
    """The server's thread stacks (py-spy), for a failure message."""
    if not shutil.which("py-spy"):
        return ""
    return subprocess.run(["py-spy", "dump", "--pid", str(srv.proc.pid)], capture_output=True,
                          text=True, timeout=60).stdout


def _wait_for(pred: Callable[[], bool], timeout: float,
              what: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what() if callable(what) else what
        time.sleep(0.1)


def _one_mac_storm(metrics: str, port: int, relay_d: socket.socket, macs: list[bytes],
                   bound: dict[bytes, str]) -> None:
    # one MAC floods through relay D: the client limit cuts it; good clients
    #    rebinding through the same relay are all served; the relay limit never fires
    before = _scrape(metrics)
    one = _storm(port, RELAY_ONE_MAC, 20_000, 30.0, 600_000, "one")
    try:
        _wait_for(lambda: _dropped(_scrape(metrics), "rate-limit-client")
                  > _dropped(before, "rate-limit-client") or one.poll() is not None,
                  30, "one-MAC storm under way")
        sub = macs[:50]
        rebinds_d = {0x500000 + i: _request("request", m, 0x500000 + i,
                                            ciaddr=bound[m], giaddr=RELAY_ONE_MAC)
                     for i, m in enumerate(sub)}
        rebound_d, _ = _exchange_all(relay_d, (SERVER, port), rebinds_d)
        one_running = one.poll() is None
    finally:
        one_result = _storm_result(one)
    after = _scrape(metrics)
    assert len(rebound_d) == len(sub)
    assert all(_msg_type(a) == "ack" for a in rebound_d.values())
    assert one_running, one_result
    limited = _dropped(after, "rate-limit-client") - _dropped(before, "rate-limit-client")
    # all but the client's burst and rate (20 + 10/s over the storm) were cut; some of
    # the storm may also have been lost in the kernel before the server read it
    received = _discovers(after) - _discovers(before)
    assert received > 100
    assert limited >= received - 20 - 10 * (one_result["elapsed"] + 1)
    assert _dropped(after, "rate-limit-relay") == _dropped(before, "rate-limit-relay")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("defences", [True, False], ids=["limits", "no-limits"])
def test_discover_storm_good_clients_renew_rebind_and_pool_recovers(
        tmp_path: Path, defences: bool) -> None:
    # no-limits: the same storm with every limit off. Bound clients still renew and rebind:
    # a storm of new clients exhausts free addresses, and renewals need none.
    port = _free_port_pair()
    metrics = f"{SERVER}:{free_tcp_port()}"
    cfg_path = tmp_path / "fastdhcp.toml"
    db = tmp_path / "db"
    cfg_path.write_text(_config(db, port, metrics, ""))
    with ServeProcess(cfg_path, tmp_path) as srv:
        assert srv.wait_notify(), srv.log()

        # 0. what the server sustains: closed loop, 1 s or 20,000 exchanges at most
        base = run_load((SERVER, port), RELAY_MEASURE, clients=50_000, duration=1.0,
                        max_exchanges=20_000, timeout=1.0)
        assert base.acks > 0, base.summary()
        sustained = base.exchanges_per_s
        storm_rate = 5 * sustained  # DISCOVERs/s, against DORA exchanges/s

        # 1. 200 good clients bound through relay A (before any limit is on)
        relay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        relay.bind((RELAY_GOOD, port))
        # the renewing clients' side: ACKs to ciaddr:client-port (127.0.100.x is loopback)
        clients = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        clients.bind(("0.0.0.0", port + 1))
        relay_d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        relay_d.bind((RELAY_ONE_MAC, port))
        try:
            macs = [_mac(i) for i in range(GOOD)]
            bound = _dora(relay, port, RELAY_GOOD, macs, 0x1000)
            assert len(bound) == GOOD
            assert len(set(bound.values())) == GOOD

            # defences on: limits sized from the measurement (relay A's 200 rebinds fit its
            # burst; the storm relay gets at most a quarter of the sustained rate through)
            relay_rate = max(500, int(sustained / 4))
            limits = textwrap.dedent(f"""\
                [server.limits]
                client-rate = 10
                client-burst = 20
                client-table-size = {CLIENT_TABLE}
                relay-rate = {relay_rate}
                relay-burst = {relay_rate}
                """)
            if defences:
                cfg_path.write_text(_config(db, port, metrics, limits))
                srv.signal(signal.SIGHUP)
                _wait_for(lambda: _scrape(metrics).get("fastdhcp_reloads_total", 0) >= 1, 30,
                          "reload")

            # 2. random-MAC storm through relay C at 5x sustained, while the good clients renew
            #    and rebind (at most 30 s / 3M datagrams)
            storm_s = 30.0  # at most: the test stops it once the good clients are done
            m0 = _scrape(metrics)
            storm_t0 = time.monotonic()
            storm = _storm(port, RELAY_STORM, storm_rate, storm_s,
                           min(int(storm_rate * storm_s), 3_000_000), "random")
            try:
                _wait_for(lambda: _dropped(_scrape(metrics), "pool-exhausted") > 0
                          or storm.poll() is not None, 30, "storm under way")
                before = _scrape(metrics)
                renews = {0x200000 + i: _request("request", m, 0x200000 + i,
                                                 ciaddr=bound[m])
                          for i, m in enumerate(macs)}
                renewed, renew_sent = _exchange_all(clients, (SERVER, port), renews)
                rebinds = {0x300000 + i: _request("request", m, 0x300000 + i,
                                                  ciaddr=bound[m], giaddr=RELAY_GOOD)
                           for i, m in enumerate(macs)}
                rebound, rebind_sent = _exchange_all(relay, (SERVER, port), rebinds)
                during = _scrape(metrics)
                storm_still_running = storm.poll() is None
                # at least 4 s of storm, so that the relay limit is seen to bind
                time.sleep(max(0.0, 4.0 - (time.monotonic() - storm_t0)))
            finally:
                result = _storm_result(storm)

            diag = {k: v for k, v in _scrape(metrics).items()
                    if k.startswith(("fastdhcp_dropped", "fastdhcp_packets", "fastdhcp_relay"))}
            if len(renewed) < GOOD or len(rebound) < GOOD:
                print(len(renewed), len(rebound), renew_sent, rebind_sent, result)
                for k, v in diag.items():
                    print(k, v)
                print(_stacks(srv), srv.log()[-5000:])
            assert len(renewed) == GOOD and len(rebound) == GOOD
            for xid, ack in renewed.items():
                assert _msg_type(ack) == "ack"
                assert ack.yiaddr == bound[macs[xid - 0x200000]]
            for xid, ack in rebound.items():
                assert _msg_type(ack) == "ack"
                assert ack.yiaddr == bound[macs[xid - 0x300000]]
            # the storm was on while they renewed and rebound (and was cut at its relay)
            assert storm_still_running, result
            after = _scrape(metrics)
            assert _dropped(after, "pool-exhausted") > 0  # the storm used up the pool
            received = _discovers(after) - _discovers(m0)
            summary = (
                f"\n[{'limits' if defences else 'no limits'}] sustained {sustained:.0f} DORA/s; "
                f"storm {result['sent']} DISCOVERs in {result['elapsed']:.1f} s "
                f"({result['sent'] / result['elapsed']:.0f}/s, target {storm_rate:.0f}/s), "
                f"{received:.0f} read by the server; renew sends {renew_sent}, rebind sends "
                f"{rebind_sent} for {GOOD} each; dropped: "
                f"rate-limit-relay {_dropped(after, 'rate-limit-relay'):.0f}, "
                f"pool-exhausted {_dropped(after, 'pool-exhausted'):.0f}, "
                f"rate-limit-client {_dropped(after, 'rate-limit-client'):.0f}")
            print(summary)
            if defences:
                # the storm's MACs went through the client table: full, bounded, evicting (and
                # the good clients, pushed out by it, were still all served above)
                tracked = after['fastdhcp_rate_limit_tracked{limit="client"}']
                assert tracked == CLIENT_TABLE
                assert after['fastdhcp_rate_limit_evictions_total{limit="client"}'] > 10_000
                assert (_dropped(during, "rate-limit-relay")
                        > _dropped(before, "rate-limit-relay"))
                # token bucket arithmetic: the storm relay got at most its burst plus its rate
                # into the engine; everything else the server read from it was cut (some may
                # have been lost in the kernel first: those the server never saw)
                admitted_max = relay_rate + relay_rate * (result["elapsed"] + 1)
                assert received > admitted_max  # the limit really was hit
                cut = (_dropped(after, "rate-limit-relay") - _dropped(m0, "rate-limit-relay")
                       + _dropped(after, "rate-limit-client")
                       - _dropped(m0, "rate-limit-client"))
                assert cut >= received - admitted_max
            else:
                assert _dropped(after, "rate-limit-relay") == 0
            # 3. the storm's offers expire (offer-lifetime 2 s): back to the 200 bindings, and
            #    the 56 free addresses go to new clients
            used: list[float] = []

            def dump() -> str:
                return (f"storm offers expired: pool use {used[-3:]}\n" + _stacks(srv)
                        + srv.log()[-3000:])

            def recovered() -> bool:
                used.append(_pool_used(_scrape(metrics)))
                return used[-1] == GOOD

            _wait_for(recovered, 30, dump)
            late = [_mac(0x8000 + i) for i in range(POOL_SIZE - GOOD)]
            late_bound = _dora(relay, port, RELAY_GOOD, late, 0x400000)
            assert len(late_bound) == POOL_SIZE - GOOD
            assert not set(late_bound.values()) & set(bound.values())
            assert _pool_used(_scrape(metrics)) == POOL_SIZE

            # 4. one MAC floods through relay D (see _one_mac_storm)
            if defences:
                _one_mac_storm(metrics, port, relay_d, macs, bound)
        finally:
            relay.close()
            clients.close()
            relay_d.close()
        srv.signal(signal.SIGTERM)
        assert srv.wait(60) == 0
        log = srv.log()
        if defences:
            assert "rate-limit-relay: dropped discover" in log
            assert "rate-limit-client: dropped discover" in log
            # logged at a bounded rate: a few lines per 10 s, not one per drop
            assert log.count("rate-limit-relay: dropped") < 50
    assert os.path.isdir(db)


def test_sd_notify_never_blocks_on_a_receiver_that_stopped_reading(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found under the storm: with a stats line a second the server's status updates filled a
    # notify socket nobody read, and the blocking send stopped the event loop.
    from fastdhcp.service import sd_notify

    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as rx:
        rx.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        results = [sd_notify(f"STATUS={i}") for i in range(1000)]  # returns, never hangs
        assert results[0] is True
        assert False in results  # the queue filled: later ones dropped
        rx.setblocking(False)
        assert rx.recv(100) == b"STATUS=0"
