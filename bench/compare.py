#!/usr/bin/env python3
"""Whole-server benchmark in one command: fastdhcp against ISC Kea 2.2, in network namespaces.

Root only (namespaces, port 67). Topology and per-run method: ``bench/wholeserver.py``. In one
run, for each server (``--servers``), every measurement on a fresh server and empty database:

Kea at its best (issue 19): WARN logging; single-threaded (``kea``) and multi-threaded
(``kea-mt``: ``--kea-threads``, ``--kea-queue``), the better of the two per figure, and the
output says which won; the same receive buffer as fastdhcp's (16 MiB in effect: the host's
net.core.rmem_default and rmem_max raised for the run and put back after; ``--no-rmem``
leaves them, and the output then says the buffers differ), each run recording the buffer the
server's socket really got; a fresh server and lease file for every run.

1. fixed rate both sustain: ``perfdhcp -4 -g single -l RELAY -r 3000 -R 100000 -p 20 -W 1000000
   -d 1 -s 1 SERVER``, ACKs counted over the period; server CPU per DORA, drops, perfdhcp's
   average delays (median of ``--repeat`` runs, servers interleaved);
2. maximum rate with the project's driver (``fastdhcp.loadgen``, open loop): ``--bisections``
   (3) independent bisections per server between 0 and its ``--ceiling``, down to
   ``--min-step``; a probe passes at <= 1 % drops. The servers are interleaved probe by probe.
   A server's maximum is the median of its bisections, with their spread. Recorded per probe:
   ACKs/s, drops, OFFER and ACK latency p50/p90/p99/p99.9, server CPU per DORA, leases;
3. every server at half of fastdhcp's maximum (latency there);
4. optionally (``--profile``) one py-spy run of fastdhcp at that rate, with per-thread CPU.

Time: the full run (defaults) is about 17-20 minutes on this machine (9 perfdhcp runs of
20 s, 3 x ~17 probes of 8 s, 9 half-rate runs, each with a server start, ~4 s); ``--quick``
(1 run each, 3 s probes, 1 bisection to a 2,000/s gap, RESULTS.md untouched) took 111 s.

Writes ``OUT/compare.json`` (every run), ``OUT/compare.png`` (achieved vs offered rate, latency
percentiles vs rate, CPU per DORA vs rate) and, unless ``--quick`` or ``--no-results-md``, the
generated part of the "## Whole server" section of ``bench/RESULTS.md``.

With ``--workers 1,2`` fastdhcp runs once per worker count (``[server] workers = N``, kinds
``fastdhcp-w1``, ``fastdhcp-w2``; ceilings N times fastdhcp's unless given), each beside
Kea single- and multi-threaded, and the summary takes fastdhcp's best as it takes Kea's; a
tree whose server rejects the key stops the run before it starts, saying so. Server CPU is
the server process's and its worker processes'.

The tails at half of fastdhcp's maximum (issue 19: OFFER p99 <= 2 ms, ACK p99 <= 10 ms) are
the median of ``--repeat`` runs of ``--step-seconds`` (3 of 8 s by default), with each
run's p99 shown (the spread), and the summary says whether each goal is met.

Usage: sudo python3 bench/compare.py [--quick] [--servers kea,kea-mt,fastdhcp] [--out DIR]
         [--workers 1,2] [--repeat N] [--bisections N] [--ceiling kea=16000,...]
         [--step-seconds S] [--kea-threads N] [--kea-queue N] [--no-rmem] [--profile]
Ctrl-C (or SIGTERM) at any point stops the servers and removes the namespaces.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
import wholeserver as ws

RESULTS_MD = ws.REPO / "bench" / "RESULTS.md"
SECTION = "## Whole server"
BEGIN = "<!-- bench/compare.py: generated, begin -->"
END = "<!-- bench/compare.py: generated, end -->"
PCTS = ("p50", "p90", "p99", "p99.9")
MAX_DROP = 0.01
#: Upper ends of the bisections (offered DORA/s): above each server's best figure so far
#: (fastdhcp 32,000, Kea 9,500: issue 19), so a bisection that reaches one says so.
DEFAULT_CEILINGS = "kea=16000,kea-mt=16000,fastdhcp=64000,fastdhcp-nosync=64000"
#: Mid-points are rounded to this (DORA/s).
ROUND_TO = 100


# ----------------------------------------------------------------------------- aggregation

def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of every numeric figure (latency dicts key by key) over repeated runs."""
    out = dict(runs[0])
    for k, v in runs[0].items():
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            # A crashed run has no CPU or lease figure of its own: medians of the others.
            ok = [r for r in runs if not r.get("crashed")] or runs
            pool = ok if k in ("server_cpu_s", "cpu_us_per_dora", "server_cores") else runs
            out[k] = statistics.median(r[k] for r in pool)
        elif isinstance(v, dict):
            out[k] = {kk: statistics.median(r[k][kk] for r in runs) for kk in v}
    out["runs"] = len(runs)
    out["crashed"] = False
    out["crashes"] = sum(1 for r in runs if r.get("crashed"))
    return out


def passes(m: dict[str, Any]) -> bool:
    """A step is sustained when at most 1 % of the started exchanges were not ACKed."""
    return m["drop_ratio"] <= MAX_DROP and not m.get("crashes") and not m.get("crashed")


