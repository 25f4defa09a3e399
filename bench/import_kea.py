"""Kea lease import speed: ``python3 bench/import_kea.py [--leases 1000000] [--no-sync]``.

Two trees compared, interleaved (before, after, before, ...; each run a subprocess with
``PYTHONPATH`` set to its tree, each tree built in place):
``python3 bench/import_kea.py --before /tmp/wt-before --after . [--rounds 3]``; the figure is
the median over the rounds, the range beside it (the shared machine moves a run by 1.5x).

Writes a Kea memfile ``leases4.csv`` of N distinct leases (plus 10 % superseded rows, as a live
file holds) in 10.0.0.0/8, then times :func:`fastdhcp.kea.lease_import.import_leases` into a new
database: read + check, and write (fsynced batches when sync). The goal (issue 18) is 200,000
leases/s with sync = true.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)

from fastdhcp.kea.lease_import import SubnetRange, import_leases
from fastdhcp.kea.memfile import HEADER


def write_file(path: str, n: int) -> int:
    """A lease file of ``n`` leases and n/10 earlier versions; returns its rows."""
    base = 0x0A000000
    rows = 0
    with open(path, "w") as fh:
        fh.write(",".join(HEADER) + "\n")
        for i in range(n + n // 10):
            k = i if i < n else (i - n) * 10  # the tail repeats every 10th address
            ip = base + 1 + k
            mac = (0x020000000000 + k).to_bytes(6, "big").hex(":")
            fh.write(f"{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255},{mac},"
                     f"01:{mac},3600,{1_900_000_000 + i},1,0,0,host-{k},0,\n")
            rows += 1
    return rows


_RATE = re.compile(r"s, ([\d,]+) leases/s")


def run_tree(tree: str, argv: list[str]) -> float:
    """One run of this bench in ``tree`` (its own fastdhcp); returns leases/s."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    out = subprocess.run([sys.executable, "bench/import_kea.py", *argv], cwd=tree, env=env,
                         capture_output=True, text=True, timeout=600, check=True).stdout
    found = _RATE.search(out)
    if found is None:
        raise RuntimeError(f"no rate in the output of {tree}:\n{out}")
    print(f"  {tree}: {out.strip()}", flush=True)
    return float(found.group(1).replace(",", ""))


def compare(before: str, after: str, rounds: int, argv: list[str]) -> None:
    """Interleaved runs of the two trees; prints each and the medians."""
    rates: dict[str, list[float]] = {before: [], after: []}
    for k in range(rounds):
        print(f"round {k + 1}/{rounds}, load {os.getloadavg()[0]:.1f}", flush=True)
        for tree in (before, after):
            rates[tree].append(run_tree(tree, argv))
    med = {tree: statistics.median(r) for tree, r in rates.items()}
    for tree, r in rates.items():
        print(f"{tree}: median {med[tree]:,.0f} leases/s (range {min(r):,.0f}-{max(r):,.0f})")
    print(f"after/before: {med[after] / med[before]:.2f}x")


def main() -> None:
    """Run once and print the rates (or compare two trees)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--leases", type=int, default=1_000_000)
    ap.add_argument("--no-sync", action="store_true", help="sync = false (MDB_NOSYNC)")
    ap.add_argument("--dir", default=None, help="where to put the file and database")
    ap.add_argument("--before", help="a tree to compare against --after, interleaved")
    ap.add_argument("--after", default=".")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.before:
        argv = ["--leases", str(args.leases)] + (["--no-sync"] if args.no_sync else [])
        if args.dir:
            argv += ["--dir", os.path.abspath(args.dir)]
        compare(args.before, args.after, args.rounds, argv)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        csv_path = os.path.join(tmp, "leases4.csv")
        rows = write_file(csv_path, args.leases)
        t0 = time.perf_counter()
        report = import_leases([csv_path], os.path.join(tmp, "db"),
                               [SubnetRange(1, 0x0A000000, 0x0AFFFFFF)],
                               sync=not args.no_sync)
        dt = time.perf_counter() - t0
        print(f"{rows} rows, {report.total} leases, sync={not args.no_sync}: {dt:.2f} s, "
              f"{report.total / dt:,.0f} leases/s ({rows / dt:,.0f} rows/s)")


if __name__ == "__main__":
    main()
