"""The SIGKILL crash loop, longer: N rounds of ``fastdhcp serve`` (sync = true) killed under
relayed DORA load and restarted on one database (tests/crash_helpers.py; the CI version is
tests/test_crash.py with 6 rounds). Not collected by pytest (no ``test_`` prefix): a run to
start by hand.

    python3 tests/crash_loop.py --rounds 30 --rate 2000            # must report 0 / 0
    python3 tests/crash_loop.py --rounds 10 --mutant early-ack     # must report losses
    python3 tests/crash_loop.py --rounds 5 --mutant no-rebuild     # must report problems
    python3 tests/crash_loop.py --rounds 3 --fake-acks 5           # 5 losses per check

Loopback only (server 127.0.0.1, relay 127.0.0.2, a free high port). Exit status: 0 when the run
found nothing (or, with --mutant / --fake-acks, when it found the planted fault), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

# Run as a script from tests/, beside the helpers it drives: tests/ is sys.path[0].
from crash_helpers import CrashLoop
from crash_mutant import MUTANTS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rounds", type=int, default=20, help="SIGKILL rounds (default 20)")
    p.add_argument("--rate", type=float, default=2000.0, help="DORA/s offered (default 2000)")
    p.add_argument("--seed", type=int, default=None, help="RNG seed (default: random, printed)")
    p.add_argument("--kill-min", type=float, default=0.2, help="earliest kill, s (default 0.2)")
    p.add_argument("--kill-max", type=float, default=1.5, help="latest kill, s (default 1.5)")
    p.add_argument("--fake-acks", type=int, default=0,
                   help="self-test: add N ACKs that never happened; each check must report them")
    p.add_argument("--mutant", choices=MUTANTS, default=None,
                   help="self-test: run a deliberately broken server (tests/crash_mutant.py)")
    p.add_argument("--workdir", type=Path, default=None,
                   help="keep the database and server logs here (default: a temporary dir)")
    p.add_argument("--json", type=Path, default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    if args.rounds < 1 or not 0 < args.kill_min <= args.kill_max:
        p.error("need --rounds >= 1 and 0 < --kill-min <= --kill-max")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fastdhcp-crash-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    try:
        loop = CrashLoop(workdir, rounds=args.rounds, rate=args.rate, seed=args.seed,
                         kill_range=(args.kill_min, args.kill_max), fake_acks=args.fake_acks,
                         mutant=args.mutant, log=lambda s: print(s, flush=True))
        report = loop.run()
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    wall = time.monotonic() - t
    print(report.summary())
    rounds = report.rounds
    figures = {
        "seed": report.seed,
        "rounds": len(rounds),
        "rate": args.rate,
        "mutant": args.mutant,
        "fake_acks": args.fake_acks,
        "acks_received": report.acks_total,
        "clients": report.ledger_clients,
        "ack_checks": report.acks_checked,
        "losses": report.losses,
        "double_bindings": report.doubles,
        "problems": report.problems,
        "restart_probes": report.probes,
        "renewals": sum(r.renewals for r in rounds),
        "cross_round_renewals": loop.ledger.cross_round_renewals,
        "rounds_with_committed_unacked": sum(1 for r in rounds if r.committed_unacked),
        "kills_that_lost_acks": sum(1 for r in rounds if r.new_losses),
        "median_start_s": sorted(r.start_s for r in rounds)[len(rounds) // 2],
        "kill_at_s": [round(r.kill_at, 3) for r in rounds],
        "wall_s": round(wall, 1),
    }
    print(json.dumps({k: v for k, v in figures.items() if k != "problems"}))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if args.fake_acks:
        checks = len(rounds) + 1
        found = report.losses == args.fake_acks * checks
        print(f"self-test: {report.losses} losses reported, {args.fake_acks * checks} planted: "
              + ("DETECTED" if found else "NOT DETECTED"))
        return 0 if found else 1
    if args.mutant:
        print(f"self-test ({args.mutant}): " + ("NOT DETECTED" if report.ok else "DETECTED"))
        return 1 if report.ok else 0
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
