"""``fastdhcp leases``: read (and delete) leases in a lease database, beside a running server.

``fastdhcp leases (--db PATH | --config FILE) [--socket PATH] [--json|--csv]
[list|show IP|delete IP|export]`` (no verb: ``list``)

- ``list``: every lease record in address order (a table; ``--json``: one JSON array;
  ``--csv``: CSV with a header row).
- ``show IP``: one record (``key: value`` lines; ``--json``: an object; ``--csv``: header + row).
- ``delete IP``: remove one record. When a server answers on the control socket (the first
  unix socket of ``--config``, or ``--socket``), through its ``lease4-del``: the server frees
  the address at once and answers once the deletion is durable. When none does (the server is
  stopped), in a normal LMDB write transaction.
- ``export``: every record with every field, CSV by default, ``--json`` for JSON Lines;
  ``export --format kea-csv``: Kea's memfile ``leases4.csv``, which Kea 2.x loads (the way back
  to Kea, docs/migrating-from-kea.md).

Reads (``list``, ``show``, ``export``) always go to LMDB directly, running server or not: short
read transactions see exactly what is committed, stream any number of records and cost the
server's event loop nothing, and they never block the server's writer; every output is
streamed record by record (an export of ten million leases holds one at a time).
Errors (no database, damaged file, unknown address) are one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import json
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from fastdhcp.errors import StoreError
from fastdhcp.leases import Lease, LeaseState

PROG = "fastdhcp leases"

#: Field order of CSV output and JSON objects (Kea's names where Kea has one).
FIELDS = (
    "address",
    "state",
    "hw-address",
    "client-id",
    "subnet-id",
    "issued",
    "expires",
    "hostname",
    "relay-info",
)

_STATE_NAMES = {
    LeaseState.DEFAULT: "default",
    LeaseState.DECLINED: "declined",
    LeaseState.EXPIRED_RECLAIMED: "expired-reclaimed",
    LeaseState.RELEASED: "released",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``leases`` options and verbs to ``parser``."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--db", metavar="PATH", help="lease database directory")
    where.add_argument("--config", "-c", metavar="FILE",
                       help="the server's configuration: its lease database and control socket")
    parser.add_argument("--socket", "-s", metavar="PATH",
                        help="the running server's unix control socket (delete goes through it)")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON output (export: JSON Lines)")
    fmt.add_argument("--csv", action="store_true", help="CSV output with a header row")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = False  # no verb: list
    verbs.add_parser("list", help="every lease record, in address order")
    p = verbs.add_parser("show", help="one lease record")
    p.add_argument("ip", metavar="IP")
    p = verbs.add_parser("delete", help="delete one lease record")
    p.add_argument("ip", metavar="IP")
    p = verbs.add_parser("export", help="every record, every field (CSV, or JSON Lines with "
                                        "--json; --format kea-csv: Kea's leases4.csv)")
    p.add_argument("--format", choices=("csv", "json", "kea-csv"), default=None,
                   help="csv (the default), json (JSON Lines, as --json), or kea-csv: the "
                        "memfile lease file Kea 2.x loads (docs/migrating-from-kea.md)")


def state_name(state: int) -> str:
    """Kea's name of a lease state (the number for an unknown one)."""
    try:
        return _STATE_NAMES[LeaseState(state)]
    except ValueError:
        return str(state)


