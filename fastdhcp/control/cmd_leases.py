"""Kea's lease_cmds over the running server: ``lease4-add``, ``-update``, ``-get``, ``-get-all``,
``-get-page``, ``-get-by-hw-address``, ``-get-by-client-id``, ``-get-by-hostname``, ``-del``,
``-wipe`` and ``leases-reclaim``, with Kea 2.2's shapes, texts and result codes
(../shared/reference/kea-control-api.md C6-C12).

Every change goes through the engine (``Engine.admin_put`` / ``admin_delete``: offers, bitmaps
and counts follow at once) and the group commit; a mutating command answers only once its
commit is durable. Reads over many leases go in slices of :data:`SLICE` records with the loop
free between them, so a ``lease4-get-all`` over a million leases never stalls the packet path.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable
from socket import inet_ntoa
from typing import Any

from fastdhcp.config import Subnet4
from fastdhcp.control.args import Args, parse_ipv4
from fastdhcp.control.lease_extras import LeaseExtras
from fastdhcp.control.protocol import Answer, Caller, CommandError, Result, empty, success
from fastdhcp.control.table import CommandTable
from fastdhcp.control.target import ControlTarget
from fastdhcp.ha.messages import BatchResult, HALease
from fastdhcp.leases import Lease, LeaseState

__all__ = ["SLICE", "apply_partner_leases", "found", "lease_json", "register", "wipe_text"]

log = logging.getLogger("fastdhcp.control")

SLICE = 250
"""Records read (or deleted) per turn of the loop: about 1 ms of the loop's time each."""

LOOP_SHARE = 0.03
"""At most this share of the event loop goes to bulk control work (pages, scans, wipes) while
DHCP traffic flows; a quiet server gives it the whole loop. Measured with bench/control_ab.py
(closed-loop DORA beside a client paging 1,000 leases flat out): no share, 0.55 of the quiet
rate; 5 %, 0.88; 3 %, 0.98. The answer's JSON encoding (about 3 ms per 1,000 leases, in the
transport) comes on top of the share."""

INFINITE = 0xFFFFFFFF  # RFC 2131 3.3: lease time "infinity"
_HTYPE_ETHERNET = 1  # the client key without option 61 is htype + chaddr (fastdhcp.leases)

#: Kea's states as the API shows them: a record that ended by RELEASE keeps client affinity
#: here (RFC 2131 4.3.1) where Kea 2.2 keeps such a lease as expired-reclaimed: shown as 2.
_KEA_STATE = {int(LeaseState.DEFAULT): 0, int(LeaseState.DECLINED): 1,
              int(LeaseState.EXPIRED_RECLAIMED): 2, int(LeaseState.RELEASED): 2}
_STATES = {0: LeaseState.DEFAULT, 1: LeaseState.DECLINED, 2: LeaseState.EXPIRED_RECLAIMED}
_HEX_PAIR = re.compile(r"[0-9a-fA-F]{1,2}")
_ADD_KEYS = ("ip-address", "hw-address", "subnet-id", "client-id", "valid-lft", "expire",
             "hostname", "fqdn-fwd", "fqdn-rev", "state", "user-context", "comment",
             "force-create")


# ------------------------------------------------------------------ the lease object


