"""Type stub for the compiled ``fastdhcp._packetpath`` (the service's per-datagram path)."""

from collections.abc import Callable
from typing import Any

from fastdhcp._engine import Decision, Engine
from fastdhcp._sockio import Outgoing
from fastdhcp.metrics import Metrics
from fastdhcp.pathreport import PathReport

class HeldAck:
    endpoint: Any
    out: Outgoing
    held_at: float
    def __init__(self, endpoint: Any, out: Outgoing, held_at: float) -> None: ...

class PacketPath:
    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        report: PathReport,
        guard: Any,
        hold: Callable[[list[HeldAck]], None] | None,
        l2_dest: Callable[[Any, Decision], int],
        debug: bool,
    ) -> None: ...
    def read(self, ep: Any, limit: int, now: float, t0: float) -> int: ...
    def flush(self, ep: Any) -> None: ...
    def deliver(self, held: list[HeldAck]) -> None: ...
