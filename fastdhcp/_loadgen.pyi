"""Stub of the compiled relay-mode DORA load driver core (ext/fastdhcp/_loadgen.pyx)."""

from collections.abc import Iterable

class Driver:
    discovers: int
    offers: int
    requests: int
    acks: int
    naks: int
    timeouts: int
    stray: int
    malformed: int
    send_errors: int
    send_waits: int
    turns: int

    def __init__(
        self,
        server_ip: str,
        server_port: int,
        relay_ip: str,
        *,
        clients: int = 100_000,
        rate: float = 0.0,
        window: int = 256,
        duration: float = 5.0,
        max_exchanges: int | None = None,
        timeout: float = 1.0,
        first_mac: int = 0,
        tick: float = 0.001,
        collect: bool = False,
        relay_port: int = 0,
    ) -> None: ...
    def close(self) -> None: ...
    def step(self, seconds: float) -> bool: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def done(self) -> bool: ...
    @property
    def elapsed(self) -> float: ...
    @property
    def cpu_seconds(self) -> float: ...
    def percentiles(self, which: str) -> dict[str, float]: ...
    def histogram(self, which: str) -> list[tuple[float, int]]: ...
    def acked_leases(self) -> list[tuple[int, int]]: ...

def _bucket_of(ns: int) -> int: ...
def _bucket_mid(b: int) -> float: ...
def _percentile_of(samples_ns: Iterable[int], q: float) -> float: ...
