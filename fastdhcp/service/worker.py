"""One worker of the multi-worker server (docs/scaling.md): what a :class:`~.server.Server`
does differently when it is worker ``k`` of ``n`` under the supervisor
(:mod:`fastdhcp.service.supervisor`).

- its sockets are the supervisor's (slot ``k`` of each SO_REUSEPORT group, handed over at
  exec), never opened here, so a reload cannot change them;
- its engine and store see only its :class:`~fastdhcp.slices.WorkerScope`: bitmaps of its
  slices, an index of its records, a commit check on every batch;
- its packet path keeps only the datagrams whose chaddr steers to it (broadcasts reach every
  socket of a group);
- its control channel is a private Unix socket (:func:`.worker_paths.worker_control_socket`)
  that the supervisor's control front routes to; it serves neither the configured control
  sockets nor the metrics port;
- a binding the commit check refused is answered with a NAK instead of its ACK
  (:meth:`WorkerRole.refuse`).

``python3 -m fastdhcp.service.worker`` is the worker process the supervisor execs: a fresh
interpreter, so no LMDB handle and no event loop crosses a fork.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastdhcp.config import Config, ControlSocket, SocketType
from fastdhcp.service.endpoints import EndpointKey
from fastdhcp.service.worker_paths import worker_control_socket
from fastdhcp.slices import WorkerScope

if TYPE_CHECKING:
    from fastdhcp.leases import Lease

__all__ = ["ENV_SOCKETS", "ENV_SUPERVISOR", "WorkerRole", "main", "nak_from_ack", "worker_config"]

log = logging.getLogger("fastdhcp")

#: The environment variable the supervisor passes a worker its sockets in: JSON
#: ``[[kind, name, port, fd], ...]`` (the fds are inherited).
ENV_SOCKETS = "FASTDHCP_WORKER_SOCKETS"
#: The supervisor's pid: a worker whose supervisor is gone stops (PR_SET_PDEATHSIG).
ENV_SUPERVISOR = "FASTDHCP_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1  # linux/prctl.h

# BOOTP layout (RFC 2131 figure 1) for turning a refused ACK into a NAK.
_OFF_FLAGS, _OFF_CIADDR, _OFF_GIADDR, _OFF_SNAME, _OFF_OPTIONS = 10, 12, 24, 44, 240
_BROADCAST_FLAG = 0x80
#: Options a NAK carries from its ACK (RFC 2131 table 3: 54 must, 61 may; RFC 3046: 82 echoed).
_NAK_KEEP = (54, 61, 82)
_MESSAGE = b"address owned by another worker"


def nak_from_ack(ack: bytes, client_port: int) -> tuple[bytes, int, int] | None:
    """A DHCPNAK answering the request ``ack`` (an ACK this server built) acknowledged, and
    where it goes: ``(datagram, dest_ip, dest_port)``; None if ``ack`` is not one.

    RFC 2131 table 3 and 4.1: ciaddr, yiaddr, siaddr 0, sname and file empty; through a relay
    to giaddr with the broadcast bit set, else broadcast to the client port.
    """
    if len(ack) < _OFF_OPTIONS + 1 or ack[236:240] != b"\x63\x82\x53\x63":
        return None
    head = bytearray(ack[:_OFF_OPTIONS])
    head[8:10] = b"\0\0"  # secs
    head[_OFF_CIADDR:_OFF_GIADDR] = bytes(12)  # ciaddr, yiaddr, siaddr
    head[_OFF_SNAME:236] = bytes(236 - _OFF_SNAME)
    giaddr = int.from_bytes(head[_OFF_GIADDR:_OFF_GIADDR + 4], "big")
    kept: dict[int, bytes] = {}
    i = _OFF_OPTIONS
    while i < len(ack):
        code = ack[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(ack):
            return None
        size = ack[i + 1]
        if code in _NAK_KEEP:
            kept[code] = ack[i + 2:i + 2 + size]
        i += 2 + size
    opts = bytearray(b"\x35\x01\x06")
    if 54 in kept:
        opts += bytes([54, len(kept[54])]) + kept[54]
    opts += bytes([56, len(_MESSAGE)]) + _MESSAGE
    for code in (61, 82):
        if code in kept:
            opts += bytes([code, len(kept[code])]) + kept[code]
    opts.append(255)
    if giaddr:
        head[_OFF_FLAGS] |= _BROADCAST_FLAG
        return bytes(head + opts), giaddr, 67  # the relay's server port (RFC 2131 4.1)
    return bytes(head + opts), 0xFFFFFFFF, client_port


def worker_config(config: Config, k: int) -> Config:
    """``config`` as worker ``k`` runs it: its private control socket instead of the
    configured ones, no metrics port (the supervisor's front serves both)."""
    private = ControlSocket(SocketType.UNIX, worker_control_socket(config, k))
    server = dataclasses.replace(config.server, metrics=None)
    return dataclasses.replace(config, server=server, control_sockets=(private,))


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """Worker ``index`` of ``workers``: its sockets (one per endpoint key) and its scope."""

    index: int
    workers: int
    sockets: dict[EndpointKey, socket.socket]

    def scope(self, config: Config) -> WorkerScope:
        """What this worker owns under ``config``."""
        return WorkerScope.of(config, self.index, self.workers)

    def adapt(self, config: Config) -> Config:
        """``config`` as this worker runs it (:func:`worker_config`)."""
        return worker_config(config, self.index)

    def refuse(self, tokens: list[Any], refused: Sequence[Lease], client_port: int) -> list[Any]:
        """``tokens`` (held ACKs) with each ACK of a binding in ``refused`` turned into a NAK
        (the commit check refused it: docs/scaling.md "enforced twice")."""
        from fastdhcp._packetpath import HeldAck
        from fastdhcp._sockio import Outgoing

        ids = {id(x) for x in refused}
        out: list[Any] = []
        for t in tokens:
            if t.out is None or id(t.lease) not in ids:
                out.append(t)
                continue
            made = nak_from_ack(t.out.data, client_port)
            if made is None:
                continue
            data, ip, port = made
            if ip != 0xFFFFFFFF:
                port = t.out.dest_port  # relayed: the relay's port, as the ACK would have gone
            out.append(HeldAck(t.endpoint, Outgoing(data, ip, port, 6, t.out.received_at),
                               t.held_at, t.lease))
        return out


def _sockets_from_env() -> dict[EndpointKey, socket.socket]:
    raw = os.environ.get(ENV_SOCKETS)
    if raw is None:
        raise SystemExit(f"{ENV_SOCKETS} is not set: a worker is started by `fastdhcp serve`")
    out: dict[EndpointKey, socket.socket] = {}
    for kind, name, port, fd in json.loads(raw):
        sock = socket.socket(fileno=int(fd))
        sock.setblocking(False)
        out[(str(kind), str(name), int(port))] = sock
    return out


def _follow_supervisor() -> None:
    """SIGTERM this worker when its supervisor dies (no orphan keeps serving a slice)."""
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    parent = os.environ.get(ENV_SUPERVISOR)
    if parent is not None and os.getppid() != int(parent):
        raise SystemExit("fastdhcp worker: the supervisor is gone")


def main(argv: Sequence[str] | None = None) -> int:
    """The worker process: load the config, serve with this worker's role until SIGTERM."""
    parser = argparse.ArgumentParser(prog="fastdhcp-worker")
    parser.add_argument("--config", required=True)
    parser.add_argument("--worker", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--log-level", default=None)
    args = parser.parse_args(argv)
    _follow_supervisor()
    from fastdhcp.cli import load_config_or_report, setup_logging

    config = load_config_or_report(args.config)
    if config is None:
        return 1
    setup_logging(args.log_level or config.server.log_level, prefix=f"worker={args.worker} ")
    role = WorkerRole(args.worker, args.workers, _sockets_from_env())
    import uvloop

    from fastdhcp.errors import StoreError
    from fastdhcp.service import Server, StartupError

    server = Server(role.adapt(config), config_path=args.config,
                    log_level_pinned=bool(args.log_level), worker=role)
    try:
        uvloop.run(server.serve_forever())
    except (StartupError, StoreError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    except KeyboardInterrupt:
        return 0
    return server.exit_value


if __name__ == "__main__":  # pragma: no cover - the supervisor's exec
    sys.exit(main())
