"""The HTTP(S) transport, as kea-ctrl-agent 2.2 answers (reference: kea-control-api.md 2.2, C1,
C14), served by aiohttp's low-level server on the server's own loop.

- ``POST`` to any path, ``Content-Type: application/json``, a JSON body: the answer is a JSON
  list with one element per entry of ``service`` (``dhcp4`` is this server; any other name is
  answered as the agent does for a service it has no socket for); without ``service`` the
  server answers itself, still as a one-element list (Kea 3's servers answer HTTP directly).
- A ``GET`` (any other method), a body that is not JSON or a missing or other Content-Type:
  HTTP 400 and Kea's body ``{ "result": 400, "text": "Bad Request" }``.
- Basic authentication when configured: no or wrong credentials get HTTP 401 with
  ``WWW-Authenticate: Basic realm="..."`` and Kea's body; checked before the body is read.
- A body over :data:`~fastdhcp.control.common.MAX_REQUEST` is refused with HTTP 413 without
  reading the rest (by its Content-Length when it has one, else once that much arrived).
- HTTP/1.1 keep-alive; a connection idle for ``idle-timeout`` (before a request, or while
  its body trickles in) is closed; at most ``max-connections`` served at once (the rest
  wait, :mod:`fastdhcp.control.gate`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hmac
import json
import logging
import ssl
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aiohttp import web

from fastdhcp.buildinfo import version
from fastdhcp.config import ControlSocket, SocketType
from fastdhcp.control.common import MAX_REQUEST
from fastdhcp.control.gate import ConnectionGate
from fastdhcp.control.protocol import (
    Answer,
    Caller,
    CommandError,
    Result,
    encode_answer,
    parse_request,
)
from fastdhcp.control.tls import server_context

if TYPE_CHECKING:
    from fastdhcp.control.common import Dispatch

__all__ = ["HttpTransport"]

log = logging.getLogger("fastdhcp.control")

#: Kea's HTTP-level error bodies, byte for byte (a bare object, not a list).
_BAD_REQUEST = b'{ "result": 400, "text": "Bad Request" }'
_UNAUTHORIZED = b'{ "result": 401, "text": "Unauthorized" }'
#: fastdhcp's own, in the same form (the agent has no such limit to copy).
_TOO_LARGE = b'{ "result": 413, "text": "Request Entity Too Large" }'
_TIMEOUT = b'{ "result": 408, "text": "Request Timeout" }'
#: The one service name this server answers for (kea-shell sends ``"service": ["dhcp4"]``).
SERVICE = "dhcp4"
#: Seconds a closing socket gives a command in progress before its connection is cut.
_CLOSE_GRACE = 2.0


@functools.cache
def _server_header() -> str:
    return f"fastdhcp/{version()}"  # aiohttp would name itself and Python otherwise


def _http_response(status: int, reason: str, body: bytes, *, close: bool = False,
                   headers: dict[str, str] | None = None) -> web.Response:
    resp = web.Response(status=status, reason=reason, body=body,
                        headers={"Content-Type": "application/json",
                                 "Server": _server_header(), **(headers or {})})
    if close:
        resp.force_close()
    return resp


def _peer(request: web.BaseRequest) -> str:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if not peer:
        return "?"
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _cert_cn(request: web.BaseRequest) -> str | None:
    """The common name of a verified client certificate, if the connection has one."""
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


class _RequestHandler(web.RequestHandler):
    """aiohttp's connection protocol, with Kea-style JSON bodies for the requests it refuses
    itself (one it cannot parse: 400) and one log line instead of a traceback for them."""

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # part of an answer has gone: nothing to add
            raise ConnectionError("answer already started")
        if status >= 500:
            log.error("control: HTTP request from %s failed", _peer(request), exc_info=exc)
        else:
            log.info("control: bad HTTP request from %s: %s", _peer(request),
                     exc if exc is not None else status)
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        body = _BAD_REQUEST if status == 400 else \
            f'{{ "result": {status}, "text": "{reason}" }}'.encode()
        return _http_response(status, reason, body, close=True)


class HttpTransport:
    """Serves one HTTP or HTTPS control socket, answering through ``dispatch`` (see the
    module docstring)."""

    def __init__(self, dispatch: Dispatch, conf: ControlSocket) -> None:
        self._dispatch = dispatch
        self.conf = conf
        self._scheme = conf.socket_type.value  # "http" or "https", the Caller's transport
        self._gate = ConnectionGate(conf.max_connections)
        self._passwords = {c.user: c.password.encode() for c in conf.auth_clients}
        self._challenge = f'Basic realm="{conf.auth_realm}"'
        self._aio: web.Server | None = None
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the configured one; the bound one when it was 0)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self.conf.socket_port

    async def start(self) -> None:
        """Listen; OSError if the address cannot be bound or the TLS files do not load."""
        conf = self.conf
        ctx: ssl.SSLContext | None = None
        if conf.socket_type is SocketType.HTTPS:
            assert conf.trust_anchor and conf.cert_file and conf.key_file  # config checked
            ctx = server_context(conf.trust_anchor, conf.cert_file, conf.key_file,
                                 conf.cert_required)
        loop = asyncio.get_running_loop()
        aio = self._aio = web.Server(self._handle)

        def protocol() -> web.RequestHandler:
            return _RequestHandler(
                aio, loop=loop,
                # aiohttp's keep-alive timer runs from the connection's start and from each
                # answer until the next request's headers are in: Kea's idle timeout
                keepalive_timeout=conf.idle_timeout,
                # an answer sent before the body was read (401, 413) closes the connection
                # rather than reading the rest
                lingering_time=0,
                # a compressed body would pass the size limit and then inflate; Kea does not
                # decompress either (such a body is not JSON: 400)
                auto_decompress=False,
                # mutating commands are logged by the dispatch; None (no access log) is what
                # aiohttp itself passes when access logging is off
                access_log=None,  # type: ignore[arg-type]
            )

        self._server = await loop.create_server(
            self._gate.factory(protocol), conf.socket_address, conf.socket_port, ssl=ctx,
            ssl_handshake_timeout=conf.idle_timeout if ctx is not None else None,
            reuse_address=True)
        log.info("control socket %s://%s:%d%s", self._scheme, conf.socket_address, self.port,
                 " (basic auth)" if self._passwords else "")

    async def close(self) -> None:
        """Stop listening and end the connections (a command in progress gets a moment)."""
        if self._server is None:
            return
        self._server.close()
        self._gate.abort_waiting()
        if self._aio is not None:
            await self._aio.shutdown(_CLOSE_GRACE)
        await self._server.wait_closed()
        self._server = None
        self._aio = None

    # ---------------------------------------------------------------- one request

    def _user(self, request: web.BaseRequest) -> str | None:
        """The user whose basic-auth credentials the request carries, or None."""
        scheme, _, cred = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(cred.strip(), validate=True) \
                .decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected = self._passwords.get(user)
        if not sep or expected is None:
            return None
        return user if hmac.compare_digest(password.encode(), expected) else None

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        peer = _peer(request)
        user: str | None = None
        if self._passwords:
            user = self._user(request)
            if user is None:
                log.info("control: %s://%s unauthorized%s", self._scheme, peer,
                         " (wrong credentials)" if "Authorization" in request.headers
                         else "")
                return _http_response(401, "Unauthorized", _UNAUTHORIZED,
                                      headers={"WWW-Authenticate": self._challenge})
        if request.method != "POST" or not _is_json(request.headers.get("Content-Type")):
            return _http_response(400, "Bad Request", _BAD_REQUEST)
        length = request.content_length
        if length is not None and length > MAX_REQUEST:
            return _http_response(413, "Request Entity Too Large", _TOO_LARGE, close=True)
        try:
            body = await self._body(request)
        except TimeoutError:
            log.info("control: %s://%s idle for %gs in a request body, closed", self._scheme,
                     peer, self.conf.idle_timeout)
            return _http_response(408, "Request Timeout", _TIMEOUT, close=True)
        if body is None:
            return _http_response(413, "Request Entity Too Large", _TOO_LARGE, close=True)
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):  # JSONDecodeError and bad UTF-8 alike
            return _http_response(400, "Bad Request", _BAD_REQUEST)
        caller = Caller(self._scheme, peer, user or _cert_cn(request))
        answers = await self._answers(value, caller)
        return _http_response(200, "OK", encode_answer(answers))

    async def _body(self, request: web.BaseRequest) -> bytes | None:
        """The whole body, or None once it passes MAX_REQUEST; TimeoutError when it takes
        longer than the idle timeout to arrive."""
        chunks: list[bytes] = []
        size = 0
        async with asyncio.timeout(self.conf.idle_timeout):
            while chunk := await request.content.readany():
                size += len(chunk)
                if size > MAX_REQUEST:
                    return None
                chunks.append(chunk)
        return b"".join(chunks)

    async def _answers(self, value: Any, caller: Caller) -> list[dict[str, Any]]:
        """One answer per ``service`` entry, as the agent gives them."""
        try:
            request = parse_request(value)
        except CommandError as exc:
            return [exc.answer().to_json()]
        services = request.service
        if services is None or services == []:
            services = [SERVICE]
        if not isinstance(services, list):
            return [Answer(Result.ERROR, "service value must be a list").to_json()]
        out: list[dict[str, Any]] = []
        for name in services:
            if name == SERVICE:
                answer = await self._dispatch(request, caller)
            else:
                shown = name if isinstance(name, str) else json.dumps(name)
                answer = Answer(Result.ERROR, "forwarding socket is not configured for the "
                                f"server type {shown}")
            out.append(answer.to_json())
        return out
