"""The running configuration as a document: what ``config-get`` shows and ``config-write``
writes (reference: kea-control-api.md C3).

The document is the one the configuration was validated from (``Config.document``: the TOML
file, the JSON file or a ``config-set``'s ``Dhcp4`` map, all the same shape), with the defaults
that stand on their own spelled out where the document left them out, as Kea's ``config-get``
shows every default. Defaults that derive from another key are left out, because spelling them
out would change what a later edit means: ``min-valid-lifetime`` and ``max-valid-lifetime``
follow ``valid-lifetime``, a subnet's lifetimes and ``authoritative`` follow ``[global]`` and
``[server]``, ``renew-timer``/``rebind-timer`` default to a share of the lease time. Defaults
with no value (``server.metrics``, ``server.server-id``) are left out as well (TOML has no null).

So loading what :func:`running_document` returns gives a configuration equal to the running one:
``config-write`` then a restart, or ``config-get`` then ``config-set``, changes nothing (tested).

The default values come from the config model's dataclasses, not from a second table here.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import tomli_w

from fastdhcp.config import (
    Config,
    ControlSocket,
    Defences,
    LeaseDatabaseConfig,
    Lifetimes,
    ServerConfig,
    SocketType,
    is_json_path,
)

__all__ = ["running_document", "json_value", "serialize", "write_atomic"]

# Field defaults whose written form is not the model's value: left out.
_NOT_WRITTEN = {"server_id"}  # 0 means "the receiving socket's address"; input is an IPv4 text
# [global] lifetimes that stand on their own (the others derive from valid-lifetime, or are None)
_GLOBAL_LIFETIMES = ("valid_lifetime", "offer_lifetime", "decline_probation_period")


def _key(attr: str) -> str:
    return attr.replace("_", "-")


def _defaults(cls: type, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The written form of a config dataclass's defaults: key -> value (None-valued and
    unwritable ones left out; a nested dataclass becomes a table)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if only is not None and f.name not in only or f.name in _NOT_WRITTEN:
            continue
        if f.default is not dataclasses.MISSING:
            value: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            continue
        if dataclasses.is_dataclass(value):
            value = _defaults(type(value))
        elif isinstance(value, tuple):
            value = list(value)
        elif value is None or not isinstance(value, bool | int | float | str | list):
            continue
        out[_key(f.name)] = value
    return out


def _fill(table: Any, defaults: dict[str, Any]) -> Any:
    """``table`` with each default it lacks added after its own keys (nested tables too)."""
    if not isinstance(table, dict):
        return table  # not a table: the loader refused it already, nothing to fill
    out = dict(table)
    for key, value in defaults.items():
        if key not in out:
            out[key] = copy.deepcopy(value)
        elif isinstance(value, dict):
            out[key] = _fill(out[key], value)
    return out


def running_document(config: Config) -> dict[str, Any]:
    """The document of ``config`` with its standalone defaults filled in (a new copy)."""
    doc = copy.deepcopy(config.document)
    doc["server"] = _fill(doc.get("server", {}), _defaults(ServerConfig))
    doc["lease-database"] = _fill(doc.get("lease-database", {}), _defaults(LeaseDatabaseConfig))
    glob = {**_defaults(Lifetimes, _GLOBAL_LIFETIMES), **_defaults(Defences)}
    doc["global"] = _fill(doc.get("global", {}), glob)
    sockets = doc.get("control-sockets")
    if isinstance(sockets, list):
        shared = _defaults(ControlSocket, ("max_connections", "idle_timeout"))
        doc["control-sockets"] = [
            _fill(s, shared) if isinstance(s, dict) and s.get("socket-type")
            in {t.value for t in SocketType} else s for s in sockets]
    doc.setdefault("subnet4", [])
    order = ("server", "lease-database", "global", "subnet4", "control-sockets")
    return {**{k: doc[k] for k in order if k in doc}, **doc}


def json_value(value: Any) -> Any:
    """``value`` with what JSON cannot hold (TOML dates and times) as ISO 8601 text."""
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    return value


def _no_nulls(value: Any) -> Any:
    """``value`` without None map values (a JSON null, from a config-set: TOML has none, and
    every key the loader accepts a null for means the same absent)."""
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value if v is not None]
    return value


def serialize(doc: dict[str, Any], path: str | Path) -> bytes:
    """``doc`` in the syntax ``path`` is loaded with (``.json``: JSON; else TOML), UTF-8."""
    if is_json_path(path):
        return (json.dumps(json_value(doc), indent=2, ensure_ascii=False) + "\n").encode()
    return tomli_w.dumps(_no_nulls(doc)).encode()


def write_atomic(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a reader (or a crash) sees the old file or the
    new one, never a part: a temporary file in the same directory, fsync, rename, fsync of the
    directory. A symbolic link is followed (its target is replaced, the link stays); the file
    keeps its permissions (a new one gets 0644). Raises OSError."""
    target = os.path.realpath(path)
    directory = os.path.dirname(target) or "."
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
