"""The command envelope, as Kea 2.2 sends and answers it (reference: kea-control-api.md, C1).

Request: ``{"command": str, "arguments"?: map, "service"?: list}``; any other top-level key is
an error. Answer: ``{"result": int, "text"?: str, "arguments"?: any}``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Answer", "Caller", "CommandError", "Request", "Result", "decode_request",
           "encode_answer", "parse_request"]


class Result(enum.IntEnum):
    """Kea's control result codes (``src/lib/cc/command_interpreter.h``)."""

    SUCCESS = 0
    ERROR = 1  #: a bad or missing argument, bad JSON, a failed config or commit
    UNSUPPORTED = 2  #: unknown command
    EMPTY = 3  #: nothing found, nothing to do


@dataclass(frozen=True, slots=True)
class Answer:
    """One command's answer. ``text`` and ``arguments`` are left out of the JSON when None."""

    result: Result
    text: str | None = None
    arguments: Any = None

    def to_json(self) -> dict[str, Any]:
        """The answer as Kea's JSON object (keys in Kea's alphabetical order)."""
        out: dict[str, Any] = {}
        if self.arguments is not None:
            out["arguments"] = self.arguments
        out["result"] = int(self.result)
        if self.text is not None:
            out["text"] = self.text
        return out


def success(text: str | None = None, arguments: Any = None) -> Answer:
    """A result-0 answer."""
    return Answer(Result.SUCCESS, text, arguments)


def empty(text: str | None = None, arguments: Any = None) -> Answer:
    """A result-3 answer (not found, nothing to do)."""
    return Answer(Result.EMPTY, text, arguments)


class CommandError(Exception):
    """A command that cannot be carried out: answered with ``result`` (1 unless said) and the
    message as ``text``. Handlers raise it for bad arguments; nothing was changed."""

    def __init__(self, text: str, result: Result = Result.ERROR) -> None:
        super().__init__(text)
        self.text = text
        self.result = result

    def answer(self) -> Answer:
        """The answer this error gets."""
        return Answer(self.result, self.text)


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed command: its name, its arguments (None when absent) and the ``service`` list
    (None when absent; the HTTP transport reads it, the server ignores it as Kea does)."""

    command: str
    arguments: Any = None
    service: Any = None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a command, for the audit log: the transport, the peer and the user."""

    transport: str  #: "unix", "http" or "https"
    peer: str  #: socket peer (pid/uid for Unix sockets, address:port for HTTP)
    user: str | None = None  #: the authenticated user (HTTP basic auth), if any

    def __str__(self) -> str:
        who = f"{self.user}@" if self.user else ""
        return f"{who}{self.transport}:{self.peer}"


_TOP_KEYS = ("command", "arguments", "service")
_PREFIX = "Error during command processing: "


def parse_request(obj: object) -> Request:
    """Check a decoded JSON value as a command envelope, with Kea's texts for what is wrong."""
    if not isinstance(obj, dict):
        raise CommandError(_PREFIX + "Invalid command specified, it must be a map")
    if "command" not in obj:
        # (sic) Kea says "answer" here
        raise CommandError(_PREFIX + "Invalid answer specified, does not contain mandatory "
                           "'command'")
    command = obj["command"]
    if not isinstance(command, str):
        raise CommandError(_PREFIX + "'command' element in command message is not a string")
    for key in obj:
        if key not in _TOP_KEYS:
            raise CommandError(_PREFIX + f"Received command contains unsupported parameter "
                               f"'{key}'")
    return Request(command, obj.get("arguments"), obj.get("service"))


def decode_request(data: bytes) -> Request:
    """Parse one command from the bytes of a JSON document."""
    try:
        obj = json.loads(data)
    except UnicodeDecodeError as exc:
        raise CommandError(f"invalid UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise CommandError(_json_error(data, exc)) from None
    except RecursionError:
        raise CommandError("JSON nested too deeply") from None
    return parse_request(obj)


def _json_error(data: bytes, exc: json.JSONDecodeError) -> str:
    text = exc.doc
    if exc.pos < len(text) and exc.pos == 0 and not text[:1].isspace():
        return f"invalid first character {text[0]}"  # Kea's text for a non-JSON body
    return f"{exc.msg} at line {exc.lineno} column {exc.colno}"


def encode_answer(answer: Answer | dict[str, Any] | list[Any]) -> bytes:
    """The answer (or an already built JSON value) as UTF-8 JSON bytes."""
    value = answer.to_json() if isinstance(answer, Answer) else answer
    return json.dumps(value, ensure_ascii=False, sort_keys=False).encode()
