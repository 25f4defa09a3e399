"""The ``fastdhcp`` command as a user runs it (a child process each time): exit codes, one line
per problem, no traceback, no half-started server; the demo end to end."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from service_helpers import ROOT, config_text, free_port

BAD_CONFIG = """\
[server]
port = 0
bogus = 1
[[subnet4]]
id = 1
subnet = "192.0.2.0/33"
"""


def fastdhcp(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastdhcp", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL)


def test_check_config_ok(tmp_path: Path) -> None:
    cfg = tmp_path / "ok.toml"
    cfg.write_text(config_text(tmp_path / "db", 6767))
    res = fastdhcp("check-config", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 1
    assert "OK" in lines[0] and "1 subnets" in lines[0] and "100 addresses" in lines[0]
    assert res.stderr == ""


def test_check_config_problems_one_line_each(tmp_path: Path) -> None:
    from fastdhcp.config import loads
    from fastdhcp.errors import ConfigError

    cfg = tmp_path / "bad.toml"
    cfg.write_text(BAD_CONFIG)
    with pytest.raises(ConfigError) as info:
        loads(BAD_CONFIG)
    res = fastdhcp("check-config", "--config", str(cfg))
    assert res.returncode == 1
    assert res.stderr.splitlines() == info.value.problems
    assert len(info.value.problems) >= 3
    assert any(line.startswith("server.port") for line in info.value.problems)
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_check_config_missing_file(tmp_path: Path) -> None:
    res = fastdhcp("check-config", "--config", str(tmp_path / "nope.toml"))
    assert res.returncode == 1
    assert len(res.stderr.splitlines()) == 1 and "nope.toml" in res.stderr
    assert "Traceback" not in res.stderr


def test_serve_bad_config_exits_1_without_starting(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(BAD_CONFIG)
    check = fastdhcp("check-config", "--config", str(cfg))
    res = fastdhcp("serve", "--config", str(cfg))
    assert res.returncode == 1
    assert res.stderr.splitlines() == check.stderr.splitlines()
    assert "Traceback" not in res.stderr


def test_serve_bad_database_one_line(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("this is not an LMDB environment")
    port = free_port()
    cfg = tmp_path / "fastdhcp.toml"
    cfg.write_text(config_text(not_a_dir, port))
    res = fastdhcp("serve", "--config", str(cfg))
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "lease database" in lines[0] and str(not_a_dir) in lines[0]
    # nothing was left listening
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))


def test_serve_busy_port_one_line_and_database_closed_cleanly(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "fastdhcp.toml"
    cfg.write_text(config_text(tmp_path / "db", port))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blocker:
        blocker.bind(("127.0.0.1", port))
        res = fastdhcp("serve", "--config", str(cfg))
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if "cannot open sockets" in ln]
    assert len(lines) == 1 and str(port) in lines[0]
    # the store was opened and closed again: the leases CLI reads it
    res = fastdhcp("leases", "--db", str(tmp_path / "db"), "list")
    assert res.returncode == 0, res.stderr


def test_version_and_usage() -> None:
    res = fastdhcp("--version")
    assert res.returncode == 0 and res.stdout.startswith("fastdhcp ")
    res = fastdhcp()
    assert res.returncode == 2 and "usage" in res.stderr


def test_demo_runs_and_reports_leases(tmp_path: Path) -> None:
    res = fastdhcp("demo", "--seconds", "2", "--clients", "3000", "--dir", str(tmp_path / "d"),
                   timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert "Traceback" not in res.stderr
    rate = re.search(r"^leases/s\s+([\d,]+)", out, re.M)
    assert rate and int(rate.group(1).replace(",", "")) > 0, out
    for name in ("OFFER latency", "ACK latency"):
        line = next(ln for ln in out.splitlines() if ln.startswith(name))
        assert all(p in line for p in ("p50", "p90", "p99", "p99.9")), line
    m = re.search(r"^leases in db\s+([\d,]+)\s+\((.+)\)$", out, re.M)
    assert m, out
    count = int(m.group(1).replace(",", ""))
    acks = re.search(r"acks ([\d,]+)", out)
    assert acks is not None
    # every ACKed client's lease is in the database (plus any whose ACK timed out in flight)
    assert count >= int(acks.group(1).replace(",", "")) > 0
    listed = fastdhcp("leases", "--db", m.group(2), "--json", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("198.18.") >= count
