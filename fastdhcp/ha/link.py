"""Between the workers of a multi-worker HA server and the one HA service their supervisor
runs (docs/high-availability.md, "With several workers"): the command names and the bodies of
that private link, built and parsed here and nowhere else.

The HA relationship is one per server, whatever its workers: one state machine, one heartbeat,
one connection to the partner, one unsent-update-count. The supervisor runs it
(:mod:`fastdhcp.service.front_ha`); each worker keeps only what its packet path reads per
datagram (:class:`LinkState`: the scope filter and the allocation share) and asks the supervisor
at each group commit which of its ACKs may leave (:data:`COMMITTED`).

Worker -> supervisor, on the supervisor's private socket:

- :data:`COMMITTED` ``{"rows", "deleted-rows"}`` (the rows of
  :func:`fastdhcp.ha.messages.batch_request`): the batch just made durable; the answer is
  ``{"refused": [ip, ...], "state": LinkState}``, the addresses whose ACK must not leave;
- :data:`MISSED` ``{"queries": [[client-id hex or null, chaddr hex, secs], ...]}``: queries the
  filter dropped as the partner's while communication is interrupted (Kea's failure detection);
- :data:`STATE` (no arguments): the current :class:`LinkState` (a worker's start).

Supervisor -> worker, on the worker's private control socket:

- :data:`STATE_SET` ``LinkState``: after every change of state, scopes or partner reachability;
- :data:`APPLY` ``{"rows", "deleted-rows", "sync": bool}``: the partner's leases for addresses
  this worker owns (an update batch, or a page of a sync to merge).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from fastdhcp._hascope import MissedQuery
from fastdhcp.control.protocol import CommandError

__all__ = ["APPLY", "COMMITTED", "MAX_ROWS", "MISSED", "STATE", "STATE_SET", "LinkState",
           "StateSink", "missed_args", "parse_apply_args", "parse_missed_args", "parse_refused"]

COMMITTED = "fastdhcp-ha-committed"
MISSED = "fastdhcp-ha-missed"
STATE = "fastdhcp-ha-state"
STATE_SET = "fastdhcp-ha-state-set"
APPLY = "fastdhcp-ha-apply"

#: Most leases in one request of the link: a row is ~110 bytes of JSON, and a request must stay
#: under the control channel's 1 MiB (``control.common.MAX_REQUEST``); 2,000 rows are ~220 KB.
MAX_ROWS = 2000
_U32 = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class LinkState:
    """What a worker's packet path needs of the HA service: the scope filter's four inputs
    (:meth:`fastdhcp._hascope.ScopeFilter.set`) and the allocation share (None: the whole
    pool)."""

    enabled: bool
    servers: int
    mask: int
    analyze: bool
    share: int | None

    @classmethod
    def closed(cls) -> LinkState:
        """Serve nobody: a worker's state until the supervisor answered (an HA server starts
        in waiting, DHCP off, as a new ``ScopeFilter`` does)."""
        return cls(False, 2, 0, False, None)

    def to_json(self) -> dict[str, Any]:
        """The link's JSON body."""
        return {"analyze": self.analyze, "enabled": self.enabled, "mask": self.mask,
                "servers": self.servers, "share": self.share}

    @classmethod
    def from_json(cls, value: object) -> LinkState:
        """Parse :meth:`to_json`'s body; CommandError naming the key at fault."""
        if not isinstance(value, dict):
            raise CommandError("the HA link state must be a map")
        enabled, analyze = value.get("enabled"), value.get("analyze")
        if type(enabled) is not bool or type(analyze) is not bool:
            raise CommandError("'enabled' and 'analyze' must be booleans")
        servers, mask, share = value.get("servers"), value.get("mask"), value.get("share")
        if type(servers) is not int or servers not in (1, 2):  # ScopeFilter.set's range
            raise CommandError(f"'servers' is not 1 or 2: {servers!r}")
        if type(mask) is not int or not 0 <= mask <= _U32:
            raise CommandError(f"'mask' is not an integer in 0..{_U32}: {mask!r}")
        if share is not None and (type(share) is not int or share not in (0, 1)):
            raise CommandError(f"'share' is not 0, 1 or null: {share!r}")
        return cls(enabled, servers, mask, analyze, share)


class StateSink(Protocol):
    """A worker's end of the link: it takes the supervisor's :class:`LinkState`."""

    def set_state(self, state: LinkState) -> None:
        """Follow ``state`` from now on (the next datagram)."""


def parse_refused(arguments: object) -> tuple[frozenset[int], LinkState]:
    """:data:`COMMITTED`'s answer: the refused addresses and the state."""
    if not isinstance(arguments, dict):
        raise CommandError("the answer's arguments are not a map")
    refused = arguments.get("refused")
    if not isinstance(refused, list) or any(
            type(ip) is not int or not 0 <= ip <= _U32 for ip in refused):
        raise CommandError("'refused' is not a list of addresses as integers")
    return frozenset(refused), LinkState.from_json(arguments.get("state"))


def missed_args(queries: list[MissedQuery]) -> dict[str, Any]:
    """:data:`MISSED`'s arguments."""
    return {"queries": [[None if q.client_id is None else q.client_id.hex(), q.chaddr.hex(),
                         q.secs] for q in queries]}


def parse_missed_args(arguments: object) -> list[MissedQuery]:
    """:func:`missed_args` parsed; CommandError naming the query at fault."""
    raw = arguments.get("queries") if isinstance(arguments, dict) else None
    if not isinstance(raw, list):
        raise CommandError("'queries' must be a list")
    out: list[MissedQuery] = []
    for i, q in enumerate(raw):
        try:
            cid, chaddr, secs = q
            if type(secs) is not int or not 0 <= secs <= 0xFFFF:
                raise ValueError
            out.append(MissedQuery(None if cid is None else bytes.fromhex(cid),
                                   bytes.fromhex(chaddr), secs))
        except (TypeError, ValueError):
            raise CommandError(f"queries[{i}]: not [client-id hex or null, chaddr hex, "
                               f"secs 0..65535]: {q!r}") from None
    return out


def parse_apply_args(arguments: object) -> tuple[dict[str, Any], bool]:
    """:data:`APPLY`'s arguments: the batch's (for ``parse_batch_args``) and whether they are
    a sync page."""
    if not isinstance(arguments, dict):
        raise CommandError("Parameters missing or are not a map.")
    rest = dict(arguments)
    sync = rest.pop("sync", False)
    if type(sync) is not bool:
        raise CommandError(f"'sync' must be a boolean: {sync!r}")
    return rest, sync
