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
import struct
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

__all__ = ["ENV_FORWARD", "ENV_SOCKETS", "ENV_SUPERVISOR", "Forwarder", "WorkerRole", "main",
           "nak_from_ack", "worker_config"]

log = logging.getLogger("fastdhcp")

#: The environment variable the supervisor passes a worker its sockets in: JSON
#: ``[[kind, name, port, fd], ...]`` (the fds are inherited).
ENV_SOCKETS = "FASTDHCP_WORKER_SOCKETS"
#: The forwarding sockets: JSON ``{"inbox": fd, "out": [fd or -1 per worker]}``.
ENV_FORWARD = "FASTDHCP_WORKER_FORWARD"
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


#: Header of a forwarded datagram: endpoint index (endpoint_keys order), source address and
#: port (host order), then the datagram as received.
_FWD_HEAD = struct.Struct("!HIH")
#: Forwarded datagrams read per readiness callback (as endpoints.READ_BATCH for a socket).
_FWD_BATCH = 64
_DISCOVER, _REQUEST, _DECLINE, _RELEASE = 1, 3, 4, 7


def _circuit_id(agent_info: bytes | None) -> bytes | None:
    """Sub-option 1 of an option 82 value (RFC 3046), or None."""
    i = 0
    while agent_info is not None and i + 1 < len(agent_info):
        sub, size = agent_info[i], agent_info[i + 1]
        if sub == 1:
            return agent_info[i + 2:i + 2 + size]
        i += 2 + size
    return None


