"""The one builder of test configurations: TOML text from a few sections, and its presets.

Every test config is ``[server]``, maybe ``[lease-database]``, ``[global]`` and some
``[[subnet4]]`` tables. :func:`config_text` writes them from plain mappings (keys in Kea's
spelling, values as Python values) and appends raw TOML where a test needs a table of its own
(``[server.limits]``, reservations, ``[[control-sockets]]``): ``server_extra`` and
``global_extra`` go at the end of their table, ``subnet_extra`` at the end of the first subnet,
``more`` at the end of the document. The presets below are the shapes the suites share:
:func:`engine_config_text` (tests/dhcpsim.py's network: eth0 plus whatever relayed subnets a
test adds) and :func:`service_config_text` (the loopback server of the service tests).
``tests/conftest.py`` hands the builder to tests as the ``make_config`` fixture.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastdhcp.config import Config, loads
from fastdhcp.demo import RELAY_IP, SERVER_IP

__all__ = ["config_text", "engine_config_text", "load_config", "service_config_text"]

Section = Mapping[str, Any]


def _value(v: Any) -> str:
    """``v`` as a TOML value (inline tables for mappings: test configs have no nesting)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str | os.PathLike):
        return json.dumps(os.fspath(v))  # a JSON string is a TOML basic string
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML for {v!r} ({type(v).__name__})")


def _table(header: str, keys: Section, extra: str = "") -> str:
    lines = [header, *(f"{k} = {_value(v)}" for k, v in keys.items() if v is not None)]
    return "\n".join(lines) + "\n" + (extra.strip("\n") + "\n" if extra else "")


def config_text(server: Section, *, lease_database: Section | None = None,
                global_: Section | None = None, subnets: Sequence[Section] = (),
                server_extra: str = "", global_extra: str = "", subnet_extra: str = "",
                more: str = "") -> str:
    """A config document from its sections; a key whose value is None is left out."""
    parts = [_table("[server]", server, server_extra)]
    if lease_database is not None:
        parts.append(_table("[lease-database]", lease_database))
    if global_ is not None or global_extra:
        parts.append(_table("[global]", global_ or {}, global_extra))
    for i, subnet in enumerate(subnets):
        parts.append(_table("[[subnet4]]", subnet, subnet_extra if i == 0 else ""))
    return "\n".join(parts) + more


def load_config(*args: Any, source: str = "<string>", **kw: Any) -> Config:
    """:func:`config_text`, validated: a ``fastdhcp.config.Config``."""
    return loads(config_text(*args, **kw), source)


# ------------------------------------------------------------------------------ presets

#: tests/dhcpsim.py's server: receives on eth0 at 198.18.0.1 (and listens there for relays).
ENGINE_SERVER: dict[str, Any] = {"interfaces": ["eth0"], "listen-addresses": ["198.18.0.1"]}
ENGINE_GLOBAL: dict[str, Any] = {
    "valid-lifetime": 3600,
    "option-data": {"domain-name-servers": ["198.18.0.53"], "domain-name": "example.net"},
}
#: eth0's subnet: a four-address pool, so exhaustion is one loop away.
ENGINE_SUBNET: dict[str, Any] = {
    "id": 1,
    "subnet": "198.18.0.0/24",
    "interface": "eth0",
    "pools": ["198.18.0.100 - 198.18.0.103"],
    "option-data": {"routers": ["198.18.0.1"], "ntp-servers": ["198.18.0.123"]},
}


def engine_config_text(server_extra: str = "", global_extra: str = "", subnet_extra: str = "",
                       more: str = "") -> str:
    """The simulated network's config: eth0's subnet 198.18.0.0/24 (pool .100-.103), global
    DNS options, plus the extra TOML given."""
    return config_text(ENGINE_SERVER, global_=ENGINE_GLOBAL, subnets=[ENGINE_SUBNET],
                       server_extra=server_extra, global_extra=global_extra,
                       subnet_extra=subnet_extra, more=more)


#: The loopback service tests' subnet (the server at fastdhcp.demo's SERVER_IP, relayed by its
#: RELAY_IP, the agent the tests play).
SERVICE_SUBNET = "198.18.0.0/24"
SERVICE_POOL = ("198.18.0.100", "198.18.0.199")


def service_config_text(db: Path | str, port: int, *, metrics: str | None = None,
                        routers: str = "198.18.0.1",
                        pools: tuple[str, str] = SERVICE_POOL, sync: bool = True,
                        stats_interval: float = 60.0, extra_server: str = "") -> str:
    """The loopback server: listens on SERVER_IP:``port`` (clients at ``port + 1``), one
    subnet relayed by RELAY_IP, its leases at ``db``."""
    return config_text(
        {"listen-addresses": [SERVER_IP], "port": port, "client-port": port + 1,
         "stats-interval": stats_interval, "metrics": metrics},
        server_extra=extra_server,
        lease_database={"path": db, "sync": sync},
        global_={"valid-lifetime": 3600,
                 "option-data": {"domain-name-servers": ["198.18.0.53"],
                                 "domain-name": "example.test"}},
        subnets=[{"id": 1, "subnet": SERVICE_SUBNET, "pools": [f"{pools[0]} - {pools[1]}"],
                  "relay": [RELAY_IP], "option-data": {"routers": [routers]}}])
