"""The configuration (TOML, or JSON with the same keys): loaded, validated whole, frozen.

Keys are Kea's (``[server]``, ``[lease-database]``, ``[global]``, ``[[subnet4]]``,
``[[subnet4.reservations]]``, ``valid-lifetime``, ``option-data`` ...); ``docs/configuration.md``
documents each with its default. :func:`load` picks the syntax by the file's extension (``.json``
is JSON, anything else TOML); :func:`loads` reads TOML text, :func:`loads_json` JSON text, and
:func:`from_document` an already parsed document (a control channel ``config-set``). They either
return a :class:`Config`
in which everything has been checked and every option value is already encoded into the bytes a
reply carries, or raise one :class:`~fastdhcp.errors.ConfigError` listing *every* problem found,
one line each: ``key.path: value 'x': reason``.

Inside the model addresses are host-order ``int``; only ``Subnet4.network`` is an
``ipaddress.IPv4Network`` and ``ServerConfig.listen_addresses`` are dotted text (socket edge).
Option values are merged once here: reservation > subnet > global.
"""

from __future__ import annotations

import copy
import difflib
import enum
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastdhcp._classify import Program
from fastdhcp.bytecode import compile_node
from fastdhcp.ddns import config as ddns_config
from fastdhcp.errors import ConfigError, ExpressionError
from fastdhcp.expression import members
from fastdhcp.expression import parse as parse_expression
from fastdhcp.ha import config as ha_config
from fastdhcp.leasequery import config as lq_config
from fastdhcp.options import (
    OptionDef,
    custom_option_def,
    decode_option,
    encode_domain_list,
    encode_option_data,
    format_value,
    ipv4,
)

__all__ = [
    "Config",
    "ClientClass",
    "FixedFields",
    "BUILTIN_CLASSES",
    "BUILTIN_CLASS_PREFIXES",
    "ServerConfig",
    "LeaseDatabaseConfig",
    "LimitsConfig",
    "PingCheck",
    "Lifetimes",
    "Defences",
    "Pool",
    "Reservation",
    "Subnet4",
    "from_document",
    "is_json_path",
    "load",
    "loads",
    "loads_json",
    "parse_size",
    "TOP_KEYS",
    "SERVER_KEYS",
    "LIMITS_KEYS",
    "LEASE_DATABASE_KEYS",
    "GLOBAL_KEYS",
    "SUBNET_KEYS",
    "RESERVATION_KEYS",
    "LIFETIME_KEYS",
    "DEFENCE_KEYS",
]

# -- the model ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """``[server.limits]``: request rate limits applied before the engine (fastdhcp.limits)."""

    client_rate: float = 0.0
    """Requests per second allowed per client (client-id, else hw-address); 0 = no limit."""
    client_burst: int | None = None
    """Requests a client may send at once above its rate; None = the rate, at least 1."""
    relay_rate: float = 0.0
    """Requests per second allowed per relay (giaddr, and source address of relayed
    traffic); 0 = no limit."""
    relay_burst: int | None = None
    """Requests a relay may send at once above its rate; None = the rate, at least 1."""
    client_table_size: int = 65536
    """Most clients whose rate is tracked at once (least recently seen are evicted)."""
    relay_table_size: int = 4096
    """Most relays whose rate is tracked at once."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """``[server]``: where the server listens and how it runs."""

    interfaces: tuple[str, ...] = ()
    """Broadcast-capable links served directly (one socket each, SO_BINDTODEVICE)."""
    listen_addresses: tuple[str, ...] = ()
    """Extra unicast-only IPv4 addresses (dotted text) for relayed traffic."""
    port: int = 67
    """UDP port the server listens on and relays are answered at (RFC 2131 4.1)."""
    client_port: int = 68
    """UDP port clients are answered at."""
    metrics: str | None = None
    """``host:port`` of the Prometheus text endpoint, or None for none."""
    server_id: int = 0
    """Server identifier (option 54) as host-order int; 0 = the receiving socket's address."""
    authoritative: bool = False
    """Default for subnets: NAK requests for addresses the server does not know (RFC 2131
    4.3.2); when False such requests are ignored."""
    log_level: str = "info"
    """One of debug, info, warning, error."""
    stats_interval: float = 60.0
    """Seconds between statistics log lines; 0 turns them off."""
    read_pace_ms: float | None = None
    """Milliseconds a socket that had datagrams waits before it is read again (read pacing);
    0 reads every datagram as soon as epoll reports it (lowest latency, more CPU per request at
    a few thousand requests per second); None keeps the built-in default (2 ms,
    ``fastdhcp.service.READ_PACE``)."""
    trusted_relays: tuple[tuple[int, int], ...] = ()
    """Relays allowed to forward requests, as inclusive (first, last) host-order ranges; a
    relayed request is served only if its giaddr and source address are both in it. Empty =
    every relay is trusted."""
    limits: LimitsConfig = LimitsConfig()
    """``[server.limits]``: per-client and per-relay rate limits."""
    workers: int = 1
    """Worker processes (docs/scaling.md): 1 = one process; N > 1 = a supervisor and N
    workers, each owning one slice of every pool (fastdhcp.slices)."""


class SocketType(enum.Enum):
    """``control-sockets[].socket-type`` (Kea 3's names)."""

    UNIX = "unix"
    HTTP = "http"
    HTTPS = "https"


@dataclass(frozen=True, slots=True)
class BasicAuthClient:
    """One ``authentication.clients[]`` entry: a user and the file holding its password
    (a password given in clear in the config is refused). The files are read when the config
    is loaded; ``password`` is never shown (repr) and never written back."""

    user: str
    password_file: str
    password: str = field(default="", repr=False)
    """The password read from ``password_file`` (one trailing newline stripped)."""
    user_file: str | None = None
    """The file ``user`` was read from, when given as ``user-file``."""


@dataclass(frozen=True, slots=True)
class ControlSocket:
    """One ``[[control-sockets]]`` entry: where Kea's management API is answered."""

    socket_type: SocketType
    """``unix``, ``http`` or ``https``."""
    socket_name: str = ""
    """Unix: the socket's path (created mode 0600, removed on exit)."""
    socket_address: str = "127.0.0.1"
    """HTTP(S): the address to listen on."""
    socket_port: int = 8000
    """HTTP(S): the TCP port."""
    trust_anchor: str | None = None
    """HTTPS: CA file (or directory) that client certificates must chain to."""
    cert_file: str | None = None
    """HTTPS: the server's certificate."""
    key_file: str | None = None
    """HTTPS: the server's private key."""
    cert_required: bool = True
    """HTTPS: refuse a client without a certificate signed by the trust anchor."""
    auth_realm: str = "fastdhcp"
    """HTTP(S) basic authentication realm."""
    auth_clients: tuple[BasicAuthClient, ...] = ()
    """HTTP(S) basic authentication users; empty = no authentication."""
    max_connections: int = 64
    """Connections served at once on this socket; more wait in the listen backlog."""
    idle_timeout: float = 10.0
    """Seconds a connection may stay idle (or a request take to arrive) before it is closed."""


@dataclass(frozen=True, slots=True)
class LeaseDatabaseConfig:
    """``[lease-database]``: the LMDB lease table and its group commit."""

    path: str = "/var/lib/fastdhcp"
    """LMDB environment directory (relative paths are relative to the working directory)."""
    sync: bool = True
    """fsync each group commit before its ACKs leave; False survives a crash, not power loss."""
    batch_size: int = 256
    """Most bindings committed in one write transaction."""
    max_wait_ms: float = 2.0
    """Longest time a binding waits for its batch to fill before the batch is committed."""
    map_size: int = 1 << 30
    """Initial LMDB map size in bytes (the map grows when full)."""


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """Lease and timer lengths in seconds, from ``[global]``, overridden per subnet."""

    valid_lifetime: int = 3600
    """Lease time granted when the client asks for none (option 51)."""
    min_valid_lifetime: int = 3600
    """Shortest lease granted to a client asking for less (defaults to valid-lifetime)."""
    max_valid_lifetime: int = 3600
    """Longest lease granted to a client asking for more (defaults to valid-lifetime)."""
    renew_timer: int | None = None
    """T1 (option 58); None = 50% of the granted lease time (RFC 2131 4.4.5)."""
    rebind_timer: int | None = None
    """T2 (option 59); None = 87.5% of the granted lease time (RFC 2131 4.4.5)."""
    offer_lifetime: int = 60
    """How long an offered address is held for the client's REQUEST (kept in memory)."""
    decline_probation_period: int = 86400
    """How long an address declined by a client (DHCPDECLINE) is kept out of use."""


@dataclass(frozen=True, slots=True)
class Defences:
    """Engine-level limits against clients that hoard or burn addresses, from ``[global]``."""

    subscriber_lease_limit: int = 0
    """Most addresses bound at once to one subscriber (per link); 0 = no limit."""
    subscriber_key: str = "circuit-id"
    """What names a subscriber: option 82 sub-option "circuit-id" (1) or "remote-id" (2)."""
    decline_limit: int = 0
    """Most DHCPDECLINEs honoured per client and per subscriber in one decline-window;
    0 = no limit."""
    decline_window: int = 3600
    """Length in seconds of the window decline-limit counts in."""
    decline_max_fraction: float = 1.0
    """Largest share of a pool's addresses that may be declined (on probation) at once;
    1.0 = no cap."""


@dataclass(frozen=True, slots=True)
class PingCheck:
    """Conflict detection before an OFFER (ISC dhcpd's ping-check; Kea 2.6's ping_check hook
    names), from ``[global]``, overridden per subnet key by key. Off by default."""

    enabled: bool = False
    """``enable-ping-check``: send ICMP echo requests to a new candidate address before it is
    offered; an address that answers is declined for decline-probation-period."""
    min_ping_requests: int = 1
    """``min-ping-requests``: echo requests that must go unanswered before the address is
    offered (sent one after the other, each waiting reply-timeout)."""
    reply_timeout_ms: int = 100
    """``reply-timeout``: milliseconds to wait for an echo reply after each request."""
    ping_cltt_secs: int = 60
    """``ping-cltt-secs``: an address offered back to its previous client is not checked if
    that client's lease was last seen (its CLTT) less than this many seconds ago."""


@dataclass(frozen=True, slots=True)
class FixedFields:
    """The BOOTP header fields of OFFER and ACK (RFC 2131 table 3) one level sets: Kea's
    ``next-server`` (siaddr), ``server-hostname`` (sname), ``boot-file-name`` (file). Each
    field is independent; None (and 0.0.0.0 or "", as in Kea) = not set at this level.
    Precedence (docs/classification.md): reservation > first class > subnet > global."""

    next_server: int | None = None
    """siaddr, host-order, or None."""
    server_hostname: str | None = None
    """sname (at most 64 bytes of UTF-8), or None."""
    boot_file_name: str | None = None
    """file (at most 128 bytes of UTF-8), or None."""

    def over(self, base: FixedFields) -> FixedFields:
        """These values where set, else ``base``'s (a subnet's over the global ones)."""
        return FixedFields(
            self.next_server if self.next_server else base.next_server,
            self.server_hostname if self.server_hostname else base.server_hostname,
            self.boot_file_name if self.boot_file_name else base.boot_file_name)

    def __bool__(self) -> bool:
        """True when any field is set."""
        return bool(self.next_server or self.server_hostname or self.boot_file_name)


