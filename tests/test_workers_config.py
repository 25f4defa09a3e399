"""``[server] workers``: the config checks and check-config's warning (docs/configuration.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fastdhcp.config import loads
from fastdhcp.errors import ConfigError

BASE = """
[server]
listen-addresses = ["198.18.0.1"]
{server}

[lease-database]
path = "/tmp/never-opened"

[[subnet4]]
id = 1
subnet = "198.18.0.0/16"
pools = ["{pool}"]
relay = ["198.18.0.2"]
{more}
"""
BIG = "198.18.1.0 - 198.18.200.255"  # 51,200 addresses


def _cfg(server: str = "", pool: str = BIG, more: str = "") -> str:
    return BASE.format(server=server, pool=pool, more=more)


def test_workers_defaults_to_one_and_takes_an_integer() -> None:
    assert loads(_cfg()).server.workers == 1
    assert loads(_cfg("workers = 4")).server.workers == 4


@pytest.mark.parametrize("value, reason", [
    ("0", "out of range: must be from 1 to 256"),
    ("-2", "out of range: must be from 1 to 256"),
    ("257", "out of range: must be from 1 to 256"),
    ('"2"', "must be an integer from 1 to 256"),
    ("true", "must be an integer from 1 to 256"),
    ("1.5", "must be an integer from 1 to 256"),
])
def test_bad_workers_values_name_key_and_value(value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as exc:
        loads(_cfg(f"workers = {value}"))
    lines = [x for x in exc.value.problems if "server.workers" in x]
    assert len(lines) == 1 and reason in lines[0]


def test_workers_with_high_availability_loads() -> None:
    """HA with workers: the supervisor runs the one HA service (fastdhcp.service.front_ha)."""
    ha = """
[high-availability]
this-server-name = "a"
mode = "hot-standby"
[[high-availability.peers]]
name = "a"
url = "http://198.18.0.1:8001/"
role = "primary"
[[high-availability.peers]]
name = "b"
url = "http://198.18.0.3:8001/"
role = "standby"
"""
    assert loads(_cfg("workers = 1", more=ha)).high_availability is not None
    cfg = loads(_cfg("workers = 2", more=ha))
    assert cfg.server.workers == 2 and cfg.high_availability is not None


def test_check_config_warns_about_small_slices(tmp_path) -> None:
    small = tmp_path / "small.toml"
    small.write_text(_cfg("workers = 4", pool="198.18.1.0 - 198.18.15.255"))  # 3,840 / 4
    big = tmp_path / "big.toml"
    big.write_text(_cfg("workers = 4"))
    run = [sys.executable, "-m", "fastdhcp", "check-config", "-c"]
    cp = subprocess.run([*run, str(small)], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    warn = [x for x in cp.stderr.splitlines() if x.startswith("warning:")]
    assert len(warn) == 1 and "subnet4[0].pools[0]" in warn[0] and "960 addresses" in warn[0]
    cp = subprocess.run([*run, str(big)], capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0 and "warning" not in cp.stderr


def test_serve_refuses_a_database_path_too_long_for_the_workers_sockets(tmp_path) -> None:
    db = tmp_path / ("d" * 100)
    cfg = tmp_path / "long.toml"
    cfg.write_text(_cfg("workers = 2").replace("/tmp/never-opened", str(db)))
    cp = subprocess.run([sys.executable, "-m", "fastdhcp", "serve", "-c", str(cfg)],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 1
    assert "longer than a Unix socket path" in cp.stderr and "Traceback" not in cp.stderr
    assert not db.exists()  # refused before anything was made
