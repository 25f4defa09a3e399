"""``bench/compare.py``'s pieces that need no namespace or long run (issue 19): Kea's configs
(single- and multi-threaded, WARN, a lease file per run), the bisection and the median and
spread of maxima, the summary naming Kea's best configuration, the receive-buffer plumbing,
and a whole ``run_all`` against a fake server (the interleaving, probe by probe)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def cmp(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import compare

    return compare


def test_kea_configs_single_and_multi_threaded(cmp: ModuleType, tmp_path: Path) -> None:
    ws = cmp.ws
    st = ws.kea_config(tmp_path / "a", "eth9")["Dhcp4"]
    mt = ws.kea_config(tmp_path / "b", "eth9", ws.KeaTuning(threads=4, queue=16))["Dhcp4"]
    assert st["multi-threading"] == {"enable-multi-threading": False}
    assert mt["multi-threading"] == {"enable-multi-threading": True, "thread-pool-size": 4,
                                     "packet-queue-size": 16}
    for cfg, d in ((st, "a"), (mt, "b")):
        assert [lg["severity"] for lg in cfg["loggers"]] == ["WARN"]
        # the lease file lives in the run's own (fresh) directory
        assert cfg["lease-database"]["name"] == str(tmp_path / d / "kea-leases4.csv")
        assert cfg["lease-database"]["persist"] is True
        assert cfg["interfaces-config"] == {"interfaces": ["eth9"], "dhcp-socket-type": "udp"}
    assert "kea-mt" in ws.SERVERS and "kea" in ws.SERVERS


@pytest.mark.parametrize("threshold", [0, 300, 4999, 5000, 12345, 63900, 64000, 90000])
def test_bisection_finds_the_maximum_within_the_step(cmp: ModuleType, threshold: int) -> None:
    b = cmp.Bisection(64000, 500)
    probes = 0
    while (rate := b.next_rate()) is not None:
        b.record(rate, rate <= threshold)
        probes += 1
    assert probes <= math.ceil(math.log2(64000 / 500)) + 1
    got = b.result()
    assert got["max_rate"] == b.lo <= min(threshold, 64000)
    assert b.hi - b.lo <= 500 + cmp.ROUND_TO  # the gap it stopped at (mid-points rounded)
    if threshold >= 64000:
        assert got["capped"]
    if got["capped"]:  # every probe passed: the maximum may be above the ceiling
        assert got["first_failing_rate"] is None and threshold >= 64000 - 500 - cmp.ROUND_TO
    else:
        assert got["first_failing_rate"] == b.hi > threshold
        assert threshold - b.lo <= 500 + cmp.ROUND_TO
    assert [r for r, _ in got["probes"]] == [r for r, _ in b.probes] and len(b.probes) == probes


def test_bisection_of_a_noisy_server_ends_on_a_passing_rate(cmp: ModuleType) -> None:
    b = cmp.Bisection(16000, 500)
    outcomes = iter([False, True, False, True, True, False, True, False])  # not monotone
    while (rate := b.next_rate()) is not None:
        b.record(rate, next(outcomes))
    assert b.lo in [r for r, ok in b.probes if ok]
    assert b.hi in [r for r, ok in b.probes if not ok]
    with pytest.raises(ValueError):
        cmp.Bisection(0, 500)


def test_spread_and_ceilings(cmp: ModuleType) -> None:
    assert cmp.spread([7000, 6000, 6500]) == {"median": 6500, "min": 6000, "max": 7000, "n": 3}
    assert cmp.spread([4000]) == {"median": 4000, "min": 4000, "max": 4000, "n": 1}
    assert cmp.parse_ceilings("kea=9000,fastdhcp=40000", ["kea", "fastdhcp"]) == {
        "kea": 9000, "fastdhcp": 40000}
    with pytest.raises(ValueError, match="no rate for kea-mt"):
        cmp.parse_ceilings("kea=9000", ["kea", "kea-mt"])
    with pytest.raises(ValueError, match="not SERVER=RATE"):
        cmp.parse_ceilings("kea:9000", ["kea"])
    assert set(cmp.parse_ceilings(cmp.DEFAULT_CEILINGS, list(cmp.ws.SERVERS))) == set(
        cmp.ws.SERVERS)
    # what main() does with a partial --ceiling: the defaults first, the named servers after
    got = cmp.parse_ceilings(cmp.DEFAULT_CEILINGS + ",kea=32000",
                             ["kea", "kea-mt", "fastdhcp-w2"])
    assert got["kea"] == 32000 and got["kea-mt"] == 16000 and got["fastdhcp-w2"] == 2 * 64000


def test_parse_rcvbuf_reads_the_servers_socket(cmp: ModuleType) -> None:
    out = ("UNCONN 0      0      198.19.255.1:67 0.0.0.0:*\n"
           "\t skmem:(r0,rb8388608,t0,tb212992,f0,w0,o0,bl0,d12)\n"
           "UNCONN 0      0      0.0.0.0:68 0.0.0.0:*\n"
           "\t skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d0)\n")
    assert cmp.ws.parse_rcvbuf(out, "198.19.255.1:67") == 8388608
    assert cmp.ws.parse_rcvbuf(out, "0.0.0.0:68") == 212992
    assert cmp.ws.parse_rcvbuf(out, "198.19.255.1:68") == 0


def test_raise_rmem_then_restore(cmp: ModuleType, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ws = cmp.ws
    dflt, mx = tmp_path / "rmem_default", tmp_path / "rmem_max"
    dflt.write_text("212992\n")
    mx.write_text("16777216\n")  # already above: left as it is
    monkeypatch.setattr(ws, "_RMEM", (str(dflt), str(mx)))
    old = ws.raise_rmem(8 << 20)
    assert old == {str(dflt): 212992, str(mx): 16777216}
    assert (int(dflt.read_text()), int(mx.read_text())) == (8 << 20, 16777216)
    ws.restore_rmem(old)
    assert (int(dflt.read_text()), int(mx.read_text())) == (212992, 16777216)


def _run(kind: str, rate: int, *, ok: bool, cpu: float = 100.0, tool: str = "loadgen",
         rcvbuf: int = 8 << 20) -> dict[str, Any]:
    lat = {"p50": 1.0, "p90": 2.0, "p99": 3.0, "p99.9": 4.0, "avg": 1.5, "max": 5.0}
    acks = rate * 8 * (1.0 if ok else 0.9)
    return {"server": kind, "tool": tool, "rate": rate, "seconds": 8, "started": rate * 8,
            "acks": acks, "acks_per_s": acks / 8, "drops": rate * 8 - acks,
            "drop_ratio": 0.0 if ok else 0.1, "socket_drops": 0, "rcvbuf_errors_tool": 0,
            "cpu_us_per_dora": cpu, "server_cpu_s": cpu * acks / 1e6, "server_cores": 0.5,
            "offer_ms": dict(lat), "ack_ms": dict(lat), "leases": acks, "fsync_ms": 1.0,
            "load_before": 1.0, "rcvbuf_bytes": rcvbuf, "crashed": False,
            "command": ["loadgen", "-r", str(rate)]}


def _args(cmp: ModuleType, **kw: Any) -> argparse.Namespace:
    base = {"servers": "kea,kea-mt,fastdhcp", "clients": 1000, "keep": False,
            "kea_threads": 2, "kea_queue": 64, "fixed_rate": 3000, "fixed_seconds": 5,
            "repeat": 1, "ceiling": cmp.DEFAULT_CEILINGS, "bisections": 3, "min_step": 500,
            "step_seconds": 3.0, "profile": False, "out": "/nonexistent"}
    base.update(kw)
    return argparse.Namespace(**base)


def test_run_all_interleaves_bisections_and_names_keas_best(
        cmp: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fake server per kind: a threshold that moves by bisection (the noise the median is
    # for) and a CPU per DORA at the fixed rate. No namespace, no process.
    limits = {"kea": [4200, 5100, 4700], "kea-mt": [6100, 7300, 6600],
              "fastdhcp": [30100, 33000, 31800]}
    cpu = {"kea": 170.0, "kea-mt": 190.0, "fastdhcp": 60.0}
    calls: list[tuple[str, str, int]] = []
    tunings = set()

    def fake(lab: object, kind: str, tool: str, rate: int, seconds: float, clients: int,
             *, keep: bool = False, profile: Path | None = None,
             kea: Any = None) -> dict[str, Any]:
        calls.append((kind, tool, rate))
        tunings.add((kea.threads, kea.queue))
        return _run(kind, rate, ok=rate <= limit_now[kind], cpu=cpu[kind], tool=tool)

    limit_now = {k: v[0] for k, v in limits.items()}
    real_bisection = cmp.Bisection
    made: list[Any] = []

    class Tracking(real_bisection):  # type: ignore[misc, valid-type]
        def __init__(self, ceiling: int, min_step: int) -> None:
            super().__init__(ceiling, min_step)
            made.append(self)
            per_round = len(made) - 1
            kinds = ["kea", "kea-mt", "fastdhcp"]
            limit_now[kinds[per_round % 3]] = limits[kinds[per_round % 3]][per_round // 3]

    monkeypatch.setattr(cmp.ws, "run_segment", fake)
    monkeypatch.setattr(cmp, "Bisection", Tracking)
    monkeypatch.setattr(cmp, "log", lambda msg: None)
    res: dict[str, Any] = {"runs": [], "_phase": None, "args": vars(_args(cmp))}
    cmp.run_all(_args(cmp), None, res)

    assert tunings == {(2, 64)}
    fixed = [c for c in calls if c[1] == "perfdhcp"]
    assert fixed == [("kea", "perfdhcp", 3000), ("kea-mt", "perfdhcp", 3000),
                     ("fastdhcp", "perfdhcp", 3000)]
    # probe by probe: while all three still search, each step probes kea, kea-mt, fastdhcp
    probes = [c for c in calls if c[1] == "loadgen"]
    assert [k for k, _, _ in probes[:3]] == ["kea", "kea-mt", "fastdhcp"]
    assert len(made) == 9
    found = res["bisections"]
    for kind, want in limits.items():
        maxes = [b["max_rate"] for b in found[kind]]
        assert len(maxes) == 3
        for got, lim in zip(maxes, want, strict=True):
            assert lim - 600 <= got <= lim
    s = res["summary"]
    assert s["kea_best"]["max_rate"] == "kea-mt" and s["kea_best"]["cpu_us_at_fixed"] == "kea"
    med = sorted(b["max_rate"] for b in found["kea-mt"])[1]
    assert s["kea-mt"]["max_rate"] == med
    assert s["kea-mt"]["max_spread"]["min"] == min(b["max_rate"] for b in found["kea-mt"])
    # the half-rate phase ran at half of fastdhcp's median maximum, for every server
    half = {c[2] for c in calls[-3:]}
    assert half == {int(round(s["fastdhcp"]["max_rate"] / 2 / 100)) * 100}

    md = cmp.render_markdown({**res, "started_utc": "t0", "finished_utc": "t1",
                              "load_start": 1.0, "load_end": 1.0, "command": "compare.py",
                              "rmem": "raised to 8388608 for the run"})
    assert "Kea's best configuration by maximum rate: `kea-mt`, multi-threaded " \
           "(thread-pool-size 2, packet-queue-size 64); by CPU per DORA: `kea`, " \
           "single-threaded." in md
    sp = s["fastdhcp"]["max_spread"]
    each = ", ".join(f"{b['max_rate']:,}" for b in found["fastdhcp"])
    assert f"| fastdhcp | {each} | **{sp['median']:,.0f}** | {sp['min']:,.0f}-{sp['max']:,.0f} " \
        in md
    ratio = s["fastdhcp"]["max_rate"] / s["kea-mt"]["max_rate"]
    assert f"| kea-mt | {ratio:.2f} |" in md
    assert "(the same for all)" in md and "8,192 KiB" in md
    json.dumps(res)  # compare.json is written from it


def test_summary_says_when_buffers_differ_and_when_a_ceiling_is_reached(
        cmp: ModuleType) -> None:
    res = {"args": {"servers": "kea,fastdhcp"}, "rmem": "host's as found",
           "runs": [_run("kea", 1000, ok=True, rcvbuf=212992),
                    _run("fastdhcp", 1000, ok=True)],
           "bisections": {"kea": [{"max_rate": 9000, "capped": False}],
                          "fastdhcp": [{"max_rate": 64000, "capped": True}]}}
    s = cmp.summarize(res, ["kea", "fastdhcp"])
    assert s["fastdhcp"]["max_capped"] and not s["kea"]["max_capped"]
    text = "\n".join(cmp.render_summary(s))
    assert "64,000 (at the ceiling)" in text
    assert "they differ" in cmp._rcvbuf_line(res)


def test_workers_kinds_configs_and_ceilings(cmp: ModuleType, tmp_path: Path) -> None:
    import tomllib

    ws = cmp.ws
    assert cmp.parse_workers("1,2") == [1, 2]
    for bad in ("0", "1,1", "", "two"):
        with pytest.raises(ValueError, match="--workers"):
            cmp.parse_workers(bad)
    assert cmp.expand_servers(["kea", "fastdhcp", "kea-mt"], [1, 2]) == [
        "kea", "fastdhcp-w1", "fastdhcp-w2", "kea-mt"]
    assert cmp.expand_servers(["kea", "fastdhcp"], None) == ["kea", "fastdhcp"]
    assert [ws.fastdhcp_workers(k) for k in ("fastdhcp-w2", "fastdhcp-w16", "fastdhcp",
                                             "fastdhcp-w0", "fastdhcp-nosync", "kea")] == [
        2, 16, None, None, None, None]
    assert ws.known_server("fastdhcp-w3") and not ws.known_server("fastdhcp-wx")
    assert cmp.is_fastdhcp("fastdhcp-w2") and cmp.is_fastdhcp("fastdhcp")
    assert not cmp.is_fastdhcp("fastdhcp-nosync") and not cmp.is_fastdhcp("kea")
    # fastdhcp-wN without a ceiling of its own: N times fastdhcp's
    got = cmp.parse_ceilings("kea=16000,fastdhcp=64000,fastdhcp-w3=100000",
                             ["kea", "fastdhcp-w1", "fastdhcp-w2", "fastdhcp-w3"])
    assert got == {"kea": 16000, "fastdhcp": 64000, "fastdhcp-w1": 64000,
                   "fastdhcp-w2": 128000, "fastdhcp-w3": 100000}
    with_key = tomllib.loads(ws.fastdhcp_config(tmp_path, workers=2))
    assert with_key["server"]["workers"] == 2
    assert with_key["lease-database"]["sync"] is True
    assert "workers" not in tomllib.loads(ws.fastdhcp_config(tmp_path))["server"]


def test_a_tree_that_rejects_the_workers_key_stops_the_run_with_a_message(
        cmp: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = cmp.ws
    assert cmp.check_fastdhcp_kind("fastdhcp") is None  # no key asked for: nothing to check
    assert cmp.check_fastdhcp_kind("kea") is None
    # The real check-config of this tree is the oracle: a key it cannot know is refused, and
    # the message says which key, which tree, and where the key comes from.
    real = ws.fastdhcp_config
    monkeypatch.setattr(ws, "fastdhcp_config", lambda wd, sync=True, workers=None: real(
        wd, sync, None).replace("[server]\n", f"[server]\nworkerz = {workers}\n"))
    why = cmp.check_fastdhcp_kind("fastdhcp-w2")
    assert why is not None
    assert "rejects `[server] workers = 2`" in why and "workerz" in why
    assert "wip/workers" in why and str(ws.REPO) in why
    monkeypatch.setattr(ws, "fastdhcp_config", real)
    # with the bench config unchanged, the answer is whatever this tree's server says of the
    # key: check-config itself decides (exit 0: None; else its message)
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "f.toml"
        cfg.write_text(real(Path(tmp), workers=2))
        rc = subprocess.run([sys.executable, "-m", "fastdhcp", "check-config", "--config",
                             str(cfg)], capture_output=True, timeout=120).returncode
    assert (cmp.check_fastdhcp_kind("fastdhcp-w2") is None) == (rc == 0)


def test_main_refuses_bad_workers_options(cmp: ModuleType,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cmp.main(["--workers", "0"])
    assert "--workers" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cmp.main(["--workers", "1,2", "--servers", "kea"])
    assert "'fastdhcp' is not in --servers" in capsys.readouterr().err


def test_run_all_with_workers_takes_fastdhcps_best_and_reports_the_tails(
        cmp: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    limits = {"kea": 15000, "kea-mt": 14000, "fastdhcp-w1": 50000, "fastdhcp-w2": 80000}
    cpu = {"kea": 150.0, "kea-mt": 180.0, "fastdhcp-w1": 45.0, "fastdhcp-w2": 52.0}
    # each half-rate run of fastdhcp-w2 has its own p99s: the spread the summary shows
    offer_p99 = iter([1.5, 2.6, 1.9])
    ack_p99 = iter([7.0, 12.0, 8.0])
    calls: list[tuple[str, str, int]] = []

    def fake(lab: object, kind: str, tool: str, rate: int, seconds: float, clients: int,
             *, keep: bool = False, profile: Path | None = None,
             kea: Any = None) -> dict[str, Any]:
        calls.append((kind, tool, rate))
        m = _run(kind, rate, ok=rate <= limits[kind], cpu=cpu[kind], tool=tool)
        if kind == "fastdhcp-w2" and rate == limits_half["rate"]:
            m["offer_ms"]["p99"] = next(offer_p99)
            m["ack_ms"]["p99"] = next(ack_p99)
        return m

    limits_half = {"rate": 0}  # the half rate, as run_all logs it
    monkeypatch.setattr(cmp.ws, "run_segment", fake)
    monkeypatch.setattr(cmp, "log", lambda msg: (
        limits_half.update(rate=int(msg.rsplit(" ", 1)[1].rstrip("/s")))
        if msg.startswith("half of fastdhcp") else None))
    args = _args(cmp, servers="kea,kea-mt,fastdhcp-w1,fastdhcp-w2", repeat=3, bisections=1,
                 fixed_rate=3000)
    res: dict[str, Any] = {"runs": [], "_phase": None, "args": vars(args)}
    cmp.run_all(args, None, res)
    s = res["summary"]
    assert s["fastdhcp_best"]["max_rate"] == "fastdhcp-w2"
    assert s["fastdhcp_best"]["cpu_us_at_fixed"] == "fastdhcp-w1"
    half_rate = int(round(s["fastdhcp-w2"]["max_rate"] / 2 / 100)) * 100
    assert limits_half["rate"] == half_rate
    half_calls = [c for c in calls if c[2] == half_rate and c[1] == "loadgen"]
    assert sorted({c[0] for c in half_calls}) == sorted(limits)  # every server, 3 times
    assert len(half_calls) == 3 * len(limits)
    tails = s["fastdhcp-w2"]["half"]
    assert tails["offer_p99"] == {"median": 1.9, "min": 1.5, "max": 2.6, "n": 3}
    assert tails["ack_p99"] == {"median": 8.0, "min": 7.0, "max": 12.0, "n": 3}
    md = cmp.render_markdown({**res, "started_utc": "t0", "finished_utc": "t1",
                              "load_start": 1.0, "load_end": 1.0, "command": "compare.py",
                              "rmem": "raised"})
    assert ("| OFFER p99 ms at half of fastdhcp's maximum (median of 3 runs, spread; goal "
            "<= 2) | 1.90 (1.50-2.60) (goal met) |") in md
    assert ("| ACK p99 ms at half of fastdhcp's maximum (median of 3 runs, spread; goal "
            "<= 10) | 8.00 (7.00-12.0) (goal met) |") in md
    assert ("fastdhcp's best configuration by maximum rate: `fastdhcp-w2`, `workers = 2` "
            "(2 worker processes); by CPU per DORA: `fastdhcp-w1`, `workers = 1` (one "
            "process).") in md
    # the max-rate row compares fastdhcp's best maximum with Kea's best
    ratio = s["fastdhcp-w2"]["max_rate"] / s["kea"]["max_rate"]
    assert f"| kea | {ratio:.2f} |" in md
    assert "| fastdhcp-w2 | " in md and "1.50, 2.60, 1.90 | 7.00, 12.0, 8.00 |" in md
    json.dumps(res)