@dataclass(frozen=True, slots=True)
class Pool:
    """A dynamic range ``first``..``last`` (inclusive, host-order ints), 1 to 2^24 addresses."""

    first: int
    """First address of the range."""
    last: int
    """Last address of the range."""
    text: str
    """The range as written in the config, for messages."""
    client_classes: tuple[str, ...] = ()
    """Guard: only clients in one of these classes may use the pool (Kea 2.2 ``client-class``,
    Kea 3 ``client-classes``); () = everybody. Checked with the classes assigned before pool
    selection (no required classes); a client's own reserved address is not guarded."""
    required_classes: tuple[str, ...] = ()
    """``require-client-classes`` (Kea 3 ``evaluate-additional-classes``): evaluated after the
    address is chosen from this pool, after the subnet's (docs/classification.md)."""
    options: dict[int, bytes] = field(default_factory=dict)
    """The pool's own ``option-data``, encoded: beats the subnet's and every class's, loses to
    a reservation's. Read-only by convention."""

    @property
    def size(self) -> int:
        """Number of addresses in the pool."""
        return self.last - self.first + 1

    def contains(self, ip: int) -> bool:
        """True if ``ip`` is in the pool."""
        return self.first <= ip <= self.last


@dataclass(frozen=True, slots=True)
class Reservation:
    """A fixed address for one client, found by exactly one identifier."""

    ip: int
    """The reserved address (in the subnet; may or may not lie inside a pool); 0 for a
    reservation without ``ip-address`` (the client is KNOWN and allocates from the pools)."""
    hw_address: bytes | None
    """chaddr to match (hlen bytes), or None."""
    client_id: bytes | None
    """Option 61 value to match, or None."""
    circuit_id: bytes | None
    """Option 82 sub-option 1 (agent circuit id, RFC 3046) to match, or None."""
    hostname: str
    """Host name to give the client (option 12), "" for none."""
    options: dict[int, bytes]
    """Encoded options, merged reservation > subnet > global (shared with the subnet's dict
    when the reservation sets none). Read-only by convention."""
    client_classes: tuple[str, ...] = ()
    """``client-classes``: classes the reserved client is put in, at the reservation lookup
    (before the KNOWN-dependent tests; docs/classification.md)."""
    own_options: dict[int, bytes] = field(default_factory=dict)
    """The reservation's own ``option-data`` (``options`` without what the subnet and global
    give): the top of the class precedence. Read-only by convention."""
    fixed: FixedFields = FixedFields()
    """This reservation's own ``next-server`` / ``server-hostname`` / ``boot-file-name`` (not
    merged: a class's value lies between the reservation's and the subnet's)."""


@dataclass(frozen=True, slots=True)
class Subnet4:
    """``[[subnet4]]``: one IPv4 subnet, its pools, reservations, options and lifetimes."""

    id: int
    """Stable subnet id (stored in leases)."""
    network: ipaddress.IPv4Network
    """The subnet prefix."""
    pools: tuple[Pool, ...]
    """Dynamic ranges, in config order."""
    relay: tuple[int, ...]
    """Extra giaddr values (host-order ints) that select this subnet."""
    interface: str | None
    """The server interface this subnet is on (unrelayed clients), or None."""
    shared_network: str | None
    """Name of the shared network (several subnets on one link), or None."""
    lifetimes: Lifetimes
    """Effective lifetimes: this subnet's values over [global]'s."""
    options: dict[int, bytes]
    """Encoded options, merged subnet > global, sorted by code. Includes subnet-mask (1) from
    the prefix unless option-data sets it, as Kea does. Read-only by convention."""
    reservations: tuple[Reservation, ...]
    """Host reservations, in config order."""
    authoritative: bool
    """NAK requests for unknown addresses (else ignore them); defaults to server.authoritative."""
    rapid_commit: bool = False
    """``rapid-commit`` (RFC 4039): a DISCOVER carrying option 80 is answered with an ACK (after
    the binding's group commit) instead of an OFFER; [global]'s value unless set here."""
    ping_check: PingCheck = PingCheck()
    """Conflict detection before an OFFER (the ping-check keys: [global]'s, overridden here)."""
    client_classes: tuple[str, ...] = ()
    """Guard: only clients in one of these classes may use the subnet (Kea 2.2
    ``client-class``, Kea 3 ``client-classes``); () = everybody. Checked at subnet selection,
    with the classes of pass 1 (not KNOWN/UNKNOWN: reservations are looked up after)."""
    required_classes: tuple[str, ...] = ()
    """``require-client-classes`` (Kea 3 ``evaluate-additional-classes``): evaluated after the
    address is chosen, before the pool's (docs/classification.md)."""
    own_options: dict[int, bytes] = field(default_factory=dict)
    """The subnet's own ``option-data`` (``options`` without the global ones), subnet-mask
    included: a class's option loses to these and beats the global ones. Read-only by
    convention."""
    fixed: FixedFields = FixedFields()
    """Effective ``next-server`` / ``server-hostname`` / ``boot-file-name``: each of the
    subnet's over [global]'s."""
    first_ip: int = field(init=False, repr=False, compare=False)
    """Network address as host-order int (derived)."""
    last_ip: int = field(init=False, repr=False, compare=False)
    """Broadcast address as host-order int (derived)."""
    by_hw_address: Mapping[bytes, Reservation] = field(init=False, repr=False, compare=False)
    """Reservations by hw-address (derived)."""
    by_client_id: Mapping[bytes, Reservation] = field(init=False, repr=False, compare=False)
    """Reservations by client-id (derived)."""
    by_circuit_id: Mapping[bytes, Reservation] = field(init=False, repr=False, compare=False)
    """Reservations by circuit-id (derived)."""
    reserved_ips: frozenset[int] = field(init=False, repr=False, compare=False)
    """Every reserved address of this subnet (derived): the allocator keeps them out."""

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "first_ip", int(self.network.network_address))
        setattr_(self, "last_ip", int(self.network.broadcast_address))
        setattr_(self, "by_hw_address",
                 {r.hw_address: r for r in self.reservations if r.hw_address is not None})
        setattr_(self, "by_client_id",
                 {r.client_id: r for r in self.reservations if r.client_id is not None})
        setattr_(self, "by_circuit_id",
                 {r.circuit_id: r for r in self.reservations if r.circuit_id is not None})
        setattr_(self, "reserved_ips", frozenset(r.ip for r in self.reservations))

    def contains(self, ip: int) -> bool:
        """True if ``ip`` (host-order int) is inside the subnet prefix."""
        return self.first_ip <= ip <= self.last_ip


# -- client classification (issue 16; docs/classification.md) ---------------------------------

BUILTIN_CLASSES = ("ALL", "KNOWN", "UNKNOWN", "BOOTP")
"""Kea 2.2's built-in classes, with their fixed ids 0..3 in :attr:`Config.class_ids`. DROP is
special but not built-in: ``member('DROP')`` needs a class DROP defined earlier."""
BUILTIN_CLASS_PREFIXES = ("VENDOR_CLASS_", "HA_", "AFTER_", "EXTERNAL_")
"""Name prefixes of Kea's built-in classes; ``member()`` of such a name needs no definition."""
_DEPENDS_KNOWN = ("KNOWN", "UNKNOWN")


