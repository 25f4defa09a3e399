"""The rapid-commit and ping-check keys: inheritance [global] -> [[subnet4]], defaults, and
the errors naming key and value (docs/rapid-commit-and-ping-check.md)."""

from __future__ import annotations

import textwrap

import pytest

from fastdhcp.config import PingCheck, loads
from fastdhcp.errors import ConfigError

BASE = """
[server]
listen-addresses = ["127.0.0.1"]
[lease-database]
path = "/tmp/unused-rapid-ping"
[global]
{glob}
[[subnet4]]
id = 1
subnet = "198.18.0.0/24"
pools = ["198.18.0.10 - 198.18.0.20"]
{sub}
[[subnet4]]
id = 2
subnet = "198.18.1.0/24"
"""


def _load(glob: str = "", sub: str = ""):
    return loads(textwrap.dedent(BASE.format(glob=glob, sub=sub)))


def _problems(glob: str = "", sub: str = "") -> list[str]:
    with pytest.raises(ConfigError) as ei:
        _load(glob, sub)
    return ei.value.problems


def test_both_off_by_default():
    for s in _load().subnets:
        assert s.rapid_commit is False
        assert s.ping_check == PingCheck()
        assert s.ping_check.enabled is False
        assert (s.ping_check.min_ping_requests, s.ping_check.reply_timeout_ms,
                s.ping_check.ping_cltt_secs) == (1, 100, 60)


def test_global_values_are_inherited_and_overridden_key_by_key():
    cfg = _load("rapid-commit = true\nenable-ping-check = true\nreply-timeout = 250",
                "rapid-commit = false\nmin-ping-requests = 3")
    one, two = cfg.subnets
    assert (one.rapid_commit, two.rapid_commit) == (False, True)
    assert one.ping_check == PingCheck(True, 3, 250, 60)
    assert two.ping_check == PingCheck(True, 1, 250, 60)


@pytest.mark.parametrize(("glob", "sub", "expect"), [
    ("rapid-commit = 1", "", "global.rapid-commit: value 1: must be true or false"),
    ("", 'rapid-commit = "yes"', "subnet4[0].rapid-commit: value 'yes': must be true or false"),
    ("", 'enable-ping-check = "on"',
     "subnet4[0].enable-ping-check: value 'on': must be true or false"),
    ("min-ping-requests = 0", "",
     "global.min-ping-requests: value 0: out of range: must be from 1 to 10"),
    ("", "reply-timeout = 20000",
     "subnet4[0].reply-timeout: value 20000: out of range: must be from 1 to 10000"),
    ("ping-cltt-secs = -1", "",
     "global.ping-cltt-secs: value -1: out of range: must be from 0 to 2147483647"),
])
def test_bad_values_are_named_with_key_and_value(glob, sub, expect):
    assert expect in _problems(glob, sub)


def test_ping_channel_threads_is_refused_with_its_reason():
    (line,) = _problems("ping-channel-threads = 0")
    assert line.startswith("global.ping-channel-threads: value 0: unknown key: ")
    assert "event loop" in line and "thread pool" in line
