"""``fastdhcp import-kea`` and ``fastdhcp export-kea``: the move from Kea and the way back.

``import-kea --config kea-dhcp4.conf [--leases F ...] --out fastdhcp.toml [--db PATH]
[--allow-unsupported] [--skip-bad-lines]``: converts the config, checks the result with the
config loader, imports the lease files into the database (``--db``, else the config's), and
only then writes the TOML file. Exit 1, with one line per problem, when anything is
unsupported (unless allowed), the converted config does not load, or a lease file is bad:
nothing is written then (an interrupted lease import resumes when rerun).

``export-kea --config fastdhcp.toml [--out kea-dhcp4.conf] [--lease-file PATH]``: writes the
Kea JSON; the leases go back with ``fastdhcp leases export --format kea-csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import tomli_w

from fastdhcp.errors import ConfigError, StoreError
from fastdhcp.kea import config_export, config_import, jsonc, lease_import

__all__ = ["register"]

PROG = "fastdhcp"


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def register(sub: Any) -> None:
    """Add ``import-kea`` and ``export-kea`` to the subcommands ``sub`` (fastdhcp.cli)."""
    p = sub.add_parser("import-kea", help="convert a Kea kea-dhcp4 config (and import its "
                                          "memfile leases) into fastdhcp's")
    p.add_argument("--config", "-c", required=True, metavar="FILE", help="Kea's config file")
    p.add_argument("--leases", nargs="+", default=[], metavar="FILE",
                   help="Kea lease files, oldest first (leases4.csv.2, then leases4.csv)")
    p.add_argument("--out", "-o", required=True, metavar="FILE", help="the TOML to write")
    p.add_argument("--db", metavar="PATH",
                   help="lease database directory (default /var/lib/fastdhcp)")
    p.add_argument("--allow-unsupported", action="store_true",
                   help="write the config even though some Kea keys cannot be carried")
    p.add_argument("--skip-bad-lines", action="store_true",
                   help="skip (and count) malformed lease rows instead of stopping")
    p.set_defaults(func=run_import)

    p = sub.add_parser("export-kea", help="write a Kea kea-dhcp4 config from a fastdhcp one "
                                          "(the way back)")
    p.add_argument("--config", "-c", required=True, metavar="FILE",
                   help="fastdhcp's config file")
    p.add_argument("--out", "-o", default="-", metavar="FILE",
                   help="the Kea JSON to write (default: standard output)")
    p.add_argument("--lease-file", default=config_export.DEFAULT_LEASE_FILE, metavar="PATH",
                   help="Kea's memfile lease file, the output of "
                        "`fastdhcp leases export --format kea-csv`")
    p.add_argument("--allow-unsupported", action="store_true",
                   help="write the Kea config even though some settings cannot be carried")
    p.set_defaults(func=run_export)


def render_toml(result: config_import.KeaImport, source: str) -> str:
    """The TOML text: a comment block for what is not carried one to one, then the tables."""
    head = [f"# fastdhcp configuration imported from Kea's {source}",
            f"# by `fastdhcp import-kea` on {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}"
            ". Keys are described in docs/configuration.md.",
            "#",
            "# Kea keys not carried one to one (JSON path: what fastdhcp does instead):"]
    head += [f"#   {f.line()}" for f in result.findings] or ["#   none"]
    return "\n".join(head) + "\n\n" + tomli_w.dumps(result.document)


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def run_import(args: argparse.Namespace) -> int:
    """``import-kea``; returns the exit status."""
    from fastdhcp.config import loads

    try:
        kea = jsonc.load(args.config)
        result = config_import.convert(kea, db_path=args.db)
    except ConfigError as exc:
        for line in exc.problems:
            _err(line)
        return 1
    for f in result.findings:
        _err(f"{args.config}: {f.line()}")
    if result.unsupported and not args.allow_unsupported:
        _err(f"{PROG} import-kea: {len(result.unsupported)} Kea setting(s) cannot be carried "
             "(listed above as unsupported); nothing written (--allow-unsupported writes the "
             "rest)")
        return 1
    text = render_toml(result, args.config)
    try:
        config = loads(text, args.out)
    except ConfigError as exc:
        _err(f"{PROG} import-kea: the converted config does not load; nothing written:")
        for line in exc.problems:
            _err(f"  {line}")
        return 1
    if args.leases:
        db = args.db or config.lease_database.path
        try:
            report = lease_import.import_leases(
                args.leases, db, lease_import.subnet_ranges(config),
                sync=config.lease_database.sync, skip_bad_lines=args.skip_bad_lines)
        except lease_import.ImportError_ as exc:
            for line in exc.problems:
                _err(line)
            return 1
        except StoreError as exc:
            _err(f"{PROG} import-kea: lease database {db}: {exc}")
            return 1
        for line in report.problems:
            _err(line)
        print(f"leases: {report.summary()} into {db}")
    try:
        _write_atomic(args.out, text)
    except OSError as exc:
        _err(f"{args.out}: cannot write: {exc.strerror or exc}")
        return 1
    print(f"config: {args.out} ({len(config.subnets)} subnets; {len(result.findings)} "
          "Kea keys noted in its header); check with `fastdhcp check-config --config "
          f"{args.out}`")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """``export-kea``; returns the exit status."""
    from fastdhcp.config import load

    try:
        config = load(args.config)
    except ConfigError as exc:
        for line in exc.problems:
            _err(line)
        return 1
    doc, findings = config_export.export(config, lease_file=args.lease_file)
    for f in findings:
        _err(f"{args.config}: {f.line()}")
    bad = [f for f in findings if f.kind is config_import.FindingKind.UNSUPPORTED]
    if bad and not args.allow_unsupported:
        _err(f"{PROG} export-kea: {len(bad)} setting(s) Kea 2.2 cannot express; nothing "
             "written (--allow-unsupported writes the rest)")
        return 1
    text = json.dumps(doc, indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    try:
        _write_atomic(args.out, text)
    except OSError as exc:
        _err(f"{args.out}: cannot write: {exc.strerror or exc}")
        return 1
    return 0
