"""The command table: Kea's command names -> handlers, and the one dispatch every transport
uses (so that the answer to a command does not depend on how it arrived)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastdhcp.control.protocol import Answer, Caller, CommandError, Request, Result

if TYPE_CHECKING:
    from fastdhcp.control.target import ControlTarget

__all__ = ["Command", "CommandTable", "Handler", "not_supported"]

log = logging.getLogger("fastdhcp.control")

#: A handler: (the server, the raw ``arguments`` value or None, who asked) -> the answer.
#: It raises :class:`CommandError` for bad arguments; anything else is an internal error.
Handler = Callable[["ControlTarget", Any, Caller], Awaitable[Answer]]


def not_supported(command: str) -> Answer:
    """Kea's answer to a command it does not know."""
    return Answer(Result.UNSUPPORTED, f"'{command}' command not supported.")


@dataclass(frozen=True, slots=True)
class Command:
    """One entry of the table."""

    name: str
    handler: Handler
    #: changes state: logged at INFO with who sent it and what it answered
    mutating: bool = False


class CommandTable:
    """Name -> :class:`Command`; built once from the command groups (``commands.build``)."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def add(self, name: str, handler: Handler, *, mutating: bool = False) -> None:
        """Register ``name``; a name registered twice is a programming error."""
        if name in self._commands:
            raise ValueError(f"command {name!r} registered twice")
        self._commands[name] = Command(name, handler, mutating)

    def names(self) -> list[str]:
        """Every command name, sorted (the answer of ``list-commands``)."""
        return sorted(self._commands)

    def get(self, name: str) -> Command | None:
        """The command called ``name``, if any."""
        return self._commands.get(name)

    async def dispatch(self, target: ControlTarget, request: Request, caller: Caller) -> Answer:
        """Run ``request`` and return its answer; never raises."""
        cmd = self._commands.get(request.command)
        if cmd is None:
            return not_supported(request.command)
        t0 = time.perf_counter()
        try:
            answer = await cmd.handler(target, request.arguments, caller)
        except CommandError as exc:
            answer = exc.answer()
        except Exception as exc:  # a bug must not take the channel down; say what it was
            log.exception("control: %s from %s failed", request.command, caller)
            answer = Answer(Result.ERROR, f"internal error: {type(exc).__name__}: {exc}")
        if cmd.mutating:
            log.info("control: %s from %s: result %d%s (%.1f ms)", request.command, caller,
                     answer.result, f", {answer.text}" if answer.text else "",
                     (time.perf_counter() - t0) * 1e3)
        else:
            log.debug("control: %s from %s: result %d", request.command, caller, answer.result)
        return answer
