"""Configuration commands: ``config-get``, ``config-test``, ``config-set``, ``config-reload``,
``config-write`` (reference: kea-control-api.md C3; docs/control-api.md "Configuration
commands").

The configuration travels as the document the TOML file holds, as JSON, under ``"Dhcp4"``
(:mod:`fastdhcp.configdoc`): what ``config-get`` returns, ``config-set`` takes back. A config
that fails is refused whole with every problem line, and the running one keeps serving.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastdhcp.config import Config, from_document
from fastdhcp.configdoc import json_value, running_document, serialize, write_atomic
from fastdhcp.control.args import Args
from fastdhcp.control.protocol import Answer, Caller, CommandError, success
from fastdhcp.control.table import CommandTable
from fastdhcp.control.target import ControlTarget
from fastdhcp.errors import ConfigError

__all__ = ["register", "SET_SOURCE", "TEST_TEXT"]

#: ``Config.source`` of a configuration that came by config-set (it has no file).
SET_SOURCE = "<config-set>"
#: config-test's answer. Kea 2.2 goes on "Control-socket, hook-libraries, and D2 configuration
#: were sanity checked, but not applied."; fastdhcp has neither hooks nor D2.
TEST_TEXT = "Configuration seems sane. Control sockets were sanity checked, but not applied."
SUCCESS_TEXT = "Configuration successful."


def register(table: CommandTable) -> None:
    """Add the configuration commands to ``table``."""
    table.add("config-get", config_get)
    table.add("config-test", config_test)
    table.add("config-set", config_set, mutating=True)
    table.add("config-reload", config_reload, mutating=True)
    table.add("config-write", config_write, mutating=True)


async def config_get(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    """The running configuration under ``Dhcp4``, its standalone defaults filled in; no text
    (as Kea)."""
    return success(arguments={"Dhcp4": json_value(running_document(target.config))})


def _validated(arguments: Any) -> Config:
    """The config of a config-test / config-set, validated, or CommandError with every problem
    (Kea's texts for a missing ``arguments`` or ``Dhcp4``)."""
    if arguments is None:
        raise CommandError("Missing mandatory 'arguments' parameter.")
    if not isinstance(arguments, dict):
        raise CommandError("'arguments' must be a map holding 'Dhcp4'")
    if "Dhcp4" not in arguments:
        raise CommandError("Missing mandatory 'Dhcp4' parameter.")
    Args(arguments).only(("Dhcp4",))
    doc = arguments["Dhcp4"]
    if not isinstance(doc, dict):
        raise CommandError("'Dhcp4' parameter expected to be a map (the configuration, with "
                           "the keys of the TOML file)")
    try:
        return from_document(doc, SET_SOURCE)
    except ConfigError as exc:
        raise CommandError("\n".join(exc.problems)) from None


async def config_test(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    """``{"Dhcp4": {...}}``: every check a config-set makes, nothing applied."""
    config = _validated(arguments)
    checked = target.check_config(config)
    if not checked.ok:
        raise CommandError("\n".join(checked.problems))
    return success(TEST_TEXT)


async def config_set(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    """``{"Dhcp4": {...}}``: validate and apply as SIGHUP does; a refused one changes
    nothing."""
    config = _validated(arguments)
    applied = target.apply_config(config)
    if not applied.ok:
        raise CommandError("\n".join(applied.problems))
    return success(SUCCESS_TEXT)


async def config_reload(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    """Read the startup file again and apply it, as SIGHUP does."""
    for key in Args.of(arguments).keys():
        raise CommandError(f"unknown parameter '{key}': config-reload takes no arguments")
    applied = target.reload_from_file()
    if not applied.ok:
        raise CommandError("\n".join(applied.problems))
    return success(SUCCESS_TEXT)


async def config_write(target: ControlTarget, arguments: Any, caller: Caller) -> Answer:
    """``{"filename"?: str}``: write the running configuration (config-get's document) to
    ``filename`` or the startup file, atomically: JSON when the name ends in ``.json``, else
    TOML, so that ``serve`` and ``config-reload`` read it back as the same configuration."""
    args = Args.of(arguments)
    args.only(("filename",))
    filename = args.get_str("filename", None,
                            bad_type="passed parameter 'filename' is not a string")
    if filename is None:
        filename = target.config_path
        if filename is None:
            raise CommandError("Unable to determine filename: the server was not started from "
                               "a configuration file; pass 'filename'")
    elif not filename:
        raise CommandError("passed parameter 'filename' is empty")
    try:
        data = serialize(running_document(target.config), filename)
    except (TypeError, ValueError) as exc:  # a value neither TOML nor JSON can hold
        raise CommandError(f"Error during write-config:{exc}") from None
    try:
        # the fsyncs must not stall the packet path: off the loop thread
        await asyncio.get_running_loop().run_in_executor(None, write_atomic, filename, data)
    except OSError as exc:
        raise CommandError(f"Error during write-config:Unable to open file {filename} for "
                           f"writing ({exc.strerror or exc})") from None
    return success(f"Configuration written to {filename} successful",
                   {"filename": filename, "size": len(data)})
