"""A blocking client of the Unix control socket: what ``fastdhcp ctl`` and ``fastdhcp leases``
use to reach the running server (one JSON object out, one back, then the server closes)."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastdhcp.config import Config, SocketType
from fastdhcp.control.protocol import Result

__all__ = ["ControlUnavailable", "Reply", "call", "unix_socket_of"]

# The server refuses a request over 1 MiB; its answers can be larger (a lease4-get-all of a big
# subnet), so the reader only bounds the time, not the size.
_RECV = 1 << 16


class ControlUnavailable(Exception):
    """No server answers on the socket (not running, or no permission); the text says which."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A decoded answer: Kea's ``result``, ``text`` and ``arguments``."""

    result: int
    text: str | None
    arguments: Any
    raw: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Success or empty (found nothing): what a script treats as "the command worked"."""
        return self.result in (Result.SUCCESS, Result.EMPTY)


def unix_socket_of(config: Config) -> Path | None:
    """The first Unix control socket of ``config``, or None when it has none."""
    for sock in config.control_sockets:
        if sock.socket_type is SocketType.UNIX:
            return Path(sock.socket_name)
    return None


def call(path: str | Path, command: str, arguments: Any = None, *,
         timeout: float = 60.0) -> Reply:
    """Send one command to the server listening on the Unix socket ``path``.

    Raises :class:`ControlUnavailable` when nothing listens there, and ``ValueError`` when the
    answer is not a JSON object (a server that is not fastdhcp or Kea).
    """
    request: dict[str, Any] = {"command": command}
    if arguments is not None:
        request["arguments"] = arguments
    data = json.dumps(request).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(data)
            chunks: list[bytes] = []
            while chunk := s.recv(_RECV):
                chunks.append(chunk)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise ControlUnavailable(f"{path}: no server listening ({exc.strerror})") from exc
    except PermissionError as exc:
        raise ControlUnavailable(f"{path}: {exc.strerror} (the socket is owner-only)") from exc
    except TimeoutError as exc:
        raise ControlUnavailable(f"{path}: no answer within {timeout:g} s") from exc
    body = b"".join(chunks)
    try:
        answer = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"{path}: the answer is not JSON: {body[:80]!r}") from exc
    if isinstance(answer, list) and len(answer) == 1:  # the agent's one-element list
        answer = answer[0]
    if not isinstance(answer, dict) or not isinstance(answer.get("result"), int):
        raise ValueError(f"{path}: the answer has no integer 'result': {body[:80]!r}")
    return Reply(answer["result"], answer.get("text"), answer.get("arguments"), answer)
