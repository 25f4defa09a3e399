"""A fastdhcp HA pair's DORA rate against one fastdhcp alone, same topology, same run.

Run (root): ``python3 bench/ha_pair.py [--seconds 10] [--repeat 2] [--window 256]``

The namespaces of tests/interop/test_ha_failover.py (two servers bridged with the relay, their
own HA link). The load is the project's compiled driver (``fastdhcp.loadgen``, closed loop:
``--window`` exchanges in flight) run in the relay namespace:

- ``single``: one fastdhcp server (no HA), one driver at 198.18.4.10;
- ``pair``: the pair in load-balancing, each server given both scopes (``ha-scopes``) so that
  a driver per server (relay addresses 198.18.4.10 and .11, distinct MACs) loads both at once;
  every ACK still waits for the partner's acknowledgement of the batched update, and each
  server allocates from its own share: the pair's cost, spread over both servers.

Printed: completed DORA/s (ACKs / elapsed, summed over the drivers), timeouts, ACK latency
p50/p99. The 2 cores are shared by the servers, the drivers and whatever else runs: compare
the two rows of one run, several runs. Not yet here: a Kea 2.2 pair (issue 17's third row).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)

from tests.control_helpers import unix_command
from tests.interop.test_ha_failover import (
    POOL,
    RELAY_IP,
    SERVER_IPS,
    Fastdhcp,
    PairLab,
    build_pair_lab,
    wait_states,
)

RELAY2 = "198.18.4.11"


def _bench_config(text: str) -> str:
    """The test's config with a second relay address and a /16 pool (the test's /24 pool is
    dry after 241 DORAs)."""
    return (text.replace(f'relay = ["{RELAY_IP}"]', f'relay = ["{RELAY_IP}", "{RELAY2}"]')
            .replace('subnet = "198.18.5.0/24"', 'subnet = "198.19.0.0/16"')
            .replace(f'pools = ["{POOL[0]} - {POOL[1]}"]',
                     'pools = ["198.19.0.10 - 198.19.255.250"]'))


def drive(lab: PairLab, targets: list[tuple[str, str, int]], seconds: float,
          window: int) -> list[dict]:
    """One driver per (server, relay address, first MAC), all at once; their JSON stats."""
    procs = []
    env = dict(os.environ, PYTHONPATH=str(_common.ROOT))
    for server, relay, first in targets:
        procs.append(subprocess.Popen(lab.relay.argv([
            sys.executable, "-m", "fastdhcp.loadgen", f"{server}:67", "--relay", relay,
            "--window", str(window), "--duration", str(seconds), "--clients", "200000",
            "--first-mac", f"{first:012x}", "--progress", "1000", "--json"]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True))
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=seconds + 60)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout[stdout.index("{"):]))
    return out


def row(name: str, stats: list[dict]) -> str:
    acks = sum(s["acks"] for s in stats)
    elapsed = max(s["elapsed"] for s in stats)
    tmo = sum(s["timeouts"] for s in stats)
    p50 = max(s["ack_latency"]["p50"] for s in stats)
    p99 = max(s["ack_latency"]["p99"] for s in stats)
    return (f"| {name} | {acks / elapsed:,.0f} | {tmo} | {p50:.2f} | {p99:.2f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--window", type=int, default=256)
    args = ap.parse_args()
    lab = build_pair_lab(str(os.getpid()))
    lab.relay.run(["ip", "addr", "add", f"{RELAY2}/24", "dev", "br0"])
    rows = ["| setup | DORA/s | timeouts | ACK p50 ms | ACK p99 ms |", "|---|---|---|---|---|"]
    try:
        with tempfile.TemporaryDirectory(prefix="ha-pair-bench-") as tmp:
            for r in range(args.repeat):
                # one server alone: the same config without [high-availability]
                one = Fastdhcp(lab.servers[0], 0, "load-balancing", Path(tmp) / f"one{r}")
                text = one.config.read_text()
                one.config.write_text(_bench_config(text[:text.index("[high-availability]")]))
                one.start()
                try:
                    rows.append(row(f"single, run {r + 1}", drive(
                        lab, [(SERVER_IPS[0], RELAY_IP, 0x020000000000)], args.seconds,
                        args.window)))
                finally:
                    one.stop()
                pair = [Fastdhcp(lab.servers[i], i, "load-balancing", Path(tmp) / f"p{r}{i}")
                        for i in range(2)]
                for s in pair:
                    s.config.write_text(_bench_config(s.config.read_text()))
                    s.start()
                try:
                    wait_states(pair, "load-balancing")
                    for s in pair:
                        ans = unix_command(s.sock, "ha-scopes",
                                           {"scopes": ["server1", "server2"]})
                        assert ans["result"] == 0, ans
                    time.sleep(0.5)
                    rows.append(row(f"pair, run {r + 1}", drive(
                        lab, [(SERVER_IPS[0], RELAY_IP, 0x020000000000),
                              (SERVER_IPS[1], RELAY2, 0x020100000000)],
                        args.seconds, args.window)))
                finally:
                    for s in pair:
                        s.stop()
    finally:
        lab.cleanup.close()
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
