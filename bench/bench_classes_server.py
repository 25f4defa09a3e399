#!/usr/bin/env python3
"""Whole-server cost of client classification: ``fastdhcp serve`` on loopback driven by
``fastdhcp.loadgen``, with the reference's 16 ISP patterns loaded (their 20 class tests,
bench/bench_engine.py's set) plus a class the load's traffic matches, against the same server
and traffic with no class. Runs alternate (none, classes, none, ...) so both see the same
neighbours; medians over --repeat runs of each.

The class run: the subnet is guarded by RELAYED (``pkt4.giaddr == 127.0.0.2``: every request
of the driver), which also gives an NTP option (option 42 is not in the driver's PRL: filtered
out, as a class option the client does not ask for), the subnet requires VOICE_OPTS (no option
60 in this traffic: evaluated, false), and WALLED (``member('UNKNOWN')``, pass 2) gives every
lease 300 s. The driver sends no option 60 or 82, so the pattern tests read absent options
(bench_engine.py's ``..._16_patterns`` has traffic that matches them).

Usage: python3 bench/bench_classes_server.py [--seconds 5] [--rate 0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
from bench_engine import _pattern_classes
from loopback import CLIENTS, serving

from fastdhcp.demo import RELAY_IP, SERVER_IP
from fastdhcp.loadgen import run_load

#: Appended to the demo config, whose last table is its one [[subnet4]]: the first two lines
#: are that subnet's keys.
CLASSES = f"""client-class = "RELAYED"
require-client-classes = ["VOICE_OPTS"]

[[client-classes]]
name = "RELAYED"
test = "pkt4.giaddr == {RELAY_IP}"
option-data = {{ ntp-servers = ["198.18.50.123"] }}

""" + _pattern_classes()


def one_run(classes: bool, rate: int, seconds: float) -> dict[str, Any]:
    with serving("fastdhcp-classes-", sync=False, extra_toml=CLASSES if classes else "") as srv:
        cpu0 = srv.child.cpu_seconds()
        st = run_load((SERVER_IP, srv.port), RELAY_IP, clients=CLIENTS, rate=rate,
                      duration=seconds)
        cpu = srv.child.cpu_seconds() - cpu0
    return {"acks_per_s": st.acks / st.elapsed,
            "drop_pct": 100.0 * (st.discovers - st.acks) / max(st.discovers, 1),
            "cpu_us_per_dora": 1e6 * cpu / max(st.acks, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rate", type=int, default=0, help="0 = closed loop (window 256)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for _ in range(args.repeat):
        for classes in (False, True):
            r = one_run(classes, args.rate, args.seconds)
            runs[classes].append(r)
            print(f"{'16 patterns' if classes else 'no classes':12} {r['acks_per_s']:9.0f} "
                  f"DORA/s  drops {r['drop_pct']:.2f} %  {r['cpu_us_per_dora']:.1f} us CPU/DORA",
                  flush=True)
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in runs.items()}
    base, cls = med[False], med[True]
    print(f"median: no classes {base['acks_per_s']:.0f} DORA/s, "
          f"{base['cpu_us_per_dora']:.1f} us CPU/DORA; 16 patterns {cls['acks_per_s']:.0f} "
          f"DORA/s, {cls['cpu_us_per_dora']:.1f} us CPU/DORA; rate "
          f"{100.0 * (cls['acks_per_s'] / base['acks_per_s'] - 1):+.1f} %, CPU "
          f"{100.0 * (cls['cpu_us_per_dora'] / base['cpu_us_per_dora'] - 1):+.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