class Bisection:
    """One search for a server's maximum rate: ``lo`` passes (0 at the start), ``hi`` is
    taken to fail (the ceiling at the start); probe the mid-point until the gap is at most
    ``min_step``. The result is ``lo``; ``capped`` when every probe passed (the maximum may
    be above the ceiling)."""

    def __init__(self, ceiling: int, min_step: int) -> None:
        if ceiling <= 0 or min_step <= 0:
            raise ValueError("ceiling and min_step must be positive")
        self.lo, self.hi, self.min_step = 0, ceiling, min_step
        self.ceiling = ceiling
        self.probes: list[tuple[int, bool]] = []

    def next_rate(self) -> int | None:
        """The rate to probe next, or None when the search is over."""
        if self.hi - self.lo <= self.min_step:
            return None
        mid = int(round((self.lo + self.hi) / 2 / ROUND_TO)) * ROUND_TO
        if mid <= self.lo or mid >= self.hi:
            return None
        return mid

    def record(self, rate: int, ok: bool) -> None:
        """The outcome of the probe at ``rate``."""
        self.probes.append((rate, ok))
        if ok:
            self.lo = max(self.lo, rate)
        else:
            self.hi = min(self.hi, rate)

    @property
    def capped(self) -> bool:
        return bool(self.probes) and all(ok for _, ok in self.probes)

    def result(self) -> dict[str, Any]:
        """The bisection's maximum and its probes, for compare.json."""
        return {"max_rate": self.lo, "first_failing_rate": self.hi if not self.capped else None,
                "capped": self.capped, "ceiling": self.ceiling,
                "probes": [[r, ok] for r, ok in self.probes]}


