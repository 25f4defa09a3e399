"""Helpers for the HA tests: an HTTP listener that plays a control socket (POST /, a one-element
JSON list back, as kea-ctrl-agent) in front of any dispatch function, and HA config text.

fastdhcp's own HTTP control socket is being built on another branch (wip/http); until it is on
main the pair tests put this listener in front of each server's command table, so that what
the peers exchange is real HTTP over keep-alive TCP either way.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from fastdhcp.control.protocol import Answer, Caller, CommandError, Request, parse_request

Dispatch = Callable[[Request], Awaitable[Answer]]


class Listener:
    """``POST /`` -> ``dispatch(request)`` -> ``[answer]``; records every request body."""

    def __init__(self, dispatch: Dispatch, host: str, port: int) -> None:
        self.dispatch = dispatch
        self.host = host
        self.port = port
        self.requests: list[dict[str, Any]] = []
        self.peers: set[tuple[str, int]] = set()
        self.headers: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.headers.append(dict(request.headers))
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.peers.add((peer[0], peer[1]))
        try:
            obj = json.loads(raw)
            if isinstance(obj, dict):
                self.requests.append(obj)
            req = parse_request(obj)
        except (ValueError, CommandError):
            return web.json_response({"result": 400, "text": "Bad Request"}, status=400)
        answer = await self.dispatch(req)
        return web.json_response([answer.to_json()])

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def commands(self) -> list[str]:
        return [r.get("command", "?") for r in self.requests]


def table_dispatch(server: Any) -> Dispatch:
    """Dispatch to a running ``fastdhcp.service.Server``'s command table."""
    caller = Caller("http", "ha-test-listener")

    async def dispatch(req: Request) -> Answer:
        answer: Answer = await server.commands.dispatch(server, req, caller)
        return answer
    return dispatch


def ha_toml(this: str, mode: str, peers: list[tuple[str, str, str]], **params: Any) -> str:
    """A [high-availability] table: peers as (name, url, role); params by Kea's names with
    '_' for '-'."""
    lines = ["", "[high-availability]", f'this-server-name = "{this}"', f'mode = "{mode}"']
    for k, v in params.items():
        lines.append(f"{k.replace('_', '-')} = {json.dumps(v)}")
    for name, url, role in peers:
        lines += ["", "[[high-availability.peers]]", f'name = "{name}"', f'url = "{url}"',
                  f'role = "{role}"']
    return "\n".join(lines) + "\n"


async def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``pred`` on the loop until true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