def _hwaddr(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


def lease_fields(lease: Lease) -> dict[str, Any]:
    """One lease as a flat dict of JSON-friendly values, keys in :data:`FIELDS` order."""
    return {
        "address": str(ipaddress.IPv4Address(lease.ip)),
        "state": state_name(lease.state),
        "hw-address": _hwaddr(lease.hw_address),
        "client-id": lease.client_key.hex(),
        "subnet-id": lease.subnet_id,
        "issued": lease.issued,
        "expires": lease.expires,
        "hostname": lease.hostname,
        "relay-info": lease.relay_info.hex(),
    }


def _utc(ts: int) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
    except (OverflowError, OSError, ValueError):
        return str(ts)


_ROW = "{:<15} {:<17} {:<17} {:<20} {:>9} {:<19} {}"


def _write_table(leases: Iterable[Lease], out: TextIO) -> int:
    out.write(
        _ROW.format(
            "ADDRESS", "STATE", "HW-ADDRESS", "CLIENT-ID", "SUBNET-ID", "EXPIRES (UTC)", "HOSTNAME"
        )
        + "\n"
    )
    n = 0
    for lease in leases:
        f = lease_fields(lease)
        out.write(
            _ROW.format(
                f["address"],
                f["state"],
                f["hw-address"],
                f["client-id"],
                f["subnet-id"],
                _utc(lease.expires),
                f["hostname"],
            )
            + "\n"
        )
        n += 1
    return n


def _write_csv(leases: Iterable[Lease], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FIELDS)
    n = 0
    for lease in leases:
        writer.writerow(lease_fields(lease).values())
        n += 1
    return n


def _write_json_array(leases: Iterable[Lease], out: TextIO) -> int:
    out.write("[")
    n = 0
    for lease in leases:
        out.write(",\n" if n else "\n")
        out.write(json.dumps(lease_fields(lease)))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def _write_json_lines(leases: Iterable[Lease], out: TextIO) -> int:
    n = 0
    for lease in leases:
        out.write(json.dumps(lease_fields(lease)) + "\n")
        n += 1
    return n


def _parse_ip(text: str) -> int:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        raise StoreError(f"'{text}' is not an IPv4 address") from None


def _show(lease: Lease, args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        out.write(json.dumps(lease_fields(lease), indent=2) + "\n")
    elif args.csv:
        _write_csv([lease], out)
    else:
        f = lease_fields(lease)
        f["issued"] = f"{lease.issued} ({_utc(lease.issued)} UTC)"
        f["expires"] = f"{lease.expires} ({_utc(lease.expires)} UTC)"
        for key, value in f.items():
            out.write(f"{key + ':':<12} {value}\n")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run one ``leases`` verb; returns the exit status (errors: one line on stderr, 1)."""
    from fastdhcp.store import LmdbLeaseStore, delete_lease

    out = out if out is not None else sys.stdout
    args.verb = args.verb or "list"
    try:
        db, sock = _where(args)
        if args.verb == "delete":
            ip = _parse_ip(args.ip)
            if sock is not None and _delete_through(sock, ip, args.ip):
                out.write(f"deleted {ipaddress.IPv4Address(ip)} (through the running server)\n")
                return 0
            lease = delete_lease(db, ip)
            if lease is None:
                raise StoreError(f"{db}: no lease for {args.ip}")
            out.write(f"deleted {ipaddress.IPv4Address(ip)}\n")
            return 0
        ip = _parse_ip(args.ip) if args.verb == "show" else 0
        with LmdbLeaseStore(db, readonly=True) as store:
            if args.verb == "show":
                found = store.get(ip)
                if found is None:
                    raise StoreError(f"{args.db}: no lease for {args.ip}")
                _show(found, args, out)
            elif args.verb == "list":
                leases = store.iter_committed()
                if args.json:
                    _write_json_array(leases, out)
                elif args.csv:
                    _write_csv(leases, out)
                else:
                    _write_table(leases, out)
            elif args.verb == "export":
                leases = store.iter_committed()
                if args.format == "kea-csv":
                    from fastdhcp.control.lease_extras import LeaseExtras
                    from fastdhcp.kea.memfile import write_csv

                    def extras_of(lease: Lease) -> LeaseExtras | None:
                        raw = store.extras_get(lease.ip)
                        return None if raw is None else LeaseExtras.decode(raw)

                    write_csv(leases, out, extras_of)
                elif args.json or args.format == "json":
                    _write_json_lines(leases, out)
                else:
                    _write_csv(leases, out)
            else:  # pragma: no cover - argparse restricts the verbs
                raise StoreError(f"unknown verb {args.verb!r}")
        out.flush()
    except StoreError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def _where(args: argparse.Namespace) -> tuple[str, str | None]:
    """(database directory, control socket or None) from ``--db``/``--config``/``--socket``."""
    if args.db:
        return args.db, args.socket
    from fastdhcp.config import load
    from fastdhcp.control.client import unix_socket_of
    from fastdhcp.errors import ConfigError

    try:
        config = load(args.config)
    except (ConfigError, OSError) as exc:
        problems = getattr(exc, "problems", None) or [str(exc)]
        raise StoreError(f"{args.config}: {problems[0]}") from None
    sock = args.socket or unix_socket_of(config)
    return config.lease_database.path, None if sock is None else str(sock)


def _delete_through(sock: str, ip: int, text: str) -> bool:
    """``lease4-del`` through the server on ``sock``: True once it deleted the lease; False
    when no server answers there (then LMDB directly). A lease it does not have, or an error
    it answers, is a StoreError (one line, exit 1)."""
    from fastdhcp.control.client import ControlUnavailable, call

    try:
        reply = call(sock, "lease4-del", {"ip-address": str(ipaddress.IPv4Address(ip))})
    except ControlUnavailable:
        return False
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    if reply.result == 3:
        raise StoreError(f"no lease for {text} (the running server has none)")
    if reply.result != 0:
        raise StoreError(f"the running server refused lease4-del: {reply.text}")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 -m fastdhcp.leases_cli ...`` (the same as ``fastdhcp leases ...``)."""
    parser = argparse.ArgumentParser(prog=PROG, description="read or delete leases")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except BrokenPipeError:  # `... | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
