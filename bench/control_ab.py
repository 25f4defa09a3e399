#!/usr/bin/env python3
"""The DORA rate with and without a control client paging leases beside it (issue 15).

For each load (closed loop, then each fixed rate) and each mode, a fresh ``fastdhcp serve``
child on loopback with a Unix control socket and ``sync = true``; first ``--prefill`` leases are
made by real DORA (so that pages are full), then the load runs for ``--seconds``:
- ``quiet``: the load alone;
- ``paging``: the load while a second process loops ``lease4-get-page`` (``limit`` 1000) over
  the socket as fast as the server answers, from ``"start"`` to the end and round again.
The modes alternate within each repeat so that the neighbours' load on this shared machine hits
both alike. Reported: ACK/s, drops (started - ACKed), ACK p99, and for ``paging`` the pages and
leases the control client read per second. Medians (and ranges) over ``--repeat`` runs.

Usage: python3 bench/control_ab.py [--seconds 5] [--rates 0,3000] [--repeat 3]
                                   [--prefill 20000] [--json out.json]
(``--pager SOCKET SECONDS`` is the control client's own entry point.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)
from loopback import CLIENTS, serving

from fastdhcp.control.client import call
from fastdhcp.demo import RELAY_IP, SERVER_IP
from fastdhcp.loadgen import run_load

PAGE = 1000  # the page size
MODES = ("quiet", "paging")


def pager(sock: str, seconds: float) -> dict[str, Any]:
    """Page through every lease, round after round, for ``seconds``; what was read."""
    pages = leases = rounds = 0
    start = time.monotonic()
    cursor: str = "start"
    while time.monotonic() - start < seconds:
        reply = call(sock, "lease4-get-page", {"from": cursor, "limit": PAGE})
        if reply.result == 3:  # past the last lease: round again
            cursor, rounds = "start", rounds + 1
            continue
        if reply.result != 0:
            raise RuntimeError(f"lease4-get-page: {reply.raw}")
        page = reply.arguments["leases"]
        pages, leases = pages + 1, leases + len(page)
        cursor = page[-1]["ip-address"]
    elapsed = time.monotonic() - start
    return {"pages_per_s": pages / elapsed, "leases_per_s": leases / elapsed, "rounds": rounds}


def one_run(mode: str, rate: int, seconds: float, prefill: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fastdhcp-ctlab-") as sockdir:
        sock = os.path.join(sockdir, "ctl.sock")
        control = f'\n[[control-sockets]]\nsocket-type = "unix"\nsocket-name = "{sock}"\n'
        paged: dict[str, Any] = {}
        with serving("fastdhcp-ctlab-", extra_toml=control) as srv:
            if prefill:
                pre = run_load((SERVER_IP, srv.port), RELAY_IP, clients=prefill, rate=0,
                               max_exchanges=prefill, duration=120.0, first_mac=1 << 40)
                if pre.acks < prefill * 0.99:
                    raise RuntimeError(f"prefill: {pre.acks} of {prefill} ACKed")
            child = None
            if mode == "paging":
                child = subprocess.Popen(
                    [sys.executable, __file__, "--pager", sock, str(seconds + 1.0)],
                    stdout=subprocess.PIPE, text=True)
                time.sleep(0.5)  # the pager is reading before the load starts
            st = run_load((SERVER_IP, srv.port), RELAY_IP, clients=CLIENTS, rate=rate,
                          duration=seconds)
            if child is not None:
                out, _ = child.communicate(timeout=seconds + 60)
                if child.returncode != 0:
                    raise RuntimeError(f"pager exited {child.returncode}")
                paged = json.loads(out)
    return {
        "mode": mode, "rate": rate, "acks_per_s": st.acks / st.elapsed,
        "drop_pct": 100.0 * (st.discovers - st.acks) / max(st.discovers, 1),
        "ack_p99_ms": st.ack_latency["p99"], **paged,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rates", default="0,3000", help="0 = closed loop (window 256)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--prefill", type=int, default=20_000)
    ap.add_argument("--json", default=None)
    ap.add_argument("--pager", nargs=2, metavar=("SOCKET", "SECONDS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.pager:
        print(json.dumps(pager(args.pager[0], float(args.pager[1]))))
        return 0
    results = []
    for rate in [int(r) for r in args.rates.split(",")]:
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
        for i in range(args.repeat):
            for mode in MODES if i % 2 == 0 else MODES[::-1]:
                runs[mode].append(one_run(mode, rate, args.seconds, args.prefill))
        for mode in MODES:
            rs = runs[mode]

            def med(key: str, rs: list[dict[str, Any]] = rs) -> float:
                return statistics.median(r[key] for r in rs)

            acks = [r["acks_per_s"] for r in rs]
            row = {"rate": rate or "closed", "mode": mode, "acks_per_s": med("acks_per_s"),
                   "acks_range": [min(acks), max(acks)], "drop_pct": med("drop_pct"),
                   "ack_p99_ms": med("ack_p99_ms"), "runs": rs}
            line = (f"load={str(row['rate']):>6} {mode:6}  {row['acks_per_s']:8,.0f} ACK/s "
                    f"({min(acks):,.0f}-{max(acks):,.0f})  drops {row['drop_pct']:5.2f}%  "
                    f"ACK p99 {row['ack_p99_ms']:.1f} ms")
            if mode == "paging":
                row["pages_per_s"] = med("pages_per_s")
                row["leases_per_s"] = med("leases_per_s")
                line += (f"  control: {row['pages_per_s']:,.0f} pages/s "
                         f"({row['leases_per_s']:,.0f} leases/s)")
            results.append(row)
            print(line, flush=True)
        quiet, paging = results[-2]["acks_per_s"], results[-1]["acks_per_s"]
        print(f"load={str(rate or 'closed'):>6} paging/quiet = {paging / quiet:.3f}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
