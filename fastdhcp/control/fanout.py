"""Which workers of a multi-worker server a command goes to, and the rule that makes their
answers one (docs/control-api.md, "Several workers").

:data:`ROUTES` is the one table, keyed by command name; its values are the closed set
:class:`Rule`. This module decides only *who is asked* (:func:`workers_for`);
:mod:`fastdhcp.control.merge` turns their answers into
one, and :mod:`fastdhcp.service.control_front` does the I/O. Nothing here does any.
"""

from __future__ import annotations

import enum
import ipaddress
from typing import Any

from fastdhcp import slices
from fastdhcp.config import Config
from fastdhcp.control.cmd_ha import BODIES
from fastdhcp.control.cmd_hosts import HOSTS_WRITTEN
from fastdhcp.ha import link
from fastdhcp.hosts import IdentifierType

__all__ = ["ROUTES", "Owners", "Rule", "host_key", "owner_address", "public_document",
           "workers_for"]


class Rule(enum.Enum):
    """How one command is routed and its answers merged."""

    #: worker 0 answers alone (the same configuration and build run in every worker)
    ONE = "one"
    #: the worker owning ``arguments.ip-address`` (:class:`Owners`); without a valid address
    #: (a lookup by identifier, or a request that is wrong anyway) as FIRST_FOUND
    OWNER = "owner"
    #: every worker; the first (in worker order) that found it, else their common answer
    FIRST_FOUND = "first-found"
    #: every worker, one answer: theirs when all agree, else result 1 naming the workers
    ALL_SAME = "all-same"
    #: every worker; statistic samples summed per name (newest timestamp)
    SUM_STATS = "sum-stats"
    #: every worker; stat-lease4-get's rows summed per subnet
    SUM_ROWS = "sum-rows"
    #: every worker; lease4-wipe's deleted counts summed
    SUM_WIPE = "sum-wipe"
    #: every worker; the leases of all, in address order
    MERGE_LEASES = "merge-leases"
    #: every worker asked for the same page; the ``limit`` lowest addresses of all pages
    MERGE_PAGE = "merge-page"
    #: worker 0 writes the hosts table the workers share; once it did, every other worker
    #: is told (``fastdhcp-hosts-written``) so that its view, filter and bitmaps follow
    HOSTS_WRITE = "hosts-write"
    #: every worker; the union of the command names (list-commands)
    UNION = "union"
    #: every worker; status-get merged: the front's pid and uptime, per-worker ``workers``
    STATUS = "status"
    #: the front answers itself (shutdown goes to the supervisor; metrics-get gathers)
    FRONT = "front"
    #: the front's one HA service answers (fastdhcp.service.front_ha); a server without
    #: ``[high-availability]`` asks every worker as ALL_SAME (each answers "not supported")
    HA = "ha"
    #: the supervisor's private link to its workers (fastdhcp.ha.link): refused from the
    #: configured sockets (result 2, as an unknown command) and not listed by list-commands
    PRIVATE = "private"


_STATS = ("statistic-get", "statistic-get-all")
_STAT_CHANGES = ("statistic-reset", "statistic-reset-all", "statistic-remove",
                 "statistic-remove-all", "statistic-sample-count-set",
                 "statistic-sample-count-set-all", "statistic-sample-age-set",
                 "statistic-sample-age-set-all")
# The API's hosts live in the lease environment, one table all workers read: one worker
# writes (and reads, its view is the freshest) for all of them.
_RESERVATION_READS = ("reservation-get", "reservation-get-all", "reservation-get-page",
                      "reservation-get-by-hw-address", "reservation-get-by-address",
                      "reservation-get-by-id")
# The HA relationship is the server's, not a worker's: the front runs it (cmd_ha's commands)
_HA = tuple(BODIES)

