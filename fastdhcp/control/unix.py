"""The Unix stream socket transport, as Kea's: one JSON command in, one answer out, close.

The answer goes back as soon as one complete JSON value has arrived; anything after it is
ignored (Kea 2.2 does the same). A request over :data:`MAX_REQUEST` bytes is refused without
reading the rest; a connection idle for the socket's ``idle-timeout`` is closed; at most
``max-connections`` are served at once (the rest wait in the listen backlog).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import stat
import struct
from typing import TYPE_CHECKING

from fastdhcp.config import ControlSocket
from fastdhcp.control.common import MAX_REQUEST, run_bytes, too_large
from fastdhcp.control.protocol import Caller, encode_answer

if TYPE_CHECKING:
    from fastdhcp.control.common import Dispatch

__all__ = ["MAX_REQUEST", "UnixTransport"]

log = logging.getLogger("fastdhcp.control")

_READ = 65536
_DECODER = json.JSONDecoder()


#: A JSON string (closed, or still open at the end of the text) or a bracket: what
#: :func:`complete` counts. Strings are skipped whole, so brackets inside them do not count.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*\\?("|\Z)|[\[\]{}]', re.S)


def complete(buf: bytes) -> bool:
    """True once ``buf`` holds one whole JSON value, or something that can never become one
    (so it is answered now rather than when the peer gives up).

    An object or array is whole when its brackets close (outside strings); parsing the partial
    text instead took a read that ended inside ``true``, ``false``, ``null`` or a number
    (``"1."``) for an error, and answered a large request before it had all arrived (a
    2,000-lease batch on the HA link failed so at byte 131,070)."""
    text = buf.decode("utf-8", "replace").lstrip()
    if not text:
        return False
    if text[0] in "[{":
        depth = 0
        for mt in _TOKENS.finditer(text):
            tok = mt.group()
            if tok[0] == '"':
                if not mt.group(1):
                    return False  # a string still open
                continue
            depth += 1 if tok in "[{" else -1
            if depth <= 0:
                return True  # closed (or a stray closing bracket: an error, answered now)
        return False
    try:  # a bare value: whole once it parses
        _DECODER.raw_decode(text)
    except json.JSONDecodeError as exc:
        # an error at the very end of the text, or a string still open, is "more to come";
        # anything else is a real error, answered now
        if exc.msg.startswith("Unterminated string"):
            return False
        return exc.pos < len(text.rstrip())
    return True


def first_value(buf: bytes) -> bytes:
    """The bytes of the first JSON value in ``buf`` (all of it when it does not parse)."""
    text = buf.decode("utf-8", "replace")
    stripped = text.lstrip()
    try:
        _, end = _DECODER.raw_decode(stripped)
    except json.JSONDecodeError:
        return buf
    return stripped[:end].encode()


def _peer(sock: socket.socket | None) -> str:
    if sock is None:
        return "?"
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _gid = struct.unpack("3i", creds)
        return f"pid={pid},uid={uid}"
    except OSError:
        return "?"


class UnixTransport:
    """Serves one Unix control socket, answering through ``dispatch`` (see the module
    docstring)."""

    def __init__(self, dispatch: Dispatch, conf: ControlSocket) -> None:
        self._dispatch = dispatch
        self.conf = conf
        self.path = conf.socket_name
        self._server: asyncio.AbstractServer | None = None
        self._slots = asyncio.Semaphore(conf.max_connections)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Create the socket (owner-only, mode 0600) and serve; OSError if it cannot."""
        path = self.path
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                if _in_use(path):
                    raise OSError(98, f"control socket {path} is in use by another process")
                os.unlink(path)  # left by a server that did not stop cleanly
        old = os.umask(0o177)  # created 0600: nobody else may even connect
        try:
            self._server = await asyncio.start_unix_server(self._serve, path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        log.info("control socket %s (unix)", path)

    async def close(self) -> None:
        """Stop listening, end the connections in progress and remove the socket file."""
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            async with self._slots:
                await self._one(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        caller = Caller("unix", _peer(writer.get_extra_info("socket")))
        buf = b""
        timeout = self.conf.idle_timeout
        while not complete(buf):
            try:
                chunk = await asyncio.wait_for(reader.read(_READ), timeout)
            except TimeoutError:
                log.info("control: %s idle for %gs, closed", caller, timeout)
                return
            if not chunk:
                if not buf.strip():
                    return  # connected and left: nothing to answer
                break
            buf += chunk
            if len(buf) > MAX_REQUEST:
                writer.write(encode_answer(too_large()))
                await writer.drain()
                return
        answer = await run_bytes(self._dispatch, first_value(buf), caller)
        writer.write(encode_answer(answer))
        await writer.drain()


def _in_use(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except OSError:
            return False
    return True
