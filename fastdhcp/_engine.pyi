"""Type stub for the compiled engine (ext/fastdhcp/_engine.pyx); see fastdhcp.engine."""

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from fastdhcp._bitmap import PoolBitmap
from fastdhcp._codec import Message
from fastdhcp.config import Reservation
from fastdhcp.consts import Outcome
from fastdhcp.hosts import HostTable
from fastdhcp.leases import Lease, LeaseStore

class Link(NamedTuple):
    name: str
    address: int

class PoolStat(NamedTuple):
    subnet_id: int
    pool: str
    size: int
    used: int

class SubnetCounters:
    @property
    def assigned(self) -> int: ...
    @property
    def alloc_fail(self) -> int: ...
    @property
    def declined(self) -> int: ...
    @property
    def reclaimed(self) -> int: ...
    @property
    def reclaimed_declined(self) -> int: ...
    @property
    def conflicts(self) -> int: ...
    @property
    def rapid_commits(self) -> int: ...
    @property
    def ping_conflicts(self) -> int: ...
    @property
    def no_pools(self) -> int: ...

class Decision:
    outcome: int
    @property
    def kind(self) -> Outcome: ...
    reply: bytes | None
    dest_ip: int
    dest_port: int
    broadcast: bool
    l2_unicast: tuple[int, bytes] | None
    binding: Lease | None
    reason: str
    probe: int
    def __init__(
        self,
        kind: Outcome,
        reply: bytes | None = ...,
        dest_ip: int = ...,
        dest_port: int = ...,
        broadcast: bool = ...,
        l2_unicast: tuple[int, bytes] | None = ...,
        binding: Lease | None = ...,
        reason: str = ...,
    ) -> None: ...

def reply_destination(
    msg_type: int,
    giaddr: int,
    ciaddr: int,
    broadcast_flag: bool,
    yiaddr: int,
    htype: int,
    chaddr: bytes,
    server_port: int = ...,
    client_port: int = ...,
) -> tuple[int, int, bool, tuple[int, bytes] | None, bool]: ...

def fixed_fields(
    engine: Engine,
    subnet_id: int,
    res: Reservation | None,
    classes: Iterable[int],
) -> tuple[int, bytes | None, bytes | None]:
    """``(siaddr, sname, file)`` a reply in ``subnet_id`` carries for ``res`` and the class
    ids ``classes`` (assignment order): reservation > first class > subnet > global."""

class SubnetSelector:
    def __init__(self, subnets: Sequence[Any]) -> None: ...
    def containing(self, ip: int) -> Any | None: ...
    def group(self, subnet: Any) -> tuple[Any, ...]: ...
    def select(
        self,
        subnet_selection: int,
        link_selection: int,
        giaddr: int,
        ciaddr: int,
        link_name: str,
        link_address: int,
    ) -> Any | None: ...

class Engine:
    #: address -> (staged lease, the binding whose name it replaces or None): what DNS is owed
    #: when that lease commits (_engine_fqdn.pxi; fastdhcp.ddns.feed takes the entries)
    ddns_pending: dict[int, tuple[Lease, Lease | None]]
    def __init__(self, config: Any, store: LeaseStore, scope: Any = None) -> None: ...
    def handle(self, msg: Message, link: Link, now: float) -> Decision: ...
    def reclaim(self, now: float, limit: int = ...) -> float: ...
    def rollback(self, leases: Iterable[Lease]) -> None: ...
    def admin_put(self, lease: Lease) -> Lease | None: ...
    def admin_delete(self, ip: int) -> Lease | None: ...
    def reload(self, config: Any) -> None: ...
    def pool_stats(self) -> list[PoolStat]: ...
    def subnet_counters(self) -> dict[int, SubnetCounters]: ...
    def subscriber_counts(self) -> dict[tuple[int, bytes], int]: ...
    def subscriber_offers(self) -> dict[tuple[int, bytes], int]: ...
    def ping_result(self, key: bytes, ip: int, in_use: bool, now: float) -> bool: ...
    def last_classes(self) -> list[str]: ...
    def offered(self, key: bytes) -> int: ...
    def is_offered(self, ip: int) -> bool: ...
    @property
    def config(self) -> Any: ...
    def pool_bitmaps(self) -> list[PoolBitmap]: ...
    # hosts (cmd_hosts)
    def attach_hosts(self, hosts: HostTable) -> None: ...
    def set_ha_share(self, index: int, count: int) -> None: ...
    def hold_host_address(self, ip: int) -> None: ...
    def host_written(self, ip: int = ..., held: bool = ...) -> None: ...
