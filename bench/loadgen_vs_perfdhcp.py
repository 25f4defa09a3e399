#!/usr/bin/env python3
"""Cross-check the project's load driver against ISC perfdhcp on the same ISC Kea.

Everything runs in a private network namespace (its own loopback with 127.0.0.2 for our driver
and 127.0.0.3 for perfdhcp, both listed as relays of Kea's one subnet), Kea 2.2 memfile with
WARN logging, a fresh Kea (and lease file) for every run. Needs root, kea-dhcp4 and perfdhcp.

Measures, per run (medians over --repeat runs):
- completions: ACKs per second of the sending period, and drops = started - ACKed;
- tool CPU per exchange: getrusage(RUSAGE_CHILDREN) of the tool's process, and for our driver
  also the CPU of its loop thread alone (RUSAGE_THREAD, reported by the driver);
- Kea CPU per exchange (/proc/PID/stat), a check that both tools load Kea the same way.
Then Kea's highest open-loop rate with < 1 % drops under our driver, its closed-loop rate, and
how many DISCOVERs per second one core of the driver can offer (to a socket that never answers,
so no reply work is counted).

Usage: python3 bench/loadgen_vs_perfdhcp.py [--rates 500,1000,3000] [--seconds 10] [--repeat 3]
                                             [--sweep 3000,3500,...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)

NS = f"fdlgbench{os.getpid()}"
KEA = shutil.which("kea-dhcp4") or "/usr/sbin/kea-dhcp4"
PERFDHCP = shutil.which("perfdhcp") or "/usr/sbin/perfdhcp"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def sh(*cmd: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), check=True, text=True, capture_output=True, **kw)


def netns_up() -> None:
    sh("ip", "netns", "add", NS)
    sh("ip", "-n", NS, "link", "set", "lo", "up")
    for a in ("127.0.0.2/8", "127.0.0.3/8"):
        sh("ip", "-n", NS, "addr", "add", a, "dev", "lo")


def netns_down() -> None:
    subprocess.run(["ip", "netns", "del", NS], check=False)


class Kea:
    """A fresh kea-dhcp4 on 127.0.0.1:67 inside the namespace (killed by pid in stop())."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        lease = workdir / "leases4.csv"
        lease.unlink(missing_ok=True)
        conf = {"Dhcp4": {
            "interfaces-config": {"interfaces": ["lo/127.0.0.1"], "dhcp-socket-type": "udp"},
            "lease-database": {"type": "memfile", "persist": True, "name": str(lease),
                               "lfc-interval": 0},
            "valid-lifetime": 3600,
            "subnet4": [{"id": 1, "subnet": "10.0.0.0/8",
                         "pools": [{"pool": "10.0.0.1 - 10.3.255.254"}],
                         "relay": {"ip-addresses": ["127.0.0.2", "127.0.0.3"]}}],
            "loggers": [{"name": "kea-dhcp4", "severity": "WARN",
                         "output_options": [{"output": str(workdir / "kea.log")}]}],
        }}
        (workdir / "kea.json").write_text(json.dumps(conf))
        env = dict(os.environ, KEA_PIDFILE_DIR=str(workdir), KEA_LOCKFILE_DIR=str(workdir))
        self.proc = subprocess.Popen(["ip", "netns", "exec", NS, KEA, "-c",
                                      str(workdir / "kea.json")], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while "127.0.0.1:67 " not in sh("ip", "netns", "exec", NS, "ss", "-Hlun").stdout:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("kea-dhcp4 did not start")
            time.sleep(0.1)

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def socket_drops(self) -> int:
        """Datagrams the kernel dropped at Kea's socket (receive buffer full): /proc/net/udp."""
        out = sh("ip", "netns", "exec", NS, "cat", "/proc/net/udp").stdout
        for line in out.splitlines()[1:]:
            f = line.split()
            if f[1] == "0100007F:0043":       # 127.0.0.1:67
                return int(f[-1])
        return 0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_child(cmd: list[str], limit: float) -> tuple[str, float]:
    """Run cmd to completion; its output and its CPU seconds (user + system)."""
    c0 = children_cpu()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    cpu = children_cpu() - c0
    if out.returncode not in (0, 1, 3):   # perfdhcp exits 3 when it saw drops
        raise RuntimeError(f"{cmd[3]} failed ({out.returncode}): {out.stderr[-2000:]}")
    return out.stdout + out.stderr, cpu


def section(text: str, title: str) -> dict[str, float]:
    m = re.search(r"\*\*\*Statistics for: " + title + r"\*\*\*(.*?)(\*\*\*|$)", text, re.S)
    if not m:
        raise RuntimeError(f"no {title} statistics in perfdhcp output:\n{text[-3000:]}")
    body = m.group(1)

    def num(key: str) -> float:
        k = re.search(rf"^{key}: ([0-9.]+)", body, re.M)
        return float(k.group(1)) if k else 0.0
    return {"sent": num("sent packets"), "received": num("received packets"),
            "drops": num("drops"), "avg_ms": num("avg delay")}


def run_perfdhcp(workdir: Path, rate: int, clients: int, seconds: float) -> dict[str, Any]:
    kea = Kea(workdir)
    try:
        k0 = kea.cpu()
        text, cpu = timed_child(
            ["ip", "netns", "exec", NS, PERFDHCP, "-4", "-g", "single", "-l", "127.0.0.3",
             "-r", str(rate), "-R", str(clients), "-p", str(int(seconds)), "-W", "1000000",
             "-d", "1", "-s", "1", "127.0.0.1"], seconds + 60)
        kcpu = kea.cpu() - k0
        kdrops = kea.socket_drops()
    finally:
        kea.stop()
    do, ra = section(text, "DISCOVER-OFFER"), section(text, "REQUEST-ACK")
    acks = int(ra["received"])
    started = int(do["sent"])
    return {"tool": "perfdhcp", "rate": rate, "discovers": started, "acks": acks,
            "drops": started - acks, "drop_ratio": (started - acks) / max(1, started),
            "acks_per_s": acks / seconds, "cpu_s": cpu, "cpu_us_per_ack": cpu / max(1, acks) * 1e6,
            "cpu_us_per_started": cpu / max(1, started) * 1e6, "load": os.getloadavg()[0],
            "kea_cpu_us_per_ack": kcpu / max(1, acks) * 1e6, "kea_socket_drops": kdrops,
            "offer_avg_ms": do["avg_ms"], "ack_avg_ms": ra["avg_ms"]}


def run_driver(workdir: Path, rate: int, clients: int, seconds: float,
               window: int = 256) -> dict[str, Any]:
    kea = Kea(workdir)
    try:
        k0 = kea.cpu()
        text, cpu = timed_child(
            ["ip", "netns", "exec", NS, sys.executable, "-m", "fastdhcp.loadgen",
             "127.0.0.1:67", "--relay", "127.0.0.2", "-r", str(rate), "-w", str(window),
             "-R", str(clients), "-d", str(seconds), "-t", "1", "--json", "--progress", "0"],
            seconds + 60)
        kcpu = kea.cpu() - k0
        kdrops = kea.socket_drops()
    finally:
        kea.stop()
    s = json.loads(text[: text.rindex("}") + 1])
    acks = s["acks"]
    return {"tool": "loadgen", "rate": rate, "window": window, "discovers": s["discovers"],
            "acks": acks, "drops": s["discovers"] - acks, "drop_ratio": s["drop_ratio"],
            "acks_per_s": acks / seconds if rate else s["exchanges_per_s"],
            "cpu_s": cpu, "cpu_us_per_ack": cpu / max(1, acks) * 1e6,
            "cpu_us_per_started": cpu / max(1, s["discovers"]) * 1e6, "load": os.getloadavg()[0],
            "loop_cpu_us_per_ack": s["cpu_per_exchange_us"],
            "kea_cpu_us_per_ack": kcpu / max(1, acks) * 1e6, "kea_socket_drops": kdrops,
            "offer_p50_ms": s["offer_latency"]["p50"], "offer_p99_ms": s["offer_latency"]["p99"],
            "ack_p50_ms": s["ack_latency"]["p50"], "ack_p99_ms": s["ack_latency"]["p99"]}


def offer_capacity(rate: int, seconds: float) -> dict[str, Any]:
    """DISCOVERs per second the driver sends to a socket that never answers (send path only)."""
    from fastdhcp.loadgen import run_load
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    try:
        s = run_load(("127.0.0.1", sink.getsockname()[1]), "127.0.0.2", rate=rate,
                     duration=seconds, timeout=0.1)
    finally:
        sink.close()
    return {"rate": rate, "offered_per_s": s.discovers / seconds,
            "cpu_s": s.cpu_seconds, "cpu_us_per_discover": s.cpu_seconds / s.discovers * 1e6,
            "core_share": s.cpu_seconds / seconds}


def median_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = dict(rows[0])
    for k, v in rows[0].items():
        if isinstance(v, (int, float)) and k not in ("rate", "window"):
            out[k] = statistics.median(r[k] for r in rows)
    out["runs"] = len(rows)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", default="500,1000,3000")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clients", type=int, default=100_000)
    ap.add_argument("--sweep", default="2000,2500,3000,3500,4000,4500,5000,5500")
    ap.add_argument("--sweep-seconds", type=float, default=10.0)
    ap.add_argument("--capacity", default="50000,100000,200000")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespace, port 67)", file=sys.stderr)
        return 2
    results: dict[str, Any] = {"cross_check": [], "sweep": [], "closed_loop": [],
                               "capacity": []}
    work = Path(tempfile.mkdtemp(prefix="fdlgbench"))
    netns_up()
    try:
        print(f"# cross-check, {args.seconds:g} s per run, median of {args.repeat}, "
              f"{args.clients} clients", flush=True)
        print("| tool | rate/s | ACKs/s | drops | dropped at Kea's socket "
              "| tool CPU us/DORA (per started) | driver loop us/DORA | Kea CPU us/DORA "
              "| load avg |")
        print("|---|---|---|---|---|---|---|---|---|")
        for rate in (int(r) for r in args.rates.split(",") if r):
            per_tool: dict[str, list[dict[str, Any]]] = {"perfdhcp": [], "loadgen": []}
            for _ in range(args.repeat):   # interleaved, so drift hits both tools alike
                per_tool["perfdhcp"].append(run_perfdhcp(work, rate, args.clients,
                                                         args.seconds))
                per_tool["loadgen"].append(run_driver(work, rate, args.clients, args.seconds))
            for tool, rows in per_tool.items():
                m = median_row(rows)
                results["cross_check"].append({**m, "all": rows})
                loop = f"{m['loop_cpu_us_per_ack']:.1f}" if tool == "loadgen" else "-"
                print(f"| {tool} | {rate} | {m['acks_per_s']:.0f} | {m['drops']:.0f} "
                      f"({m['drop_ratio']:.2%}) | {m['kea_socket_drops']:.0f} "
                      f"| {m['cpu_us_per_ack']:.1f} "
                      f"({m['cpu_us_per_started']:.1f}) | {loop} "
                      f"| {m['kea_cpu_us_per_ack']:.1f} | {m['load']:.1f} |", flush=True)

        print(f"\n# Kea under the driver, open loop, {args.sweep_seconds:g} s per rate")
        print("| offered/s | ACKs/s | drops | dropped at Kea's socket | offer p50/p99 ms "
              "| ack p50/p99 ms | Kea CPU us/DORA | load avg |")
        print("|---|---|---|---|---|---|---|---|")
        for rate in (int(r) for r in args.sweep.split(",") if r):
            r = run_driver(work, rate, args.clients, args.sweep_seconds)
            results["sweep"].append(r)
            print(f"| {rate} | {r['acks_per_s']:.0f} | {r['drop_ratio']:.2%} | "
                  f"{r['kea_socket_drops']} | "
                  f"{r['offer_p50_ms']:.2f}/{r['offer_p99_ms']:.2f} | "
                  f"{r['ack_p50_ms']:.2f}/{r['ack_p99_ms']:.2f} | "
                  f"{r['kea_cpu_us_per_ack']:.1f} | {r['load']:.1f} |", flush=True)
        ok = [r["rate"] for r in results["sweep"] if r["drop_ratio"] < 0.01]
        results["kea_max_rate_under_1pct"] = max(ok) if ok else None
        print(f"Kea max open-loop rate with < 1% drops: {results['kea_max_rate_under_1pct']}")

        for window in (8, 32):
            r = run_driver(work, 0, args.clients, args.sweep_seconds, window=window)
            results["closed_loop"].append(r)
            print(f"closed loop, window {window}: {r['acks_per_s']:.0f} DORA/s, "
                  f"drops {r['drop_ratio']:.2%}, driver loop {r['loop_cpu_us_per_ack']:.1f} "
                  f"us/DORA, load avg {r['load']:.1f}", flush=True)

        print("\n# driver send capacity (to a socket that never answers)")
        for rate in (int(r) for r in args.capacity.split(",") if r):
            c = offer_capacity(rate, 3.0)
            results["capacity"].append(c)
            print(f"asked {rate}/s: offered {c['offered_per_s']:.0f}/s, "
                  f"{c['cpu_us_per_discover']:.2f} us CPU per DISCOVER, "
                  f"{c['core_share']:.0%} of a core", flush=True)
    finally:
        netns_down()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
