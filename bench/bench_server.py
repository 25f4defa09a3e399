#!/usr/bin/env python3
"""Whole-server benchmark: ``fastdhcp serve`` on loopback, driven by ``fastdhcp.loadgen``.

For each lease-database mode (``sync = true``: fsync before every ACK batch; ``false``) and each
load (closed loop with the driver's window, then each fixed rate), a fresh server and database:
- ACKs per second over the load period and drops (started - ACKed);
- server CPU per DORA (user + system of the server process, /proc: loop, writer thread, all);
- OFFER and ACK latency percentiles as the driver (relay at 127.0.0.2) sees them.
Medians over --repeat runs. No root needed (ports above 1024).

Usage: python3 bench/bench_server.py [--seconds 5] [--rates 1000,2000] [--repeat 3]
                                     [--sync true,false] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
from loopback import CLIENTS, serving

from fastdhcp.demo import RELAY_IP, SERVER_IP
from fastdhcp.loadgen import run_load


def one_run(sync: bool, rate: int, seconds: float) -> dict[str, Any]:
    with serving("fastdhcp-bench-", sync=sync) as srv:
        cpu0 = srv.child.cpu_seconds()
        st = run_load((SERVER_IP, srv.port), RELAY_IP, clients=CLIENTS, rate=rate,
                      duration=seconds)
        cpu = srv.child.cpu_seconds() - cpu0
    return {
        "sync": sync, "rate": rate, "acks_per_s": st.acks / st.elapsed,
        "drops": st.discovers - st.acks,
        "drop_pct": 100.0 * (st.discovers - st.acks) / max(st.discovers, 1),
        "cpu_us_per_dora": 1e6 * cpu / max(st.acks, 1),
        "offer_ms": st.offer_latency, "ack_ms": st.ack_latency,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rates", default="0,1000,2000", help="0 = closed loop (window 256)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sync", default="true,false")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    results = []
    for sync in [s.strip() == "true" for s in args.sync.split(",")]:
        for rate in [int(r) for r in args.rates.split(",")]:
            runs = [one_run(sync, rate, args.seconds) for _ in range(args.repeat)]

            def med(key: str, sub: str | None = None, runs: list[dict[str, Any]] = runs) -> float:
                return statistics.median(r[key][sub] if sub else r[key] for r in runs)

            row = {
                "sync": sync, "rate": rate or "closed",
                "acks_per_s": med("acks_per_s"), "drop_pct": med("drop_pct"),
                "cpu_us_per_dora": med("cpu_us_per_dora"),
                "offer_p50_ms": med("offer_ms", "p50"), "offer_p99_ms": med("offer_ms", "p99"),
                "ack_p50_ms": med("ack_ms", "p50"), "ack_p99_ms": med("ack_ms", "p99"),
            }
            results.append(row)
            print(f"sync={str(sync).lower():5} load={str(row['rate']):>6}  "
                  f"{row['acks_per_s']:8,.0f} ACK/s  drops {row['drop_pct']:5.2f}%  "
                  f"server CPU {row['cpu_us_per_dora']:6.1f} us/DORA  "
                  f"OFFER p50/p99 {row['offer_p50_ms']:.2f}/{row['offer_p99_ms']:.2f} ms  "
                  f"ACK p50/p99 {row['ack_p50_ms']:.2f}/{row['ack_p99_ms']:.2f} ms", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
