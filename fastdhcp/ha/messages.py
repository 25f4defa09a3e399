"""The bodies of the commands HA peers exchange, built and parsed as Kea 2.2 does (kea-ha.md
sections 1, 2 and 4).

Requests carry ``"service": ["dhcp4"]`` (kea-ctrl-agent needs it to forward) and their keys in
Kea's alphabetical order; ``arguments`` is left out when there are none. Answers arrive as a JSON
list holding one map (the agent's shape) or a bare map (an HTTP 400 of the agent): both parse.
What a peer sent wrong raises :class:`PeerError` with the text Kea logs for it.

Leases travel as Kea's lease JSON: hex with colons, the client-id with its type byte (left out
when there is none), ``expire`` in updates (never ``cltt``), ``cltt`` in lease4-get-page pages;
between two fastdhcp peers a batch carries them as compact rows (:data:`ROW_COLUMNS`).
"""

from __future__ import annotations

import email.utils
import ipaddress
from dataclasses import dataclass
from typing import Any

from fastdhcp.control.protocol import Answer, CommandError, Result, success
from fastdhcp.ha.state import REPORTABLE, HAState, HeartbeatReply
from fastdhcp.leases import LeaseState

__all__ = [
    "BATCH_COMMAND", "ROW_COLUMNS", "BatchResult", "HALease", "PeerAnswer", "PeerError",
    "batch_request", "command", "dhcp_disable_request", "format_date_time", "get_page_request",
    "heartbeat_answer", "heartbeat_request", "lease_del_request", "lease_from_json",
    "lease_row", "lease_update_request", "maintenance_notify_request", "parse_answer",
    "parse_batch_args", "parse_batch_result", "parse_date_time", "parse_heartbeat_answer",
    "parse_maintenance_notify", "parse_page_answer", "parse_scopes", "parse_sync_args",
    "row_lease", "sync_complete_notify_request",
]

#: The batched lease update between fastdhcp peers (many leases in one request). A fastdhcp-
#: prefix, not ``lease4-bulk-apply``: Kea 2.2 has no such DHCPv4 command, and a later Kea may
#: add one with its own rules; a name Kea will never use cannot collide. A peer that lists it
#: in ``list-commands`` gets batches; any other (Kea) gets one ``lease4-update`` per lease.
BATCH_COMMAND = "fastdhcp-lease4-updates"


class PeerError(Exception):
    """A peer's answer that cannot be used (handled as an unreachable partner)."""


