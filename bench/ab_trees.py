#!/usr/bin/env python3
"""A/B of fastdhcp variants in the compare.py lab: CPU per DORA (and per thread) at a fixed rate.

A variant is a source tree (its compiled modules built) plus config overrides, so a change can
be measured against the tree before it (a copy made with ``git archive`` and the old ``.so``
files) or against itself with a key changed. Runs are interleaved (A, B, A, B, ...), each on a
fresh server and empty database (``bench/wholeserver.run_segment``), and the medians are
printed, with every run, as JSON and as a table. CPU time is what this compares: on the noisy
shared machine it moves far less than rates or latencies do.

Usage (root):
  sudo python3 bench/ab_trees.py --variant base=/tmp/base --variant gso=. \\
      [--variant 'wait=.:lease-database.max-wait-ms=4'] [--tool perfdhcp|loadgen] \\
      [--rate 3000] [--seconds 10] [--rounds 3] [--json OUT]

An override is ``table.key=value`` with a TOML value, put at the top of ``[table]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (the repo root and tests/ on sys.path)
import wholeserver as ws


@dataclass
class Variant:
    """One side of the A/B: a name, the tree the server runs from, config overrides."""

    name: str
    tree: Path
    overrides: dict[str, list[str]] = field(default_factory=dict)  # table -> "key = value"


def parse_variant(text: str) -> Variant:
    """``NAME=TREE[:table.key=value[,table.key=value...]]``."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise ValueError(f"--variant {text!r}: want NAME=TREE[:table.key=value,...]")
    tree, _, over = rest.partition(":")
    v = Variant(name, Path(tree).resolve())
    if not (v.tree / "fastdhcp" / "__init__.py").exists():
        raise ValueError(f"--variant {text!r}: {v.tree} is not a fastdhcp tree")
    for item in filter(None, over.split(",")):
        dotted, sep, value = item.partition("=")
        table, dot, key = dotted.partition(".")
        if not sep or not dot:
            raise ValueError(f"--variant {text!r}: override {item!r} is not table.key=value")
        v.overrides.setdefault(table, []).append(f"{key} = {value}")
    return v


def apply_overrides(toml: str, overrides: dict[str, list[str]]) -> str:
    """Put each table's overrides right under its header (the table must exist)."""
    lines = toml.splitlines()
    for table, keys in overrides.items():
        head = f"[{table}]"
        if head not in lines:
            raise ValueError(f"no [{table}] table in the bench config")
        at = lines.index(head) + 1
        lines[at:at] = keys
    return "\n".join(lines) + "\n"


def per_thread(m: dict[str, Any]) -> dict[str, float]:
    """us of CPU per DORA of the loop (the main thread: the lowest tid, the process id) and of
    the other threads (the writer, nearly all of it), user and system. Python 3.11 leaves
    thread names as the process's, so the tid tells them apart."""
    acks = max(1, m["acks"])
    out = {"loop_user": 0.0, "loop_sys": 0.0, "writer_user": 0.0, "writer_sys": 0.0}
    threads = sorted(m.get("threads", []), key=lambda t: t["tid"])
    for i, t in enumerate(threads):
        role = "loop" if i == 0 else "writer"
        out[f"{role}_user"] += t["user_s"] / acks * 1e6
        out[f"{role}_sys"] += t["sys_s"] / acks * 1e6
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--tool", choices=("perfdhcp", "loadgen"), default="perfdhcp")
    ap.add_argument("--rate", type=int, default=3000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=100_000)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.json:
        args.json = str(Path(args.json).resolve())  # the runs chdir into the trees
    try:
        variants = [parse_variant(v) for v in args.variant]
    except ValueError as exc:
        ap.error(str(exc))
    base_config = ws.fastdhcp_config
    runs: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
    old_rmem = ws.raise_rmem()
    lab = ws.build_lab()
    try:
        for rnd in range(args.rounds):
            for v in (variants if rnd % 2 == 0 else variants[::-1]):
                # `python -m fastdhcp` puts its working directory first on sys.path, before
                # PYTHONPATH: the child must start in the variant's tree to run its code
                ws.REPO = v.tree
                os.chdir(v.tree)
                ws.fastdhcp_config = (  # type: ignore[misc]
                    lambda wd, sync=True, workers=None, _v=v:
                    apply_overrides(base_config(wd, sync, workers), _v.overrides))
                m = ws.run_segment(lab, "fastdhcp", args.tool, args.rate, args.seconds,
                                   args.clients)
                m.update(per_thread(m), variant=v.name)
                # loadgen gives percentiles, perfdhcp averages only
                m["offer_tail_ms"] = m["offer_ms"].get("p99", m["offer_ms"].get("avg", 0.0))
                m["ack_tail_ms"] = m["ack_ms"].get("p99", m["ack_ms"].get("avg", 0.0))
                runs[v.name].append(m)
                print(f"{v.name:>10} round {rnd + 1}: {m['acks_per_s']:8,.0f} ACK/s drops "
                      f"{m['drop_ratio']:.2%} CPU {m['cpu_us_per_dora']:6.1f} us/DORA "
                      f"(loop {m['loop_user']:.1f}+{m['loop_sys']:.1f}, other threads "
                      f"{m['writer_user']:.1f}+{m['writer_sys']:.1f}) OFFER/ACK "
                      f"{'p99' if args.tool == 'loadgen' else 'avg'} {m['offer_tail_ms']:.2f}/"
                      f"{m['ack_tail_ms']:.2f} ms load "
                      f"{m['load_before']:.1f}", flush=True)
    finally:
        ws.fastdhcp_config = base_config
        ws.restore_rmem(old_rmem)
        for p in lab.close():
            print(f"teardown: {p}", file=sys.stderr)
    keys = ("cpu_us_per_dora", "loop_user", "loop_sys", "writer_user", "writer_sys",
            "offer_tail_ms", "ack_tail_ms")
    print(f"\n{args.tool} {args.rate}/s, {args.seconds:g} s, {args.rounds} rounds, medians "
          "(min-max), us of CPU per DORA, latency in ms:")
    tail = "p99" if args.tool == "loadgen" else "avg"
    print("| variant | total | loop user | loop sys | other threads (writer) user | sys "
          f"| OFFER {tail} ms | ACK {tail} ms | drops |")
    print("|---|---|---|---|---|---|---|---|---|")
    summary = {}
    for name, ms in runs.items():
        cells = []
        summary[name] = {}
        for k in keys:
            vals = [m.get(k, 0.0) for m in ms]
            summary[name][k] = statistics.median(vals)
            cells.append(f"{statistics.median(vals):.1f} ({min(vals):.1f}-{max(vals):.1f})")
        drops = statistics.median(m["drop_ratio"] for m in ms)
        print(f"| {name} | " + " | ".join(cells) + f" | {drops:.2%} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "summary": summary,
                                               "runs": runs}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
