"""Reservation commands, as Kea's host_cmds hook: ``reservation-add``, ``-get``, ``-get-all``,
``-get-page``, ``-get-by-hw-address``, ``-get-by-address``, ``-get-by-id``, ``-del``
(docs/control-api.md, "Reservation commands").

Two sources, as Kea's: the config file's reservations (source-index 0; read-only here, changed
by editing the file and reloading) and the hosts table in the lease database (source-index 1,
:mod:`fastdhcp.hosts`), which these commands change. A change is checked whole on the loop,
then written by the server's one writer thread in one transaction that checks the table again;
the command answers once that transaction is durable. The address a host reserves is claimed
in the engine's pool bitmap before the write (no client can be offered it in between) and
settled after it (freed again if the write failed or the host was deleted, unless a lease or
an offer holds it).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from fastdhcp.config import Subnet4
from fastdhcp.control.args import Args
from fastdhcp.control.protocol import Answer, Caller, CommandError, empty, success
from fastdhcp.control.table import CommandTable
from fastdhcp.control.target import ControlTarget
from fastdhcp.errors import ConfigError, StoreError
from fastdhcp.hosts import Host, HostConflict, IdentifierType, Written, parse_identifier
from fastdhcp.options import encode_domain_list, encode_option, ipv4, option_def

__all__ = ["HOSTS_WRITTEN", "register"]

#: Keys of a ``reservation`` map (Kea's IPv4 host parameters).
RESERVATION_KEYS = (
    "subnet-id", "hw-address", "client-id", "circuit-id", "flex-id", "ip-address", "hostname",
    "option-data", "next-server", "server-hostname", "boot-file-name", "client-classes",
    "user-context",
)
_OPTION_KEYS = ("name", "code", "data", "space", "csv-format", "always-send")
_IDENT_KEYS = tuple(k.key for k in IdentifierType)
#: Hosts read per page while building a long answer (the loop runs packets in between).
_CHUNK = 4096


def _found(hosts: list[Host]) -> Answer:
    n = len(hosts)
    text = f"{n} IPv4 host(s) found."
    args = {"hosts": [h.to_json() for h in hosts]}
    return success(text, args) if n else empty(text, args)


def _subnet(target: ControlTarget, args: Args, *, required: bool = True,
            where: str = "") -> Subnet4 | None:
    """The subnet named by ``subnet-id`` (None when absent and not required)."""
    if "subnet-id" not in args:
        if required:
            raise CommandError("Mandatory 'subnet-id' parameter missing.")
        return None
    sid = args.get_int("subnet-id", bad_type=f"{where}'subnet-id' must be an integer")
    if sid == 0:
        raise CommandError(f"{where}subnet-id: 0 names Kea's global reservations, which "
                           "fastdhcp does not have (give the id of a [[subnet4]])")
    for s in target.config.subnets:
        if s.id == sid:
            return s
    raise CommandError(f"{where}subnet-id: no subnet with id {sid} is configured")


def _identifier(args: Args) -> tuple[IdentifierType, bytes] | None:
    """``identifier-type`` + ``identifier``, or None when neither is given."""
    if "identifier-type" not in args and "identifier" not in args:
        return None
    name = args.raw("identifier-type")
    if not isinstance(name, str):
        raise CommandError("No 'ip-address' provided and 'identifier-type' is either missing "
                           "or not a string.")
    if not isinstance(args.raw("identifier"), str):
        raise CommandError("No 'ip-address' provided and 'identifier' is either missing or "
                           "not a string.")
    kind = IdentifierType.from_key(name)
    if kind is None:
        raise CommandError(f"identifier-type: '{name}' is not one of "
                           f"{', '.join(_IDENT_KEYS)}")
    try:
        return kind, parse_identifier(kind, args.raw("identifier"))
    except ValueError as exc:
        raise CommandError(f"identifier: {exc}") from None


def _address(args: Args, key: str = "ip-address", where: str = "") -> int:
    value = args.raw(key)
    try:
        return ipv4(value)
    except ValueError:
        raise CommandError(f"{where}{key}: '{value}' is not an IPv4 address") from None


def _group(target: ControlTarget, subnet: Subnet4) -> list[Subnet4]:
    """The subnets of ``subnet``'s link (its shared network), itself first: an identifier
    is unique there, since the engine may select any of them for the client."""
    if subnet.shared_network is None:
        return [subnet]
    return [subnet] + [s for s in target.config.subnets
                       if s.shared_network == subnet.shared_network and s is not subnet]


# -- the config's reservations (source-index 0) ----------------------------------------------


def _config_hosts(subnets: Iterable[Subnet4]) -> list[Host]:
    return [Host.from_config(s.id, r, s.options) for s in subnets for r in s.reservations]


def _config_by_id(subnet: Subnet4, kind: IdentifierType, ident: bytes) -> Host | None:
    table = {IdentifierType.HW_ADDRESS: subnet.by_hw_address,
             IdentifierType.CLIENT_ID: subnet.by_client_id,
             IdentifierType.CIRCUIT_ID: subnet.by_circuit_id}.get(kind)
    r = table.get(ident) if table is not None else None
    return Host.from_config(subnet.id, r, subnet.options) if r is not None else None


def _config_at(subnet: Subnet4, ip: int) -> Host | None:
    if ip not in subnet.reserved_ips:
        return None
    for r in subnet.reservations:
        if r.ip == ip:
            return Host.from_config(subnet.id, r, subnet.options)
    return None


def _find(target: ControlTarget, subnet: Subnet4, args: Args) -> Host | None:
    """The host ``args`` name in ``subnet`` (by address or identifier): config first."""
    ident = _identifier(args)
    if ident is None:
        if "ip-address" not in args:
            raise CommandError("No 'ip-address' provided and 'identifier-type' is either "
                               "missing or not a string.")
        ip = _address(args)
        h = _config_at(subnet, ip)
        if h is None:
            h = target.hosts.at(ip)
            if h is not None and h.subnet_id != subnet.id:
                h = None
        return h
    if "ip-address" in args:
        raise CommandError("give either 'ip-address' or 'identifier-type' + 'identifier', "
                           "not both")
    kind, data = ident
    return _config_by_id(subnet, kind, data) or target.hosts.get(subnet.id, kind, data)


# -- reservation-add --------------------------------------------------------------------------


def _str(r: Args, key: str, limit: int | None = None) -> str:
    v = r.raw(key, "")
    if not isinstance(v, str):
        raise CommandError(f"reservation.{key}: must be a string")
    if limit is not None and len(v.encode()) > limit:
        raise CommandError(f"reservation.{key}: longer than the {limit} bytes the field holds")
    return v


def _option_data(value: object) -> tuple[dict[int, bytes], tuple[dict[str, Any], ...]]:
    """Kea's ``option-data`` list -> (encoded options, the entries in Kea's shape)."""
    if not isinstance(value, list):
        raise CommandError("reservation.option-data: must be a list of maps "
                           "({\"name\" or \"code\", \"data\"})")
    own: dict[int, bytes] = {}
    shown: list[dict[str, Any]] = []
    for i, entry in enumerate(value):
        at = f"reservation.option-data[{i}]"
        if not isinstance(entry, dict):
            raise CommandError(f"{at}: must be a map")
        for k in entry:
            if k not in _OPTION_KEYS:
                raise CommandError(f"{at}: unknown parameter '{k}' (expected one of "
                                   f"{', '.join(_OPTION_KEYS)})")
        if entry.get("space", "dhcp4") != "dhcp4":
            raise CommandError(f"{at}.space: only the 'dhcp4' option space is supported")
        name, code = entry.get("name"), entry.get("code")
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise CommandError(f"{at}.code: must be an integer")
        if name is not None and not isinstance(name, str):
            raise CommandError(f"{at}.name: must be a string")
        d = option_def(name) if name is not None else None
        if name is not None and d is None:
            raise CommandError(f"{at}.name: unknown option name '{name}'")
        if d is not None and code is not None and d.code != code:
            raise CommandError(f"{at}.code: {code} is not the code of '{name}' ({d.code})")
        if d is None and code is None:
            raise CommandError(f"{at}: needs 'name' or 'code'")
        if d is None:
            assert code is not None
            d = option_def(code)
        csv = entry.get("csv-format", True)
        if not isinstance(csv, bool):
            raise CommandError(f"{at}.csv-format: must be true or false")
        data = entry.get("data", "")
        if not isinstance(data, str):
            raise CommandError(f"{at}.data: must be a string")
        always = entry.get("always-send", False)
        if not isinstance(always, bool):
            raise CommandError(f"{at}.always-send: must be true or false")
        # Kea: data is comma-separated text through the option's definition, unless
        # csv-format is false (or the option has no definition): then hex.
        key: str | int = d.name if (d is not None and csv) else (d.code if d else code or 0)
        try:
            c, payload = encode_option(key, data)
        except ConfigError as exc:
            reason = str(exc).split(": ", 2)[-1]
            raise CommandError(f"{at}.data: '{data}': {reason}") from None
        if c in own:
            raise CommandError(f"{at}: option {c} is given twice")
        own[c] = payload
        shown.append({"always-send": always, "code": c, "csv-format": bool(d and csv),
                      "data": data, "name": d.name if d else str(c), "space": "dhcp4"})
    return dict(sorted(own.items())), tuple(shown)


def _parse_host(target: ControlTarget, raw: dict[str, Any]) -> Host:
    """Check a ``reservation`` map whole against the config and the table; the Host to add."""
    r = Args(raw)
    for k in r.keys():
        if k not in RESERVATION_KEYS:
            hint = (" (a DHCPv6 identifier)" if k in ("duid", "ip-addresses", "prefixes")
                    else "")
            raise CommandError(f"reservation: unknown parameter '{k}'{hint} (expected one of "
                               f"{', '.join(RESERVATION_KEYS)})")
    subnet = _subnet(target, r, where="reservation.")
    assert subnet is not None
    given = [k for k in _IDENT_KEYS if k in r]
    if len(given) != 1:
        raise CommandError("reservation: needs exactly one of " + ", ".join(_IDENT_KEYS)
                           + (f" (found {', '.join(given)})" if given else ""))
    kind = IdentifierType.from_key(given[0])
    assert kind is not None
    try:
        ident = parse_identifier(kind, r.raw(kind.key))
    except ValueError as exc:
        raise CommandError(f"reservation.{kind.key}: {exc}") from None
    group = _group(target, subnet)
    for s in group:
        if _config_by_id(s, kind, ident) is not None:
            raise CommandError(f"reservation.{kind.key}: subnet {s.id} already reserves an "
                               f"address for this {kind.key} in the config file")
        if target.hosts.get(s.id, kind, ident) is not None:
            where = "" if s is subnet else f" (subnet {s.id}, on the same shared network)"
            raise CommandError(f"reservation.{kind.key}: a host with this {kind.key} already "
                               f"exists{where}")
    ip = 0
    if "ip-address" in r:
        ip = _address(r, where="reservation.")
        net = subnet.network
        text = r.raw("ip-address")
        if not subnet.contains(ip):
            raise CommandError(f"reservation.ip-address: {text} is outside subnet "
                               f"{subnet.id} ({net})")
        if net.prefixlen <= 30 and ip in (subnet.first_ip, subnet.last_ip):
            raise CommandError(f"reservation.ip-address: {text} is the network or broadcast "
                               f"address of {net}")
        if ip in subnet.reserved_ips:
            raise CommandError(f"reservation.ip-address: {text} is already reserved in the "
                               "config file")
        if target.hosts.at(ip) is not None:
            raise CommandError(f"reservation.ip-address: {text} is already reserved by "
                               "another host")
        if kind is IdentifierType.FLEX_ID:
            raise CommandError("reservation.flex-id: fastdhcp has no flex_id hook, so a "
                               "flex-id host never matches a client: its ip-address would be "
                               "held for nobody (add it without one, or use hw-address, "
                               "client-id or circuit-id)")
    hostname = _str(r, "hostname")
    if hostname:
        try:
            encode_domain_list([hostname], compress=False)
        except ValueError as exc:
            raise CommandError(f"reservation.hostname: '{hostname}': {exc}") from None
    options, option_data = _option_data(r.raw("option-data", []))
    next_server = _address(r, "next-server", "reservation.") if "next-server" in r else 0
    classes = r.raw("client-classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise CommandError("reservation.client-classes: must be a list of class names")
    context = r.raw("user-context")
    if context is not None and not isinstance(context, dict):
        raise CommandError("reservation.user-context: must be a map")
    return Host(subnet.id, kind, ident, ip, hostname, options, option_data, next_server,
                _str(r, "server-hostname", 64), _str(r, "boot-file-name", 128), tuple(classes),
                context)


async def _write(target: ControlTarget, fn: Callable[[Any, Any], Written], ip: int,
                 held: bool) -> Written:
    """Write ``fn`` through the writer thread, then bring the table and the engine up to date
    with what it did, whatever it did."""
    store = target.store
    done: Written | None = None
    try:
        result: Written = await target.run_in_writer(lambda: store.host_write(fn))
        done = result
        return result
    finally:
        if done is not None:
            target.hosts.written(done)
        target.engine.host_written(ip, held)


def _written(target: ControlTarget, fn: Callable[[Any, Any], Written], ip: int,
             held: bool) -> asyncio.Future[Written]:
    # Shielded: a command whose client went away (its handler cancelled) still finishes the
    # bookkeeping of a write that the writer thread carries out anyway.
    return asyncio.shield(asyncio.ensure_future(_write(target, fn, ip, held)))


async def _add(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments, required=True)
    args.only(("reservation",))
    raw = args.get_map("reservation", missing="Mandatory 'reservation' parameter missing.",
                       bad_type="'reservation' must be a map")
    host = _parse_host(target, raw)
    fn = target.hosts.add_fn(host)
    if host.ip:
        # claimed now: no client is offered it while the commit is on its way
        target.engine.hold_host_address(host.ip)
    try:
        await _written(target, fn, host.ip, True)
    except HostConflict as exc:  # a command racing this one took it first
        raise CommandError(f"reservation.{exc.key}: {exc}") from None
    except StoreError as exc:
        raise CommandError(f"Host not added: {exc}") from None
    return success("Host added.")


# -- reads -------------------------------------------------------------------------------------


async def _get(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments, required=True)
    args.only(("subnet-id", "ip-address", "identifier-type", "identifier"))
    subnet = _subnet(target, args)
    assert subnet is not None
    h = _find(target, subnet, args)
    if h is None:
        return empty("Host not found.")
    return success("Host found.", h.to_json())


async def _api_hosts(target: ControlTarget, subnet_id: int) -> list[Host]:
    """Every API host of a subnet, a chunk per read transaction, yielding between chunks."""
    out: list[Host] = []
    after = 0
    while True:
        hosts, last = target.hosts.page(subnet_id, after, _CHUNK)
        out.extend(hosts)
        if last == after:
            return out
        after = last
        await asyncio.sleep(0)


async def _get_all(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments, required=True)
    args.only(("subnet-id",))
    subnet = _subnet(target, args)
    assert subnet is not None
    return _found(_config_hosts([subnet]) + await _api_hosts(target, subnet.id))


async def _get_page(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments, required=True)
    args.only(("subnet-id", "limit", "source-index", "from"))
    subnet = _subnet(target, args, required=False)
    limit = args.get_int("limit", lo=1, missing="Mandatory 'limit' parameter missing.")
    source = args.get_int("source-index", 0, lo=0, hi=1)
    frm = args.get_int("from", 0, lo=0, hi=(1 << 64) - 1)
    hosts: list[Host] = []
    if source == 0:
        # The config's reservations, in config order; `from` counts those already given.
        cfg = _config_hosts([subnet] if subnet is not None else target.config.subnets)
        hosts = cfg[frm:frm + limit]
        frm += len(hosts)
        if len(hosts) < limit:
            source, frm = 1, 0
    if source == 1 and len(hosts) < limit:
        api, frm = target.hosts.page(subnet.id if subnet is not None else None, frm,
                                     limit - len(hosts))
        hosts.extend(api)
    n = len(hosts)
    text = f"{n} IPv4 host(s) found."
    out: dict[str, Any] = {"count": n, "hosts": [h.to_json() for h in hosts]}
    if not n:
        return empty(text, out)
    out["next"] = {"from": frm, "source-index": source}
    return success(text, out)


def _everywhere(target: ControlTarget, args: Args) -> list[Subnet4]:
    s = _subnet(target, args, required=False)
    return [s] if s is not None else list(target.config.subnets)


def _by_identifier(target: ControlTarget, subnets: list[Subnet4], kind: IdentifierType,
                   ident: bytes) -> list[Host]:
    out: list[Host] = []
    for s in subnets:
        h = _config_by_id(s, kind, ident) or target.hosts.get(s.id, kind, ident)
        if h is not None:
            out.append(h)
    return out


async def _get_by_hw_address(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments, required=True)
    args.only(("hw-address", "subnet-id"))
    text = args.get_str("hw-address", missing="Mandatory 'hw-address' parameter missing.")
    try:
        hw = parse_identifier(IdentifierType.HW_ADDRESS, text)
    except ValueError as exc:
        raise CommandError(f"hw-address: {exc}") from None
    return _found(_by_identifier(target, _everywhere(target, args),
                                 IdentifierType.HW_ADDRESS, hw))


async def _get_by_id(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments, required=True)
    if "subnet-id" in args:
        raise CommandError("'subnet-id' is not allowed in reservation-get-by-id (it looks in "
                           "every subnet)")
    args.only(("identifier-type", "identifier"))
    ident = _identifier(args)
    if ident is None:
        raise CommandError("'identifier-type' is either missing or not a string.")
    return _found(_by_identifier(target, list(target.config.subnets), *ident))


async def _get_by_address(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments, required=True)
    args.only(("ip-address", "subnet-id"))
    if "ip-address" not in args:
        raise CommandError("Mandatory 'ip-address' parameter missing.")
    ip = _address(args)
    out: list[Host] = []
    for s in _everywhere(target, args):
        if s.contains(ip):
            h = _config_at(s, ip)
            if h is None:
                h = target.hosts.at(ip)
                h = h if h is not None and h.subnet_id == s.id else None
            if h is not None:
                out.append(h)
    return _found(out)


# -- reservation-del ---------------------------------------------------------------------------


async def _del(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    args = Args.of(arguments, required=True)
    args.only(("subnet-id", "ip-address", "identifier-type", "identifier"))
    subnet = _subnet(target, args)
    assert subnet is not None
    h = _find(target, subnet, args)
    if h is None:
        return empty("Host not deleted (not found).")
    if h.host_id == 0:
        what = f" of {ipaddress.IPv4Address(h.ip)}" if h.ip else ""
        raise CommandError(f"Host not deleted: the reservation{what} in subnet {subnet.id} "
                           "comes from the config file, which the API does not change (edit "
                           "the file and reload)")
    fn = target.hosts.delete_fn(h.subnet_id, h.kind, h.identifier)
    try:
        done = await _written(target, fn, h.ip, False)
    except StoreError as exc:
        raise CommandError(f"Host not deleted: {exc}") from None
    if done.deleted is None:  # deleted by a command racing this one
        return empty("Host not deleted (not found).")
    return success("Host deleted.")


#: fastdhcp's own, between the multi-worker control front and its workers: another worker
#: wrote the shared hosts table (fastdhcp.control.fanout.Rule.HOSTS_WRITE).
HOSTS_WRITTEN = "fastdhcp-hosts-written"


async def _learn(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    """``{"subnet-id"?, "identifier-type"?, "identifier"?, "ip-address"?}``: the host another
    worker added or deleted; this worker's view, filter, counts and the address's bit follow."""
    args = Args.of(arguments, required=True)
    args.only(("subnet-id", "identifier-type", "identifier", "ip-address"))
    ident = _identifier(args)
    key = None
    if ident is not None:
        sid = args.get_int("subnet-id", missing="Mandatory 'subnet-id' parameter missing.")
        key = (sid, ident[0], ident[1])
    ip = _address(args) if "ip-address" in args else 0
    target.hosts.learned(key)
    target.engine.host_written(ip, False)
    return success("Hosts table re-read.")


def register(table: CommandTable) -> None:
    """Add the reservation commands to ``table``."""
    table.add("reservation-add", _add, mutating=True)
    table.add("reservation-get", _get)
    table.add("reservation-get-all", _get_all)
    table.add("reservation-get-page", _get_page)
    table.add("reservation-get-by-hw-address", _get_by_hw_address)
    table.add("reservation-get-by-address", _get_by_address)
    table.add("reservation-get-by-id", _get_by_id)
    table.add("reservation-del", _del, mutating=True)
    table.add(HOSTS_WRITTEN, _learn)