@dataclass(frozen=True, slots=True)
class ClientClass:
    """``[[client-classes]]``: one of Kea's client classes, its test and what it gives.

    The engine assigns classes in Kea's order and applies guards and option precedence as
    docs/classification.md describes (fixed fields and vendor options: see there too).
    """

    name: str
    """Unique, case-sensitive class name (``VENDOR_CLASS_x`` names the option 60 class)."""
    id: int
    """The class's bit in the engine's class set (``member()`` reads it); see
    :attr:`Config.class_ids`."""
    test: str | None
    """The boolean expression as written; None for a class assigned only by a reservation,
    by ``VENDOR_CLASS_`` naming or by hooks."""
    program: Program | None = field(compare=False, repr=False)
    """``test`` compiled for the cdef ``evaluate`` of ext/fastdhcp/_classify.pyx; None without
    a test."""
    depends_on_known: bool = False
    """The test reads KNOWN/UNKNOWN (directly or through ``member()`` of a class that does):
    Kea evaluates it in pass 2, after the reservation lookup."""
    only_if_required: bool = False
    """Evaluated only when a subnet, pool or shared network requires it (Kea 3:
    ``only-in-additional-list``)."""
    options: dict[int, bytes] = field(default_factory=dict)
    """``option-data``, encoded. Read-only by convention."""
    option_defs: tuple[OptionDef, ...] = ()
    """Class-local ``option-def`` entries (:func:`fastdhcp.options.custom_option_def`):
    options 43 and 224-254, 43's sub-options, 125's per enterprise; the class's option-data
    is encoded with them."""
    fixed: FixedFields = FixedFields()
    """siaddr / sname / file for members (the first class in assignment order that sets a
    field gives it)."""
    valid_lifetime: int | None = None
    """Lease time for members, or None (the subnet's)."""
    min_valid_lifetime: int | None = None
    """Lower bound on a client's requested lease time, or None."""
    max_valid_lifetime: int | None = None
    """Upper bound on a client's requested lease time, or None."""
    user_context: dict[str, Any] | None = None
    """Kea's ``user-context``: kept, never interpreted."""
    comment: str | None = None
    """Kea's ``comment``: kept, never interpreted."""


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    server: ServerConfig
    """``[server]``."""
    lease_database: LeaseDatabaseConfig
    """``[lease-database]``."""
    subnets: tuple[Subnet4, ...]
    """``[[subnet4]]`` entries, in config order."""
    source: str
    """Where the config came from (file path or "<string>"), for messages."""
    lifetimes: Lifetimes = Lifetimes()
    """``[global]`` lifetimes (each subnet holds its effective copy)."""
    options: dict[int, bytes] = field(default_factory=dict)
    """``[global]`` option-data, encoded (each subnet holds its merged copy)."""
    defences: Defences = Defences()
    """``[global]`` subscriber lease limit and DECLINE limits (the engine's defences)."""
    control_sockets: tuple[ControlSocket, ...] = ()
    """``[[control-sockets]]``: Kea's management API (docs/control-api.md)."""
    document: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The document this config was validated from, as parsed (a private deep copy; TOML and
    JSON give the same shape): what ``config-get`` shows and ``config-write`` writes
    (:mod:`fastdhcp.configdoc`). Not part of equality: two documents that say the same thing
    (one with defaults spelled out) make equal configs. Read-only by convention."""
    high_availability: ha_config.HAConfig | None = None
    """``[high-availability]``: the HA pair (docs/high-availability.md); None when unset."""
    ddns: ddns_config.DdnsConfig | None = None
    """``[ddns]``: client names and DNS updates (docs/ddns.md); None when unset."""
    fixed: FixedFields = FixedFields()
    """``[global]`` next-server / server-hostname / boot-file-name (each subnet holds its
    effective copy)."""
    leasequery: lq_config.LeaseQueryConfig | None = None
    """``[leasequery]``: RFC 4388 / RFC 6926 leasequery (docs/leasequery.md); None: off."""
    client_classes: tuple[ClientClass, ...] = ()
    """``[[client-classes]]``, in definition order (Kea evaluates tests in this order)."""
    class_ids: dict[str, int] = field(default_factory=dict)
    """Class name -> id in the engine's class set: the built-ins 0..3, then every defined
    class in order, then built-in-prefixed names that ``member()`` uses without a definition."""

    def subnet(self, subnet_id: int) -> Subnet4 | None:
        """The subnet with id ``subnet_id``, or None."""
        for s in self.subnets:
            if s.id == subnet_id:
                return s
        return None


#: Most ``[server] workers``: the steering program's ``mod`` is a 32-bit constant, but every
#: worker holds a socket per listen address and a slice of every pool; 256 is far past the
#: core counts the design is for (docs/scaling.md: 16).
MAX_WORKERS = 256

# -- key tables (also what docs/configuration.md must document) --------------------------------

TOP_KEYS = ("server", "lease-database", "global", "subnet4", "control-sockets",
            "high-availability", "ddns", "client-classes", "leasequery")
CLIENT_CLASS_KEYS = (
    "name", "test", "only-if-required", "only-in-additional-list", "option-data", "option-def",
    "next-server", "server-hostname", "boot-file-name", "valid-lifetime", "min-valid-lifetime",
    "max-valid-lifetime", "user-context", "comment",
)
CLASS_OPTION_DEF_KEYS = ("name", "code", "type", "space", "encapsulate", "array",
                         "record-types")
CONTROL_SOCKET_KEYS = (
    "socket-type", "socket-name", "socket-address", "socket-port", "trust-anchor",
    "cert-file", "key-file", "cert-required", "authentication", "max-connections",
    "idle-timeout", "user-context", "comment",
)
SERVER_KEYS = (
    "interfaces", "listen-addresses", "port", "client-port", "metrics", "server-id",
    "authoritative", "log-level", "stats-interval", "read-pace-ms", "trusted-relays", "limits",
    "workers",
)
LIMITS_KEYS = (
    "client-rate", "client-burst", "relay-rate", "relay-burst", "client-table-size",
    "relay-table-size",
)
LEASE_DATABASE_KEYS = ("path", "sync", "batch-size", "max-wait-ms", "map-size")
LIFETIME_KEYS = (
    "valid-lifetime", "min-valid-lifetime", "max-valid-lifetime", "renew-timer",
    "rebind-timer", "offer-lifetime", "decline-probation-period",
)
DEFENCE_KEYS = (
    "subscriber-lease-limit", "subscriber-key", "decline-limit", "decline-window",
    "decline-max-fraction",
)
PING_CHECK_KEYS = ("enable-ping-check", "min-ping-requests", "reply-timeout", "ping-cltt-secs")
FIXED_FIELD_KEYS = ("next-server", "server-hostname", "boot-file-name")
GLOBAL_KEYS = (*LIFETIME_KEYS, "option-data", *DEFENCE_KEYS, "rapid-commit", *PING_CHECK_KEYS,
               *FIXED_FIELD_KEYS)
SUBNET_KEYS = (
    "id", "subnet", "pools", "relay", "interface", "shared-network", "option-data",
    "authoritative", "reservations", *LIFETIME_KEYS, "client-class", "client-classes",
    "require-client-classes", "evaluate-additional-classes", "rapid-commit", *PING_CHECK_KEYS,
    *FIXED_FIELD_KEYS,
)
RESERVATION_KEYS = (
    "hw-address", "client-id", "circuit-id", "ip-address", "hostname", "option-data",
    "client-classes", *FIXED_FIELD_KEYS,
)
POOL_KEYS = ("pool", "client-class", "client-classes", "require-client-classes",
             "evaluate-additional-classes", "option-data")

# Kea keys fastdhcp knows and does not support, and why: said instead of "unknown key".
_UNSUPPORTED = {
    "ping-channel-threads": "fastdhcp sends and reads its ping-check probes on the event loop "
                            "(one non-blocking ICMP socket), with no thread pool to size",
    "flex-id": "fastdhcp has no flex_id hook, so a flex-id reservation could never match a "
               "client (use hw-address, client-id or circuit-id)",
}

# Where a key that is unknown in one table does belong: a better hint than "did you mean".
_HOME = {
    **{k: "[server]" for k in SERVER_KEYS if k != "authoritative"},
    **{k: "[lease-database]" for k in LEASE_DATABASE_KEYS},
    **{k: "[server.limits]" for k in LIMITS_KEYS},
    **{k: "[global] or a [[subnet4]]" for k in LIFETIME_KEYS},
    **{k: "[global]" for k in DEFENCE_KEYS},
    "id": "[[subnet4]]", "subnet": "[[subnet4]]", "pools": "[[subnet4]]",
    "relay": "[[subnet4]]", "interface": "[[subnet4]]", "shared-network": "[[subnet4]]",
    "reservations": "[[subnet4]]",
    "hw-address": "[[subnet4.reservations]]", "client-id": "[[subnet4.reservations]]",
    "circuit-id": "[[subnet4.reservations]]", "ip-address": "[[subnet4.reservations]]",
    "hostname": "[[subnet4.reservations]]",
}

# Names operators bring from ISC dhcpd, Kea JSON or habit, too far from ours for difflib.
_ALIASES = {
    "ip": "ip-address", "address": "ip-address", "fixed-address": "ip-address",
    "mac": "hw-address", "mac-address": "hw-address", "hardware-address": "hw-address",
    "hardware": "hw-address", "host-name": "hostname", "options": "option-data",
    "option": "option-data", "default-lease-time": "valid-lifetime",
    "lease-time": "valid-lifetime", "max-lease-time": "max-valid-lifetime",
    "min-lease-time": "min-valid-lifetime", "subnet-id": "id", "range": "pools",
    "pool": "pools", "prefix": "subnet", "network": "subnet", "interface": "interfaces",
    "listen": "listen-addresses", "addresses": "listen-addresses", "shared-networks":
    "shared-network", "subnets": "subnet4", "subnet": "subnet4",
    "leases": "lease-database", "lease-db": "lease-database", "database": "lease-database",
}

_LOG_LEVELS = {"debug": "debug", "info": "info", "warning": "warning", "warn": "warning",
               "error": "error"}
_MAX_LIFETIME = 0x7FFFFFFF  # 0xFFFFFFFF means "infinite" in option 51; we do not grant that
_MAX_POOL = 1 << 24
_SIZE_UNITS = {
    "": 1, "b": 1,
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
    "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
}
_IFNAME = re.compile(r"^[^\s/:]{1,15}$")
_HEX_SEP = re.compile(r"[\s:.-]")

# Kea's ping_check key that has no meaning here: refused with its reason wherever it is written.
_PING_UNSUPPORTED = ("ping-channel-threads",)

_BAD = object()  # a value that failed to parse (its problem is already recorded)


class _Problems:
    """Collects problem lines in the ``key.path: value 'x': reason`` form."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def bad(self, path: str, value: object, reason: str) -> object:
        self.lines.append(f"{path}: value {format_value(value)}: {reason}")
        return _BAD

    def note(self, path: str, reason: str) -> object:
        self.lines.append(f"{path}: {reason}")
        return _BAD

    def extend(self, lines: list[str]) -> None:
        self.lines.extend(lines)


# -- scalar parsers: return the value, or _BAD after recording why ----------------------------


def _check_keys(p: _Problems, table: Mapping[str, Any], path: str, allowed: tuple[str, ...],
                where: str) -> None:
    for key, value in table.items():
        if key in allowed:
            continue
        reason = "unknown key"
        close = difflib.get_close_matches(key.lower().replace("_", "-"), allowed, n=1,
                                          cutoff=0.75)
        alias = _ALIASES.get(key.lower().replace("_", "-"))
        if alias in allowed:
            close = [alias]
        if key in _UNSUPPORTED and (allowed is RESERVATION_KEYS or key in _PING_UNSUPPORTED):
            reason += f": {_UNSUPPORTED[key]}"
        elif key in LIMITS_KEYS:  # exact name of a [server.limits] key: say where it goes
            reason += f"; '{key}' belongs in [server.limits], not in {where}"
        elif close:
            reason += f"; did you mean '{close[0]}'?"
        elif key in _HOME:
            reason += f"; '{key}' belongs in {_HOME[key]}, not in {where}"
        else:
            reason += f" in {where} (known: {', '.join(allowed)})"
        p.bad(f"{path}.{key}" if path else key, value, reason)


def _int(p: _Problems, path: str, value: object, lo: int, hi: int) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        return p.bad(path, value, f"must be an integer from {lo} to {hi}")
    if not lo <= value <= hi:
        return p.bad(path, value, f"out of range: must be from {lo} to {hi}")
    return value


