"""Fixtures every suite shares: the one config builder, the fake clock, the simulated network.

- ``build_config``: tests/config_builder.py's :func:`~config_builder.load_config` (sections as
  mappings, plus raw TOML where a test needs its own table) -> a validated ``Config``. Its
  presets are there too: the engine network's (``engine_config_text``) and the loopback
  server's (``service_config_text``).
- ``clock``: a :class:`~fakeclock.FakeClock` (tests/fakeclock.py), moved only by hand.
- ``net``: a :class:`~dhcpsim.Network` (engine, memory store, fake clock) on the engine preset,
  receiving on eth0 at 198.18.0.1; a test module that needs another network defines its own
  ``net`` fixture, which takes precedence.

pytest puts tests/ on ``sys.path`` (rootdir without ``__init__.py``), so the helpers import
each other by bare module name, as the suites always have. The simulator is imported inside its
fixtures: it loads the compiled engine, which the linters' and docs' tests do not need.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from config_builder import load_config
from fakeclock import FakeClock
from path_rig import udp_pair

if TYPE_CHECKING:
    from dhcpsim import Network

    from fastdhcp.config import Config


@pytest.fixture
def build_config() -> Callable[..., Config]:
    """The config builder: ``build_config(server, *, lease_database=..., global_=...,
    subnets=..., server_extra=..., ...)`` -> ``Config`` (see tests/config_builder.py)."""
    return load_config


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at 1,700,000,000 s."""
    return FakeClock()


@pytest.fixture
def net() -> Network:
    """The simulated network on the engine preset (tests/dhcpsim.py)."""
    from dhcpsim import make_network

    return make_network()


@pytest.fixture
def socks() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A bound (server, peer) UDP pair on loopback (path_rig.udp_pair)."""
    with udp_pair() as pair:
        yield pair