def _hex_colons(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


def client_id_of(lease: Lease) -> bytes | None:
    """The lease's client-id (option 61), or None when its client key is htype + chaddr."""
    key = lease.client_key
    if not key or (key[0] == _HTYPE_ETHERNET and key[1:] == lease.hw_address):
        return None
    return key


def lease_json(lease: Lease, extras: LeaseExtras | None = None) -> dict[str, Any]:
    """Kea's lease object (keys in Kea's order: sorted), with ``extras`` if they belong to
    the lease's client. About 1.5 us: a page of 1,000 is built in under 2 ms (ipaddress and
    the enum would make it 6-9 ms)."""
    if extras is not None and extras.client_key != lease.client_key:
        extras = None
    out: dict[str, Any] = {}
    cid = client_id_of(lease)
    if cid is not None:
        out["client-id"] = cid.hex(":")
    issued, expires = lease.issued, lease.expires
    out["cltt"] = issued
    # the record's flags (DNS updates the engine owes), else lease4-add's
    out["fqdn-fwd"] = bool(lease.fqdn_fwd) or (extras is not None and extras.fqdn_fwd)
    out["fqdn-rev"] = bool(lease.fqdn_rev) or (extras is not None and extras.fqdn_rev)
    out["hostname"] = lease.hostname.lower()
    out["hw-address"] = lease.hw_address.hex(":")
    out["ip-address"] = inet_ntoa(lease.ip.to_bytes(4, "big"))
    out["state"] = _KEA_STATE.get(lease.state, 2)
    out["subnet-id"] = lease.subnet_id
    if extras is not None and extras.user_context is not None:
        out["user-context"] = extras.user_context
    out["valid-lft"] = INFINITE if expires >= INFINITE else expires - issued
    return out


def _json_of(target: ControlTarget, lease: Lease) -> dict[str, Any]:
    """:func:`lease_json` with the lease's extras from the table (one B-tree search)."""
    raw = target.store.extras_get(lease.ip)
    return lease_json(lease, None if raw is None else LeaseExtras.decode(raw))


def found(leases: list[dict[str, Any]], *, count: bool = False) -> Answer:
    """The answer listing ``leases`` (with ``count`` for lease4-get-page); result 3 when
    there are none. The multi-worker front builds its merged answers with it too."""
    args: dict[str, Any] = {"leases": leases}
    if count:
        args = {"count": len(leases), **args}
    text = f"{len(leases)} IPv4 lease(s) found."
    return success(text, args) if leases else empty(text, args)


# ------------------------------------------------------------------ sharing the loop


def _traffic(target: ControlTarget) -> int:
    """DHCP datagrams received so far: whether the packet path was busy during a slice."""
    return sum(target.metrics.received)


async def _pause(target: ControlTarget, spent: float) -> None:
    """Between two slices of bulk work (the last took ``spent`` s): let the loop serve what is
    ready, and if that was DHCP traffic, sleep so that bulk work takes at most
    :data:`LOOP_SHARE` of the loop while the traffic lasts. A quiet server pays nothing."""
    mark = _traffic(target)
    await asyncio.sleep(0)
    if _traffic(target) != mark:
        await asyncio.sleep(spent * (1.0 / LOOP_SHARE - 1.0))


# ------------------------------------------------------------------ arguments


def parse_hw(text: Any, key: str = "hw-address") -> bytes:
    """A hw-address as Kea takes it: hex bytes separated by colons."""
    if not isinstance(text, str):
        raise CommandError(f"invalid type specified for parameter '{key}'")
    parts = text.split(":")
    if len(parts) < 2 and len(text) > 2:
        raise CommandError(f"invalid format of the decoded string '{text}'")
    for part in parts:
        if not _HEX_PAIR.fullmatch(part):
            bad = next((c for c in part if c not in "0123456789abcdefABCDEF"), None)
            if bad is None:
                raise CommandError(f"invalid format of the decoded string '{text}'")
            raise CommandError(f"'{bad}' is not a valid hexadecimal digit in decoded string "
                               f"'{text}'")
    data = bytes(int(p, 16) for p in parts)
    if len(data) > 16:  # chaddr holds 16 bytes (RFC 2131 2)
        raise CommandError(f"hw-address: '{text}' is longer than the 16 bytes of chaddr")
    return data


def parse_client_id(text: Any, key: str = "client-id") -> bytes:
    """A client-id as Kea takes it: hex, with colons or without."""
    if not isinstance(text, str):
        raise CommandError(f"invalid type specified for parameter '{key}'")
    digits = text.replace(":", "")
    try:
        if not digits or len(digits) % 2:
            raise ValueError
        data = bytes.fromhex(digits)
    except ValueError:
        raise CommandError(f"'{text}' is not a valid string of hexadecimal digits") from None
    if len(data) < 2:  # RFC 2132 9.14: at least type and one byte
        raise CommandError(f"client-id: '{text}' is shorter than the 2 bytes of RFC 2132 9.14")
    return data


def _address(args: Args, *, adding: bool) -> int:
    value = args.get_str("ip-address")
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        if adding:
            raise CommandError(f"Failed to convert '{value}' to address: Failed to convert "
                               f"string to address '{value}': Invalid argument") from None
        return parse_ipv4(value)
    if addr.version != 4:
        raise CommandError(f"Non-IPv4 address specified: {value}" if adding
                           else f"Invalid IPv4 address specified: {value}")
    return int(addr)


def _subnet_by_id(target: ControlTarget, sid: int) -> Subnet4 | None:
    return target.config.subnet(sid)


def _containing(target: ControlTarget, ip: int) -> Subnet4 | None:
    for s in target.config.subnets:
        if s.first_ip <= ip <= s.last_ip:
            return s
    return None


def _subnet_for(target: ControlTarget, ip: int, sid: int, text: str) -> Subnet4:
    """The subnet of a lease at ``ip`` given subnet-id ``sid`` (0: the one containing it)."""
    if sid:
        subnet = _subnet_by_id(target, sid)
        if subnet is None:
            raise CommandError(f"Invalid subnet-id: No IPv4 subnet with subnet-id={sid} "
                               "currently configured.")
        if not subnet.first_ip <= ip <= subnet.last_ip:
            raise CommandError(f"The address {text} does not belong to subnet "
                               f"{subnet.network}, subnet-id={sid}")
        return subnet
    found = _containing(target, ip)
    if found is None:
        raise CommandError(f"subnet-id not specified and failed to find a subnet for "
                           f"address {text}")
    return found


def _check_fqdn(hostname: str, fwd: bool, rev: bool) -> None:
    if (fwd or rev) and not hostname:
        raise CommandError("No hostname specified and either forward or reverse fqdn was set "
                           "to true.")


def _check_expire(expire: int, valid: int, text: str) -> None:
    if expire <= valid:
        raise CommandError(f"expiration time must be greater than valid lifetime for "
                           f"address {text}")


def _record(ip: int, key: bytes, hw: bytes, subnet: Subnet4, state: LeaseState, cltt: int,
            valid: int, hostname: str, fwd: bool, rev: bool,
            ctx: dict[str, Any] | None) -> tuple[Lease, LeaseExtras]:
    expires = INFINITE if valid >= INFINITE else cltt + valid
    # the flags on the record too, as Kea keeps them on its lease: the name is published, so
    # this server withdraws it when the lease ends here (an HA partner's update, lease4-add)
    lease = Lease(ip, key, hw, subnet.id, state, cltt, expires, hostname.lower(), b"", fwd,
                  rev)
    return lease, LeaseExtras(key, ctx, fwd, rev)


def _new_lease(target: ControlTarget, args: Args, now: float) -> tuple[Lease, LeaseExtras]:
    """The lease a lease4-add / lease4-update describes, validated whole (Kea's texts)."""
    ip = _address(args, adding=True)
    hw = parse_hw(args.get_str("hw-address"))
    sid = args.get_int("subnet-id", 0)
    text = str(ipaddress.IPv4Address(ip))
    subnet = _subnet_for(target, ip, sid, text)
    _check_owner(target, ip)
    cid = args.raw("client-id")
    key = (parse_client_id(cid) if cid is not None
           else bytes((_HTYPE_ETHERNET,)) + hw)
    valid = args.get_int("valid-lft", subnet.lifetimes.valid_lifetime, lo=0, hi=INFINITE)
    state = args.get_int("state", 0)
    if state not in _STATES:
        raise CommandError(f"Invalid state value: {state}, supported values are: "
                           "0 (default), 1 (declined) and 2 (expired-reclaimed)")
    hostname = args.get_str("hostname", "")
    fwd, rev = args.get_bool("fqdn-fwd", False), args.get_bool("fqdn-rev", False)
    _check_fqdn(hostname, fwd, rev)
    ctx = args.raw("user-context")
    if ctx is not None and not isinstance(ctx, dict):
        raise CommandError(f"Invalid user context '{json.dumps(ctx)}' is not a JSON map.")
    comment = args.raw("comment")
    if comment is not None:
        # Kea folds `comment` into the user context
        if not isinstance(comment, str):
            raise CommandError("invalid type specified for parameter 'comment'")
        ctx = {**(ctx or {}), "comment": comment}
    if "expire" in args:
        expire = args.get_int("expire", lo=0)
        _check_expire(expire, valid, text)
        cltt = expire - valid
    else:
        cltt = int(now)
    return _record(ip, key, hw, subnet, _STATES[state], cltt, valid, hostname, fwd, rev, ctx)


def _partner_lease(target: ControlTarget, x: HALease) -> tuple[Lease, LeaseExtras]:
    """The lease an HA partner's batched update describes (already typed by
    :func:`fastdhcp.ha.messages.row_lease`), checked as lease4-update checks it."""
    text = inet_ntoa(x.ip.to_bytes(4, "big"))
    subnet = _subnet_for(target, x.ip, x.subnet_id or 0, text)
    _check_owner(target, x.ip)
    if x.state not in _STATES.values():
        raise CommandError(f"Invalid state value: {int(x.state)}, supported values are: "
                           "0 (default), 1 (declined) and 2 (expired-reclaimed)")
    if x.valid_lft > INFINITE:
        raise CommandError(f"parameter 'valid-lft' out of range: {x.valid_lft} (expected "
                           f"0..{INFINITE})")
    _check_fqdn(x.hostname, x.fqdn_fwd, x.fqdn_rev)
    _check_expire(x.expire, x.valid_lft, text)
    key = x.client_id if x.client_id is not None else bytes((_HTYPE_ETHERNET,)) + x.hw_address
    return _record(x.ip, key, x.hw_address, subnet, x.state, x.cltt, x.valid_lft, x.hostname,
                   x.fqdn_fwd, x.fqdn_rev, x.user_context)


async def apply_partner_leases(target: ControlTarget, updated: list[HALease],
                               deleted: list[HALease], caller: Caller) -> list[BatchResult]:
    """An HA partner's batch, straight into the engine and **one** group commit (as a
    lease4-update with force-create, or a lease4-del, of each lease: the same checks and
    texts, but no command map, no answer and no log line per lease: through the command path
    a lease cost ~30% of the receiver's HA work, py-spy 2026-12-07). Durable on return; the
    leases that could not be applied (result 1), a delete of an absent lease counts as done
    (Kea's result 3).

    A change older than the binding held here is **stale** and skipped (counted as done, as
    Kea's sync skips a stale lease): an update or delete whose ``cltt`` is before the ``cltt``
    of a bound (default or declined) local copy of that address. Changes reach us late: a
    batch sent on a keep-alive connection just before the link went down is retransmitted by
    TCP and answered (or timed out, 10 s) after the pair resynced, and the partner's backlog
    or a merged batch may carry an older copy than a sync brought (split-brain test,
    2026-12-07: the resynced renewal, cltt T+3, went back to T). A fastdhcp peer's changes
    always carry the time they were made (a release: the release time), so in order they
    are never older than what they replace; an ended local record (released, expired) does
    not block a new binding. Kea's per-lease ``lease4-update`` stays unconditional, as Kea."""
    engine, store = target.engine, target.store
    failed: list[BatchResult] = []
    extras: dict[int, LeaseExtras | None] = {}
    staged: dict[int, Lease] = {}
    stale = 0

    def _newer_here(local: Lease | None, x: HALease) -> bool:
        """Whether this server's copy of ``x``'s address is a binding made after ``x``."""
        return (local is not None and local.issued > x.cltt
                and local.state in (LeaseState.DEFAULT, LeaseState.DECLINED))

    for x in updated:
        try:
            lease, ext = _partner_lease(target, x)
        except CommandError as exc:
            failed.append(BatchResult(x.ip, int(Result.ERROR), exc.text))
            continue
        if _newer_here(store.get(x.ip), x):
            stale += 1
            continue
        old = engine.admin_put(lease)
        _changed(target, old, lease)
        extras[lease.ip] = ext
        staged[lease.ip] = lease
    gone = 0
    for x in deleted:
        old = store.get(x.ip)
        if old is None:
            continue
        try:
            _check_owner(target, x.ip)
        except CommandError as exc:
            failed.append(BatchResult(x.ip, int(Result.ERROR), exc.text))
            continue
        if _newer_here(old, x):
            stale += 1
            continue
        engine.admin_delete(x.ip)
        _changed(target, old, None)
        extras[x.ip] = None
        gone += 1
    if stale:
        log.info("control: %d stale partner lease change(s) skipped (a later binding is "
                 "here) by %s", stale, caller)
    if not extras:
        return failed
    await _commit(target, caller, f"{len(staged)} partner lease(s) updated, {gone} deleted")
    for ip, lease in staged.items():
        if not _kept(target, lease):
            failed.append(BatchResult(ip, int(Result.ERROR), _REFUSED))
            extras.pop(ip, None)
    await _write_extras(target, extras, bound=False)
    return failed


async def _write_extras(target: ControlTarget, changes: dict[int, LeaseExtras | None], *,
                        bound: bool = True) -> None:
    """Store (or remove, for None or empty extras) the extras of these addresses, durably.
    ``bound``: look for stored extras only in up to :data:`SLICE` addresses (a lease command's
    few) before going to the writer; an HA batch looks in all of them (~1 us each, where the
    writer's extra transaction costs a commit)."""
    blobs = {ip: None if x is None or x.empty else x.encode() for ip, x in changes.items()}
    store = target.store
    if not any(blobs.values()) and (
            store.extras_empty() or ((not bound or len(blobs) <= SLICE)
                                     and all(store.extras_get(ip) is None for ip in blobs))):
        return  # the common case: nothing stored, nothing to store, no second transaction
    await target.run_in_writer(lambda: store.extras_write(blobs))


async def _commit(target: ControlTarget, caller: Caller, what: str) -> None:
    """Wait for the change to be durable, then log what it was and who asked."""
    await target.durable()
    log.info("control: %s by %s", what, caller)


# ------------------------------------------------------------------ finding one lease


def _identifier(args: Args) -> tuple[str, bytes, int]:
    """(type, identifier, subnet-id) of a lease4-get / lease4-del by identifier."""
    if "subnet-id" not in args:
        raise CommandError("Mandatory 'subnet-id' parameter missing.")
    sid = args.get_int("subnet-id")
    kind = args.raw("identifier-type")
    ident = args.raw("identifier")
    if not isinstance(kind, str):
        raise CommandError("No 'ip-address' provided and 'identifier-type' is either missing "
                           "or not a string.")
    if not isinstance(ident, str):
        raise CommandError("No 'ip-address' provided and 'identifier' is either missing or "
                           "not a string.")
    if kind == "hw-address":
        return kind, parse_hw(ident, "identifier"), sid
    if kind == "client-id":
        return kind, parse_client_id(ident, "identifier"), sid
    if kind == "duid":
        raise CommandError("Query by duid is not allowed in v4.")
    raise CommandError(f"Incorrect identifier type: {kind}, the only supported values are: "
                       "address, hw-address, duid")


def _check_owner(target: ControlTarget, ip: int) -> None:
    """A worker of a multi-worker server writes only the addresses it owns (its pool slices,
    ``ip % workers`` outside the pools: docs/scaling.md); the control front sends each write to
    the owner, so this refuses only a request sent to a worker's private socket directly (its
    commit check would not write it, and the answer must not say it did)."""
    scope = target.store.scope
    if scope is not None and not scope.owns(ip):
        raise CommandError(f"address {ipaddress.IPv4Address(ip)} is another worker's: send the "
                           "command to the server's control socket")


def _kept(target: ControlTarget, lease: Lease) -> bool:
    """After its commit: whether a worker's commit check wrote ``lease`` (it refuses one over
    a record active for another client, written by another process meanwhile)."""
    if target.store.scope is None:
        return True
    cur = target.store.get(lease.ip)
    return cur is not None and cur.client_key == lease.client_key


#: a write the commit check refused (see _kept)
_REFUSED = ("the commit check refused it: the address is active for another client "
            "(docs/scaling.md)")


def _owned(target: ControlTarget,
           keep: Callable[[Lease], bool] | None) -> Callable[[Lease], bool] | None:
    """``keep``, narrowed for a worker of a multi-worker server to the records it owns: the
    table is shared, each worker answers for its own slices (the control front merges), so
    a lease is listed, wiped or reclaimed by one worker only."""
    scope = target.store.scope
    if scope is None:
        return keep
    owns = scope.owns
    if keep is None:
        return lambda x: owns(x.ip)
    inner = keep
    return lambda x: owns(x.ip) and inner(x)


async def _scan(target: ControlTarget, keep: Callable[[Lease], bool]) -> list[Lease]:
    """Every lease ``keep`` accepts, in address order, a slice per turn of the loop."""
    store = target.store
    keep = _owned(target, keep) or keep
    out: list[Lease] = []
    after: int | None = None
    while True:
        t0 = time.perf_counter()
        page = store.page(after, SLICE)
        out.extend(x for x in page if keep(x))
        if len(page) < SLICE:
            return out
        after = page[-1].ip
        await _pause(target, time.perf_counter() - t0)


async def _scan_json(target: ControlTarget,
                     keep: Callable[[Lease], bool] | None = None, *,
                     after: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Kea's objects of the leases ``keep`` accepts (all: None) after ``after``, at most
    ``limit``, built slice by slice within the loop share."""
    store = target.store
    keep = _owned(target, keep)
    out: list[dict[str, Any]] = []
    while limit is None or len(out) < limit:
        t0 = time.perf_counter()
        want = SLICE if limit is None or keep is not None else min(SLICE, limit - len(out))
        page = store.page(after, want)
        out.extend(_json_of(target, x) for x in page if keep is None or keep(x))
        if len(page) < want:
            break
        after = page[-1].ip
        await _pause(target, time.perf_counter() - t0)
    return out if limit is None else out[:limit]


async def _one(target: ControlTarget, arguments: Any) -> Lease | None:
    args = Args.of(arguments, required=True, missing_text="Parameters missing or are not a map.")
    if "ip-address" in args:
        ip = _address(args, adding=False)
        scope = target.store.scope
        return target.store.get(ip) if scope is None or scope.owns(ip) else None
    kind, ident, sid = _identifier(args)
    if kind == "client-id":
        lease = target.store.get_by_client(ident)
        if lease is not None and lease.subnet_id == sid:
            return lease
        hits = await _scan(target, lambda x: x.subnet_id == sid and client_id_of(x) == ident)
    else:
        lease = target.store.get_by_client(bytes((_HTYPE_ETHERNET,)) + ident)
        if lease is not None and lease.subnet_id == sid and lease.hw_address == ident:
            return lease
        hits = await _scan(target, lambda x: x.subnet_id == sid and x.hw_address == ident)
    return hits[-1] if hits else None


# ------------------------------------------------------------------ handlers


async def _add(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments, required=True,
                   missing_text="no parameters specified for the command")
    lease, extras = _new_lease(target, args, time.time())
    if target.store.get(lease.ip) is not None:
        raise CommandError("IPv4 lease already exists.")
    target.engine.admin_put(lease)
    _changed(target, None, lease)
    await _commit(target, caller, f"lease4-add {lease_json(lease, extras)}")
    if not _kept(target, lease):
        raise CommandError(_REFUSED)
    await _write_extras(target, {lease.ip: extras})
    return success(f"Lease for address {ipaddress.IPv4Address(lease.ip)}, subnet-id "
                   f"{lease.subnet_id} added.")


async def _update(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments, required=True,
                   missing_text="no parameters specified for lease4-update command")
    lease, extras = _new_lease(target, args, time.time())
    force = args.get_bool("force-create", False)
    old = target.store.get(lease.ip)
    if old is None and not force:
        raise CommandError(f"failed to update the lease with address "
                           f"{ipaddress.IPv4Address(lease.ip)} either because the lease has "
                           "been deleted or it has changed in the database, in both cases a "
                           "retry might succeed")
    target.engine.admin_put(lease)
    _changed(target, old, lease)
    await _commit(target, caller, f"lease4-update {lease_json(lease, extras)}")
    if not _kept(target, lease):
        raise CommandError(_REFUSED)
    await _write_extras(target, {lease.ip: extras})
    return success("IPv4 lease added." if old is None else "IPv4 lease updated.")


async def _get(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    lease = await _one(target, arguments)
    if lease is None:
        return empty("Lease not found.")
    return success("IPv4 lease found.", _json_of(target, lease))


async def _del(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    lease = await _one(target, arguments)
    if lease is None:
        return empty("IPv4 lease not found.")
    _check_owner(target, lease.ip)
    target.engine.admin_delete(lease.ip)
    _changed(target, lease, None)
    await _commit(target, caller, f"lease4-del {lease_json(lease)}")
    await _write_extras(target, {lease.ip: None})
    return success("IPv4 lease deleted.")


async def _get_all(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments)
    if arguments is None:
        return found(await _scan_json(target))
    if "subnets" not in args:
        raise CommandError("'subnets' parameter not specified")
    subnets = args.raw("subnets")
    if not isinstance(subnets, list):
        raise CommandError("'subnets' parameter must be a list")
    if any(isinstance(s, bool) or not isinstance(s, int) for s in subnets):
        raise CommandError("listed subnet identifiers must be numbers")
    wanted = set(subnets)
    return found(await _scan_json(target, lambda x: x.subnet_id in wanted) if wanted else [])


async def _get_page(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments, required=True,
                   missing_text="no parameters specified for the lease4-get-page command")
    if "from" not in args:
        raise CommandError("'from' parameter not specified")
    if "limit" not in args:
        raise CommandError("'limit' parameter not specified")
    start = args.raw("from")
    if not isinstance(start, str):
        raise CommandError("'from' parameter must be a string")
    after: int | None = None
    if start != "start":
        try:
            addr = ipaddress.ip_address(start)
        except ValueError:
            raise CommandError("'from' parameter value is neither 'start' keyword nor a valid "
                               "IPv4 address") from None
        if addr.version != 4:
            raise CommandError(f"'from' parameter value {start} is not an IPv4 address")
        after = int(addr)
    limit = args.raw("limit")
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise CommandError("'limit' parameter must be a number")
    if limit <= 0:
        raise CommandError("page size of retrieved leases must not be 0")
    return found(await _scan_json(target, after=after, limit=limit), count=True)


def _by(key: str, parse: Callable[[Any], Any],
        match: Callable[[Lease, Any], bool]) -> Callable[..., Any]:
    async def handler(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
        args = Args.of(arguments, required=True,
                       missing_text="Command arguments missing or a not a map.")
        if key not in args:
            raise CommandError(f"'{key}' parameter not specified")
        value = parse(args.raw(key))
        return found(await _scan_json(target, lambda x: match(x, value)))
    return handler


def _hostname(value: Any) -> str:
    if not isinstance(value, str):
        raise CommandError("'hostname' parameter must be a string")
    if not value:
        raise CommandError("hostname must not be empty")
    return value.lower()


def wipe_text(count: int, subnet_ids: list[int]) -> str:
    """lease4-wipe's text, as Kea's (the multi-worker front sums ``count`` over workers)."""
    return f"Deleted {count} IPv4 lease(s) from subnet(s) {' '.join(map(str, subnet_ids))}"


async def _wipe(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments)
    sid = args.get_int("subnet-id", 0)
    ids = [s.id for s in target.config.subnets] if sid == 0 else [sid]
    wanted = set(ids)
    doomed = await _scan(target, lambda x: x.subnet_id in wanted)
    engine = target.engine
    for at in range(0, len(doomed), SLICE):
        t0 = time.perf_counter()
        for lease in doomed[at:at + SLICE]:
            engine.admin_delete(lease.ip)
            _changed(target, lease, None)
        await _pause(target, time.perf_counter() - t0)  # DORA goes on between slices
    text = wipe_text(len(doomed), ids)
    if not doomed:
        return empty(text)
    await _commit(target, caller, f"lease4-wipe: {text}")
    await _write_extras(target, {x.ip: None for x in doomed})
    return success(text)


async def _reclaim(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments, missing_text="Missing mandatory 'remove' parameter.")
    if "remove" not in args:
        raise CommandError("Missing mandatory 'remove' parameter.")
    remove = args.get_bool("remove", bad_type="'remove' parameter expected to be a boolean.")
    engine, store = target.engine, target.store
    now = time.time()
    reclaimed: list[int] = []
    while True:
        due = store.expired(int(now), SLICE)
        reclaimed.extend(x.ip for x in due if x.state == LeaseState.DEFAULT)
        if engine.reclaim(now, SLICE) != now:  # the engine says when it is done
            break
        await asyncio.sleep(0)
    if remove:
        for ip in reclaimed:
            old = store.get(ip)
            if old is not None and old.state == LeaseState.EXPIRED_RECLAIMED:
                engine.admin_delete(ip)
                _changed(target, old, None)
    await _commit(target, caller, f"leases-reclaim remove={remove}: {len(reclaimed)} leases")
    return success("Reclamation of expired leases is complete.")


def _changed(target: ControlTarget, old: Lease | None, new: Lease | None) -> None:
    stats = target.statistics
    if stats is not None:
        stats.lease_changed(old, new)


def register(table: CommandTable) -> None:
    """Add the lease commands to ``table``."""
    table.add("lease4-add", _add, mutating=True)
    table.add("lease4-update", _update, mutating=True)
    table.add("lease4-del", _del, mutating=True)
    table.add("lease4-wipe", _wipe, mutating=True)
    table.add("leases-reclaim", _reclaim, mutating=True)
    table.add("lease4-get", _get)
    table.add("lease4-get-all", _get_all)
    table.add("lease4-get-page", _get_page)
    table.add("lease4-get-by-hw-address",
              _by("hw-address", parse_hw, lambda x, v: x.hw_address == v))
    table.add("lease4-get-by-client-id",
              _by("client-id", parse_client_id, lambda x, v: client_id_of(x) == v))
    table.add("lease4-get-by-hostname",
              _by("hostname", _hostname, lambda x, v: x.hostname.lower() == v))