class Forwarder:
    """Hands a request naming another worker's address to that worker, and serves what the
    others hand here (docs/scaling.md "Getting each client to the worker that owns its
    lease"). One Unix datagram socketpair per worker, made by the supervisor: this worker
    reads ``inbox`` and writes worker j's ``outboxes[j]``; the owner answers from its own
    socket of the same endpoint (same address and port)."""

    def __init__(self, index: int, inbox: socket.socket,
                 outboxes: Sequence[socket.socket | None]) -> None:
        self.index = index
        self.inbox = inbox
        self.outboxes = list(outboxes)
        self.scope: WorkerScope | None = None
        #: client-id / circuit-id -> owner of the reserved address, for reservations the
        #: steering cannot place (not by hw-address) and that another worker owns
        self.by_client_id: dict[bytes, int] = {}
        self.by_circuit: dict[bytes, int] = {}
        self.keys: list[EndpointKey] = []
        self.sent = 0
        self.received = 0
        self.send_failures = 0
        self._server: Any = None

    @property
    def forward_all(self) -> bool:
        """DISCOVER and SELECTING must be looked at too (foreign id reservations exist)."""
        return bool(self.by_client_id or self.by_circuit)

    def configure(self, config: Config, scope: WorkerScope, keys: Sequence[EndpointKey]) -> None:
        """Follow ``config`` (start-up and every reload)."""
        self.scope = scope
        self.keys = list(keys)
        self.by_client_id = {}
        self.by_circuit = {}
        for sub in config.subnets:
            for r in sub.reservations:
                if not r.ip or r.hw_address is not None:
                    continue
                who = scope.owner_of(r.ip)
                if who == self.index:
                    continue
                if r.client_id is not None:
                    self.by_client_id[r.client_id] = who
                if r.circuit_id is not None:
                    self.by_circuit[r.circuit_id] = who

    def __call__(self, ep: Any, msg: Any, data: bytes, src_ip: int, src_port: int) -> bool:
        """The packet path's ``forward``: True when the datagram went to its owner."""
        scope = self.scope
        if scope is None:
            return False
        mtype = msg.message_type
        target = -1
        if self.forward_all and mtype in (_DISCOVER, _REQUEST):
            cid = msg.get(61)
            who = self.by_client_id.get(cid) if cid is not None else None
            if who is None and self.by_circuit:
                circuit = _circuit_id(msg.get(82))
                who = self.by_circuit.get(circuit) if circuit is not None else None
            if who is not None:
                target = who
        if target < 0:
            ip = 0
            if mtype == _REQUEST:
                ip = msg.ciaddr or msg.requested_ip
            elif mtype == _RELEASE:
                ip = msg.ciaddr
            elif mtype == _DECLINE:
                ip = msg.requested_ip
            if ip:
                target = scope.owner_of(ip)
        if target < 0 or target == self.index or target >= len(self.outboxes):
            return False
        out = self.outboxes[target]
        try:
            at = self.keys.index(ep.key)
        except ValueError:
            return False
        if out is None:
            return False
        try:
            out.send(_FWD_HEAD.pack(at, src_ip, src_port) + data)
        except OSError:  # the owner's inbox is full or gone: handle it here (NAK or silence)
            self.send_failures += 1
            return False
        self.sent += 1
        return True

    def start(self, server: Any, loop: Any) -> None:
        """Serve the inbox on ``loop`` for ``server`` (a running Server)."""
        self._server = server
        self.inbox.setblocking(False)
        loop.add_reader(self.inbox.fileno(), self._on_inbox)

    def stop(self, loop: Any) -> None:
        """Stop reading the inbox (what is queued waits for the next worker of this slot)."""
        if self._server is not None:
            loop.remove_reader(self.inbox.fileno())
            self._server = None

    def _on_inbox(self) -> None:
        server = self._server
        if server is None:
            return
        import time

        eps = list(server.endpoints.values())
        for _ in range(_FWD_BATCH):
            try:
                raw = self.inbox.recv(65536 + _FWD_HEAD.size)
            except (BlockingIOError, InterruptedError):
                break
            if len(raw) < _FWD_HEAD.size:
                continue
            at, src_ip, src_port = _FWD_HEAD.unpack_from(raw)
            if at >= len(eps):
                continue
            self.received += 1
            server.inject(eps[at], raw[_FWD_HEAD.size:], src_ip, src_port, time.time(),
                          time.perf_counter())


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """Worker ``index`` of ``workers``: its sockets (one per endpoint key), its scope, and
    its forwarder (None: requests for other workers' addresses are handled here)."""

    index: int
    workers: int
    sockets: dict[EndpointKey, socket.socket]
    forwarder: Forwarder | None = None

    def scope(self, config: Config) -> WorkerScope:
        """What this worker owns under ``config``."""
        return WorkerScope.of(config, self.index, self.workers)

    def path_kwargs(self, config: Config, keys: Sequence[EndpointKey]) -> dict[str, Any]:
        """The packet path's worker arguments under ``config`` (its forwarder follows it)."""
        kw: dict[str, Any] = {"worker": self.index, "workers": self.workers}
        fwd = self.forwarder
        if fwd is not None:
            fwd.configure(config, self.scope(config), keys)
            kw["forward"] = fwd
            kw["forward_all"] = fwd.forward_all
        return kw

    def stats_suffix(self, path: Any) -> str:
        """What the worker adds to the statistics line: broadcasts left to other workers,
        requests forwarded and received (0 forwarded while N is unchanged, docs/scaling.md)."""
        fwd = self.forwarder
        return (f"; others' datagrams {path.others}, forwarded {path.forwarded}"
                + (f", forwarded here {fwd.received}" if fwd is not None else ""))

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


def _forwarder_from_env(index: int) -> Forwarder | None:
    raw = os.environ.get(ENV_FORWARD)
    if raw is None:
        return None
    spec = json.loads(raw)
    inbox = socket.socket(fileno=int(spec["inbox"]))
    outs = [None if int(fd) < 0 else socket.socket(fileno=int(fd)) for fd in spec["out"]]
    for o in outs:
        if o is not None:
            o.setblocking(False)
    return Forwarder(index, inbox, outs)


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
    role = WorkerRole(args.worker, args.workers, _sockets_from_env(),
                      _forwarder_from_env(args.worker))
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