#: Command name -> rule: every command a worker answers (tests check the table covers the
#: command table); a name not here is answered by the front as Kea answers an unknown one.
ROUTES: dict[str, Rule] = {
    "list-commands": Rule.UNION,
    "version-get": Rule.ONE,
    "build-report": Rule.ONE,
    "config-get": Rule.ONE,
    # one file, one writer: N workers writing the same startup file would race
    "config-write": Rule.ONE,
    "config-test": Rule.ALL_SAME,
    "config-set": Rule.ALL_SAME,
    "config-reload": Rule.ALL_SAME,
    "status-get": Rule.STATUS,
    "dhcp-disable": Rule.ALL_SAME,
    "dhcp-enable": Rule.ALL_SAME,
    "leases-reclaim": Rule.ALL_SAME,
    "shutdown": Rule.FRONT,
    "metrics-get": Rule.FRONT,
    **dict.fromkeys(_STATS, Rule.SUM_STATS),
    **dict.fromkeys(_STAT_CHANGES, Rule.ALL_SAME),
    "stat-lease4-get": Rule.SUM_ROWS,
    "lease4-add": Rule.OWNER,
    "lease4-update": Rule.OWNER,
    "lease4-del": Rule.OWNER,
    "lease4-get": Rule.OWNER,
    "lease4-resend-ddns": Rule.OWNER,
    "lease4-get-all": Rule.MERGE_LEASES,
    "lease4-get-by-hw-address": Rule.MERGE_LEASES,
    "lease4-get-by-client-id": Rule.MERGE_LEASES,
    "lease4-get-by-hostname": Rule.MERGE_LEASES,
    "lease4-get-page": Rule.MERGE_PAGE,
    "lease4-wipe": Rule.SUM_WIPE,
    "reservation-add": Rule.HOSTS_WRITE,
    "reservation-del": Rule.HOSTS_WRITE,
    **dict.fromkeys(_RESERVATION_READS, Rule.ONE),
    HOSTS_WRITTEN: Rule.ALL_SAME,
    **dict.fromkeys(_HA, Rule.HA),
    link.STATE_SET: Rule.PRIVATE,
    link.APPLY: Rule.PRIVATE,
}


def owner_address(arguments: Any) -> int | None:
    """``arguments["ip-address"]`` as an integer when it is a valid IPv4 address, else None
    (then every worker is asked, and answers as a single server would)."""
    if not isinstance(arguments, dict):
        return None
    value = arguments.get("ip-address")
    if not isinstance(value, str):
        return None
    try:
        return int(ipaddress.IPv4Address(value))
    except ValueError:
        return None


class Owners:
    """Which of ``n`` workers owns an address under ``config``: the one whose
    :class:`~fastdhcp.slices.WorkerScope` owns it (its pool slice, ``ip % n`` outside the
    pools, or the worker a reservation's client is steered to), as the workers themselves
    decide."""

    def __init__(self, config: Config, n: int) -> None:
        self.n = n
        self._scopes = [slices.WorkerScope.of(config, k, n) for k in range(n)]

    def update(self, config: Config) -> None:
        """Follow ``config`` (the workers reloaded it: its pools slice anew)."""
        self._scopes = [slices.WorkerScope.of(config, k, self.n) for k in range(self.n)]

    def of(self, ip: int) -> int:
        """The owner of ``ip``."""
        return next((k for k, s in enumerate(self._scopes) if s.owns(ip)), 0)


def workers_for(rule: Rule, arguments: Any, owners: Owners) -> list[int]:
    """The workers asked (in worker order) for a command of ``rule``."""
    if rule is Rule.FRONT or rule is Rule.PRIVATE:
        return []
    if rule is Rule.ONE or rule is Rule.HOSTS_WRITE:
        return [0]
    if rule is Rule.OWNER:
        ip = owner_address(arguments)
        if ip is not None:
            return [owners.of(ip)]
    return list(range(owners.n))


def public_document(answer_args: Any, public: dict[str, Any]) -> Any:
    """config-get's answer from a worker with the front's configured ``control-sockets`` and
    ``server.metrics`` (``public``: those keys of the front's running document) put back."""
    if not isinstance(answer_args, dict) or not isinstance(answer_args.get("Dhcp4"), dict):
        return answer_args
    doc = dict(answer_args["Dhcp4"])
    doc["control-sockets"] = public.get("control-sockets", [])
    server = doc.get("server")
    metrics = public.get("server", {}).get("metrics")
    if isinstance(server, dict):
        server = {k: v for k, v in server.items() if k != "metrics"}
        if metrics is not None:
            server["metrics"] = metrics
        doc["server"] = server
    return {**answer_args, "Dhcp4": doc}


def host_key(host: Any) -> dict[str, Any] | None:
    """What ``fastdhcp-hosts-written`` tells the other workers of a host written (a
    ``reservation`` map, or reservation-get's answer): its subnet, identifier and address;
    None when ``host`` names no identifier (then there is nothing to tell)."""
    if not isinstance(host, dict):
        return None
    out: dict[str, Any] = {}
    for kind in IdentifierType:
        if isinstance(host.get(kind.key), str):
            out = {"identifier-type": kind.key, "identifier": host[kind.key]}
            break
    else:
        return None
    if "subnet-id" in host:
        out["subnet-id"] = host["subnet-id"]
    if isinstance(host.get("ip-address"), str):
        out["ip-address"] = host["ip-address"]
    return out