def command(name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    """A request as Kea sends it to a peer: keys alphabetical, service dhcp4."""
    out: dict[str, Any] = {}
    if arguments is not None:
        out["arguments"] = arguments
    out["command"] = name
    out["service"] = ["dhcp4"]
    return out


@dataclass(frozen=True, slots=True)
class PeerAnswer:
    """One answer from a peer."""

    result: int
    text: str
    arguments: Any = None


def parse_answer(value: object) -> PeerAnswer:
    """The one-element list (or bare map) a peer answered with."""
    if isinstance(value, list):
        if len(value) != 1:
            raise PeerError(f"expected a list of one answer, got {len(value)} elements")
        value = value[0]
    if not isinstance(value, dict):
        raise PeerError("the answer is not a map")
    result = value.get("result")
    if isinstance(result, bool) or not isinstance(result, int):
        raise PeerError("the answer has no integer 'result'")
    text = value.get("text", "")
    return PeerAnswer(result, text if isinstance(text, str) else str(text),
                      value.get("arguments"))


# ------------------------------------------------------------------------------ heartbeat


def heartbeat_request() -> dict[str, Any]:
    """``ha-heartbeat``: no arguments."""
    return command("ha-heartbeat")


def format_date_time(wall: float) -> str:
    """RFC 1123 GMT, as Kea's heartbeat: ``Sun, 06 Dec 2026 04:50:54 GMT``."""
    return email.utils.formatdate(wall, usegmt=True)


def parse_date_time(text: str) -> float:
    """Unix seconds from an RFC 1123 date (PeerError if it is not one)."""
    try:
        dt = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        raise PeerError(f"date-time '{text}' is not an RFC 1123 date") from None
    if dt.tzinfo is None:
        raise PeerError(f"date-time '{text}' has no time zone")
    return dt.timestamp()


def heartbeat_answer(state: HAState, wall: float, scopes: tuple[str, ...],
                     unsent_update_count: int) -> Answer:
    """Our answer to ``ha-heartbeat`` (Kea's keys, alphabetical)."""
    return success("HA peer status returned.", {
        "date-time": format_date_time(wall),
        "scopes": list(scopes),
        "state": state.value,
        "unsent-update-count": unsent_update_count,
    })


def parse_heartbeat_answer(answer: PeerAnswer) -> HeartbeatReply:
    """The partner's heartbeat answer; PeerError with Kea's log text when it fails."""
    if answer.result != 0:
        raise PeerError(f"{answer.text}, error code {answer.result}")
    args = answer.arguments
    if not isinstance(args, dict):
        raise PeerError("arguments not returned in the heartbeat answer or not a map")
    state = args.get("state")
    if not isinstance(state, str):
        raise PeerError("server state not returned in response to a ha-heartbeat command "
                        "or it is not a string")
    try:
        st = HAState(state)
    except ValueError:
        st = None
    if st is None or st not in REPORTABLE:
        raise PeerError(f"unsupported HA partner state returned {state}")
    dt = args.get("date-time")
    if not isinstance(dt, str):
        raise PeerError("date-time not returned in response to a ha-heartbeat command or it "
                        "is not a string")
    wall = parse_date_time(dt)
    scopes = args.get("scopes")  # tolerated when absent, as Kea does
    sc: tuple[str, ...] | None = None
    if isinstance(scopes, list) and all(isinstance(s, str) for s in scopes):
        sc = tuple(scopes)
    unsent = args.get("unsent-update-count")
    n = unsent if isinstance(unsent, int) and not isinstance(unsent, bool) else None
    return HeartbeatReply(st, wall, sc, n)


# ------------------------------------------------------------------------------ leases


@dataclass(frozen=True, slots=True)
class HALease:
    """A lease as HA peers exchange it (Kea's Lease4 JSON fields; addresses as ints)."""

    ip: int
    hw_address: bytes  #: chaddr's hlen bytes; b"" for a declined lease
    valid_lft: int
    cltt: int  #: client last transaction time, Unix seconds
    subnet_id: int | None = None  #: None: the receiver picks the subnet from the address
    client_id: bytes | None = None  #: option 61 with its type byte; None when not sent
    hostname: str = ""
    fqdn_fwd: bool = False
    fqdn_rev: bool = False
    state: LeaseState = LeaseState.DEFAULT
    user_context: dict[str, Any] | None = None

    @property
    def expire(self) -> int:
        """cltt + valid-lft (what lease4-update carries)."""
        return self.cltt + self.valid_lft

    def _common(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.client_id is not None:
            out["client-id"] = _hex(self.client_id)
        return out

    def update_arguments(self, *, force_create: bool = True) -> dict[str, Any]:
        """lease4-update's arguments, exactly Kea's keys (kea-ha.md §4)."""
        out = self._common()
        out["expire"] = self.expire
        if force_create:
            out["force-create"] = True
        out.update(self._tail())
        return dict(sorted(out.items()))

    def delete_arguments(self) -> dict[str, Any]:
        """lease4-del's arguments: the full lease, no force-create."""
        return self.update_arguments(force_create=False)

    def page_json(self) -> dict[str, Any]:
        """The lease as lease4-get-page lists it (``cltt``, not ``expire``)."""
        out = self._common()
        out["cltt"] = self.cltt
        out.update(self._tail())
        if self.user_context is not None:
            out["user-context"] = self.user_context
        return dict(sorted(out.items()))

    def _tail(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "fqdn-fwd": self.fqdn_fwd, "fqdn-rev": self.fqdn_rev, "hostname": self.hostname,
            "hw-address": _hex(self.hw_address),
            "ip-address": str(ipaddress.IPv4Address(self.ip)),
            "state": int(self.state), "valid-lft": self.valid_lft,
        }
        if self.subnet_id is not None:
            out["subnet-id"] = self.subnet_id
        return out


def _hex(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _unhex(key: str, text: object) -> bytes:
    if not isinstance(text, str):
        raise CommandError(f"'{key}' is not a string")
    digits = text.replace(":", "").replace("-", "").replace(" ", "")
    if len(digits) % 2 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise CommandError(f"invalid '{key}' value '{text}': not hexadecimal bytes "
                           "(e.g. 01:02:03)")
    return bytes.fromhex(digits)


def lease_from_json(d: object) -> HALease:
    """A lease from Kea's JSON (an update's ``expire`` or a page's ``cltt``); CommandError
    naming the key at fault (the texts of Kea's lease_cmds where kea-ha.md records them)."""
    if not isinstance(d, dict):
        raise CommandError("lease must be a map")
    ip_text = d.get("ip-address")
    if not isinstance(ip_text, str):
        raise CommandError("missing parameter 'ip-address'")
    try:
        ip = int(ipaddress.IPv4Address(ip_text))
    except ValueError:
        raise CommandError(f"Failed to convert string to address '{ip_text}': Invalid "
                           "argument") from None
    if "hw-address" not in d:
        raise CommandError("missing parameter 'hw-address'")
    hw = _unhex("hw-address", d["hw-address"])
    valid = _int(d, "valid-lft", required=True)
    assert valid is not None
    if valid < 0:
        raise CommandError(f"'valid-lft' must not be negative: {valid}")
    cltt = _int(d, "cltt")
    expire = _int(d, "expire")
    if cltt is None:
        if expire is None:
            raise CommandError("missing parameter 'expire' (or 'cltt')")
        cltt = expire - valid  # Kea stores cltt = expire - valid-lft (kea-ha.md §4)
    subnet_id = _int(d, "subnet-id")
    cid = _unhex("client-id", d["client-id"]) if d.get("client-id") not in (None, "") else None
    hostname = d.get("hostname", "")
    if not isinstance(hostname, str):
        raise CommandError("'hostname' is not a string")
    flags = []
    for key in ("fqdn-fwd", "fqdn-rev"):
        v = d.get(key, False)
        if not isinstance(v, bool):
            raise CommandError(f"'{key}' is not a boolean")
        flags.append(v)
    st = _int(d, "state")
    try:
        state = LeaseState(0 if st is None else st)
    except ValueError:
        raise CommandError(f"invalid state {st}: must be 0 (default), 1 (declined) or 2 "
                           "(expired-reclaimed)") from None
    if state is LeaseState.RELEASED:
        raise CommandError("invalid state 3: must be 0 (default), 1 (declined) or 2 "
                           "(expired-reclaimed)")
    uc = d.get("user-context")
    if uc is not None and not isinstance(uc, dict):
        raise CommandError("'user-context' must be a map")
    return HALease(ip, hw, valid, cltt, subnet_id, cid, hostname, flags[0], flags[1], state, uc)


def _int(d: dict[str, Any], key: str, *, required: bool = False) -> int | None:
    if key not in d:
        if required:
            raise CommandError(f"missing parameter '{key}'")
        return None
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise CommandError(f"'{key}' is not an integer")
    return v


def lease_update_request(lease: HALease) -> dict[str, Any]:
    """``lease4-update`` for one new or renewed (or declined) lease, force-create true."""
    return command("lease4-update", lease.update_arguments())


def lease_del_request(lease: HALease) -> dict[str, Any]:
    """``lease4-del`` with the full lease (RELEASE)."""
    return command("lease4-del", lease.delete_arguments())


# ------------------------------------------------------------------------------ batches


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One lease of a batch the receiver could not apply."""

    ip: int
    result: int
    text: str


#: The columns of one row of :data:`BATCH_COMMAND` (``rows`` and ``deleted-rows``), in order:
#: the address as an integer, hw-address and client-id as plain hex (client-id null when the
#: client sent none), valid-lft, cltt (Unix seconds), subnet-id (null: the receiver picks it),
#: hostname, fqdn-fwd, fqdn-rev, state, then a user-context map only when the lease has one.
#: A list per lease, not Kea's map: the per-lease maps and their keys (~30% of the receiver's
#: HA work, py-spy 2026-12-07) and the sender's sorted dicts are what this cuts.
ROW_COLUMNS = ("ip", "hw-address", "client-id", "valid-lft", "cltt", "subnet-id", "hostname",
               "fqdn-fwd", "fqdn-rev", "state", "user-context")
_ROW_MIN = len(ROW_COLUMNS) - 1  # user-context is the one optional column
_U32 = 0xFFFFFFFF
_CHADDR = 16  # chaddr holds 16 bytes (RFC 2131 2)


def lease_row(x: HALease) -> list[Any]:
    """One lease as a row of :data:`ROW_COLUMNS`."""
    cid = x.client_id
    row: list[Any] = [x.ip, x.hw_address.hex(), None if cid is None else cid.hex(),
                      x.valid_lft, x.cltt, x.subnet_id, x.hostname, x.fqdn_fwd, x.fqdn_rev,
                      int(x.state)]
    if x.user_context is not None:
        row.append(x.user_context)
    return row


def batch_request(updated: list[HALease], deleted: list[HALease]) -> dict[str, Any]:
    """:data:`BATCH_COMMAND`: ``rows`` (new or changed leases) and ``deleted-rows``, one list
    of :data:`ROW_COLUMNS` per lease."""
    return command(BATCH_COMMAND, {
        "deleted-rows": [lease_row(x) for x in deleted],
        "rows": [lease_row(x) for x in updated],
    })


def _hex_column(value: object, name: str) -> bytes:
    if type(value) is not str:
        raise CommandError(f"'{name}' is not a string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise CommandError(f"invalid '{name}' value '{value}': not hexadecimal bytes") from None


def _u32_column(value: object, name: str) -> int:
    if type(value) is not int or not 0 <= value <= _U32:
        raise CommandError(f"'{name}' is not an integer in 0..{_U32}: {value!r}")
    return value


def row_lease(row: object) -> HALease:
    """A lease from one row of :data:`ROW_COLUMNS`; CommandError naming the column at fault
    (the values' meaning, the subnet and the rest, is the receiving store's to check)."""
    if type(row) is not list or not _ROW_MIN <= len(row) <= len(ROW_COLUMNS):
        raise CommandError(f"a row must be a list of {_ROW_MIN} or {len(ROW_COLUMNS)} values "
                           f"({', '.join(ROW_COLUMNS)})")
    ip = _u32_column(row[0], "ip")
    hw = _hex_column(row[1], "hw-address")
    if len(hw) > _CHADDR:
        raise CommandError(f"'hw-address' is longer than the {_CHADDR} bytes of chaddr")
    cid = None if row[2] is None else _hex_column(row[2], "client-id")
    if cid is not None and len(cid) < 2:  # RFC 2132 9.14: type and at least one byte
        raise CommandError("'client-id' is shorter than the 2 bytes of RFC 2132 9.14")
    valid = _u32_column(row[3], "valid-lft")
    cltt = _u32_column(row[4], "cltt")
    sid = row[5]
    if sid is not None and (type(sid) is not int or not 0 < sid <= _U32):
        raise CommandError(f"'subnet-id' is not a positive integer: {sid!r}")
    hostname, fwd, rev, st = row[6], row[7], row[8], row[9]
    if type(hostname) is not str:
        raise CommandError("'hostname' is not a string")
    if type(fwd) is not bool or type(rev) is not bool:
        raise CommandError("'fqdn-fwd' and 'fqdn-rev' must be booleans")
    if type(st) is not int or st not in _ROW_STATES:
        raise CommandError(f"invalid state {st!r}: must be 0 (default), 1 (declined) or 2 "
                           "(expired-reclaimed)")
    uc = row[10] if len(row) > _ROW_MIN else None
    if uc is not None and type(uc) is not dict:
        raise CommandError("'user-context' must be a map")
    return HALease(ip, hw, valid, cltt, sid, cid, hostname, fwd, rev, _ROW_STATES[st], uc)


_ROW_STATES = {int(s): s for s in (LeaseState.DEFAULT, LeaseState.DECLINED,
                                   LeaseState.EXPIRED_RECLAIMED)}

#: the keys of BATCH_COMMAND: rows, and Kea's lease maps as the first fastdhcp release sent
#: them (a pair upgraded one server at a time keeps its updates)
_BATCH_KEYS = {"rows": row_lease, "deleted-rows": row_lease,
               "leases": lease_from_json, "deleted-leases": lease_from_json}


def parse_batch_args(arguments: object) -> tuple[list[HALease], list[HALease]]:
    """The receiver's side: (updated, deleted); CommandError (nothing applied) if any lease
    is malformed, naming which."""
    if not isinstance(arguments, dict):
        raise CommandError("Parameters missing or are not a map.")
    unknown = set(arguments) - set(_BATCH_KEYS)
    if unknown:
        raise CommandError(f"unknown parameter '{sorted(unknown, key=str)[0]}' (expected "
                           f"{', '.join(sorted(_BATCH_KEYS))})")
    updated: list[HALease] = []
    deleted: list[HALease] = []
    for key, decode in _BATCH_KEYS.items():
        raw = arguments.get(key, [])
        if not isinstance(raw, list):
            raise CommandError(f"'{key}' must be a list")
        into = deleted if key.startswith("deleted-") else updated
        for i, d in enumerate(raw):
            try:
                into.append(decode(d))
            except CommandError as exc:
                raise CommandError(f"{key}[{i}]: {exc.text}") from None
    return updated, deleted


def parse_batch_result(answer: PeerAnswer) -> list[BatchResult]:
    """The leases a batch's receiver failed to apply (empty: all went through)."""
    if answer.result == Result.EMPTY:
        return []
    if answer.result != 0:
        raise PeerError(f"{answer.text}, error code {answer.result}")
    args = answer.arguments if isinstance(answer.arguments, dict) else {}
    out = []
    for f in args.get("failed-leases", []):
        try:
            ip = int(ipaddress.IPv4Address(f["ip-address"]))
            out.append(BatchResult(ip, int(f["result"]), str(f.get("error-message", ""))))
        except (KeyError, TypeError, ValueError):
            raise PeerError(f"malformed failed-leases entry {f!r}") from None
    return out


# ------------------------------------------------------------------------------ sync


def dhcp_disable_request(max_period: int) -> dict[str, Any]:
    """``dhcp-disable`` origin ha-partner, before every page (kea-ha.md §2)."""
    return command("dhcp-disable", {"max-period": max_period, "origin": "ha-partner"})


def dhcp_enable_request() -> dict[str, Any]:
    """``dhcp-enable`` origin ha-partner (a sync that failed lets the partner serve again)."""
    return command("dhcp-enable", {"origin": "ha-partner"})


def get_page_request(after: int | None, limit: int) -> dict[str, Any]:
    """``lease4-get-page`` from ``"start"`` or after the last address of the last page."""
    frm: str = "start" if after is None else str(ipaddress.IPv4Address(after))
    return command("lease4-get-page", {"from": frm, "limit": limit})


def parse_page_answer(answer: PeerAnswer) -> list[HALease]:
    """One page's leases (result 3: none, the end)."""
    if answer.result == Result.EMPTY:
        return []
    if answer.result != 0:
        raise PeerError(f"lease4-get-page failed: {answer.text}, error code {answer.result}")
    args = answer.arguments
    if not isinstance(args, dict) or not isinstance(args.get("leases"), list):
        raise PeerError("lease4-get-page answer has no 'leases' list")
    try:
        leases = [lease_from_json(d) for d in args["leases"]]
    except CommandError as exc:
        raise PeerError(f"lease4-get-page: bad lease: {exc.text}") from None
    for a, b in zip(leases, leases[1:], strict=False):
        if b.ip <= a.ip:  # paging continues after the last: an unordered page would loop
            raise PeerError("lease4-get-page answer is not in ascending address order")
    return leases


def sync_complete_notify_request() -> dict[str, Any]:
    """``ha-sync-complete-notify``: no arguments."""
    return command("ha-sync-complete-notify")


# ------------------------------------------------------------------------------ commands


def maintenance_notify_request(cancel: bool) -> dict[str, Any]:
    """``ha-maintenance-notify``."""
    return command("ha-maintenance-notify", {"cancel": cancel})


def parse_maintenance_notify(arguments: object) -> bool:
    """``{"cancel": bool}`` -> cancel."""
    if not isinstance(arguments, dict):
        raise CommandError("arguments not found in the 'ha-maintenance-notify' command")
    cancel = arguments.get("cancel")
    if not isinstance(cancel, bool):
        raise CommandError("'cancel' is mandatory for the 'ha-maintenance-notify' command "
                           "and must be a boolean")
    return cancel


def parse_scopes(arguments: object) -> tuple[str, ...]:
    """``ha-scopes``: ``{"scopes": [names]}``."""
    if not isinstance(arguments, dict):
        raise CommandError("arguments not found in the 'ha-scopes' command")
    scopes = arguments.get("scopes")
    if not isinstance(scopes, list):
        raise CommandError("'scopes' is mandatory for the 'ha-scopes' command")
    for s in scopes:
        if not isinstance(s, str):
            raise CommandError("scope name must be a string in the 'scopes' argument")
    return tuple(scopes)


def parse_sync_args(arguments: object) -> tuple[str, int | None]:
    """``ha-sync``: ``{"server-name": str, "max-period"?: int > 0}`` (Kea 2.2's texts)."""
    if not isinstance(arguments, dict):
        raise CommandError("arguments not found in the 'ha-sync' command")
    name = arguments.get("server-name")
    if name is None:
        raise CommandError("'server-name' is mandatory for the 'ha-sync' command")
    if not isinstance(name, str):
        raise CommandError("'server-name' must be a string")
    period = arguments.get("max-period")
    if period is not None and (isinstance(period, bool) or not isinstance(period, int)
                               or period <= 0):
        raise CommandError("'max-period' must be a positive integer")
    return name, period
