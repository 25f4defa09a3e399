"""Helpers for the control front tests: N real worker servers (in-process
:class:`fastdhcp.service.Server`, each with its own lease database, DHCP port and private
control socket) and the :class:`~fastdhcp.service.control_front.ControlFront` before them, on
its own loop thread."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import uvloop

from fastdhcp.config import Config, loads
from fastdhcp.service.control_front import ControlFront
from tests.control_helpers import free_tcp_port, unix_command
from tests.service_helpers import POOL, InProcessServer, config_text, free_port


class FrontRunner:
    """A :class:`ControlFront` running on its own uvloop thread."""

    def __init__(self, config: Config, worker_sockets: Sequence[str], *,
                 on_shutdown: Callable[[int], None] | None = None,
                 timeout: float = 10.0) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.front = ControlFront(config, worker_sockets, on_shutdown=on_shutdown,
                                  timeout=timeout)

    def call(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> FrontRunner:
        self.thread.start()
        try:
            self.call(self.front.start())
        except BaseException:
            self._stop_loop()
            raise
        return self

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()

    def __exit__(self, *exc: object) -> None:
        try:
            self.call(self.front.close())
        finally:
            self._stop_loop()


def front_config_text(tmp: Path, *, http_port: int | None = None, metrics_port: int | None
                      = None, http_extra: str = "") -> str:
    """The operator's config: the one subnet of the workers, a Unix control socket at
    ``tmp/front.sock`` and, if given, an HTTP one and the metrics endpoint."""
    metrics = f"127.0.0.1:{metrics_port}" if metrics_port is not None else None
    text = config_text(tmp / "front-db", free_port(), metrics=metrics) + f"""
[[control-sockets]]
socket-type = "unix"
socket-name = "{tmp / 'front.sock'}"
"""
    if http_port is not None:
        text += f"""
[[control-sockets]]
socket-type = "http"
socket-address = "127.0.0.1"
socket-port = {http_port}
""" + http_extra
    return text


def _slice(k: int, n: int) -> tuple[str, str]:
    """Worker k's slice of the service pool, as ``slices.pool_slices`` cuts it."""
    first, last = (int(ipaddress.IPv4Address(a)) for a in POOL)
    step = (last - first + 1) // n
    lo = first + k * step
    hi = last if k == n - 1 else lo + step - 1
    return str(ipaddress.IPv4Address(lo)), str(ipaddress.IPv4Address(hi))


class WorkersLab:
    """``n`` running worker servers and the paths of their private control sockets."""

    def __init__(self, tmp: Path, n: int) -> None:
        self.tmp = tmp
        self.n = n
        self.sockets = [str(tmp / "workers" / f"w{k}.sock") for k in range(n)]
        self.ports = [free_port() for _ in range(n)]
        #: worker k serves only its slice of the pool (as a worker of the supervisor does),
        #: so that no two workers hold the same address
        self.pools = [_slice(k, n) for k in range(n)]
        self.servers: list[InProcessServer] = []
        self._stack = ExitStack()

    def __enter__(self) -> WorkersLab:
        try:
            for k in range(self.n):
                cfg = loads(config_text(self.tmp / f"db{k}", self.ports[k],
                                        pools=self.pools[k]) + f"""
[[control-sockets]]
socket-type = "unix"
socket-name = "{self.sockets[k]}"
""")
                self.servers.append(self._stack.enter_context(InProcessServer(cfg)))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def ask(self, k: int, command: str, arguments: Any = None) -> dict[str, Any]:
        """One command straight to worker ``k`` (not through the front)."""
        return unix_command(self.sockets[k], command, arguments)


__all__ = ["FrontRunner", "WorkersLab", "free_tcp_port", "front_config_text"]