def spread(values: list[float]) -> dict[str, float]:
    """Median, lowest and highest of ``values`` (the figure and its spread)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def parse_ceilings(text: str, servers: list[str]) -> dict[str, int]:
    """``kind=rate,...`` -> rate per server (every server of ``servers`` needs one)."""
    out: dict[str, int] = {}
    for item in text.split(","):
        if not item:
            continue
        kind, sep, rate = item.partition("=")
        if not sep or not rate.isdigit() or int(rate) <= 0:
            raise ValueError(f"--ceiling: {item!r} is not SERVER=RATE")
        out[kind] = int(rate)
    for k in servers:  # fastdhcp-wN: N times fastdhcp's unless given its own
        n = ws.fastdhcp_workers(k)
        if k not in out and n is not None and "fastdhcp" in out:
            out[k] = out["fastdhcp"] * n
    missing = [k for k in servers if k not in out]
    if missing:
        raise ValueError(f"--ceiling: no rate for {', '.join(missing)}")
    return out


def is_kea(kind: str) -> bool:
    return kind.startswith("kea")


def is_fastdhcp(kind: str) -> bool:
    """fastdhcp as compared with Kea (``sync = true``): ``fastdhcp`` or ``fastdhcp-wN``."""
    return kind == "fastdhcp" or ws.fastdhcp_workers(kind) is not None


def parse_workers(text: str) -> list[int]:
    """``--workers 1,2`` -> [1, 2] (each at least 1, no repeats)."""
    out: list[int] = []
    for item in filter(None, text.split(",")):
        if not item.isdigit() or int(item) < 1 or int(item) in out:
            raise ValueError(f"--workers: {item!r} is not a new worker count (1, 2, ...)")
        out.append(int(item))
    if not out:
        raise ValueError("--workers: no worker count")
    return out


def expand_servers(servers: list[str], workers: list[int] | None) -> list[str]:
    """With ``--workers``, ``fastdhcp`` becomes one kind per count (``fastdhcp-w1``, ...)."""
    if not workers:
        return servers
    out: list[str] = []
    for k in servers:
        out += [f"fastdhcp-w{n}" for n in workers] if k == "fastdhcp" else [k]
    return out


def fastdhcp_label(kind: str) -> str:
    """How a fastdhcp kind was configured, for the output."""
    n = ws.fastdhcp_workers(kind)
    return "the server's default workers" if n is None else (
        f"`workers = {n}`" + (" (one process)" if n == 1 else f" ({n} worker processes)"))


def half_tails(res: dict[str, Any], kind: str) -> dict[str, dict[str, float]] | None:
    """OFFER and ACK p99 (ms) of ``kind``'s runs at half of fastdhcp's maximum: median of the
    runs with their spread (issue 19's tail goals are on these)."""
    runs = [r for r in res.get("runs", []) if r.get("phase") == "half" and r["server"] == kind]
    if not runs:
        return None
    return {"offer_p99": spread([r["offer_ms"]["p99"] for r in runs]),
            "ack_p99": spread([r["ack_ms"]["p99"] for r in runs])}


#: Issue 19's tail goals at half of fastdhcp's maximum (ms).
TAIL_GOALS = {"offer_p99": 2.0, "ack_p99": 10.0}


def summarize(res: dict[str, Any], servers: list[str]) -> dict[str, Any]:
    """Per server: maximum (median of its bisections, with the spread), ACKs/s at it, CPU per
    DORA at the fixed rate; and ``kea_best``: which Kea configuration gave Kea's best maximum
    (highest) and best CPU per DORA (lowest), the figures the comparison uses."""
    summ: dict[str, Any] = {}
    for kind in servers:
        found = res.get("bisections", {}).get(kind, [])
        maxes = [b["max_rate"] for b in found]
        med = spread(maxes) if maxes else None
        at = [s["acks_per_s"] for s in res.get("sweep", {}).get(kind, [])
              if med and s["rate"] == med["median"] and passes(s)]
        fx = res.get("fixed", {}).get(kind)
        cpu = fx["cpu_us_per_dora"] if fx else None
        summ[kind] = {
            "max_rate": med["median"] if med else None, "max_spread": med,
            "max_capped": any(b["capped"] for b in found),
            "max_acks_per_s": statistics.median(at) if at else None,
            "cpu_us_at_fixed": cpu, "dora_per_cpu_s": 1e6 / cpu if cpu else None,
            "half": half_tails(res, kind),
        }
    fds = [k for k in servers if is_fastdhcp(k)]
    if fds:
        rated = [k for k in fds if summ[k]["max_rate"] is not None]
        cpud = [k for k in fds if summ[k]["cpu_us_at_fixed"] is not None]
        summ["fastdhcp_best"] = {
            "max_rate": max(rated, key=lambda k: summ[k]["max_rate"]) if rated else None,
            "cpu_us_at_fixed": min(cpud, key=lambda k: summ[k]["cpu_us_at_fixed"])
            if cpud else None,
            "configs": {k: fastdhcp_label(k) for k in fds},
        }
    keas = [k for k in servers if is_kea(k)]
    rated = [k for k in keas if summ[k]["max_rate"] is not None]
    cpud = [k for k in keas if summ[k]["cpu_us_at_fixed"] is not None]
    if keas:
        summ["kea_best"] = {
            "max_rate": max(rated, key=lambda k: summ[k]["max_rate"]) if rated else None,
            "cpu_us_at_fixed": min(cpud, key=lambda k: summ[k]["cpu_us_at_fixed"])
            if cpud else None,
            "configs": {k: kea_label(k, res.get("args", {})) for k in keas},
        }
    return summ


def kea_label(kind: str, args: dict[str, Any]) -> str:
    """How a Kea kind was configured, for the output."""
    if kind == "kea-mt":
        return (f"multi-threaded (thread-pool-size {args.get('kea_threads', 2)}, "
                f"packet-queue-size {args.get('kea_queue', 64)})")
    return "single-threaded"


# ----------------------------------------------------------------------------- profile summary

_IDLE_MARKS = ("epoll_pwait", "PyThread_acquire_lock_timed", "_queue_SimpleQueue_get",
               "Condition.wait", "take_gil", "sem_clockwait", "pthread_cond_timedwait")


def _frame_key(frame: str) -> str:
    """``func (file.py:123)`` -> ``func (file.py)``: group a function's lines together."""
    head, sep, tail = frame.rpartition(" (")
    if sep and ":" in tail:
        return f"{head} ({tail.rsplit(':', 1)[0]})"
    return frame


def summarize_profile(raw: Path, top: int = 10) -> dict[str, Any]:
    """Digest py-spy's raw collapsed stacks (``--threads``): per thread, the share of samples
    spent idle (waiting in epoll, for a lock or the GIL, on the work queue), waiting for the
    disk (fdatasync), and, of the rest (active), the share per innermost Python/Cython function
    (with the system call it was in, if any). py-spy samples wall time, not CPU time, so the
    active shares are read together with the per-thread CPU from /proc."""
    per: dict[str, dict[str, Any]] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        frames = stack.split(";")
        # "thread (TID): NAME"; TID is the OS thread id, as in /proc/PID/task.
        thread = frames[0] if frames[0].startswith("thread") else "?"
        t = per.setdefault(thread, {"samples": 0, "idle": 0, "disk": 0, "active": Counter()})
        t["samples"] += count
        total += count
        if any(mark in f for f in frames for mark in _IDLE_MARKS):
            t["idle"] += count
            continue
        if any(f.startswith("fdatasync") for f in frames):
            t["disk"] += count
            continue
        code = [f for f in frames if ".py:" in f or ".pyx:" in f]
        key = _frame_key(code[-1]) if code else "(native: interpreter, event loop)"
        if key.startswith("Runner.run ("):  # inside uvloop's C loop, no Python frame below
            key = "(uvloop internals, callback dispatch)"
        leaf = frames[-1].split(" (", 1)[0]
        if leaf in ("sendmmsg", "recvmmsg", "pwrite64", "write", "writev", "sendto"):
            key += f" -> {leaf}"
        t["active"][key] += count
    threads = []
    for name, t in sorted(per.items(), key=lambda kv: -kv[1]["samples"]):
        active = sum(t["active"].values())
        tid = name.split("(", 1)[-1].split(")", 1)[0]
        threads.append({
            "thread": name.split(": ", 1)[-1], "tid": int(tid) if tid.isdigit() else 0,
            "share": round(100.0 * t["samples"] / max(1, total), 1),
            "idle_pct": round(100.0 * t["idle"] / max(1, t["samples"]), 1),
            "disk_pct": round(100.0 * t["disk"] / max(1, t["samples"]), 1),
            "active_pct": round(100.0 * active / max(1, t["samples"]), 1),
            "top": [(f, round(100.0 * c / max(1, active), 1))
                    for f, c in t["active"].most_common(top)],
        })
    return {"samples": total, "threads": threads}


# ----------------------------------------------------------------------------- report

def _ms(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def _lat(d: dict[str, float]) -> str:
    return "/".join(_ms(d[p]) for p in PCTS)


def render_markdown(res: dict[str, Any]) -> str:
    """The generated block of the "## Whole server" section."""
    a = res["args"]
    lines = [BEGIN, "",
             f"Run of {res['started_utc']} (finished {res['finished_utc']}), "
             f"load average {res['load_start']:.1f} at start, {res['load_end']:.1f} at end "
             f"(2 vCPUs shared by the servers, the load tool and the rest of the team).",
             "", "```", f"{res['command']}", "```", "",
             f"Topology: server namespace `srv` ({ws.SERVER_IP}) -- veth -- load namespace "
             f"`perf` (relay, giaddr {ws.RELAY_IP}); one subnet {ws.SUBNET}, pool "
             f"{ws.POOL_FIRST} - {ws.POOL_LAST} ({ws.POOL_SIZE:,} addresses), "
             f"{a['clients']:,} distinct clients. Kea 2.2: memfile `persist: true`, "
             f"{_kea_configs(res)}, WARN logging, UDP sockets (no fsync: page cache only). "
             "fastdhcp: LMDB `sync = true` (fsync before every ACK batch), log level warning. "
             "A fresh server on an empty lease database (a new Kea lease file) for every run. "
             f"{_rcvbuf_line(res)} Server CPU = utime + stime of "
             "the server process (/proc/PID/stat, every thread) over the load; drops = "
             "exchanges started and not ACKed; leases = addresses bound at the end of the run.",
             ""]
    fixed = res.get("fixed", {})
    if fixed:
        r0 = next(iter(fixed.values()))
        lines += [f"**Fixed rate {r0['rate']:,}/s, perfdhcp, {r0['seconds']:g} s** "
                  f"(median of {r0['runs']}; servers interleaved):", "",
                  "| server | ACKs/s (over the period) | drops | lost at server socket "
                  "/ at perfdhcp's socket | server CPU us per ACK received (per lease bound) "
                  "| server cores | OFFER / ACK avg delay ms | leases | fsync ms | load avg |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for kind, m in fixed.items():
            per_lease = m["server_cpu_s"] / max(1, m["leases"]) * 1e6
            lines.append(
                f"| {kind} | {m['acks_per_s']:,.0f} | {m['drops']:,.0f} ({m['drop_ratio']:.2%}) "
                f"| {m['socket_drops']:,.0f} / {m.get('rcvbuf_errors_tool', 0):,.0f} "
                f"| **{m['cpu_us_per_dora']:.1f}** ({per_lease:.1f}) | {m['server_cores']:.2f} "
                f"| {_ms(m['offer_ms']['avg'])} / {_ms(m['ack_ms']['avg'])} "
                f"| {m['leases']:,.0f} | {m.get('fsync_ms', float('nan')):.1f} "
                f"| {m['load_before']:.1f} |")
        lines += ["", "Command: `" + shlex.join(r0["command"]) + "` (in `perf`).", ""]
    sweeps = res.get("sweep", {})
    found = res.get("bisections")
    if found:
        lines += [f"**Maximum rate: {a['bisections']} bisection(s) per server**, project "
                  f"driver, open loop, {a['step_seconds']:g} s per probe, each probe one run on "
                  "a fresh server, the servers interleaved probe by probe; a probe passes at "
                  f"<= 1 % drops; each bisection runs from 0 to the server's ceiling down to a "
                  f"{a['min_step']:,}/s gap. The maximum is the median of the bisections:", "",
                  "| server | each bisection's maximum, DORA/s | **median** | spread (min-max) |",
                  "|---|---|---|---|"]
        for kind, bs in found.items():
            if not bs:
                continue
            sp = spread([b["max_rate"] for b in bs])
            each = ", ".join(f"{b['max_rate']:,}" + (" (ceiling)" if b["capped"] else "")
                             for b in bs)
            lines.append(f"| {kind} | {each} | **{sp['median']:,.0f}** "
                         f"| {sp['min']:,.0f}-{sp['max']:,.0f} ({sp['max'] - sp['min']:,.0f}) |")
        lines.append("")
    if sweeps:
        if found:
            lines += ["Every probe:", ""]
        else:
            lines += [f"**Rate sweep, project driver, open loop, {a['step_seconds']:g} s per "
                      f"step** (median of {a['repeat']} per step; servers interleaved per step; "
                      "a server stops at the first step above 1 % drops, then bisection "
                      "steps):", ""]
        lines += ["| server | offered/s | ACKs/s | drops | server CPU us/DORA | "
                  "OFFER p50/p90/p99/p99.9 ms | ACK p50/p90/p99/p99.9 ms | leases | load avg |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for kind, steps in sweeps.items():
            for m in sorted(steps, key=lambda s: (s["rate"], s.get("bisection", 0))):
                mark = "" if passes(m) else " ✗"
                if m.get("crashes") or m.get("crashed"):
                    mark += f" (server crashed in {m.get('crashes', 1)} of {m.get('runs', 1)})"
                lines.append(
                    f"| {kind} | {m['rate']:,}{mark} | {m['acks_per_s']:,.0f} "
                    f"| {m['drop_ratio']:.2%} | {m['cpu_us_per_dora']:.1f} "
                    f"| {_lat(m['offer_ms'])} | {_lat(m['ack_ms'])} | {m['leases']:,.0f} "
                    f"| {m['load_before']:.1f} |")
        lines += ["", "Driver command per step: `" + shlex.join(
            next(iter(sweeps.values()))[0]["command"]).replace(
            f"-r {next(iter(sweeps.values()))[0]['rate']}", "-r RATE") + "` (in `perf`).", ""]
    half = res.get("half", {})
    if half:
        r0 = next(iter(half.values()))
        lines += [f"**At half of fastdhcp's maximum ({r0['rate']:,}/s)**, driver, "
                  f"{a['step_seconds']:g} s, median of {r0['runs']} (each run's p99 beside: "
                  "the spread; goals OFFER p99 <= 2 ms, ACK p99 <= 10 ms):", "",
                  "| server | ACKs/s | drops | server CPU us/DORA | OFFER p50/p90/p99/p99.9 ms "
                  "| ACK p50/p90/p99/p99.9 ms | OFFER p99 per run | ACK p99 per run |",
                  "|---|---|---|---|---|---|---|---|"]
        for kind, m in half.items():
            each = [r for r in res.get("runs", [])
                    if r.get("phase") == "half" and r["server"] == kind]
            lines.append(f"| {kind} | {m['acks_per_s']:,.0f} | {m['drop_ratio']:.2%} "
                         f"| {m['cpu_us_per_dora']:.1f} | {_lat(m['offer_ms'])} "
                         f"| {_lat(m['ack_ms'])} "
                         f"| {', '.join(_ms(r['offer_ms']['p99']) for r in each) or '-'} "
                         f"| {', '.join(_ms(r['ack_ms']['p99']) for r in each) or '-'} |")
        lines.append("")
    lines += render_summary(res.get("summary", {}))
    prof = res.get("profile")
    if prof:
        which = prof.get("server", "fastdhcp")
        lines += [f"**Where fastdhcp spends its time** at {prof['rate']:,}/s "
                  + (f"(`{which}`) " if which != "fastdhcp" else "")
                  + f"(`py-spy record --native --threads --rate 50`, {prof['samples']:,} "
                  "samples of wall time; per-thread CPU from /proc over the same run):", ""]
        cpu = {t["tid"]: t for t in prof.get("thread_cpu", [])}
        for t in prof["threads"]:
            c = cpu.get(t["tid"])
            cpu_txt = (f"CPU {c['user_s']:.2f} s user + {c['sys_s']:.2f} s system over the run; "
                       if c else "")
            lines.append(f"- `{t['thread']}`: {cpu_txt}samples idle {t['idle_pct']}%, "
                         f"waiting for fdatasync {t['disk_pct']}%, active {t['active_pct']}%, "
                         "of which: " + "; ".join(f"`{f}` {p}%" for f, p in t["top"][:8]))
        lines.append("")
    out = Path(a.get("out") or "bench/results")
    if out.is_absolute() and out.is_relative_to(ws.REPO):
        out = out.relative_to(ws.REPO)
    lines += [f"Raw runs: `{out}/compare.json`; plot: `{out}/compare.png`.", "",
              END]
    return "\n".join(lines)


def _kea_configs(res: dict[str, Any]) -> str:
    keas = [k for k in str(res["args"].get("servers", "kea")).split(",") if is_kea(k)]
    return " and ".join(f"{kea_label(k, res['args'])} (`{k}`)" for k in keas) or "not run"


def _rcvbuf_line(res: dict[str, Any]) -> str:
    """What the receive buffers were: the run's rmem setting and each server's socket."""
    got: dict[str, set[int]] = {}
    for r in res.get("runs", []):
        if r.get("rcvbuf_bytes"):
            got.setdefault(r["server"], set()).add(r["rcvbuf_bytes"])
    if "rmem" not in res and not got:
        return ("Receive buffers: fastdhcp forces 8 MiB (16 MiB in effect), Kea had the host's "
                "rmem_default "
                "(this run predates the equal-buffer setting).")
    per = "; ".join(f"{k} {', '.join(f'{v // 1024:,} KiB' for v in sorted(vs))}"
                    for k, vs in got.items())
    same = len({v for vs in got.values() for v in vs}) == 1
    return (f"Receive buffers: net.core.rmem_default/rmem_max {res.get('rmem', '?')}; the "
            f"servers' sockets had (ss -m) {per or '?'}"
            + (" (the same for all)." if same else " (they differ: read the Kea figures "
               "with that in mind)."))


def render_summary(s: dict[str, Any]) -> list[str]:
    """The summary table: fastdhcp's best configuration against Kea's best, per figure (each
    named), each configuration's own figures, the spread of the maxima, and the tails at half
    of fastdhcp's maximum against issue 19's goals."""
    if not s:
        return []
    best = s.get("kea_best") or {"max_rate": "kea" if "kea" in s else None,
                                 "cpu_us_at_fixed": "kea" if "kea" in s else None,
                                 "configs": {"kea": "single-threaded"} if "kea" in s else {}}
    fbest = s.get("fastdhcp_best") or {"max_rate": "fastdhcp", "cpu_us_at_fixed": "fastdhcp",
                                       "configs": {"fastdhcp": fastdhcp_label("fastdhcp")}}
    keas = list(best.get("configs", {}))
    fds = list(fbest.get("configs", {}))
    extra = fds if len(fds) > 1 else []  # one column per fastdhcp configuration, if several
    lines = ["**Summary** (fastdhcp / Kea at its best: for each figure the better Kea "
             "configuration, named" + (", and fastdhcp's better configuration" if extra else "")
             + "):", "",
             "| figure | fastdhcp | Kea best | Kea config | fastdhcp/Kea |"
             + "".join(f" {k} |" for k in keas + extra),
             "|---|---|---|---|---|" + "---|" * len(keas + extra)]

    def cell(kind: str | None, key: str, fmt: str) -> str:
        v = s.get(kind or "", {}).get(key) if kind else None
        if v is None:
            return "-"
        text = fmt.format(v)
        sp = s[kind].get("max_spread") if key == "max_rate" else None
        if sp and sp.get("n", 1) > 1:
            text += f" ({sp['min']:,.0f}-{sp['max']:,.0f})"
        if key == "max_rate" and s[kind].get("max_capped"):
            text += " (at the ceiling)"
        return text

    for label, key, fmt, pick in (
            ("max sustained DORA/s (<= 1 % drops, driver; median, spread)", "max_rate",
             "{:,.0f}", "max_rate"),
            ("ACKs/s at that rate", "max_acks_per_s", "{:,.0f}", "max_rate"),
            ("server CPU us per DORA at 3,000/s (perfdhcp)", "cpu_us_at_fixed", "{:.1f}",
             "cpu_us_at_fixed"),
            ("DORA per server CPU-second at 3,000/s", "dora_per_cpu_s", "{:,.0f}",
             "cpu_us_at_fixed")):
        k = best.get(pick)
        fk = fbest.get(pick)
        f = s.get(fk or "", {}).get(key) if fk else None
        kv = s.get(k or "", {}).get(key) if k else None
        ratio = f"{f / kv:.2f}" if f and kv else "-"
        lines.append(f"| {label} | {cell(fk, key, fmt)} | {cell(k, key, fmt)} "
                     f"| {k or '-'} | {ratio} |" + "".join(f" {cell(x, key, fmt)} |"
                                                          for x in keas + extra))

    def tail(kind: str | None, key: str) -> str:
        h = s.get(kind or "", {}).get("half") if kind else None
        if not h:
            return "-"
        sp = h[key]
        text = f"{_ms(sp['median'])}"
        if sp.get("n", 1) > 1:
            text += f" ({_ms(sp['min'])}-{_ms(sp['max'])})"
        return text

    fk = fbest.get("max_rate")
    for key, what in (("offer_p99", "OFFER"), ("ack_p99", "ACK")):
        goal = TAIL_GOALS[key]
        h = s.get(fk or "", {}).get("half") if fk else None
        runs = h[key]["n"] if h else 0
        met = "" if not h else (" (goal met)" if h[key]["median"] <= goal else
                                f" (goal missed by {h[key]['median'] - goal:.2f} ms)")
        rated = [x for x in keas if s.get(x, {}).get("half")]
        k = min(rated, key=lambda x: s[x]["half"][key]["median"]) if rated else None
        lines.append(f"| {what} p99 ms at half of fastdhcp's maximum (median of {runs} runs, "
                     f"spread; goal <= {goal:g}) | {tail(fk, key)}{met} | {tail(k, key)} "
                     f"| {k or '-'} | - |" + "".join(f" {tail(x, key)} |" for x in keas + extra))
    lines.append("")
    if best.get("max_rate"):
        configs = best.get("configs", {})
        won = best["max_rate"]
        lines += [f"Kea's best configuration by maximum rate: `{won}`, "
                  f"{configs.get(won, '?')}"
                  + (f"; by CPU per DORA: `{best['cpu_us_at_fixed']}`, "
                     f"{configs.get(best['cpu_us_at_fixed'], '?')}"
                     if best.get("cpu_us_at_fixed") else "") + ".", ""]
    if extra and fbest.get("max_rate"):
        configs = fbest.get("configs", {})
        won = fbest["max_rate"]
        lines += [f"fastdhcp's best configuration by maximum rate: `{won}`, "
                  f"{configs.get(won, '?')}"
                  + (f"; by CPU per DORA: `{fbest['cpu_us_at_fixed']}`, "
                     f"{configs.get(fbest['cpu_us_at_fixed'], '?')}"
                     if fbest.get("cpu_us_at_fixed") else "") + ".", ""]
    return lines


def write_section(md_path: Path, block: str) -> None:
    """Replace the generated block inside "## Whole server" (append it when the section has
    none yet); everything else in RESULTS.md, the section's other text included, is kept."""
    text = md_path.read_text()
    start = text.index(SECTION)
    body_start = start + len(SECTION)
    nxt = text.find("\n## ", body_start)
    end = len(text) if nxt < 0 else nxt + 1
    body = text[body_start:end]
    if BEGIN in body and END in body:
        b0 = body.index(BEGIN)
        b1 = body.index(END) + len(END)
        body = body[:b0] + block + body[b1:]
    else:  # first run: keep what the section already says, append the block
        body = body.rstrip("\n") + "\n\n" + block + "\n"
    if nxt >= 0 and not body.endswith("\n\n"):
        body = body.rstrip("\n") + "\n\n"
    md_path.write_text(text[:body_start] + body + text[end:])


def plot(res: dict[str, Any], path: Path) -> bool:
    """Achieved vs offered rate, latency percentiles vs rate, CPU per DORA vs rate; False, with
    a line saying how to get the plot, where matplotlib (the ``bench`` extra) is missing."""
    try:
        import matplotlib
    except ImportError:
        log(f"no plot ({path}): matplotlib is missing; pip install '.[bench]' and redraw with "
            f"--render {path.with_name('compare.json')}")
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"fastdhcp": "tab:blue", "kea": "tab:orange", "kea-mt": "tab:red",
              "fastdhcp-nosync": "tab:cyan"}
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    ax1, ax2, ax3 = axes
    top = 0
    for kind, steps in res.get("sweep", {}).items():
        steps = sorted(steps, key=lambda s: s["rate"])
        x = [s["rate"] for s in steps]
        top = max([top, *x])  # a run without a sweep (--rates "") has no steps
        c = colors.get(kind)
        ax1.plot(x, [s["acks_per_s"] for s in steps], "o-", color=c, label=kind)
        for s in steps:
            if not passes(s):
                ax1.plot([s["rate"]], [s["acks_per_s"]], "x", color="red", ms=10)
        for p, style in (("p50", "-"), ("p99", "--"), ("p99.9", ":")):
            ax2.plot(x, [s["ack_ms"][p] for s in steps], style, marker="o", ms=3, color=c,
                     label=f"{kind} ACK {p}")
        ax2.plot(x, [s["offer_ms"]["p50"] for s in steps], "-.", marker="^", ms=3, color=c,
                 alpha=0.6, label=f"{kind} OFFER p50")
        ax3.plot(x, [s["cpu_us_per_dora"] for s in steps], "o-", color=c, label=kind)
    ax1.plot([0, top], [0, top], color="grey", lw=0.8, label="offered")
    ax1.set(xlabel="offered DORA/s", ylabel="ACKs/s (over the period)",
            title="Achieved vs offered (x: > 1 % drops)")
    ax2.set(xlabel="offered DORA/s", ylabel="ms (log)", yscale="log",
            title="Latency percentiles (driver, kernel stamps)")
    ax3.set(xlabel="offered DORA/s", ylabel="server CPU us per DORA",
            title="Server CPU per DORA (/proc utime+stime)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"fastdhcp (LMDB, fsync) vs Kea 2.2 (memfile) - {res['started_utc']}, "
                 f"2 shared vCPUs, load avg {res['load_start']:.1f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------- the run

def check_fastdhcp_kind(kind: str) -> str | None:
    """For ``fastdhcp-wN``: does this tree's server take ``[server] workers = N``? Asked of
    ``fastdhcp check-config`` on the bench config before any lab is built; the reason it
    does not, as one message, or None."""
    n = ws.fastdhcp_workers(kind)
    if n is None:
        return None
    with tempfile.TemporaryDirectory(prefix="fdcompare-check-") as tmp:
        cfg = Path(tmp) / "fastdhcp.toml"
        cfg.write_text(ws.fastdhcp_config(Path(tmp), workers=n))
        cp = subprocess.run([sys.executable, "-m", "fastdhcp", "check-config", "--config",
                             str(cfg)], capture_output=True, text=True, timeout=120,
                            cwd=ws.REPO,  # `-m` puts the working directory first on sys.path
                            env=dict(os.environ, PYTHONPATH=str(ws.REPO) + os.pathsep
                                     + os.environ.get("PYTHONPATH", "")))
    if cp.returncode == 0:
        return None
    said = (cp.stdout + cp.stderr).strip() or f"exit {cp.returncode}"
    return (f"--workers {n}: this tree's fastdhcp ({ws.REPO}) rejects `[server] workers = "
            f"{n}`:\n{said}\n(the key comes with the multi-worker server, branch wip/workers)")


class Stop(Exception):
    """SIGTERM: unwind like Ctrl-C so teardown runs."""


def _on_term(signum: int, frame: Any) -> None:
    raise Stop()


def log(msg: str) -> None:
    print(f"[{dt.datetime.now(dt.UTC):%H:%M:%S}] {msg}", flush=True)


def describe(m: dict[str, Any]) -> str:
    return (f"{m['server']:8} {m['tool']:8} {m['rate']:>6}/s: {m['acks_per_s']:8,.0f} ACK/s "
            f"drops {m['drop_ratio']:6.2%} (srv sock {m['socket_drops']}, tool sock "
            f"{m['rcvbuf_errors_tool']}) "
            f"CPU {m['cpu_us_per_dora']:6.1f} us/DORA ({m['server_cores']:.2f} cores) "
            f"ACK p50/p99 {_ms(m['ack_ms'].get('p50', m['ack_ms'].get('avg')))}/"
            f"{_ms(m['ack_ms'].get('p99', m['ack_ms'].get('max')))} ms "
            f"leases {m['leases']} fsync {m['fsync_ms']:.1f} ms rcvbuf "
            f"{m.get('rcvbuf_bytes', 0) // 1024} KiB load {m['load_before']:.1f}")


def run_all(args: argparse.Namespace, lab: ws.BenchLab, res: dict[str, Any]) -> None:
    servers = [s for s in args.servers.split(",") if s]
    runs: list[dict[str, Any]] = res["runs"]
    tuning = ws.KeaTuning(args.kea_threads, args.kea_queue)

    def seg(kind: str, tool: str, rate: int, seconds: float, **kw: Any) -> dict[str, Any]:
        m = ws.run_segment(lab, kind, tool, rate, seconds, args.clients, keep=args.keep,
                           kea=tuning, **kw)
        m["phase"] = res["_phase"]
        runs.append(m)
        log(describe(m))
        return m

    # 1. fixed rate, perfdhcp
    if args.fixed_rate > 0:
        res["_phase"] = "fixed"
        log(f"fixed rate {args.fixed_rate}/s, perfdhcp, {args.fixed_seconds} s x {args.repeat}")
        per: dict[str, list[dict[str, Any]]] = {k: [] for k in servers}
        for _ in range(args.repeat):
            for kind in servers:
                per[kind].append(seg(kind, "perfdhcp", args.fixed_rate, args.fixed_seconds))
        res["fixed"] = {k: median_run(v) for k, v in per.items()}

    # 2. maximum rate: bisections, the servers interleaved probe by probe
    res["_phase"] = "sweep"
    ceilings = parse_ceilings(DEFAULT_CEILINGS + "," + args.ceiling, servers)
    sweep: dict[str, list[dict[str, Any]]] = {k: [] for k in servers}
    found: dict[str, list[dict[str, Any]]] = {k: [] for k in servers}
    for round_no in range(args.bisections):
        searches = {k: Bisection(ceilings[k], args.min_step) for k in servers}
        while True:
            todo = [(k, r) for k, b in searches.items() if (r := b.next_rate()) is not None]
            if not todo:
                break
            log(f"bisection {round_no + 1}/{args.bisections}: "
                + ", ".join(f"{k} at {r}/s" for k, r in todo))
            for kind, rate in todo:
                m = seg(kind, "loadgen", rate, args.step_seconds)
                m["bisection"] = round_no + 1
                sweep[kind].append(m)
                searches[kind].record(rate, passes(m))
        for kind, b in searches.items():
            found[kind].append(b.result())
            log(f"bisection {round_no + 1}: {kind} max {b.lo}/s"
                + (" (every probe passed: raise --ceiling)" if b.capped else ""))
    res["sweep"] = sweep
    res["bisections"] = found
    max_of = {k: (statistics.median(b["max_rate"] for b in v) if v else 0)
              for k, v in found.items()}

    # 3. latency at half of fastdhcp's maximum (its best configuration's)
    half_rate = 0
    fds = [k for k in servers if is_fastdhcp(k) and max_of[k]]
    top = max(fds, key=lambda k: max_of[k]) if fds else None
    if top is not None:
        half_rate = int(round(max_of[top] / 2 / ROUND_TO)) * ROUND_TO
        res["_phase"] = "half"
        log(f"half of fastdhcp's maximum ({top}): {half_rate}/s")
        per = {k: [] for k in servers}
        for _ in range(args.repeat):
            for kind in servers:
                per[kind].append(seg(kind, "loadgen", half_rate, args.step_seconds))
        res["half"] = {k: median_run(v) for k, v in per.items()}

    # 4. profile
    if args.profile and top is not None and half_rate:
        res["_phase"] = "profile"
        # At half the maximum: py-spy stops the process for each sample (--native), which
        # near the maximum turns into an overload of its own.
        rate = half_rate
        raw = Path(args.out) / "fastdhcp-profile.txt"
        log(f"py-spy on {top} at {rate}/s -> {raw}")
        seg(top, "loadgen", rate, args.step_seconds, profile=raw)
        if raw.exists():
            last = runs[-1]
            res["profile"] = {"rate": rate, "server": top, **summarize_profile(raw),
                              "thread_cpu": last.get("threads", []),
                              "cpu_us_per_dora": last["cpu_us_per_dora"],
                              "drop_ratio": last["drop_ratio"]}

    res["summary"] = summarize(res, servers)
    res.pop("_phase", None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run (~2 min): 5 s perfdhcp, 3 s probes, 1 run each, one "
                         "bisection to a 2,000/s gap, RESULTS.md untouched")
    ap.add_argument("--servers", default="kea,kea-mt,fastdhcp",
                    help="comma list of kea (single-threaded), kea-mt, fastdhcp, "
                         "fastdhcp-nosync")
    ap.add_argument("--out", default=str(ws.REPO / "bench" / "results"),
                    help="directory for compare.json, compare.png (default bench/results)")
    ap.add_argument("--repeat", type=int, default=None, help="runs per step (default 3)")
    ap.add_argument("--bisections", type=int, default=None,
                    help="bisections per server for its maximum (default 3; --quick 1)")
    ap.add_argument("--ceiling", default="",
                    help="upper end of each server's bisection, SERVER=RATE,...; a server not "
                         f"named keeps its default ({DEFAULT_CEILINGS}; fastdhcp-wN: N times "
                         "fastdhcp's)")
    ap.add_argument("--step-seconds", type=float, default=None, help="default 8")
    ap.add_argument("--min-step", type=int, default=None,
                    help="stop bisecting at this gap, DORA/s (default 500; --quick 2000)")
    ap.add_argument("--workers", default=None, metavar="N,N",
                    help="run fastdhcp once per worker count, with [server] workers = N "
                         "(kinds fastdhcp-w1, fastdhcp-w2, ...), e.g. 1,2; default: the "
                         "server's own default, one kind 'fastdhcp'")
    ap.add_argument("--kea-threads", type=int, default=2,
                    help="kea-mt: thread-pool-size (default 2: the cores here)")
    ap.add_argument("--kea-queue", type=int, default=64,
                    help="kea-mt: packet-queue-size (default 64, Kea's own)")
    ap.add_argument("--no-rmem", action="store_true",
                    help="leave net.core.rmem_default/rmem_max as they are (Kea then has a "
                         "smaller receive buffer than fastdhcp; the output says so)")
    ap.add_argument("--fixed-rate", type=int, default=3000, help="perfdhcp rate; 0 skips it")
    ap.add_argument("--fixed-seconds", type=int, default=None, help="default 20")
    ap.add_argument("--clients", type=int, default=100_000)
    ap.add_argument("--profile", action="store_true",
                    help="py-spy the fastdhcp server at half its maximum")
    ap.add_argument("--keep", action="store_true", help="keep server work dirs (paths printed)")
    ap.add_argument("--no-results-md", action="store_true", help="leave bench/RESULTS.md alone")
    ap.add_argument("--render", metavar="JSON", default=None,
                    help="no run: redraw the plot and rewrite the RESULTS.md block from a saved "
                         "compare.json (into --out)")
    args = ap.parse_args(argv)
    if args.render:
        res = json.loads(Path(args.render).read_text())
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        res["args"]["out"] = str(out)
        if Path(args.render).resolve() != (out / "compare.json").resolve():
            (out / "compare.json").write_text(json.dumps(res, indent=1, default=str))
        block = render_markdown(res)
        print(block)
        plot(res, out / "compare.png")
        if not args.no_results_md:
            write_section(RESULTS_MD, block)
        return 0
    q = args.quick
    args.repeat = args.repeat or (1 if q else 3)
    args.step_seconds = args.step_seconds or (3.0 if q else 8.0)
    args.bisections = args.bisections or (1 if q else 3)
    args.min_step = args.min_step or (2000 if q else 500)
    args.fixed_seconds = args.fixed_seconds or (5 if q else 20)
    for s in args.servers.split(","):
        if s and not ws.known_server(s):
            ap.error(f"unknown server {s!r} ({', '.join(ws.SERVERS)}, fastdhcp-wN)")
    try:
        workers = parse_workers(args.workers) if args.workers is not None else None
        if workers and "fastdhcp" not in args.servers.split(","):
            raise ValueError("--workers: 'fastdhcp' is not in --servers")
        args.servers = ",".join(expand_servers([s for s in args.servers.split(",") if s],
                                               workers))
        parse_ceilings(DEFAULT_CEILINGS + "," + args.ceiling, args.servers.split(","))
    except ValueError as exc:
        ap.error(str(exc))
    for kind in args.servers.split(","):
        why = check_fastdhcp_kind(kind)
        if why:
            print(why, file=sys.stderr)
            return 2
    if os.geteuid() != 0:
        print("compare.py needs root (network namespaces, port 67)", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    res: dict[str, Any] = {
        "command": "sudo python3 bench/compare.py" + (" " + shlex.join(sys.argv[1:])
                                                       if sys.argv[1:] else ""),
        "started_utc": f"{now:%Y-%m-%d %H:%M} UTC", "load_start": os.getloadavg()[0],
        "args": vars(args), "runs": [], "_phase": None,
    }
    signal.signal(signal.SIGTERM, _on_term)
    old_rmem = None if args.no_rmem else ws.raise_rmem()
    res["rmem"] = ("left as the host had them" if old_rmem is None else
                   f"raised to {ws.RCVBUF:,} bytes for the run (were "
                   + ", ".join(f"{Path(k).name} {v:,}" for k, v in old_rmem.items()) + ")")
    try:
        lab = ws.build_lab()
    except BaseException:
        if old_rmem is not None:
            ws.restore_rmem(old_rmem)
        raise
    log(f"lab fd{lab.tag}-srv / fd{lab.tag}-perf up; load average {res['load_start']:.1f}")
    t0 = time.monotonic()
    interrupted = False
    try:
        run_all(args, lab, res)
    except (KeyboardInterrupt, Stop):
        interrupted = True
        log("interrupted: tearing down")
    except Exception as exc:  # noqa: BLE001 - keep what was measured, then fail
        interrupted = True
        log(f"failed: {exc!r}: tearing down")
    finally:
        if old_rmem is not None:
            ws.restore_rmem(old_rmem)
        problems = lab.close()
        for p in problems:
            print(f"teardown: {p}", file=sys.stderr)
        left = ws.netns.leftovers(lab.tag)
        if left:
            print(f"teardown left: {left}", file=sys.stderr)
    res["finished_utc"] = f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"
    res["load_end"] = os.getloadavg()[0]
    res["wall_s"] = time.monotonic() - t0
    res.pop("_phase", None)
    (out / "compare.json").write_text(json.dumps(res, indent=1, default=str))
    if interrupted:
        log(f"partial results in {out / 'compare.json'}")
        return 130
    block = render_markdown(res)
    print("\n" + block)
    if not (q or args.no_results_md):
        write_section(RESULTS_MD, block)
        log(f"wrote the generated block of '{SECTION}' in {RESULTS_MD}")
    drawn = plot(res, out / "compare.png")
    log(f"done in {res['wall_s']:.0f} s: {out / 'compare.json'}"
        + (f", {out / 'compare.png'}" if drawn else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
