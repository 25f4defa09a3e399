"""Benchmarks of config loading (fastdhcp.config) and option encoding (fastdhcp.options).

Run: python3 -m pytest bench/bench_config.py --benchmark-only

Config loading is not on the packet path, but it runs at start and on every SIGHUP reload, so a
big reservation list must stay cheap: the figure that matters is microseconds per reservation
(tomllib parsing included), measured here at 10,000 circuit-id reservations.
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path

import _common  # noqa: F401  (the repo root and tests/ on sys.path: bench/_common.py)

from fastdhcp.config import _Loader, load, loads
from fastdhcp.options import encode_option

ROOT = Path(__file__).resolve().parent.parent
N_RES = 10_000


def _reservations_text(n: int) -> str:
    parts = ['[[subnet4]]\nid = 1\nsubnet = "10.0.0.0/8"\npools = ["10.128.0.0 - 10.200.0.0"]\n']
    for i in range(n):
        parts.append(f"[[subnet4.reservations]]\ncircuit-id = \"'port-{i}'\"\n"
                     f'ip-address = "{ipaddress.IPv4Address(0x0A000001 + i)}"\n')
    return "".join(parts)


def test_load_isp_example(benchmark):
    cfg = benchmark(load, ROOT / "examples" / "isp.toml")
    assert len(cfg.subnets) == 4


def test_loads_10k_reservations(benchmark):
    text = _reservations_text(N_RES)
    cfg = benchmark.pedantic(loads, (text,), rounds=5, iterations=1)
    assert len(cfg.subnets[0].reservations) == N_RES


def test_validate_10k_reservations_without_toml(benchmark):
    doc = tomllib.loads(_reservations_text(N_RES))
    cfg = benchmark.pedantic(lambda: _Loader().run(doc, "bench"), rounds=5, iterations=1)
    assert len(cfg.subnets[0].reservations) == N_RES


def test_encode_domain_search(benchmark):
    names = [f"site{i}.region{i % 4}.example.net" for i in range(20)]
    code, payload = benchmark(encode_option, "domain-search", names)
    assert code == 119 and len(payload) < sum(len(n) + 2 for n in names)