def _float(p: _Problems, path: str, value: object, lo: float, hi: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return p.bad(path, value, f"must be a number from {lo:g} to {hi:g}")
    if not lo <= value <= hi:
        return p.bad(path, value, f"out of range: must be from {lo:g} to {hi:g}")
    return float(value)


def _bool(p: _Problems, path: str, value: object) -> Any:
    if not isinstance(value, bool):
        return p.bad(path, value, "must be true or false")
    return value


def _str(p: _Problems, path: str, value: object) -> Any:
    if not isinstance(value, str) or not value.strip():
        return p.bad(path, value, "must be a non-empty string")
    return value


def _ipv4(p: _Problems, path: str, value: object, *, unicast: bool = True) -> Any:
    if not isinstance(value, str):
        return p.bad(path, value, "must be an IPv4 address as a string, e.g. '192.0.2.1'")
    try:
        addr = ipv4(value)
    except ValueError:
        return p.bad(path, value, "not an IPv4 address")
    # multicast (224/4), 0.0.0.0 and the limited broadcast address are never a host
    if unicast and (addr >> 28 == 0xE or addr == 0 or addr == 0xFFFFFFFF):
        return p.bad(path, value, "must be a unicast address")
    return addr


def _str_list(p: _Problems, path: str, value: object) -> Any:
    if isinstance(value, str):
        return p.bad(path, value, "must be an array of strings, e.g. [\"...\"]")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return p.bad(path, value, "must be an array of strings")
    return value


def parse_size(value: object) -> int:
    """Bytes from an int or text such as ``"4GiB"``, ``"512 MiB"``, ``"2G"`` (binary units;
    ``kB``/``MB``/``GB``/``TB`` are decimal). Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("must be a size in bytes or text such as '4GiB'")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a size in bytes or text such as '4GiB'")
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", value)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError("must be a size in bytes or text such as '4GiB', '512MiB'")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def _hex_bytes(text: str) -> bytes:
    t = text.strip()
    if t[:2].lower() == "0x":
        t = t[2:]
    t = _HEX_SEP.sub("", t)
    if not t or len(t) % 2:
        raise ValueError("needs an even number of hex digits")
    return bytes.fromhex(t)


def _identifier(p: _Problems, path: str, value: object, kind: str) -> Any:
    """hw-address: hex bytes (':', '-', '.' separators). client-id / circuit-id: hex, or text
    in single quotes inside the TOML string (Kea's syntax): ``"'ge-0/0/1.100'"``."""
    if not isinstance(value, str) or not value.strip():
        return p.bad(path, value, "must be a non-empty string")
    text = value.strip()
    if kind != "hw-address" and len(text) >= 2 and text[0] == text[-1] == "'":
        data = text[1:-1].encode("utf-8")
        if not data:
            return p.bad(path, value, "empty quoted text")
    else:
        try:
            data = _hex_bytes(text)
        except ValueError:
            quote = "" if kind == "hw-address" else (
                ", or text in single quotes inside the string, e.g. \"'eth0'\"")
            return p.bad(path, value, f"not hex bytes such as 'aa:bb:cc:dd:ee:ff'{quote}")
    if kind == "hw-address" and not 1 <= len(data) <= 16:
        return p.bad(path, value, "a hardware address has 1 to 16 bytes (chaddr)")
    if kind == "client-id" and not 2 <= len(data) <= 255:
        return p.bad(path, value, "a client identifier has 2 to 255 bytes (RFC 2132 9.14)")
    if kind == "circuit-id" and not 1 <= len(data) <= 255:
        return p.bad(path, value, "a circuit id has 1 to 255 bytes (RFC 3046 3.1)")
    return data


def _options(p: _Problems, path: str, value: object,
             defs: tuple[OptionDef, ...] = ()) -> dict[int, bytes]:
    try:
        return encode_option_data(value, path, defs)
    except ConfigError as exc:
        p.extend(exc.problems)
        return {}


def _table(p: _Problems, path: str, value: object) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        p.bad(path, value, "must be a table")
        return None
    return value


# -- sections --------------------------------------------------------------------------------


def _server(p: _Problems, t: dict[str, Any]) -> ServerConfig:
    _check_keys(p, t, "server", SERVER_KEYS, "[server]")
    kw: dict[str, Any] = {}
    if "interfaces" in t:
        names = _str_list(p, "server.interfaces", t["interfaces"])
        if names is not _BAD:
            seen: set[str] = set()
            for i, name in enumerate(names):
                if not _IFNAME.match(name):
                    p.bad(f"server.interfaces[{i}]", name,
                          "not an interface name (1-15 characters, no spaces, '/' or ':')")
                elif name in seen:
                    p.bad(f"server.interfaces[{i}]", name, "listed twice")
                seen.add(name)
            kw["interfaces"] = tuple(names)
    if "listen-addresses" in t:
        addrs = _str_list(p, "server.listen-addresses", t["listen-addresses"])
        if addrs is not _BAD:
            out = []
            for i, a in enumerate(addrs):
                ip = _ipv4(p, f"server.listen-addresses[{i}]", a)
                if ip is _BAD:
                    continue
                text = str(ipaddress.IPv4Address(ip))
                if text in out:
                    p.bad(f"server.listen-addresses[{i}]", a, "listed twice")
                out.append(text)
            kw["listen_addresses"] = tuple(out)
    for key, attr in (("port", "port"), ("client-port", "client_port")):
        if key in t:
            kw[attr] = _int(p, f"server.{key}", t[key], 1, 65535)
    if "metrics" in t:
        kw["metrics"] = _metrics(p, t["metrics"])
    if "server-id" in t:
        kw["server_id"] = _ipv4(p, "server.server-id", t["server-id"])
    if "authoritative" in t:
        kw["authoritative"] = _bool(p, "server.authoritative", t["authoritative"])
    if "log-level" in t:
        level = t["log-level"]
        if not isinstance(level, str) or level.lower() not in _LOG_LEVELS:
            p.bad("server.log-level", level, "must be one of debug, info, warning, error")
        else:
            kw["log_level"] = _LOG_LEVELS[level.lower()]
    if "stats-interval" in t:
        kw["stats_interval"] = _float(p, "server.stats-interval", t["stats-interval"], 0, 86400)
    if "read-pace-ms" in t:
        kw["read_pace_ms"] = _float(p, "server.read-pace-ms", t["read-pace-ms"], 0, 100)
    if "trusted-relays" in t:
        kw["trusted_relays"] = _trusted_relays(p, t["trusted-relays"])
    if "workers" in t:
        kw["workers"] = _int(p, "server.workers", t["workers"], 1, MAX_WORKERS)
    if "limits" in t:
        lt = _table(p, "server.limits", t["limits"])
        if lt is not None:
            kw["limits"] = _limits(p, lt)
    kw = {k: v for k, v in kw.items() if v is not _BAD}
    return ServerConfig(**kw)


def _trusted_relays(p: _Problems, value: object) -> Any:
    """An array of relay addresses or prefixes -> sorted (first, last) ranges."""
    path = "server.trusted-relays"
    items = _str_list(p, path, value)
    if items is _BAD:
        return _BAD
    out: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for i, text in enumerate(items):
        ipath = f"{path}[{i}]"
        if "/" in text:
            try:
                net = ipaddress.IPv4Network(text.strip(), strict=True)
            except ValueError as exc:
                p.bad(ipath, text, f"not an IPv4 address or prefix ({exc})")
                continue
            rng = (int(net.network_address), int(net.broadcast_address))
        else:
            ip = _ipv4(p, ipath, text)
            if ip is _BAD:
                continue
            rng = (ip, ip)
        if rng in seen:
            p.bad(ipath, text, "listed twice")
            continue
        seen.add(rng)
        out.append(rng)
    return tuple(sorted(out))


def _untrusted_relays(p: _Problems, path: str, subnet: Subnet4,
                      trusted: tuple[tuple[int, int], ...]) -> None:
    """A subnet's ``relay`` address that server.trusted-relays does not cover could never be
    served: every request through it would be dropped as untrusted."""
    if not trusted:
        return
    for j, ip in enumerate(subnet.relay):
        if not any(a <= ip <= b for a, b in trusted):
            p.bad(f"{path}.relay[{j}]", str(ipaddress.IPv4Address(ip)),
                  "not in server.trusted-relays: requests through it would all be dropped")


def _limits(p: _Problems, t: dict[str, Any]) -> LimitsConfig:
    _check_keys(p, t, "server.limits", LIMITS_KEYS, "[server.limits]")
    kw: dict[str, Any] = {}
    for key in ("client-rate", "relay-rate"):
        if key in t:
            kw[key.replace("-", "_")] = _float(p, f"server.limits.{key}", t[key], 0, 1e6)
    for key in ("client-burst", "relay-burst"):
        if key in t:
            kw[key.replace("-", "_")] = _int(p, f"server.limits.{key}", t[key], 1, 1_000_000)
    if "client-table-size" in t:
        kw["client_table_size"] = _int(p, "server.limits.client-table-size",
                                       t["client-table-size"], 16, 1 << 24)
    if "relay-table-size" in t:
        kw["relay_table_size"] = _int(p, "server.limits.relay-table-size",
                                      t["relay-table-size"], 16, 1 << 20)
    kw = {k: v for k, v in kw.items() if v is not _BAD}
    return LimitsConfig(**kw)


def _metrics(p: _Problems, value: object) -> Any:
    path = "server.metrics"
    if not isinstance(value, str):
        return p.bad(path, value, "must be 'host:port', e.g. '127.0.0.1:9167'")
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdecimal() or not 1 <= int(port) <= 65535:
        return p.bad(path, value, "must be 'host:port' with a port from 1 to 65535")
    if host != "localhost":
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return p.bad(path, value, "host must be an IPv4 address or 'localhost'")
    return value


def _control_sockets(p: _Problems, raw: object) -> tuple[ControlSocket, ...]:
    if not isinstance(raw, list):
        p.bad("control-sockets", raw, "must be an array of tables: write [[control-sockets]]")
        return ()
    out: list[ControlSocket] = []
    names: dict[str, str] = {}
    for i, t in enumerate(raw):
        path = f"control-sockets[{i}]"
        if not isinstance(t, dict):
            p.bad(path, t, "must be a table")
            continue
        sock = _control_socket(p, t, path)
        if sock is None:
            continue
        key = (sock.socket_name if sock.socket_type is SocketType.UNIX
               else f"{sock.socket_address}:{sock.socket_port}")
        if key in names:
            p.bad(path, key, f"the same socket as {names[key]}")
            continue
        names[key] = path
        out.append(sock)
    return tuple(out)


def _control_socket(p: _Problems, t: dict[str, Any], path: str) -> ControlSocket | None:
    errors_before = len(p.lines)
    _check_keys(p, t, path, CONTROL_SOCKET_KEYS, "[[control-sockets]]")
    kind = t.get("socket-type")
    try:
        stype = SocketType(kind)
    except ValueError:
        p.bad(f"{path}.socket-type", kind, "must be one of unix, http, https")
        return None
    kw: dict[str, Any] = {}
    if "max-connections" in t:
        kw["max_connections"] = _int(p, f"{path}.max-connections", t["max-connections"], 1,
                                     4096)
    if "idle-timeout" in t:
        kw["idle_timeout"] = _float(p, f"{path}.idle-timeout", t["idle-timeout"], 0.1, 3600.0)
    if stype is SocketType.UNIX:
        for key in ("socket-address", "socket-port", "trust-anchor", "cert-file", "key-file",
                    "cert-required", "authentication"):
            if key in t:
                p.note(f"{path}.{key}", "only for socket-type http or https")
        name = _str(p, f"{path}.socket-name", t.get("socket-name"))
        if isinstance(name, str) and not name:
            p.bad(f"{path}.socket-name", name, "must be a path")
        elif isinstance(name, str) and len(name.encode()) > 107:
            p.bad(f"{path}.socket-name", name, "longer than a Unix socket path may be (107 "
                  "bytes)")
        kw["socket_name"] = name
    else:
        # The HTTP(S) keys: parsed and checked by the HTTP transport's config reader.
        kw.update(_http_socket(p, t, path, stype))
    if len(p.lines) > errors_before:
        return None
    return ControlSocket(stype, **kw)


_TLS_KEYS = ("trust-anchor", "cert-file", "key-file", "cert-required")
AUTHENTICATION_KEYS = ("type", "realm", "directory", "clients", "user-context", "comment")
AUTH_CLIENT_KEYS = ("user", "user-file", "password-file", "user-context", "comment")


def _http_socket(p: _Problems, t: dict[str, Any], path: str,
                 stype: SocketType) -> dict[str, Any]:
    """The HTTP(S) fields of a control socket (``ControlSocket`` keyword arguments): the
    address and port, TLS for https (its files loaded here, so that a certificate that does
    not load fails check-config, not the start), basic authentication (password files read
    here). An http socket reachable beyond loopback needs authentication (Kea 3.2 refuses it
    outright without TLS or authentication)."""
    kw: dict[str, Any] = {}
    if "socket-name" in t:
        p.note(f"{path}.socket-name", "only for socket-type unix (http and https take "
               "socket-address and socket-port)")
    address = t.get("socket-address", "127.0.0.1")  # ControlSocket's default
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    if not isinstance(address, str):
        p.bad(f"{path}.socket-address", address, "must be an IP address as a string, e.g. "
              "'127.0.0.1'")
    else:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            p.bad(f"{path}.socket-address", address, "not an IPv4 or IPv6 address")
        else:
            kw["socket_address"] = str(ip)
    if "socket-port" in t:
        kw["socket_port"] = _int(p, f"{path}.socket-port", t["socket-port"], 1, 65535)
    if stype is SocketType.HTTPS:
        kw.update(_tls(p, t, path))
    else:
        for key in _TLS_KEYS:
            if key in t:
                p.note(f"{path}.{key}", "TLS keys need socket-type = \"https\" (this socket "
                       "is plain http)")
    auth = t.get("authentication")
    if auth is not None:
        kw.update(_authentication(p, auth, f"{path}.authentication"))
    if (stype is SocketType.HTTP and auth is None and ip is not None
            and not ip.is_loopback):
        p.bad(f"{path}.socket-address", address, "an http control socket beyond loopback "
              "needs authentication or TLS (socket-type https): whoever reaches it could "
              "change leases, the config, or stop the server")
    return {k: v for k, v in kw.items() if v is not _BAD}


def _tls(p: _Problems, t: dict[str, Any], path: str) -> dict[str, Any]:
    from fastdhcp.control.tls import TlsFileError, server_context

    kw: dict[str, Any] = {}
    files: dict[str, str] = {}
    for key in ("trust-anchor", "cert-file", "key-file"):
        if key not in t:
            p.note(f"{path}.{key}", "required for socket-type https (trust-anchor, cert-file "
                   "and key-file go together, as in Kea)")
            continue
        value = _str(p, f"{path}.{key}", t[key])
        if value is not _BAD:
            files[key] = value
            kw[key.replace("-", "_")] = value
    required = True
    if "cert-required" in t:
        required = kw["cert_required"] = _bool(p, f"{path}.cert-required", t["cert-required"])
    if len(files) == 3 and isinstance(required, bool):
        try:
            server_context(files["trust-anchor"], files["cert-file"], files["key-file"],
                           required)
        except TlsFileError as exc:
            p.bad(f"{path}.{exc.key}", exc.path, f"does not load: {exc.reason}")
    return kw


def _authentication(p: _Problems, auth: object, path: str) -> dict[str, Any]:
    if not isinstance(auth, dict):
        p.bad(path, auth, "must be a table: { type = \"basic\", realm = ..., clients = [...] }")
        return {}
    _check_keys(p, auth, path, AUTHENTICATION_KEYS, "authentication")
    kw: dict[str, Any] = {}
    if auth.get("type") != "basic":
        p.bad(f"{path}.type", auth.get("type"), "must be \"basic\" (the only type Kea has)")
    if "realm" in auth:
        realm = _str(p, f"{path}.realm", auth["realm"])
        if isinstance(realm, str) and ('"' in realm or "\\" in realm or not realm.isprintable()):
            realm = p.bad(f"{path}.realm", realm, "may not hold a quote, a backslash or a "
                          "control character (it is sent in a WWW-Authenticate header)")
        kw["auth_realm"] = realm
    directory = ""
    if "directory" in auth:
        d = _str(p, f"{path}.directory", auth["directory"])
        if isinstance(d, str):
            directory = d
    clients = auth.get("clients")
    if not isinstance(clients, list) or not clients:
        p.bad(f"{path}.clients", clients, "must be a non-empty array of { user = ..., "
              "password-file = ... } tables")
        return kw
    out: list[BasicAuthClient] = []
    users: dict[str, str] = {}
    for i, c in enumerate(clients):
        cpath = f"{path}.clients[{i}]"
        client = _auth_client(p, c, cpath, directory)
        if client is None:
            continue
        if client.user in users:
            p.note(f"{cpath}.user", f"user '{client.user}' is already {users[client.user]}")
            continue
        users[client.user] = cpath
        out.append(client)
    kw["auth_clients"] = tuple(out)
    return kw


def _auth_client(p: _Problems, c: object, path: str, directory: str) -> BasicAuthClient | None:
    if not isinstance(c, dict):
        p.note(path, "must be a table: { user = ..., password-file = ... }")
        return None
    errors_before = len(p.lines)
    if "password" in c:  # never echo it: the value is a secret
        p.note(f"{path}.password", "a password in clear text in the config is refused: write "
               "it to a file only the server can read and give password-file")
    for key in c:  # said without its value, which may be a secret
        if key not in AUTH_CLIENT_KEYS and key != "password":
            p.note(f"{path}.{key}", "unknown key in authentication.clients[] (known: "
                   f"{', '.join(AUTH_CLIENT_KEYS)})")
    user: object = _BAD
    user_file: str | None = None
    if ("user" in c) == ("user-file" in c):
        p.note(path, "give exactly one of user and user-file")
    elif "user" in c:
        user = _str(p, f"{path}.user", c["user"])
    else:
        uf = _str(p, f"{path}.user-file", c["user-file"])
        if isinstance(uf, str):
            user_file = os.path.join(directory, uf)
            user = _secret_file(p, f"{path}.user-file", user_file)
    if isinstance(user, str) and ":" in user:
        p.note(f"{path}.user", "a basic-auth user may not contain ':'")
    password_file = ""
    password: object = _BAD
    if "password-file" not in c:
        p.note(f"{path}.password-file", "required: the file holding this user's password")
    else:
        pf = _str(p, f"{path}.password-file", c["password-file"])
        if isinstance(pf, str):
            password_file = os.path.join(directory, pf)
            password = _secret_file(p, f"{path}.password-file", password_file)
    if len(p.lines) > errors_before or not isinstance(user, str) \
            or not isinstance(password, str):
        return None
    return BasicAuthClient(user, password_file, password, user_file)


def _secret_file(p: _Problems, path: str, name: str) -> object:
    """The text of a user or password file, one trailing newline stripped."""
    try:
        with open(name, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return p.bad(path, name, f"cannot be read: {why}")
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        return p.bad(path, name, "is empty")
    if "\n" in text or "\r" in text:
        return p.bad(path, name, "holds more than one line")
    return text


def _lease_db(p: _Problems, t: dict[str, Any]) -> LeaseDatabaseConfig:
    _check_keys(p, t, "lease-database", LEASE_DATABASE_KEYS, "[lease-database]")
    kw: dict[str, Any] = {}
    if "path" in t:
        kw["path"] = _str(p, "lease-database.path", t["path"])
    if "sync" in t:
        kw["sync"] = _bool(p, "lease-database.sync", t["sync"])
    if "batch-size" in t:
        kw["batch_size"] = _int(p, "lease-database.batch-size", t["batch-size"], 1, 65536)
    if "max-wait-ms" in t:
        kw["max_wait_ms"] = _float(p, "lease-database.max-wait-ms", t["max-wait-ms"], 0, 1000)
    if "map-size" in t:
        try:
            size = parse_size(t["map-size"])
        except ValueError as exc:
            kw["map_size"] = p.bad("lease-database.map-size", t["map-size"], str(exc))
        else:
            if not (1 << 20) <= size <= (1 << 44):
                kw["map_size"] = p.bad("lease-database.map-size", t["map-size"],
                                       "must be from 1MiB to 16TiB")
            else:
                kw["map_size"] = size
    kw = {k: v for k, v in kw.items() if v is not _BAD}
    return LeaseDatabaseConfig(**kw)


def _lifetime_values(p: _Problems, t: Mapping[str, Any], path: str) -> dict[str, int]:
    """The lifetime keys set in one table (valid ones only)."""
    out: dict[str, int] = {}
    limits = {
        "valid-lifetime": (1, _MAX_LIFETIME), "min-valid-lifetime": (1, _MAX_LIFETIME),
        "max-valid-lifetime": (1, _MAX_LIFETIME), "renew-timer": (1, _MAX_LIFETIME),
        "rebind-timer": (1, _MAX_LIFETIME), "offer-lifetime": (1, 86400),
        "decline-probation-period": (0, _MAX_LIFETIME),
    }
    for key, (lo, hi) in limits.items():
        if key in t:
            v = _int(p, f"{path}.{key}", t[key], lo, hi)
            if v is not _BAD:
                out[key] = v
    return out


def _lifetimes(p: _Problems, merged: dict[str, int], local: set[str], path: str,
               origin: str) -> Lifetimes:
    """Resolve defaults and check the order renew < rebind < valid, min <= valid <= max.

    ``local`` are the keys set in the table at ``path``; a conflict is reported there only if
    one of its keys is local (a conflict wholly inside [global] is reported once, at [global]).
    """
    valid = merged.get("valid-lifetime", 3600)
    lo = merged.get("min-valid-lifetime", valid)
    hi = merged.get("max-valid-lifetime", valid)
    t1 = merged.get("renew-timer")
    t2 = merged.get("rebind-timer")

    def order(a: str, av: int | None, b: str, bv: int | None, strict: bool) -> None:
        if av is None or bv is None or (av < bv if strict else av <= bv):
            return
        if a not in local and b not in local:
            return
        at = a if a in local else b
        other, ov = (b, bv) if at == a else (a, av)
        rel = "less than" if strict else "at most"
        src = "" if other in local or other not in merged else f" (from {origin})"
        if at == a:
            reason = f"must be {rel} {other} {ov}{src}"
        else:
            reason = f"must be {'greater than' if strict else 'at least'} {other} {ov}{src}"
        p.bad(f"{path}.{at}", merged[at], reason)

    order("min-valid-lifetime", lo, "valid-lifetime", valid, False)
    order("valid-lifetime", valid, "max-valid-lifetime", hi, False)
    order("renew-timer", t1, "rebind-timer", t2, True)
    order("renew-timer", t1, "valid-lifetime", valid, True)
    order("rebind-timer", t2, "valid-lifetime", valid, True)
    return Lifetimes(
        valid_lifetime=valid, min_valid_lifetime=lo, max_valid_lifetime=hi,
        renew_timer=t1, rebind_timer=t2,
        offer_lifetime=merged.get("offer-lifetime", 60),
        decline_probation_period=merged.get("decline-probation-period", 86400),
    )


def _defences(p: _Problems, t: dict[str, Any]) -> Defences:
    """``[global]``'s defence keys (engine limits on subscribers and DECLINEs)."""
    kw: dict[str, Any] = {}
    if "subscriber-lease-limit" in t:
        kw["subscriber_lease_limit"] = _int(p, "global.subscriber-lease-limit",
                                            t["subscriber-lease-limit"], 0, 1 << 24)
    if "subscriber-key" in t:
        v = t["subscriber-key"]
        if v in ("circuit-id", "remote-id"):
            kw["subscriber_key"] = v
        else:
            p.bad("global.subscriber-key", v, "must be 'circuit-id' or 'remote-id'")
    if "decline-limit" in t:
        kw["decline_limit"] = _int(p, "global.decline-limit", t["decline-limit"], 0, 1 << 24)
    if "decline-window" in t:
        kw["decline_window"] = _int(p, "global.decline-window", t["decline-window"], 1,
                                    _MAX_LIFETIME)
    if "decline-max-fraction" in t:
        kw["decline_max_fraction"] = _float(p, "global.decline-max-fraction",
                                            t["decline-max-fraction"], 0, 1)
    kw = {k: v for k, v in kw.items() if v is not _BAD}
    return Defences(**kw)


def _pool(p: _Problems, path: str, value: object) -> Pool | None:
    if isinstance(value, dict):
        # Kea's form { pool = "a - b" }
        _check_keys(p, value, path, POOL_KEYS, "a pool table")
        if "pool" not in value:
            p.bad(path, value, "a pool table needs 'pool' = \"first - last\"")
            return None
        guard, required = _class_guard(p, path, value), _required_classes(p, path, value)
        opts = _options(p, f"{path}.option-data", value.get("option-data", {}))
        path, value = f"{path}.pool", value["pool"]
    else:
        guard, required, opts = (), (), {}
    if not isinstance(value, str):
        p.bad(path, value, "a pool is a string: 'first - last' or 'network/length'")
        return None
    text = value.strip()
    try:
        if "-" in text:
            a, _, b = text.partition("-")
            first = int(ipaddress.IPv4Address(a.strip()))
            last = int(ipaddress.IPv4Address(b.strip()))
        elif "/" in text:
            net = ipaddress.IPv4Network(text, strict=True)
            first, last = int(net.network_address), int(net.broadcast_address)
        else:
            raise ValueError
    except ValueError as exc:
        if "host bits" in str(exc):
            p.bad(path, value, "network/length has host bits set")
        else:
            p.bad(path, value, "a pool is 'first - last' (two IPv4 addresses) or "
                               "'network/length'")
        return None
    if first > last:
        p.bad(path, value, "first address is after last address")
        return None
    if last - first + 1 > _MAX_POOL:
        p.bad(path, value, f"pool has {last - first + 1} addresses; at most 2^24 (16777216)")
        return None
    return Pool(first, last, text, guard, required, opts)


def _class_names(p: _Problems, path: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        p.bad(path, value, "must be a list of class names")
        return ()
    return tuple(value)


def _class_guard(p: _Problems, path: str, t: Mapping[str, Any]) -> tuple[str, ...]:
    """``client-class`` (Kea 2.2, one name) or ``client-classes`` (Kea 3, a list). An
    undefined name is accepted, as Kea does: nobody matches it."""
    if "client-class" in t and "client-classes" in t:
        p.note(path, "give client-class (Kea 2.2) or client-classes (Kea 3), not both")
        return ()
    if "client-class" in t:
        v = _str(p, f"{path}.client-class", t["client-class"])
        return () if v is _BAD else (v,)
    if "client-classes" in t:
        return _class_names(p, f"{path}.client-classes", t["client-classes"])
    return ()


def _required_classes(p: _Problems, path: str, t: Mapping[str, Any]) -> tuple[str, ...]:
    """``require-client-classes`` (Kea 2.2) or ``evaluate-additional-classes`` (Kea 3)."""
    if "require-client-classes" in t and "evaluate-additional-classes" in t:
        p.note(path, "give require-client-classes (Kea 2.2) or evaluate-additional-classes "
                     "(Kea 3), not both")
        return ()
    for key in ("require-client-classes", "evaluate-additional-classes"):
        if key in t:
            return _class_names(p, f"{path}.{key}", t[key])
    return ()


def _routes(data: bytes) -> list[str]:
    routes = decode_option(121, data)
    return routes if isinstance(routes, list) else []


def _ip_text(ip: int) -> str:
    return str(ipaddress.IPv4Address(ip))


def _addresses_in(options: dict[int, bytes], code: int) -> list[int]:
    data = options.get(code, b"")
    return [int.from_bytes(data[i:i + 4], "big") for i in range(0, len(data) - 3, 4)]


def _ping_values(p: _Problems, t: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The ping-check keys set in one table (valid ones only), by PingCheck field name."""
    out: dict[str, Any] = {}
    if "enable-ping-check" in t:
        out["enabled"] = _bool(p, f"{path}.enable-ping-check", t["enable-ping-check"])
    # At most 10 requests of at most 10 s: a held DISCOVER waits their product, and a client
    # retransmits after ~4 s (RFC 2131 4.1), so larger values only lose DISCOVERs.
    if "min-ping-requests" in t:
        out["min_ping_requests"] = _int(p, f"{path}.min-ping-requests", t["min-ping-requests"],
                                        1, 10)
    if "reply-timeout" in t:
        out["reply_timeout_ms"] = _int(p, f"{path}.reply-timeout", t["reply-timeout"], 1, 10000)
    if "ping-cltt-secs" in t:
        out["ping_cltt_secs"] = _int(p, f"{path}.ping-cltt-secs", t["ping-cltt-secs"], 0,
                                     _MAX_LIFETIME)
    return {k: v for k, v in out.items() if v is not _BAD}


def _rapid_value(p: _Problems, t: Mapping[str, Any], path: str, default: bool) -> bool:
    """``rapid-commit`` of one table, else ``default`` (also when the value is bad)."""
    if "rapid-commit" not in t:
        return default
    v = _bool(p, f"{path}.rapid-commit", t["rapid-commit"])
    return default if v is _BAD else bool(v)


class _Loader:
    """One load: the problem list and the cross-subnet indexes it checks against."""

    def __init__(self) -> None:
        self.p = _Problems()
        self.pools: list[tuple[int, int, str, str]] = []  # first, last, path, text
        self.res_ips: dict[int, str] = {}
        self.infos: list[_SubnetInfo] = []
        self.g_rapid = False  # [global] rapid-commit and ping-check keys, set by run
        self.g_ping: dict[str, Any] = {}

    def run(self, doc: dict[str, Any], source: str) -> Config:
        p = self.p
        _check_keys(p, doc, "", TOP_KEYS, "the top level")
        server_t = _table(p, "server", doc.get("server", {})) or {}
        db_t = _table(p, "lease-database", doc.get("lease-database", {})) or {}
        glob_t = _table(p, "global", doc.get("global", {})) or {}
        server = _server(p, server_t)
        db = _lease_db(p, db_t)
        _check_keys(p, glob_t, "global", GLOBAL_KEYS, "[global]")
        g_life = _lifetime_values(p, glob_t, "global")
        g_lifetimes = _lifetimes(p, g_life, set(g_life), "global", "[global]")
        g_opts = _options(p, "global.option-data", glob_t.get("option-data", {}))
        defences = _defences(p, glob_t)
        self.g_rapid = _rapid_value(p, glob_t, "global", False)
        self.g_ping = _ping_values(p, glob_t, "global")
        g_fixed = _fixed_fields(p, "global", glob_t)

        raw = doc.get("subnet4", [])
        if isinstance(raw, dict):
            p.bad("subnet4", raw, "must be an array of tables: write [[subnet4]]")
            raw = []
        elif not isinstance(raw, list):
            p.bad("subnet4", raw, "must be an array of tables: write [[subnet4]]")
            raw = []
        subnets: list[Subnet4] = []
        for i, st in enumerate(raw):
            path = f"subnet4[{i}]"
            if not isinstance(st, dict):
                p.bad(path, st, "must be a table")
                continue
            s = self.subnet(st, path, server, g_life, g_opts, g_fixed)
            if s is not None:
                subnets.append(s)
                _untrusted_relays(p, path, s, server.trusted_relays)
        sockets = _control_sockets(p, doc.get("control-sockets", []))
        ha = (ha_config.parse(doc["high-availability"], p.bad, lambda t, path, allowed, where:
                              _check_keys(p, t, path, allowed, where))
              if "high-availability" in doc else None)
        ddns = (ddns_config.parse(doc["ddns"], p.bad, lambda t, path, allowed, where:
                                  _check_keys(p, t, path, allowed, where))
                if "ddns" in doc else None)
        lq = (lq_config.parse(doc["leasequery"], p.bad, lambda t, path, allowed, where:
                              _check_keys(p, t, path, allowed, where))
              if "leasequery" in doc else None)
        classes, class_ids = _client_classes(p, doc.get("client-classes", []))
        self.cross_checks()
        if p.lines:
            raise ConfigError(p.lines)
        return Config(server, db, tuple(subnets), source, g_lifetimes, g_opts, defences,
                      sockets, copy.deepcopy(doc), high_availability=ha, ddns=ddns, leasequery=lq,
                      client_classes=classes, class_ids=class_ids, fixed=g_fixed)

    def subnet(self, t: dict[str, Any], path: str, server: ServerConfig,
               g_life: dict[str, int], g_opts: dict[int, bytes],
               g_fixed: FixedFields) -> Subnet4 | None:
        p = self.p
        errors_before = len(p.lines)
        info = _SubnetInfo(path)
        self.infos.append(info)
        _check_keys(p, t, path, SUBNET_KEYS, "a [[subnet4]]")
        sid: Any = _BAD
        if "id" not in t:
            p.note(f"{path}.id", "required key is missing (a stable subnet id, 1 to 4294967294)")
        else:
            sid = _int(p, f"{path}.id", t["id"], 1, 0xFFFFFFFE)
            info.id = None if sid is _BAD else sid
        net: ipaddress.IPv4Network | None = None
        if "subnet" not in t:
            p.note(f"{path}.subnet", "required key is missing (e.g. '192.0.2.0/24')")
        elif not isinstance(t["subnet"], str) or "/" not in t["subnet"]:
            p.bad(f"{path}.subnet", t["subnet"], "must be 'network/length', e.g. '192.0.2.0/24'")
        else:
            try:
                net = ipaddress.IPv4Network(t["subnet"].strip(), strict=True)
            except ValueError as exc:
                if "host bits" in str(exc):
                    fixed = ipaddress.IPv4Network(t["subnet"].strip(), strict=False)
                    p.bad(f"{path}.subnet", t["subnet"], f"host bits set; did you mean '{fixed}'?")
                    # go on checking pools and reservations against the intended prefix
                    info.net = fixed
                else:
                    p.bad(f"{path}.subnet", t["subnet"], "not an IPv4 network/length")

        if net is not None:
            info.net = net
        check_net = info.net
        # relay: ["a", ...] or Kea's { ip-addresses = [...] }
        relay: list[int] = info.relay
        if "relay" in t:
            rv, rpath = t["relay"], f"{path}.relay"
            if isinstance(rv, dict):
                _check_keys(p, rv, rpath, ("ip-addresses",), "relay")
                rv, rpath = rv.get("ip-addresses", []), f"{rpath}.ip-addresses"
            info.relay_path = rpath
            items = _str_list(p, rpath, rv)
            if items is not _BAD:
                for j, a in enumerate(items):
                    ip = _ipv4(p, f"{rpath}[{j}]", a)
                    if ip is not _BAD:
                        if ip in relay:
                            p.bad(f"{rpath}[{j}]", a, "listed twice")
                        relay.append(ip)
        interface = None
        if "interface" in t:
            iv = _str(p, f"{path}.interface", t["interface"])
            if iv is not _BAD:
                if iv not in server.interfaces:
                    p.bad(f"{path}.interface", iv, "not in server.interfaces "
                          f"({', '.join(server.interfaces) or 'none listed'})")
                interface = iv
                info.interface = iv
        shared = None
        if "shared-network" in t:
            sv = _str(p, f"{path}.shared-network", t["shared-network"])
            shared = None if sv is _BAD else sv
            info.shared = shared
        authoritative = server.authoritative
        if "authoritative" in t:
            av = _bool(p, f"{path}.authoritative", t["authoritative"])
            authoritative = authoritative if av is _BAD else av

        rapid = _rapid_value(p, t, path, self.g_rapid)
        ping = PingCheck(**{**self.g_ping, **_ping_values(p, t, path)})
        local = _lifetime_values(p, t, path)
        lifetimes = _lifetimes(p, {**g_life, **local}, set(local), path, "[global]")

        s_opts = _options(p, f"{path}.option-data", t.get("option-data", {}))
        options = {**g_opts, **s_opts}
        if check_net is not None and 1 not in options:
            options[1] = int(check_net.netmask).to_bytes(4, "big")
        options = dict(sorted(options.items()))
        if 3 in options and 121 in options and not any(
                r.startswith("0.0.0.0/0 ") for r in _routes(options[121])):
            # RFC 3442: a client that gets 121 MUST ignore option 3, so it would lose its
            # default route.
            p.note(f"{path}.option-data", "classless-static-route without a default route "
                   "('0.0.0.0/0 - router') while routers is set: RFC 3442 clients ignore "
                   "routers when they get classless-static-route")

        pools: list[Pool] = []
        pv = t.get("pools", [])
        if not isinstance(pv, list):
            p.bad(f"{path}.pools", pv, "must be an array of pools")
            pv = []
        reserved = self.subnet_addresses(server, relay, options)
        for j, item in enumerate(pv):
            ppath = f"{path}.pools[{j}]"
            pool = _pool(p, ppath, item)
            if pool is None:
                continue
            if check_net is not None:
                self.check_pool(check_net, pool, ppath, reserved)
            pools.append(pool)
            self.pools.append((pool.first, pool.last, ppath, pool.text))

        reservations = self.reservations(t, info, check_net, options)
        guard, required = _class_guard(p, path, t), _required_classes(p, path, t)
        fields = _fixed_fields(p, path, t).over(g_fixed)
        if len(p.lines) > errors_before or net is None or sid is _BAD:
            return None
        return Subnet4(
            id=sid, network=net, pools=tuple(pools), relay=tuple(relay), interface=interface,
            shared_network=shared, lifetimes=lifetimes, options=options,
            reservations=tuple(reservations), authoritative=authoritative,
            rapid_commit=rapid, ping_check=ping, client_classes=guard, required_classes=required,
            own_options={**s_opts, 1: options[1]} if 1 in options else dict(s_opts),
            fixed=fields,
        )

    def subnet_addresses(self, server: ServerConfig, relay: list[int],
                         options: dict[int, bytes]) -> dict[int, str]:
        """Addresses no pool may hand out: routers, relays, the server's own."""
        out: dict[int, str] = {}
        for ip in _addresses_in(options, 3):
            out[ip] = "a router (option-data routers)"
        for ip in relay:
            out[ip] = "a relay address (relay)"
        if server.server_id:
            out[server.server_id] = "the server identifier (server.server-id)"
        for a in server.listen_addresses:
            out[int(ipaddress.IPv4Address(a))] = "a server listen address"
        return out

    def check_pool(self, net: ipaddress.IPv4Network, pool: Pool, path: str,
                   reserved: dict[int, str]) -> None:
        p = self.p
        first, last = int(net.network_address), int(net.broadcast_address)
        if pool.first < first or pool.last > last:
            p.bad(path, pool.text, f"pool is outside its subnet {net}")
            return
        if net.prefixlen <= 30:
            if pool.first == first:
                p.bad(path, pool.text, f"pool contains the network address {_ip_text(first)}")
            if pool.last == last:
                p.bad(path, pool.text, f"pool contains the broadcast address {_ip_text(last)}")
        for ip, what in reserved.items():
            if pool.first <= ip <= pool.last:
                p.bad(path, pool.text, f"pool contains {_ip_text(ip)}, {what}")

    def reservations(self, t: dict[str, Any], info: _SubnetInfo,
                     net: ipaddress.IPv4Network | None,
                     options: dict[int, bytes]) -> list[Reservation]:
        p = self.p
        path = info.path
        rv = t.get("reservations", [])
        if not isinstance(rv, list):
            p.bad(f"{path}.reservations", rv, "must be an array of tables: "
                  "write [[subnet4.reservations]]")
            return []
        out: list[Reservation] = []
        seen_ids: dict[tuple[str, bytes], str] = {}
        for j, r in enumerate(rv):
            rpath = f"{path}.reservations[{j}]"
            if not isinstance(r, dict):
                p.bad(rpath, r, "must be a table")
                continue
            _check_keys(p, r, rpath, RESERVATION_KEYS, "a reservation")
            idents: dict[str, Any] = {}
            for kind in ("hw-address", "client-id", "circuit-id"):
                if kind in r:
                    idents[kind] = _identifier(p, f"{rpath}.{kind}", r[kind], kind)
            if len(idents) != 1:
                p.note(rpath, "a reservation needs exactly one of hw-address, client-id, "
                       f"circuit-id (found {len(idents)})")
            for kind, data in idents.items():
                if data is _BAD:
                    continue
                other = seen_ids.get((kind, data))
                if other is not None:
                    p.bad(f"{rpath}.{kind}", r[kind], f"same {kind} as {other}")
                seen_ids[(kind, data)] = rpath
                info.idents.append((rpath, kind, data, r[kind]))
            ip: Any = _BAD
            if "ip-address" not in r:
                # Kea's reservation without an address: the client is KNOWN (and gets the
                # reservation's classes, hostname and options) but allocates from the pools.
                ip = 0
            else:
                ip = _ipv4(p, f"{rpath}.ip-address", r["ip-address"])
            if ip is not _BAD and ip and net is not None:
                lo, hi = int(net.network_address), int(net.broadcast_address)
                if not lo <= ip <= hi:
                    p.bad(f"{rpath}.ip-address", r["ip-address"],
                          f"outside the subnet {net}")
                elif net.prefixlen <= 30 and ip in (lo, hi):
                    p.bad(f"{rpath}.ip-address", r["ip-address"],
                          "is the subnet's network or broadcast address")
                other_path = self.res_ips.get(ip)
                if other_path is not None:
                    p.bad(f"{rpath}.ip-address", r["ip-address"],
                          f"already reserved by {other_path}")
                else:
                    self.res_ips[ip] = rpath
            hostname = ""
            if "hostname" in r:
                hv = _str(p, f"{rpath}.hostname", r["hostname"])
                if hv is not _BAD:
                    try:
                        encode_domain_list([hv], compress=False)
                        hostname = hv
                    except ValueError as exc:
                        p.bad(f"{rpath}.hostname", hv, str(exc))
            r_opts = _options(p, f"{rpath}.option-data", r.get("option-data", {}))
            merged = dict(sorted({**options, **r_opts}.items())) if r_opts else options
            classes = (_class_names(p, f"{rpath}.client-classes", r["client-classes"])
                       if "client-classes" in r else ())
            fixed = _fixed_fields(p, rpath, r)
            if ip is _BAD or any(v is _BAD for v in idents.values()):
                continue
            out.append(Reservation(
                ip=ip, hw_address=idents.get("hw-address"), client_id=idents.get("client-id"),
                circuit_id=idents.get("circuit-id"), hostname=hostname, options=merged,
                client_classes=classes, own_options=r_opts, fixed=fixed,
            ))
        return out

    def cross_checks(self) -> None:
        """Checks between subnets, run on what each subnet could parse (so a subnet with its
        own problems still takes part)."""
        p = self.p
        infos = self.infos
        # duplicate ids
        ids: dict[int, str] = {}
        for info in infos:
            if info.id is None:
                continue
            if info.id in ids:
                p.bad(f"{info.path}.id", info.id,
                      f"duplicate subnet id: {ids[info.id]} has id {info.id}")
            else:
                ids[info.id] = info.path
        # overlapping subnets (giaddr and interface selection must be unambiguous)
        nets = sorted((i for i in infos if i.net is not None),
                      key=lambda i: int(i.net.network_address))  # type: ignore[union-attr]
        for a, b in zip(nets, nets[1:], strict=False):
            assert a.net is not None and b.net is not None
            if int(b.net.network_address) <= int(a.net.broadcast_address):
                p.bad(f"{b.path}.subnet", str(b.net), f"overlaps {a.path} '{a.net}'")
        # overlapping pools, across all subnets
        reach = -1
        reach_at: tuple[str, str] = ("", "")
        for first, last, path, text in sorted(self.pools):
            if first <= reach:
                p.bad(path, text, f"overlaps {reach_at[0]} '{reach_at[1]}'")
            if last > reach:
                reach, reach_at = last, (path, text)
        # a relay address selects one subnet, or subnets of one shared network
        relays: dict[int, _SubnetInfo] = {}
        for info in infos:
            for j, ip in enumerate(info.relay):
                prev = relays.get(ip)
                if prev is None:
                    relays[ip] = info
                elif prev.shared is None or prev.shared != info.shared:
                    p.bad(f"{info.relay_path}[{j}]", _ip_text(ip),
                          f"also a relay of {prev.path}, which is not in the same shared-network")
        # a shared network lies on one link
        links: dict[str, _SubnetInfo] = {}
        for info in infos:
            if info.shared is None:
                continue
            first_info = links.setdefault(info.shared, info)
            if first_info.interface != info.interface:
                where = (f"interface '{first_info.interface}'" if first_info.interface
                         else "no interface (relayed only)")
                reason = (f"shared-network '{info.shared}' has {where} in {first_info.path}: "
                          "one shared network is one link")
                if info.interface is None:
                    p.note(f"{info.path}.interface", f"missing: {reason}")
                else:
                    p.bad(f"{info.path}.interface", info.interface, reason)
        # identifiers unique within a shared network too (the engine may pick any of its subnets)
        scoped: dict[tuple[str, str, bytes], str] = {}
        for info in infos:
            if info.shared is None:
                continue
            for rpath, kind, data, raw in info.idents:
                key = (info.shared, kind, data)
                prev_path = scoped.setdefault(key, rpath)
                if not prev_path.startswith(info.path + "."):
                    p.bad(f"{rpath}.{kind}", raw, f"same {kind} as {prev_path} in "
                          f"shared-network '{info.shared}'")


def _client_classes(p: _Problems, raw: object) -> tuple[tuple[ClientClass, ...], dict[str, int]]:
    """``[[client-classes]]``: names unique, tests parsed and compiled, ``member()`` only of
    built-in classes or classes defined earlier (Kea: "Not defined client class")."""
    if not isinstance(raw, list):
        p.bad("client-classes", raw, "must be an array of tables: write [[client-classes]]")
        return (), {}
    ids = {name: i for i, name in enumerate(BUILTIN_CLASSES)}
    tables: list[tuple[int, dict[str, Any], str]] = []
    for i, t in enumerate(raw):
        path = f"client-classes[{i}]"
        if not isinstance(t, dict):
            p.bad(path, t, "must be a table")
            continue
        name = t.get("name")
        if name is None:
            p.note(path, "a class needs a name")
            continue
        if _str(p, f"{path}.name", name) is _BAD:
            continue
        if name in BUILTIN_CLASSES:
            p.bad(f"{path}.name", name, "is a built-in class")
            continue
        if name in ids:
            p.bad(f"{path}.name", name, "defined twice")
            continue
        ids[name] = len(ids)
        tables.append((i, t, name))
    out: list[ClientClass] = []
    known_dep: set[str] = set(_DEPENDS_KNOWN)
    defined: set[str] = set(BUILTIN_CLASSES)
    for i, t, name in tables:
        c = _client_class(p, f"client-classes[{i}]", t, name, ids, defined, known_dep)
        defined.add(name)
        if c is not None:
            out.append(c)
            if c.depends_on_known:
                known_dep.add(name)
    return tuple(out), ids


def _class_test(p: _Problems, path: str, test: str, name: str, ids: dict[str, int],
                defined: set[str], known_dep: set[str]) -> tuple[Program | None, bool]:
    """Parse and compile one test; (program, depends on KNOWN/UNKNOWN)."""
    try:
        node = parse_expression(test)
    except ExpressionError as e:
        p.bad(path, test, f"class '{name}': {e}")
        return None, False
    depends = False
    ok = True
    for m in members(node):
        if m.name in defined or m.name.startswith(BUILTIN_CLASS_PREFIXES):
            depends = depends or m.name in known_dep
            ids.setdefault(m.name, len(ids))
            continue
        ok = False
        later = " (defined later: a test may only use classes defined before it)" \
            if m.name in ids else ""
        p.bad(path, test, f"class '{name}': column {m.name_column}: "
              f"Not defined client class '{m.name}'{later}")
    if not ok:
        return None, False
    return compile_node(node, ids.__getitem__), depends


def _client_class(p: _Problems, path: str, t: dict[str, Any], name: str, ids: dict[str, int],
                  defined: set[str], known_dep: set[str]) -> ClientClass | None:
    # Kea 2.2 accepts unknown keys in a class silently; we name them, as everywhere else.
    _check_keys(p, t, path, CLIENT_CLASS_KEYS, "a client class")
    before = len(p.lines)
    test = t.get("test")
    program, depends = None, False
    if test is not None and _str(p, f"{path}.test", test) is not _BAD:
        program, depends = _class_test(p, f"{path}.test", test, name, ids, defined, known_dep)
    flags = [_bool(p, f"{path}.{key}", t[key]) if key in t else False
             for key in ("only-if-required", "only-in-additional-list")]
    defs = _class_option_defs(p, f"{path}.option-def", t.get("option-def", []))
    opts = _options(p, f"{path}.option-data", t.get("option-data", {}), defs)
    fixed = _fixed_fields(p, path, t)
    life: list[Any] = [_int(p, f"{path}.{key}", t[key], 1, _MAX_LIFETIME) if key in t else None
                       for key in ("valid-lifetime", "min-valid-lifetime",
                                   "max-valid-lifetime")]
    order = [x for x in (life[1], life[0], life[2]) if isinstance(x, int)]
    if order != sorted(order):
        p.note(path, "needs min-valid-lifetime <= valid-lifetime <= max-valid-lifetime")
    uc = t.get("user-context")
    if uc is not None and not isinstance(uc, dict):
        p.bad(f"{path}.user-context", uc, "must be a table")
    comment = t.get("comment")
    if comment is not None and not isinstance(comment, str):
        p.bad(f"{path}.comment", comment, "must be a string")
    if len(p.lines) > before:
        return None
    return ClientClass(
        name=name, id=ids[name], test=test, program=program, depends_on_known=depends,
        only_if_required=bool(flags[0] or flags[1]), options=opts, option_defs=defs,
        fixed=fixed,
        valid_lifetime=life[0], min_valid_lifetime=life[1], max_valid_lifetime=life[2],
        user_context=uc, comment=comment)


def _fixed_fields(p: _Problems, path: str, t: Mapping[str, Any]) -> FixedFields:
    """``next-server``, ``server-hostname``, ``boot-file-name`` of one table (global, subnet,
    reservation, class): an address, and texts that fit their header fields (RFC 2131
    table 3: sname 64 bytes, file 128)."""
    nxt = None
    if "next-server" in t:
        v = _ipv4(p, f"{path}.next-server", t["next-server"], unicast=False)
        if v is not _BAD:
            if v >> 28 == 0xE or v == 0xFFFFFFFF:
                p.bad(f"{path}.next-server", t["next-server"],
                      "must be a unicast address (or 0.0.0.0 for none)")
            else:
                nxt = v
    texts: list[str | None] = []
    for key, limit in (("server-hostname", 64), ("boot-file-name", 128)):
        v = t.get(key)
        if v is not None and _str(p, f"{path}.{key}", v) is not _BAD:
            if len(v.encode("utf-8")) > limit:
                p.bad(f"{path}.{key}", v, f"longer than the {limit}-byte header field")
            elif "\0" in v:
                p.bad(f"{path}.{key}", v, "a NUL byte would end the header field early")
            else:
                texts.append(v)
                continue
        texts.append(None)
    return FixedFields(nxt, texts[0], texts[1])


def _class_option_defs(p: _Problems, path: str, raw: object) -> tuple[OptionDef, ...]:
    """A class's ``option-def`` list: each entry checked (the key and value at fault named),
    names and codes unique per space."""
    if not isinstance(raw, list):
        p.bad(path, raw, "must be an array of tables")
        return ()
    out: list[OptionDef] = []
    seen: dict[tuple[str, str], str] = {}  # (space, "name:x" / "code:n") -> entry path
    for i, d in enumerate(raw):
        dpath = f"{path}[{i}]"
        if not isinstance(d, dict):
            p.bad(dpath, d, "must be a table")
            continue
        _check_keys(p, d, dpath, CLASS_OPTION_DEF_KEYS, "an option-def")
        if d.get("record-types"):
            p.bad(f"{dpath}.record-types", d["record-types"],
                  "record options are not encoded here: define the option as binary (hex)")
            continue
        try:
            od = custom_option_def(d.get("name"), d.get("code"), d.get("type"),
                                   d.get("space", "dhcp4"), d.get("encapsulate", ""),
                                   d.get("array", False))
        except ValueError as exc:
            key, _, reason = str(exc).partition(": ")
            default = {"space": "dhcp4", "encapsulate": "", "array": False}.get(key)
            p.bad(f"{dpath}.{key}", d.get(key, default), reason)
            continue
        keys = {"name": (od.space, f"name:{od.name}"), "code": (od.space, f"code:{od.code}")}
        clash = next(((what, seen[k]) for what, k in keys.items() if k in seen), None)
        if clash is not None:
            p.bad(f"{dpath}.{clash[0]}", d.get(clash[0]), f"also defined by {clash[1]} in "
                  f"space '{od.space}'")
            continue
        seen.update({k: dpath for k in keys.values()})
        out.append(od)
    return tuple(out)


@dataclass(slots=True)
class _SubnetInfo:
    """What one [[subnet4]] contributes to the cross-subnet checks, even when it has problems."""

    path: str
    id: int | None = None
    net: ipaddress.IPv4Network | None = None
    relay: list[int] = field(default_factory=list)
    relay_path: str = ""
    shared: str | None = None
    interface: str | None = None
    idents: list[tuple[str, str, bytes, object]] = field(default_factory=list)


def loads(text: str, source: str = "<string>") -> Config:
    """Parse and validate a TOML config; raise ``ConfigError`` listing every problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    return _Loader().run(doc, source)


def loads_json(text: str, source: str = "<string>") -> Config:
    """Parse and validate a JSON config (the TOML file's keys, as JSON); raise ``ConfigError``
    listing every problem (bad JSON: one line with its line and column)."""
    twice: list[str] = []
    try:
        doc = json.loads(text, object_pairs_hook=lambda pairs: _json_object(pairs, twice))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON: {exc.msg} at line {exc.lineno} column "
                          f"{exc.colno}") from None
    except RecursionError:
        raise ConfigError(f"{source}: invalid JSON: nested too deeply") from None
    if twice:  # JSON would keep the last silently; TOML refuses a key given twice, so do we
        raise ConfigError([f"{source}: invalid JSON: key '{k}' given twice in one object"
                           for k in twice])
    return from_document(doc, source)


def _json_object(pairs: list[tuple[str, Any]], twice: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            twice.append(key)
        out[key] = value
    return out


def from_document(doc: object, source: str = "<document>") -> Config:
    """Validate an already parsed document (a map with the TOML file's keys)."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: the configuration must be a map (an object) of the "
                          f"top-level tables {', '.join(TOP_KEYS)}, not "
                          f"{type(doc).__name__}")
    return _Loader().run(doc, source)


def is_json_path(path: str | Path) -> bool:
    """True if ``path`` names a JSON config (by its extension, ``.json``); else it is TOML."""
    return Path(path).suffix.lower() == ".json"


def load(path: str | Path) -> Config:
    """Read, parse and validate the config file at ``path``: JSON if its name ends in
    ``.json``, else TOML."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the config is not UTF-8 text: {exc.reason}") from None
    if is_json_path(path):
        return loads_json(text, str(path))
    return loads(text, str(path))
