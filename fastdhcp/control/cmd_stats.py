"""Statistics commands (Kea's ``statistic-*`` and stat_cmds' ``stat-lease4-get``), and
``version-get`` / ``build-report``.

Texts and result codes are those a real Kea 2.2 answered (reference: kea-control-api.md,
C2, C4, C5; the cases the reference does not show were asked of a Kea 2.2 on this machine).
The statistics themselves are :class:`fastdhcp.statistics.Statistics`, a view over the
server's counters.
"""

from __future__ import annotations

import time
from typing import Any

from fastdhcp import buildinfo
from fastdhcp.control.args import Args
from fastdhcp.control.protocol import Answer, Caller, CommandError, Result, empty, success
from fastdhcp.control.table import CommandTable
from fastdhcp.control.target import ControlTarget
from fastdhcp.statistics import Statistics, SubnetRow, format_time

__all__ = ["COLUMNS", "register"]

#: stat-lease4-get's result-set columns, fixed.
COLUMNS = ["subnet-id", "total-addresses", "cumulative-assigned-addresses",
           "assigned-addresses", "declined-addresses"]


def _stats(target: ControlTarget) -> Statistics:
    stats = target.statistics
    if stats is None:
        raise CommandError("statistics are not available: the server is not running")
    return stats


def _name(arguments: Any) -> str:
    """The mandatory ``name`` argument, with Kea's texts."""
    args = Args.of(arguments)
    name: str = args.get_str("name", missing="Missing mandatory 'name' parameter.",
                             bad_type="'name' parameter expected to be a string.")
    return name


def _int(args: Args, key: str) -> int:
    value: int = args.get_int(key, missing=f"Missing mandatory '{key}' parameter.",
                              bad_type=f"'{key}' parameter expected to be an integer.")
    return value


def _exists(stats: Statistics, name: str) -> None:
    if not stats.exists(name):
        raise CommandError(f"No '{name}' statistic found")


# ---------------------------------------------------------------------- statistic-*

async def _get(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    name = _name(arguments)
    sample = _stats(target).get(name)
    # An unknown name is a success with an empty map, as Kea answers it.
    return success(arguments={} if sample is None else {name: [sample.to_json()]})


async def _get_all(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    # Kea ignores any arguments here.
    view = _stats(target).get_all()
    return success(arguments={name: [s.to_json()] for name, s in view.items()})


async def _reset(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    name = _name(arguments)
    if not _stats(target).reset(name):
        raise CommandError(f"No '{name}' statistic found")
    return success(f"Statistic '{name}' reset.")


async def _reset_all(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    _stats(target).reset_all()
    return success("All statistics reset to neutral values.")


async def _remove(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    name = _name(arguments)
    if not _stats(target).remove(name):
        raise CommandError(f"No '{name}' statistic found")
    return success(f"Statistic '{name}' removed.")


async def _remove_all(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    _stats(target).remove_all()
    # (sic) Kea 2.2's text, warning included
    return success("Warning: statistic-remove-all command is deprecated. All statistics "
                   "removed.")


# fastdhcp keeps one sample per statistic (the newest): the limits are checked as Kea checks
# them and answered as Kea answers, and change nothing.

async def _count_set(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    name = _name(arguments)
    _int(Args.of(arguments), "max-samples")
    _exists(_stats(target), name)
    return success(f"Statistic '{name}' count limit is set.")


async def _age_set(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    name = _name(arguments)
    _int(Args.of(arguments), "duration")
    _exists(_stats(target), name)
    return success(f"Statistic '{name}' duration limit is set.")


async def _count_set_all(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    if _int(Args.of(arguments), "max-samples") == 0:
        raise CommandError("'max-samples' parameter must not be zero")
    _stats(target)
    return success("All statistics count limit are set.")  # (sic)


async def _age_set_all(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    _int(Args.of(arguments), "duration")
    _stats(target)
    return success("All statistics duration limit are set.")  # (sic)


# ---------------------------------------------------------------------- stat-lease4-get

def _subnet_id(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CommandError(f"'{key}' parameter missing or not an integer")
    if value <= 0:
        raise CommandError(f"'{key}' parameter must be > 0")
    return value


async def _stat_lease4_get(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    if arguments is not None and not isinstance(arguments, dict):
        raise CommandError("'arguments' parameter is not a map")
    args = arguments or {}
    # Kea's stat_cmds ignores any other key (all subnets then).
    if "subnet-id" in args and "subnet-range" in args:
        raise CommandError("cannot specify both subnet-id and subnet-range")
    rows = _stats(target).rows()
    if "subnet-id" in args:
        sid = args["subnet-id"]
        if isinstance(sid, bool) or not isinstance(sid, int):
            raise CommandError("'subnet-id' parameter is not integer")
        if sid <= 0:
            raise CommandError("'subnet-id' parameter must be > 0")
        what = f"subnet-id={sid}"
        rows = [r for r in rows if r.subnet_id == sid]
        none = f"subnet-id: {sid} does not exist"
    elif "subnet-range" in args:
        rng = args["subnet-range"]
        if not isinstance(rng, dict):
            raise CommandError("subnet-range parameter is not a map")
        first = _subnet_id(rng.get("first-subnet-id"), "first-subnet-id")
        last = _subnet_id(rng.get("last-subnet-id"), "last-subnet-id")
        if last < first:
            raise CommandError("'last-subnet-id' must be greater than 'first-subnet-id'")
        if last == first:
            # (sic) what Kea 2.2 answers for a range of one
            raise CommandError("LeaseStatsQuery: last_subnet_id_must be > first_subnet_id_")
        what = f"subnets {first} through {last}"
        rows = [r for r in rows if first <= r.subnet_id <= last]
        none = f"selected ID range: {first} through {last} includes no known subnets"
    else:
        what = "all subnets"
        none = "no subnets configured"
    if not rows:
        return empty(f"stat-lease4-get[{what}]: no matching data, {none}")
    return success(f"stat-lease4-get[{what}]: {len(rows)} rows found",
                   {"result-set": _result_set(rows)})


def _result_set(rows: list[SubnetRow]) -> dict[str, Any]:
    return {"columns": list(COLUMNS), "rows": [r.to_json() for r in rows],
            "timestamp": format_time(time.time())}


# ---------------------------------------------------------------------- version, build

async def _version_get(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    return success(buildinfo.version(), {"extended": buildinfo.extended_version()})


async def _build_report(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    return Answer(Result.SUCCESS, buildinfo.build_report())


def register(table: CommandTable) -> None:
    """Add the statistics commands, version-get and build-report."""
    table.add("statistic-get", _get)
    table.add("statistic-get-all", _get_all)
    table.add("statistic-reset", _reset, mutating=True)
    table.add("statistic-reset-all", _reset_all, mutating=True)
    table.add("statistic-remove", _remove, mutating=True)
    table.add("statistic-remove-all", _remove_all, mutating=True)
    table.add("statistic-sample-count-set", _count_set, mutating=True)
    table.add("statistic-sample-count-set-all", _count_set_all, mutating=True)
    table.add("statistic-sample-age-set", _age_set, mutating=True)
    table.add("statistic-sample-age-set-all", _age_set_all, mutating=True)
    table.add("stat-lease4-get", _stat_lease4_get)
    table.add("metrics-get", _metrics_get)
    table.add("version-get", _version_get)
    table.add("build-report", _build_report)


async def _metrics_get(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    """fastdhcp's own: ``{"exposition": the Prometheus text}``, the metrics endpoint's page
    over the control channel (how the multi-worker front gathers its workers' metrics)."""
    return success(arguments={"exposition": await target.exposition()})
