"""Helpers for the control channel tests: a raw Unix-socket client (what socat does), a
server config with control sockets, and a running in-process server with one."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastdhcp.config import loads
from tests.service_helpers import InProcessServer, config_text, free_port


def unix_raw(path: str | Path, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a new connection to the Unix socket, read to EOF."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(data)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks)


def unix_command(path: str | Path, command: str, arguments: Any = None,
                 timeout: float = 10.0) -> dict[str, Any]:
    """One command over the Unix socket; the decoded answer."""
    req: dict[str, Any] = {"command": command}
    if arguments is not None:
        req["arguments"] = arguments
    out = json.loads(unix_raw(path, json.dumps(req).encode(), timeout))
    assert isinstance(out, dict)
    return out


def control_config_text(db: Path, port: int, sock: Path, *, extra_sockets: str = "",
                        **kw: Any) -> str:
    """The service tests' config (one relayed subnet) plus a Unix control socket at ``sock``."""
    return config_text(db, port, **kw) + f"""
[[control-sockets]]
socket-type = "unix"
socket-name = "{sock}"
""" + extra_sockets


@contextmanager
def control_server(tmp_path: Path, **kw: Any) -> Iterator[tuple[InProcessServer, Path, int]]:
    """A running in-process server with a Unix control socket: (server, socket path, port)."""
    port = free_port()
    sock = tmp_path / "ctl" / "fastdhcp4.sock"
    cfg = loads(control_config_text(tmp_path / "db", port, sock, **kw))
    with InProcessServer(cfg) as srv:
        yield srv, sock, port


# ---- HTTP(S) control sockets (tests/test_control_http.py)


def free_tcp_port() -> int:
    """A TCP port free on loopback now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_socket_text(port: int, *, socket_type: str = "http", extra: str = "") -> str:
    """A ``[[control-sockets]]`` table for an HTTP(S) socket on 127.0.0.1:``port``; ``extra``
    holds more of its keys, one per line."""
    return f"""
[[control-sockets]]
socket-type = "{socket_type}"
socket-address = "127.0.0.1"
socket-port = {port}
""" + extra


@contextmanager
def http_server(tmp_path: Path, sockets_text: str,
                **kw: Any) -> Iterator[tuple[InProcessServer, Path, int]]:
    """A running in-process server with a Unix control socket plus ``sockets_text`` (more
    ``[[control-sockets]]``, e.g. from :func:`http_socket_text`): (server, Unix socket path,
    DHCP port)."""
    port = free_port()
    sock = tmp_path / "ctl" / "fastdhcp4.sock"
    cfg = loads(control_config_text(tmp_path / "db", port, sock, extra_sockets=sockets_text,
                                    **kw))
    with InProcessServer(cfg) as srv:
        yield srv, sock, port
