"""``fastdhcp`` command line: ``serve``, ``check-config``, ``leases``, ``ctl``, ``demo``,
``import-kea``, ``export-kea``.

Thin on purpose: every command loads what it needs, turns the errors an operator can cause (bad
config, unreadable database, busy port) into one clear line each and exit status 1, and never
shows a traceback for them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from fastdhcp import __version__
from fastdhcp.errors import ConfigError, StoreError

PROG = "fastdhcp"


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def load_config_or_report(path: str) -> Any | None:
    """Load ``path``; on failure print one line per problem to stderr and return None."""
    from fastdhcp.config import load

    try:
        return load(path)
    except ConfigError as exc:
        for line in exc.problems:
            _err(line)
        return None
    except OSError as exc:
        _err(f"{path}: cannot read: {exc.strerror or exc}")
        return None


def config_summary(config: Any) -> str:
    """One line describing a loaded configuration (what ``check-config`` prints)."""
    srv = config.server
    pools = [p for s in config.subnets for p in s.pools]
    addresses = sum(p.last - p.first + 1 for p in pools)
    reservations = sum(len(s.reservations) for s in config.subnets)
    listen = [*(f"if:{i}" for i in srv.interfaces), *(str(a) for a in srv.listen_addresses)]
    db = config.lease_database
    return (
        f"{getattr(config, 'source', '')}: OK: {len(config.subnets)} subnets, {len(pools)} pools "
        f"({addresses} addresses), {reservations} reservations; listen "
        f"[{', '.join(listen) or 'nothing'}] port {srv.port}; database {db.path} "
        f"(sync={'true' if db.sync else 'false'})"
    )


def setup_logging(level: str | int, prefix: str = "") -> None:
    """Log to stderr with timestamps; ``level`` is a name (``"info"``) or a number; ``prefix``
    starts every message (``worker=k `` in a multi-worker server)."""
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
        if not isinstance(level, int):
            level = logging.INFO
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


# ----------------------------------------------------------------------------- commands


def cmd_check_config(args: argparse.Namespace) -> int:
    """Exit 0 with a one-line summary, or 1 with one line per problem."""
    config = load_config_or_report(args.config)
    if config is None:
        return 1
    from fastdhcp.slices import pool_warnings

    for line in pool_warnings(config):
        _err(f"warning: {line}")
    print(config_summary(config))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the server in the foreground until SIGTERM/SIGINT or a ``shutdown`` command."""
    config = load_config_or_report(args.config)
    if config is None:
        return 1
    setup_logging(args.log_level or config.server.log_level)
    from fastdhcp.slices import pool_warnings

    for line in pool_warnings(config):
        logging.getLogger("fastdhcp").warning("%s", line)
    if config.server.workers > 1:
        from fastdhcp.service.supervisor import run_supervisor

        return run_supervisor(config, args.config, args.log_level)
    import uvloop

    from fastdhcp.service import Server, StartupError

    server = Server(config, config_path=args.config, log_level_pinned=bool(args.log_level))
    try:
        uvloop.run(server.serve_forever())
    except StartupError as exc:
        _err(f"{PROG}: {exc}")
        return 1
    except StoreError as exc:
        _err(f"{PROG}: lease database {config.lease_database.path}: {exc}")
        return 1
    except ConfigError as exc:  # the engine may reject what the loader accepted
        for line in exc.problems:
            _err(line)
        return 1
    except KeyboardInterrupt:  # SIGINT before the handlers were installed: nothing to flush
        return 0
    except Exception as exc:  # a bug, not an operator error: one line, traceback at debug
        logging.getLogger("fastdhcp").debug("start-up failed", exc_info=True)
        _err(f"{PROG}: cannot start: {type(exc).__name__}: {exc} "
             "(--log-level debug shows the traceback)")
        return 1
    return server.exit_value  # 0, or the exit-value of a `shutdown` command


def cmd_leases(args: argparse.Namespace) -> int:
    """Delegate to :mod:`fastdhcp.leases_cli`."""
    from fastdhcp import leases_cli

    try:
        return int(leases_cli.run(args))
    except StoreError as exc:
        _err(f"{PROG}: lease database: {exc}")
        return 1


def cmd_ctl(args: argparse.Namespace) -> int:
    """Delegate to :mod:`fastdhcp.ctl_cli`."""
    from fastdhcp import ctl_cli

    return ctl_cli.run(args)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run a server on loopback and the relay load driver against it (see fastdhcp.demo)."""
    from fastdhcp.demo import run_demo

    return run_demo(seconds=args.seconds, clients=args.clients, directory=args.dir,
                    rate=args.rate)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="fastdhcp: a DHCPv4 server with durable group-committed leases"
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("serve", help="run the server in the foreground (logs to stderr)")
    p.add_argument("--config", "-c", required=True, metavar="FILE",
                   help="configuration file: TOML, or JSON if its name ends in .json")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                   help="override server.log-level")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("check-config", help="validate a configuration file and exit")
    p.add_argument("--config", "-c", required=True, metavar="FILE",
                   help="configuration file: TOML, or JSON if its name ends in .json")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("leases", help="list, show, delete or export leases in a lease database")
    try:
        from fastdhcp import leases_cli
    except ImportError:  # pragma: no cover - only while the module is being written
        leases_cli = None  # type: ignore[assignment]
    if leases_cli is not None:
        leases_cli.add_arguments(p)
    p.set_defaults(func=cmd_leases)

    from fastdhcp import ctl_cli

    p = sub.add_parser("ctl", help="send one management command (Kea's API) to the running "
                                   "server over its unix control socket")
    ctl_cli.add_arguments(p)
    p.set_defaults(func=cmd_ctl)

    p = sub.add_parser("demo", help="run a server on loopback and measure it with the built-in "
                                    "relay load driver")
    p.add_argument("--seconds", type=float, default=5.0, help="load duration (default 5)")
    p.add_argument("--clients", type=int, default=100_000,
                   help="distinct clients, each gets one lease (default 100000)")
    p.add_argument("--rate", type=int, default=0,
                   help="exchanges per second (default 0: as fast as the server answers)")
    p.add_argument("--dir", default=None, metavar="DIR",
                   help="where to put the config and lease database (default: a new temp dir)")
    p.set_defaults(func=cmd_demo)

    from fastdhcp.kea import cli as kea_cli

    kea_cli.register(sub)  # import-kea, export-kea (docs/migrating-from-kea.md)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastdhcp`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `fastdhcp leases ... | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
