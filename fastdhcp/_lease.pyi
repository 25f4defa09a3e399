"""Type stub of the compiled fastdhcp._lease (ext/fastdhcp/_lease.pyx)."""

from typing import Any, ClassVar

class Lease:
    """One address binding. Addresses are host-order ``int``; times are unix seconds."""

    __match_args__: ClassVar[tuple[str, ...]]
    __hash__: ClassVar[None]  # type: ignore[assignment]
    ip: int
    client_key: bytes
    hw_address: bytes
    subnet_id: int
    state: int
    issued: int
    expires: int
    hostname: str
    relay_info: bytes
    def __init__(
        self,
        ip: int,
        client_key: bytes,
        hw_address: bytes,
        subnet_id: int,
        state: int,
        issued: int,
        expires: int,
        hostname: str = "",
        relay_info: bytes = b"",
    ) -> None: ...
    @property
    def active(self) -> bool: ...
    def astuple(self) -> tuple[int, bytes, bytes, int, int, int, int, str, bytes]: ...
    def __eq__(self, other: object) -> bool: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

def record_key(ip: int) -> bytes: ...
def record_state(raw: bytes) -> int | None: ...
def decode_record(key: bytes, raw: bytes) -> Lease: ...
def encode_record(lease: Lease) -> bytes: ...
