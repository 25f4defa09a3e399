#!/usr/bin/env python3
"""Whole-server benchmark in one command: fastdhcp against ISC Kea 2.2, in network namespaces.

Root only (namespaces, port 67). Topology and per-run method: ``bench/wholeserver.py``. In one
run, for each server (``--servers``), every measurement on a fresh server and empty database:

1. fixed rate both sustain: ``perfdhcp -4 -g single -l RELAY -r 3000 -R 100000 -p 20 -W 1000000
   -d 1 -s 1 SERVER``, ACKs counted over the period; server CPU per DORA, drops, perfdhcp's
   average delays (median of ``--repeat`` runs, servers interleaved);
2. rate sweep with the project's driver (``fastdhcp.loadgen``, open loop): steps (``--rates``),
   the servers interleaved at each step, ``--repeat`` runs per step; a server leaves the sweep
   at the first step whose median drops exceed 1 %; then ``--refine`` bisection steps between
   its last passing and first failing rate. Recorded per step: ACKs/s, drops, OFFER and ACK
   latency p50/p90/p99/p99.9, server CPU per DORA, leases held at the end;
3. every server at half of fastdhcp's maximum (latency there);
4. optionally (``--profile``) one py-spy run of fastdhcp at that rate, with per-thread CPU.

Writes ``OUT/compare.json`` (every run), ``OUT/compare.png`` (achieved vs offered rate, latency
percentiles vs rate, CPU per DORA vs rate) and, unless ``--quick`` or ``--no-results-md``, the
generated part of the "## Whole server" section of ``bench/RESULTS.md``.

Usage: sudo python3 bench/compare.py [--quick] [--servers kea,fastdhcp] [--out DIR]
         [--repeat N] [--rates 2000,4000,...] [--step-seconds S] [--profile]
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
import sys
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
DEFAULT_RATES = ",".join(str(r) for r in [2000, 4000, 6000, 8000, 10000, 12000, 14000, 16000,
                                          18000, 20000, 24000, 28000, 32000])


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
    return m["drop_ratio"] <= MAX_DROP and not m.get("crashes")


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
             "single-threaded, WARN logging, UDP sockets (no fsync: page cache only). fastdhcp: "
             "LMDB `sync = true` (fsync before every ACK batch), log level warning. A fresh "
             "server on an empty lease database for every run. Server CPU = utime + stime of "
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
    if sweeps:
        lines += [f"**Rate sweep, project driver, open loop, {a['step_seconds']:g} s per step**"
                  f" (median of {a['repeat']} per step; servers interleaved per step; a server "
                  "stops at the first step above 1 % drops, then bisection steps):", "",
                  "| server | offered/s | ACKs/s | drops | server CPU us/DORA | "
                  "OFFER p50/p90/p99/p99.9 ms | ACK p50/p90/p99/p99.9 ms | leases | load avg |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for kind, steps in sweeps.items():
            for m in sorted(steps, key=lambda s: s["rate"]):
                mark = "" if passes(m) else " ✗"
                if m.get("crashes"):
                    mark += f" (server crashed in {m['crashes']} of {m['runs']})"
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
                  f"{a['step_seconds']:g} s, median of {r0['runs']}:", "",
                  "| server | ACKs/s | drops | server CPU us/DORA | OFFER p50/p90/p99/p99.9 ms "
                  "| ACK p50/p90/p99/p99.9 ms |", "|---|---|---|---|---|---|"]
        for kind, m in half.items():
            lines.append(f"| {kind} | {m['acks_per_s']:,.0f} | {m['drop_ratio']:.2%} "
                         f"| {m['cpu_us_per_dora']:.1f} | {_lat(m['offer_ms'])} "
                         f"| {_lat(m['ack_ms'])} |")
        lines.append("")
    s = res.get("summary", {})
    if s:
        lines += ["**Summary** (fastdhcp / Kea):", "",
                  "| figure | fastdhcp | Kea | fastdhcp/Kea |", "|---|---|---|---|"]
        for label, key, fmt in (
                ("max sustained DORA/s (<= 1 % drops, driver)", "max_rate", "{:,.0f}"),
                ("ACKs/s at that rate", "max_acks_per_s", "{:,.0f}"),
                ("server CPU us per DORA at 3,000/s (perfdhcp)", "cpu_us_at_fixed", "{:.1f}"),
                ("DORA per server CPU-second at 3,000/s", "dora_per_cpu_s", "{:,.0f}")):
            f, k = s.get("fastdhcp", {}).get(key), s.get("kea", {}).get(key)
            ratio = f"{f / k:.2f}" if f and k else "-"
            lines.append(f"| {label} | {fmt.format(f) if f is not None else '-'} "
                         f"| {fmt.format(k) if k is not None else '-'} | {ratio} |")
        lines.append("")
    prof = res.get("profile")
    if prof:
        lines += [f"**Where fastdhcp spends its time** at {prof['rate']:,}/s "
                  f"(`py-spy record --native --threads --rate 50`, {prof['samples']:,} samples of "
                  "wall time; per-thread CPU from /proc over the same run):", ""]
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

    colors = {"fastdhcp": "tab:blue", "kea": "tab:orange"}
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
            f"leases {m['leases']} fsync {m['fsync_ms']:.1f} ms load {m['load_before']:.1f}")


def run_all(args: argparse.Namespace, lab: ws.BenchLab, res: dict[str, Any]) -> None:
    servers = [s for s in args.servers.split(",") if s]
    runs: list[dict[str, Any]] = res["runs"]

    def seg(kind: str, tool: str, rate: int, seconds: float, **kw: Any) -> dict[str, Any]:
        m = ws.run_segment(lab, kind, tool, rate, seconds, args.clients, keep=args.keep, **kw)
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

    # 2. sweep, interleaved per step
    res["_phase"] = "sweep"
    rates = [int(r) for r in args.rates.split(",") if r]
    sweep: dict[str, list[dict[str, Any]]] = {k: [] for k in servers}
    last_ok: dict[str, int] = {k: 0 for k in servers}
    first_bad: dict[str, int | None] = {k: None for k in servers}
    active = list(servers)
    for rate in rates:
        if not active:
            break
        log(f"sweep step {rate}/s for {', '.join(active)}")
        per = {k: [] for k in active}
        for _ in range(args.repeat):
            for kind in active:
                per[kind].append(seg(kind, "loadgen", rate, args.step_seconds))
        for kind in list(active):
            m = median_run(per[kind])
            sweep[kind].append(m)
            if passes(m):
                last_ok[kind] = rate
            else:
                first_bad[kind] = rate
                active.remove(kind)
    for kind in servers:
        lo, hi = last_ok[kind], first_bad[kind]
        for _ in range(args.refine):
            if hi is None or hi - lo <= args.min_step:
                break
            mid = int(round((lo + hi) / 2 / 100.0) * 100)
            if mid in (lo, hi):
                break
            log(f"refine {kind} at {mid}/s (between {lo} and {hi})")
            m = median_run([seg(kind, "loadgen", mid, args.step_seconds)
                            for _ in range(args.repeat)])
            sweep[kind].append(m)
            if passes(m):
                lo = mid
            else:
                hi = mid
        last_ok[kind] = lo
    res["sweep"] = sweep

    # 3. latency at half of fastdhcp's maximum
    half_rate = 0
    if "fastdhcp" in servers and last_ok["fastdhcp"]:
        half_rate = int(round(last_ok["fastdhcp"] / 2 / 100.0) * 100)
        res["_phase"] = "half"
        log(f"half of fastdhcp's maximum: {half_rate}/s")
        per = {k: [] for k in servers}
        for _ in range(args.repeat):
            for kind in servers:
                per[kind].append(seg(kind, "loadgen", half_rate, args.step_seconds))
        res["half"] = {k: median_run(v) for k, v in per.items()}

    # 4. profile
    if args.profile and "fastdhcp" in servers and half_rate:
        res["_phase"] = "profile"
        # At half the maximum: py-spy stops the process for each sample (--native), which
        # near the maximum turns into an overload of its own.
        rate = half_rate
        raw = Path(args.out) / "fastdhcp-profile.txt"
        log(f"py-spy on fastdhcp at {rate}/s -> {raw}")
        seg("fastdhcp", "loadgen", rate, args.step_seconds, profile=raw)
        if raw.exists():
            last = runs[-1]
            res["profile"] = {"rate": rate, **summarize_profile(raw),
                              "thread_cpu": last.get("threads", []),
                              "cpu_us_per_dora": last["cpu_us_per_dora"],
                              "drop_ratio": last["drop_ratio"]}

    # summary
    summ: dict[str, dict[str, Any]] = {}
    for kind in servers:
        best = [s for s in sweep[kind] if s["rate"] == last_ok[kind]]
        fx = res.get("fixed", {}).get(kind)
        summ[kind] = {
            "max_rate": last_ok[kind] or None,
            "max_acks_per_s": best[0]["acks_per_s"] if best else None,
            "first_failing_rate": first_bad[kind],
            "cpu_us_at_fixed": fx["cpu_us_per_dora"] if fx else None,
            "dora_per_cpu_s": 1e6 / fx["cpu_us_per_dora"] if fx and fx["cpu_us_per_dora"] else
            None,
        }
    res["summary"] = summ
    res.pop("_phase", None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 5 s perfdhcp, 3 s steps, 1 run each, no bisection, "
                         "RESULTS.md untouched")
    ap.add_argument("--servers", default="kea,fastdhcp", help="comma list of kea, fastdhcp")
    ap.add_argument("--out", default=str(ws.REPO / "bench" / "results"),
                    help="directory for compare.json, compare.png (default bench/results)")
    ap.add_argument("--repeat", type=int, default=None, help="runs per step (default 3)")
    ap.add_argument("--rates", default=DEFAULT_RATES, help="sweep steps, offered DORA/s")
    ap.add_argument("--step-seconds", type=float, default=None, help="default 8")
    ap.add_argument("--refine", type=int, default=None,
                    help="bisection steps after the first failing rate (default 2)")
    ap.add_argument("--min-step", type=int, default=400, help="stop bisecting below this gap")
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
    args.refine = (0 if q else 2) if args.refine is None else args.refine
    args.fixed_seconds = args.fixed_seconds or (5 if q else 20)
    for s in args.servers.split(","):
        if s and s not in ws.SERVERS:
            ap.error(f"unknown server {s!r} (kea, fastdhcp)")
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
    lab = ws.build_lab()
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
