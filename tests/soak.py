"""Soak test (issue 7): the real ``fastdhcp serve`` (sync = true, short leases) for N minutes at
half its maximum rate, DORA from a bounded, slowly sliding client population plus RENEWING
requests and RELEASEs; memory, latency and the lease table are watched.

Per interval (``--interval`` s): server RssAnon/VmRSS (/proc/PID/status), server CPU
(/proc/PID/stat), the driver's OFFER/ACK latency percentiles of that interval, rates,
timeouts, server drops and pool used (Prometheus endpoint). Every ``--quiet-every`` intervals
the load pauses and the metrics' pool used is compared with the active leases an independent
reader (tests/crash_helpers.read_db) sees.

At the end: SIGTERM (must exit 0), consistency of the database (no client with two active
leases, every active address in the pool), then a restart
on the same database: the rebuilt bitmaps' pool used must equal the active leases (no offers
are held after a restart).

    python3 tests/soak.py --minutes 30 --rate 2500 --json bench/results/soak.json

Load layout: the driver (``fastdhcp.loadgen.run_load``, relay 127.0.0.2) runs one call per
interval over ``--clients`` chaddrs starting at a base that slides by ``--slide`` per interval,
so most DORAs are returning clients (existing-binding path) and the clients that slide out stop
renewing: their leases expire after ``--lifetime`` s and the addresses are reclaimed. A second
thread plays a second relay (127.0.0.3): relayed RENEWING REQUESTs (ciaddr set, no options 50/54)
and RELEASEs for clients the driver ACKed in the previous interval, at ``--renew-rate``/s.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import re
import signal
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

# Run as a script from tests/, beside the helpers it drives: tests/ is sys.path[0].
from config_builder import config_text as builder_config_text
from crash_helpers import AckLedger, check, read_db
from service_helpers import ServeProcess, free_port, free_tcp_port

SERVER_IP = "127.0.0.1"
RELAY_IP = "127.0.0.2"  #: the driver's relay
RELAY2_IP = "127.0.0.3"  #: the renew/release thread's relay
SUBNET = "198.18.0.0/15"
POOL = ("198.18.1.0", "198.19.126.255")
ACTIVE = (0, 1)  # bound, declined (crash_helpers.ACTIVE)
FIRST_MAC = 0x02_00_00_20_00_00


def config_text(db: Path, port: int, metrics: str, lifetime: int) -> str:
    """Relayed /15 with a ~97k-address pool, sync on, short leases, short offers."""
    return builder_config_text(
        {"listen-addresses": [SERVER_IP], "port": port, "client-port": port + 1,
         "stats-interval": 60.0, "metrics": metrics},
        lease_database={"path": db, "sync": True},
        global_={"valid-lifetime": lifetime, "offer-lifetime": 10},
        subnets=[{"id": 1, "subnet": SUBNET, "pools": [f"{POOL[0]} - {POOL[1]}"],
                  "relay": [RELAY_IP, RELAY2_IP], "option-data": {"routers": ["198.18.0.1"]}}])


# --------------------------------------------------------------------------- server probes


def proc_status(pid: int) -> dict[str, int]:
    """RssAnon, RssFile, VmRSS, VmHWM in kB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("RssAnon", "RssFile", "VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def proc_cpu(pid: int) -> float:
    """utime + stime of the process (all threads) in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$')


def scrape(url: str) -> dict[str, float]:
    """The Prometheus page as {name{labels}: value} plus per-name sums."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        name, labels, val = m.group(1), m.group(2) or "", float(m.group(3))
        out[name + labels] = val
        out["sum:" + name] = out.get("sum:" + name, 0.0) + val
    return out


def pool_used(metrics: dict[str, float]) -> int:
    return int(metrics.get("sum:fastdhcp_pool_used", -1))


# --------------------------------------------------------------------------- renew/release


def _pkt(kind: int, chaddr: int, xid: int, ciaddr: int, server_id: int | None) -> bytes:
    """A relayed BOOTREQUEST (hops 1, giaddr RELAY2_IP) with ciaddr, message type ``kind``."""
    hdr = struct.pack("!BBBBIHHIIII", 1, 1, 6, 1, xid, 0, 0, ciaddr, 0, 0,
                      int(ipaddress.IPv4Address(RELAY2_IP)))
    hdr += chaddr.to_bytes(6, "big") + b"\0" * 10 + b"\0" * 192
    opts = b"\x63\x82\x53\x63" + bytes([53, 1, kind])
    if server_id is not None:
        opts += bytes([54, 4]) + struct.pack("!I", server_id)
    opts += b"\x52\x08\x01\x06renew1" + b"\xff"
    return hdr + opts


class RenewRelease:
    """Relayed RENEWING REQUESTs and RELEASEs at ``rate``/s for pairs the driver ACKed; a
    fraction ``release_frac`` of the operations are RELEASEs (the client is then dropped)."""

    def __init__(self, port: int, rate: float, release_frac: float, seed: int) -> None:
        self.port = port
        self.rate = rate
        self.release_frac = release_frac
        self.rng = random.Random(seed)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((RELAY2_IP, port))
        self.sock.setblocking(False)
        self.pairs: list[tuple[int, int]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.sent: dict[int, float] = {}
        self.xid = 0x7000_0000
        self.server_id = int(ipaddress.IPv4Address(SERVER_IP))
        self.c = {"renew_sent": 0, "release_sent": 0, "ack": 0, "nak": 0, "other": 0,
                  "timeouts": 0}
        self.lat: list[float] = []
        self.thread = threading.Thread(target=self._run, name="soak-renew", daemon=True)

    def feed(self, pairs: tuple[tuple[int, int], ...]) -> None:
        with self.lock:
            self.pairs = list(pairs)
            self.rng.shuffle(self.pairs)

    def take(self) -> tuple[dict[str, int], list[float]]:
        """Counters and renewal latencies since the last call."""
        with self.lock:
            c, lat = dict(self.c), self.lat
            self.c = dict.fromkeys(self.c, 0)
            self.lat = []
        return c, lat

    def _recv(self) -> None:
        now = time.monotonic()
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                break
            if len(data) < 244:
                continue
            xid = struct.unpack_from("!I", data, 4)[0]
            t = self.sent.pop(xid, None)
            kind = 0
            i = 240
            while i + 1 < len(data) and data[i] != 255:
                if data[i] == 0:
                    i += 1
                    continue
                if data[i] == 53:
                    kind = data[i + 2]
                i += 2 + data[i + 1]
            with self.lock:
                key = {5: "ack", 6: "nak"}.get(kind, "other")
                self.c[key] += 1
                if t is not None and kind == 5:
                    self.lat.append(now - t)
        stale = [x for x, t in self.sent.items() if now - t > 1.0]
        for x in stale:
            del self.sent[x]
        if stale:
            with self.lock:
                self.c["timeouts"] += len(stale)

    def _run(self) -> None:
        period = 1.0 / self.rate
        nxt = time.monotonic()
        while not self.stop.is_set():
            self._recv()
            if self.paused.is_set():
                time.sleep(0.01)
                nxt = time.monotonic()
                continue
            now = time.monotonic()
            if now < nxt:
                time.sleep(min(nxt - now, 0.01))
                continue
            nxt += period
            if nxt < now - 1.0:  # never burst more than 1 s of backlog
                nxt = now
            with self.lock:
                if not self.pairs:
                    continue
                mac, ip = self.pairs.pop()
            self.xid = (self.xid + 1) & 0xFFFFFFFF
            if self.rng.random() < self.release_frac:
                self.sock.sendto(_pkt(7, mac, self.xid, ip, self.server_id),
                                 (SERVER_IP, self.port))
                with self.lock:
                    self.c["release_sent"] += 1
            else:
                self.sent[self.xid] = time.monotonic()
                self.sock.sendto(_pkt(3, mac, self.xid, ip, None), (SERVER_IP, self.port))
                with self.lock:
                    self.c["renew_sent"] += 1
        self.sock.close()


# --------------------------------------------------------------------------- checks


def consistency(db: Path, lifetime: int) -> dict[str, Any]:
    """The database's consistency, read independently (crash_helpers.read_db): doubles and
    index problems from crash_helpers.check with an empty ledger, plus every active address in
    the pool and every index entry whose address is active naming that lease's client."""
    snap = read_db(db)
    res = check(snap, AckLedger(), lifetime=lifetime)
    active = snap.active()
    lo, hi = (int(ipaddress.IPv4Address(a)) for a in POOL)
    out_of_pool = [ip for ip in active if not lo <= ip <= hi]
    violations = (res.doubles
                  + [f"active {ipaddress.IPv4Address(ip)} outside the pool" for ip in out_of_pool])
    now = time.time()
    return {
        "records": len(snap.leases), "active": len(active),
        "active_unexpired": sum(1 for r in active.values() if r.expires > now),
        "violations": len(violations), "examples": violations[:10],
    }


# --------------------------------------------------------------------------- the run


class Soak:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.work = Path(tempfile.mkdtemp(prefix="fastdhcp-soak-"))
        self.db = self.work / "db"
        self.port = free_port()
        self.mport = free_tcp_port()
        self.url = f"http://{SERVER_IP}:{self.mport}/metrics"
        self.cfg = self.work / "fastdhcp.toml"
        self.cfg.write_text(config_text(self.db, self.port, f"{SERVER_IP}:{self.mport}",
                                        a.lifetime))
        self.log = (lambda s: print(f"[{time.strftime('%H:%M:%S')}] {s}", flush=True))

    def start(self, tag: str) -> ServeProcess:
        d = self.work / tag
        d.mkdir(exist_ok=True)
        srv = ServeProcess(self.cfg, d)
        if not srv.wait_notify(timeout=120.0):
            log = srv.log()
            srv.close()
            raise RuntimeError(f"server did not start:\n{log}")
        # the metrics thread may lag READY=1 a little
        for _ in range(50):
            try:
                scrape(self.url)
                break
            except OSError:
                time.sleep(0.1)
        return srv

    def stop(self, srv: ServeProcess) -> int:
        srv.signal(signal.SIGTERM)
        try:
            return srv.wait(timeout=60)
        finally:
            srv.close()

    def ramp(self) -> float:
        """Max sustained DORA/s (<= 1 % timeouts) over 6-s steps; returns it."""
        from fastdhcp.loadgen import run_load

        best = 0.0
        for rate in (2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000):
            s = run_load((SERVER_IP, self.port), RELAY_IP, clients=200_000, rate=rate,
                         duration=6.0, timeout=1.0, first_mac=0x02_00_00_E0_00_00)
            self.log(f"ramp {rate}/s: {s.acks / s.elapsed:.0f} ACKs/s, "
                     f"{s.drop_ratio:.2%} timeouts")
            if s.drop_ratio > 0.01:
                break
            best = rate
        return best

    def run(self) -> dict[str, Any]:
        from fastdhcp.loadgen import run_load

        a = self.a
        res: dict[str, Any] = {"args": vars(a), "started": time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                                         time.gmtime())}
        srv = self.start("run")
        pid = srv.proc.pid
        rate = a.rate
        try:
            if rate == "auto":
                mx = self.ramp()
                res["max_rate"] = mx
                rate = max(500.0, mx / 2)
            rate = float(rate)
            res["rate"] = rate
            self.log(f"server pid {pid}, port {self.port}, DORA {rate:.0f}/s over {a.clients} "
                     f"clients (slide {a.slide}/interval), renew+release {a.renew_rate}/s, "
                     f"lifetime {a.lifetime} s, {a.minutes} min")
            rr = RenewRelease(self.port, a.renew_rate, a.release_frac, seed=a.seed)
            rr.thread.start()
            n_int = max(1, round(a.minutes * 60 / a.interval))
            rows: list[dict[str, Any]] = []
            quiet: list[dict[str, Any]] = []
            t0 = time.monotonic()
            cpu0 = proc_cpu(pid)
            m0 = scrape(self.url)
            base = FIRST_MAC
            for i in range(n_int):
                ti = time.monotonic()
                s = run_load((SERVER_IP, self.port), RELAY_IP, clients=a.clients, rate=rate,
                             duration=a.interval, timeout=1.0, first_mac=base, collect=True)
                rr.feed(s.leases)
                base += a.slide
                el = time.monotonic() - ti
                cpu1 = proc_cpu(pid)
                m1 = scrape(self.url)
                st = proc_status(pid)
                c, lat = rr.take()
                lat.sort()
                row = {
                    "i": i, "t_min": round((time.monotonic() - t0) / 60, 2),
                    "rss_anon_kb": st["RssAnon"], "vm_rss_kb": st["VmRSS"],
                    "rss_file_kb": st["RssFile"],
                    "cpu_pct": round(100 * (cpu1 - cpu0) / el, 1),
                    "dora_per_s": round(s.acks / el, 1), "timeouts": s.timeouts,
                    "naks": s.naks, "exchanges": s.discovers,
                    # LoadStats latencies are in ms already
                    "offer_ms": {k: round(v, 2) for k, v in s.offer_latency.items()},
                    "ack_ms": {k: round(v, 2) for k, v in s.ack_latency.items()},
                    "renew": c,
                    "renew_p50_ms": round(1000 * lat[len(lat) // 2], 2) if lat else None,
                    "renew_p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 2) if lat else None,
                    "server_drops": int(m1.get("sum:fastdhcp_dropped_total", 0)
                                        - m0.get("sum:fastdhcp_dropped_total", 0)),
                    # by reason: a RELEASE has no reply and counts here as well
                    "drops_by_reason": {k.split('"')[1]: int(v - m0.get(k, 0))
                                        for k, v in m1.items()
                                        if k.startswith("fastdhcp_dropped_total{")
                                        and v - m0.get(k, 0)},
                    "pool_used": pool_used(m1),
                    "lease_records": int(m1.get("fastdhcp_lease_records", -1)),
                }
                rows.append(row)
                cpu0, m0 = cpu1, m1
                self.log(f"#{i} t={row['t_min']} min RssAnon {st['RssAnon']} kB VmRSS "
                         f"{st['VmRSS']} kB cpu {row['cpu_pct']}% {row['dora_per_s']} DORA/s "
                         f"to {s.timeouts} nak {s.naks} ACK ms {row['ack_ms']} renew {c} "
                         f"drops {row['drops_by_reason']} used {row['pool_used']}")
                if a.quiet_every and (i + 1) % a.quiet_every == 0 and i + 1 < n_int:
                    rr.paused.set()
                    time.sleep(1.5)  # in-flight renewals answered; driver already idle
                    mq = scrape(self.url)
                    snap = read_db(self.db)
                    mq2 = scrape(self.url)
                    rr.paused.clear()
                    act = len(snap.active())
                    q = {"i": i, "pool_used": pool_used(mq), "pool_used_after": pool_used(mq2),
                         "active": act, "diff": pool_used(mq) - act}
                    quiet.append(q)
                    self.log(f"quiet check: {q}")
            rr.stop.set()
            rr.thread.join(10)
            res["intervals"] = rows
            res["quiet"] = quiet
            time.sleep(1.5)
            res["pool_used_end"] = pool_used(scrape(self.url))
        finally:
            rc = self.stop(srv)
        res["stop_rc"] = rc
        res["check"] = consistency(self.db, a.lifetime)
        self.log(f"after SIGTERM (rc {rc}): {res['check']}")
        # The bitmap side: a restarted server rebuilds pool bitmaps from the table; with no
        # offers held, pool used must equal the active leases.
        srv = self.start("restart")
        try:
            used = pool_used(scrape(self.url))
        finally:
            rc2 = self.stop(srv)
        chk2 = consistency(self.db, a.lifetime)
        res["restart"] = {"pool_used": used, "active": chk2["active"], "stop_rc": rc2,
                          "check": chk2, "diff": used - chk2["active"]}
        self.log(f"restart: pool used {used}, active {chk2['active']}, rc {rc2}")
        res.update(self.verdicts(res))
        return res

    def verdicts(self, res: dict[str, Any]) -> dict[str, Any]:
        rows = res["intervals"]
        warm = min(self.a.warmup, self.a.minutes / 3)
        after = [r for r in rows if r["t_min"] >= warm] or rows
        w, last = after[0], rows[-1]
        growth = {k: 100.0 * (last[k] - w[k]) / w[k] for k in ("rss_anon_kb", "vm_rss_kb")}
        # drift: median of the first 3 vs the last 3 post-warm-up intervals
        head, tail = after[:3], after[-3:]

        def med(rs: list[dict[str, Any]], lat: str, p: str) -> float:
            return statistics.median(r[lat].get(p, float("nan")) for r in rs)

        drift = {f"{lat}_{p}": (round(med(head, lat, p), 2), round(med(tail, lat, p), 2))
                 for lat in ("offer_ms", "ack_ms") for p in ("p50", "p99")}
        viol = res["check"]["violations"] + res["restart"]["check"]["violations"]
        bitmap_ok = res["restart"]["diff"] == 0
        return {
            "warmup_min": warm, "rss_growth_pct": {k: round(v, 2) for k, v in growth.items()},
            "latency_drift_ms": drift, "violations": viol, "bitmap_ok": bitmap_ok,
            # Judged on RssAnon: VmRSS also counts the LMDB map's file pages (RssFile), which
            # grow with the table and are page cache, not the server's heap.
            "pass_rss": growth["rss_anon_kb"] <= 5.0,
            "pass_consistency": viol == 0 and bitmap_ok and res["stop_rc"] == 0,
        }


def markdown(res: dict[str, Any], every: int = 1) -> str:
    """The intervals of a ``--json`` result as a Markdown table (every ``every``-th row and the
    last) followed by the verdicts."""
    rows = res["intervals"]
    keep = [r for r in rows if r["i"] % every == every - 1 or r is rows[0] or r is rows[-1]]
    out = ["| min | RssAnon MB | VmRSS MB | RssFile MB | server CPU % | DORA/s | timeouts "
           "| OFFER p50/p99 ms | ACK p50/p99/p99.9 ms | renew ACK/NAK/to | releases "
           "| renew p50/p99 ms | drops (non-release) | pool used | records |",
           "|" + "---|" * 15]
    for r in keep:
        d = dict(r["drops_by_reason"])
        d.pop("released", None)
        o, k, c = r["offer_ms"], r["ack_ms"], r["renew"]
        out.append(
            f"| {r['t_min']:.1f} | {r['rss_anon_kb'] / 1024:.1f} | {r['vm_rss_kb'] / 1024:.1f} "
            f"| {r['rss_file_kb'] / 1024:.1f} | {r['cpu_pct']:.0f} | {r['dora_per_s']:,.0f} "
            f"| {r['timeouts']} | {o['p50']:.2f}/{o['p99']:.1f} "
            f"| {k['p50']:.2f}/{k['p99']:.1f}/{k['p99.9']:.1f} "
            f"| {c['ack']}/{c['nak']}/{c['timeouts']} | {c['release_sent']} "
            f"| {r['renew_p50_ms']}/{r['renew_p99_ms']} | {sum(d.values())} "
            f"| {r['pool_used']:,} | {r['lease_records']:,} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--markdown":
        print(markdown(json.loads(Path(sys.argv[2]).read_text()), every=4))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--rate", default="2500", help="DORA/s, or 'auto' (half a short ramp's max)")
    p.add_argument("--clients", type=int, default=50_000)
    p.add_argument("--slide", type=int, default=2_500, help="population shift per interval")
    p.add_argument("--interval", type=float, default=30.0)
    p.add_argument("--lifetime", type=int, default=120)
    p.add_argument("--renew-rate", type=float, default=300.0)
    p.add_argument("--release-frac", type=float, default=0.2)
    p.add_argument("--warmup", type=float, default=5.0, help="minutes (at most a third)")
    p.add_argument("--quiet-every", type=int, default=5, help="intervals between quiet checks")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    soak = Soak(a)
    res = soak.run()
    keys = ("rss_growth_pct", "latency_drift_ms", "violations", "bitmap_ok", "pass_rss",
            "pass_consistency")
    print(json.dumps({k: res[k] for k in keys}, indent=1))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1, default=str))
    return 0 if res["pass_rss"] and res["pass_consistency"] else 1


if __name__ == "__main__":
    sys.exit(main())
