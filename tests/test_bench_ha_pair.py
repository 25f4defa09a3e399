"""``bench/ha_pair.py``'s pieces that need no namespace or long run (issue 17's bench): the
arguments, the drivers of each row, the bench configs made from the failover test's (each a
config the server loads), merging the drivers' stats, the ratio lines, the common latency
rate, and a whole schedule against a fake probe (rows interleaved, the median of the
bisections, the latency rows at half the Kea pair's maximum)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fastdhcp import config as fconfig
from tests.interop.test_ha_failover import Fastdhcp, KeaPeer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def hp(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import ha_pair

    return ha_pair


def test_arguments_defaults_quick_and_errors(hp: ModuleType) -> None:
    a = hp.parse_args([])
    assert (a.bisections, a.step_seconds, a.resolution, a.latency_seconds) == (3, 3.0, 32, 5.0)
    assert a.rows == "single,pair,kea-pair" and a.latency_rate == "auto"
    assert hp.parse_args(["--rows", "kea-pair,kea-pair-mt"]).rows == "kea-pair,kea-pair-mt"
    q = hp.parse_args(["--quick"])
    assert (q.bisections, q.step_seconds, q.resolution, q.latency_seconds) == (1, 2.0, 8, 2.0)
    assert hp.parse_args(["--quick", "--bisections", "2"]).bisections == 2
    for bad in (["--rows", "single,kea"], ["--latency-rate", "fast"], ["--latency-rate", "0"],
                ["--resolution", "1"], ["--ceiling", "single=1000"], ["--rows", ""]):
        with pytest.raises(SystemExit):
            hp.parse_args(bad)


def test_drivers_split_the_rate_and_the_clients(hp: ModuleType) -> None:
    one, = hp.targets("single")
    a, b = hp.targets("pair")
    assert one.clients == a.clients + b.clients == hp.CLIENTS
    assert (a.server, a.relay) != (b.server, b.relay) and a.first_mac != b.first_mac
    assert [t.relay for t in hp.targets("kea-pair")] == [a.relay, b.relay]
    assert hp.rate_split(1001, 2) == [501, 500] and hp.rate_split(1000, 1) == [1000]


def test_fastdhcp_bench_configs_load(hp: ModuleType, tmp_path: Path) -> None:
    s = Fastdhcp(None, 0, "load-balancing", tmp_path)  # type: ignore[arg-type]
    text = s.config.read_text()
    pair = hp.fastdhcp_bench_config(text, ha=True)
    single = hp.fastdhcp_bench_config(text, ha=False)
    assert "[high-availability]" in pair and "[high-availability]" not in single
    for t in (pair, single):
        cfg = fconfig.loads(t)
        assert [str(x.network) for x in cfg.subnets] == [sn for sn, _, _ in hp.SUBNETS]
        assert (cfg.high_availability is not None) == (t is pair)
        assert 'log-level = "warning"' in t
    for key, value in hp.BENCH_TIMERS.items():
        assert f"\n{key} = {value}\n" in pair
    with pytest.raises(ValueError):
        hp.fastdhcp_bench_config("[server]\n", ha=False)


def test_kea_bench_config(hp: ModuleType, tmp_path: Path) -> None:
    k = KeaPeer(None, 1, "load-balancing", tmp_path, "eth9")  # type: ignore[arg-type]
    raw = json.loads((tmp_path / "kea.json").read_text())
    d = hp.kea_bench_config(raw)["Dhcp4"]
    assert [(s["subnet"], s["relay"]["ip-addresses"]) for s in d["subnet4"]] == [
        (sn, [r]) for (sn, _, _), r in zip(hp.SUBNETS, hp.RELAYS, strict=True)]
    assert {lg["severity"] for lg in d["loggers"]} == {"WARN"}
    assert d["lease-database"]["persist"] is True
    assert d["lease-database"]["name"].startswith(str(k.dir))  # the probe's fresh directory
    ha = d["hooks-libraries"][1]["parameters"]["high-availability"][0]
    assert {x: ha[x] for x in hp.BENCH_TIMERS} == hp.BENCH_TIMERS
    assert raw["Dhcp4"]["loggers"][0]["severity"] == "INFO"  # the test's own left alone
    assert d["multi-threading"] == {"enable-multi-threading": False} and "multi-threading" \
        not in ha
    mt = hp.kea_bench_config(raw, mt=True)["Dhcp4"]
    assert mt["multi-threading"]["enable-multi-threading"] is True
    hmt = mt["hooks-libraries"][1]["parameters"]["high-availability"][0]
    assert hmt["multi-threading"]["http-dedicated-listener"] is True


def _stats(discovers: int, acks: int, p50: float, p99: float) -> dict[str, Any]:
    lat = {"p50": p50, "p99": p99}
    return {"discovers": discovers, "acks": acks, "naks": 0, "ack_latency": lat,
            "offer_latency": lat}


def test_merge_sums_counts_and_keeps_the_worse_latency(hp: ModuleType) -> None:
    m = hp.merge([_stats(1000, 995, 1.0, 9.0), _stats(1000, 985, 2.0, 4.0)], 2.0)
    assert (m["started"], m["acks"], m["drops"]) == (2000, 1980, 20)
    assert m["drop_ratio"] == pytest.approx(0.01) and m["acks_per_s"] == 990
    assert m["ack_ms"] == {"p50": 2.0, "p99": 9.0}
    assert hp.merge([_stats(0, 0, 0, 0)], 1.0)["drop_ratio"] == 1.0


def test_ratio_text(hp: ModuleType) -> None:
    assert hp.ratio_text(36000, 50000, 0.60) == "0.72 (goal >= 0.60: met)"
    assert hp.ratio_text(12000, 5000, 3.0) == "2.40 (goal >= 3.00: NOT met)"
    assert hp.ratio_text(12000, 0, 3.0).startswith("-")
    assert hp.ratio_text(None, 5000, 3.0).startswith("-")


def test_latency_rate(hp: ModuleType) -> None:
    assert hp.latency_rate("auto", 3000) == 1500
    assert hp.latency_rate("auto", 9000) == hp.LATENCY_RATE_CAP
    assert hp.latency_rate("auto", 0) == hp.LATENCY_RATE_CAP  # the Kea pair not measured
    assert hp.latency_rate("auto", 120) == 100  # never 0
    assert hp.latency_rate("750", 3000) == 750


def test_schedule_against_a_fake_probe(hp: ModuleType) -> None:
    """Three rows with known capacities: each bisection ends within its step below them, the
    rows alternate probe by probe, and the latency rows run at half the Kea pair's median."""
    cap = {"single": 40000, "pair": 26000, "kea-pair": 3100}
    seen: list[tuple[str, int, float]] = []

    def probe(row: str, rate: int, seconds: float) -> dict[str, Any]:
        seen.append((row, rate, seconds))
        ok = rate <= cap[row] - 100 * (len(seen) % 3)  # some noise between bisections
        m = hp.merge([_stats(rate, rate if ok else rate // 2, 1.0, 2.0)], seconds)
        m.update(row=row, rate=rate, seconds=seconds, crashed=False, cpu_us_per_dora=20.0)
        return m

    args = hp.parse_args(["--bisections", "3"])
    res = hp.run_all(args, probe, lambda _msg: None)
    ceil = {"single": 96000, "pair": 48000, "kea-pair": 8000}
    for row, c in cap.items():
        s = res["maxima"][row]
        assert s["n"] == 3 and s["min"] <= s["median"] <= s["max"] <= c
        assert c - s["median"] <= ceil[row] // 32 + 300
    bis = [r for r, _, sec in seen if sec == args.step_seconds]
    assert bis[:3] == ["single", "pair", "kea-pair"]  # interleaved
    lat = [(r, x) for r, x, sec in seen if sec == args.latency_seconds]
    want = int(round(res["maxima"]["kea-pair"]["median"] / 2 / 100)) * 100
    assert lat == [(r, want) for r in hp.DEFAULT_ROWS] and res["latency_rate"] == want
    text = hp.report({**res, "rows": list(hp.DEFAULT_ROWS)})
    assert "pair / single: " in text and "fastdhcp pair / Kea pair: " in text
    assert f"| single | **{res['maxima']['single']['median']:,.0f}**" in text
    assert hp.at_max(res, "single") == 1.0  # the fake's p50 at every probe
