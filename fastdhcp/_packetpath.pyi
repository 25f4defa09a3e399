"""Type stub for the compiled ``fastdhcp._packetpath`` (the service's per-datagram path)."""

from collections.abc import Callable

from fastdhcp._codec import Message
from fastdhcp._engine import Engine
from fastdhcp._hascope import ScopeFilter
from fastdhcp._lease import Lease
from fastdhcp._sockio import Outgoing
from fastdhcp.metrics import Metrics
from fastdhcp.pathreport import PathReport
from fastdhcp.pathtypes import L2Dest, LeaseQueryHandler, PathEndpoint, PathGuard

class HeldAck:
    endpoint: PathEndpoint
    out: Outgoing | None
    held_at: float
    lease: Lease | None
    def __init__(self, endpoint: PathEndpoint, out: Outgoing | None, held_at: float,
                 lease: Lease | None = None) -> None: ...

class HeldOffer:
    endpoint: PathEndpoint
    out: Outgoing
    msg: Message
    key: bytes
    ip: int
    held_at: float
    tries: int
    def __init__(self, endpoint: PathEndpoint, out: Outgoing, msg: Message, key: bytes,
                 ip: int, held_at: float, tries: int = ...) -> None: ...

class PacketPath:
    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        report: PathReport,
        guard: PathGuard | None,
        hold: Callable[[list[HeldAck]], None] | None,
        l2_dest: L2Dest,
        debug: bool,
        probe: Callable[[list[HeldOffer]], None] | None = ...,
        ha: ScopeFilter | None = ...,
        leasequery: LeaseQueryHandler | None = ...,
        worker: int = ...,
        workers: int = ...,
        forward: Callable[[PathEndpoint, Message, bytes, int, int], bool] | None = ...,
        forward_all: bool = ...,
    ) -> None: ...
    others: int
    forwarded: int
    def inject(self, ep: PathEndpoint, data: bytes, src_ip: int, src_port: int, now: float,
               t0: float) -> int: ...
    def read(self, ep: PathEndpoint, limit: int, now: float, t0: float) -> int: ...
    def flush(self, ep: PathEndpoint) -> None: ...
    def deliver(self, held: list[HeldAck]) -> None: ...
    def redo(self, offer: HeldOffer, now: float) -> int: ...

def steer_of(datagram: bytes, n: int) -> int: ...
