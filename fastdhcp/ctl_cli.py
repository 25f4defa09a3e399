"""``fastdhcp ctl COMMAND [ARGUMENTS-JSON]``: one management command to the running server.

The socket is the first Unix control socket of ``--config``, or ``--socket`` itself. The answer
is printed as JSON; the exit status is 0 for result 0 (success) and 3 (empty: nothing found),
1 for result 1 (error) and 2 (unknown command), and 1 when no server answers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fastdhcp.control.client import ControlUnavailable, call, unix_socket_of

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``ctl`` subcommand's arguments."""
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", "-c", metavar="FILE",
                       help="the server's configuration: its first unix control socket is used")
    where.add_argument("--socket", "-s", metavar="PATH", help="the Unix control socket itself")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="seconds to wait for the answer (default 60)")
    p.add_argument("name", metavar="COMMAND", help="a command, e.g. list-commands, lease4-get")
    p.add_argument("arguments", metavar="ARGUMENTS-JSON", nargs="?",
                   help="the command's arguments as a JSON object, or - to read them from stdin")


def _err(line: str) -> None:
    print(f"fastdhcp ctl: {line}", file=sys.stderr, flush=True)


def _socket(args: argparse.Namespace) -> Path | None:
    if args.socket:
        return Path(args.socket)
    from fastdhcp.cli import load_config_or_report

    config = load_config_or_report(args.config)
    if config is None:
        return None
    path = unix_socket_of(config)
    if path is None:
        _err(f"{args.config}: no [[control-sockets]] of socket-type \"unix\"")
    return path


def _arguments(text: str | None) -> tuple[bool, Any]:
    if text is None:
        return True, None
    if text == "-":
        text = sys.stdin.read()
    try:
        value = json.loads(text)
    except ValueError as exc:
        _err(f"ARGUMENTS-JSON is not JSON: {exc}")
        return False, None
    if not isinstance(value, dict):
        _err(f"ARGUMENTS-JSON must be a JSON object, not {type(value).__name__}")
        return False, None
    return True, value


def run(args: argparse.Namespace) -> int:
    """Send the command, print the answer, return the exit status."""
    good, arguments = _arguments(args.arguments)
    if not good:
        return 1
    path = _socket(args)
    if path is None:
        return 1
    try:
        reply = call(path, args.name, arguments, timeout=args.timeout)
    except (ControlUnavailable, ValueError) as exc:
        _err(str(exc))
        return 1
    print(json.dumps(reply.raw, indent=2))
    return 0 if reply.ok else 1
