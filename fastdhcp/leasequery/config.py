"""``[leasequery]``: Kea's lease_query hook parameters under Kea's names, validated whole.

Kea's hook takes ``requesters`` (the relay addresses allowed to ask) and, for bulk leasequery
(RFC 6926), an ``advanced`` map: ``bulk-query-enabled``, ``active-query-enabled`` (must be
false: RFC 7724 active leasequery is not offered, as in Kea), ``lease-query-ip``,
``lease-query-tcp-port``, ``max-bulk-query-threads``, ``max-requester-connections``,
``max-concurrent-queries``, ``max-requester-idle-time`` and ``max-leases-per-fetch``. The names
and defaults are those of Kea's hook documentation and its parser (Kea's text lists
``lease-query-port`` but its parser and examples use ``lease-query-tcp-port``, which is the
name taken here). Kea's DHCPv6-only ``extended-info-tables-enabled`` and ``prefix-lengths``
have no meaning for DHCPv4 and are refused.

Every problem goes to the ``bad(path, value, reason)`` callback of fastdhcp.config, with its key
path, so that one load reports them all.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from fastdhcp.sections import Bad, CheckKeys, ProblemCount, open_table, take_bools, take_ints

__all__ = ["ADVANCED_KEYS", "BulkConfig", "LEASEQUERY_KEYS", "LeaseQueryConfig", "parse"]

LEASEQUERY_KEYS = ("requesters", "advanced")
ADVANCED_KEYS = (
    "bulk-query-enabled", "active-query-enabled", "lease-query-ip", "lease-query-tcp-port",
    "max-bulk-query-threads", "max-requester-connections", "max-concurrent-queries",
    "max-requester-idle-time", "max-leases-per-fetch",
)


@dataclass(frozen=True, slots=True)
class BulkConfig:
    """``[leasequery.advanced]``: bulk leasequery over TCP (RFC 6926)."""

    enabled: bool = False
    """``bulk-query-enabled``: listen for bulk leasequery connections (Kea's default: off)."""
    address: str = ""
    """``lease-query-ip``: the IPv4 address the TCP listener binds (required when enabled);
    also the server identifier (54) of the first reply of each query, as Kea sends it."""
    port: int = 67
    """``lease-query-tcp-port``: the TCP port (RFC 6926 section 5: the DHCP port, 67)."""
    threads: int = 0
    """``max-bulk-query-threads``: accepted for Kea configs; fastdhcp serves bulk queries on
    its event loop in pages (no threads), so the value changes nothing."""
    max_connections: int = 10
    """``max-requester-connections``: open connections at most, all requesters together
    (RFC 6926 section 8: BULK_LQ_MAX_CONNS is 10); one more is closed at once."""
    max_concurrent: int = 0
    """``max-concurrent-queries``: queries one connection may have waiting or running; 0 lets
    the server decide (:data:`DEFAULT_CONCURRENT`). One more gets a DHCPLEASEQUERYDONE with
    status NotAllowed."""
    idle_time: int = 300
    """``max-requester-idle-time``: seconds without data from a requester (and with no query
    running) before its connection is closed (RFC 6926: BULK_LQ_DATA_TIMEOUT, 300)."""
    page_size: int = 100
    """``max-leases-per-fetch``: lease records read per LMDB read transaction; the loop serves
    DHCP between two pages."""

    @property
    def concurrent_limit(self) -> int:
        """``max_concurrent``, or :data:`DEFAULT_CONCURRENT` when 0."""
        return self.max_concurrent or DEFAULT_CONCURRENT


#: Queries per connection when ``max-concurrent-queries`` is 0 (Kea's example uses 4).
DEFAULT_CONCURRENT = 4


@dataclass(frozen=True, slots=True)
class LeaseQueryConfig:
    """``[leasequery]``: who may ask (RFC 4388 and RFC 6926), and the bulk listener."""

    requesters: frozenset[int]
    """``requesters``: the IPv4 addresses (host order) a leasequery is accepted from: the
    giaddr and the source address of a UDP query, the peer of a TCP connection. Kea's hook
    has no wildcard here before Kea 3.1 either; each relay is listed."""
    bulk: BulkConfig = BulkConfig()
    """``advanced``: bulk leasequery (off unless ``bulk-query-enabled``)."""

    def allowed(self, ip: int) -> bool:
        """True if ``ip`` (host order) is a configured requester."""
        return ip in self.requesters


_BOOLS = {"bulk-query-enabled": "enabled"}
_INTS = {
    "lease-query-tcp-port": ("port", 1, 65535),
    "max-bulk-query-threads": ("threads", 0, 1024),
    "max-requester-connections": ("max_connections", 1, 65535),
    "max-concurrent-queries": ("max_concurrent", 0, 65535),
    "max-requester-idle-time": ("idle_time", 1, 86400),
    "max-leases-per-fetch": ("page_size", 1, 100000),
}


def parse(raw: object, bad: Bad, check_keys: CheckKeys) -> LeaseQueryConfig | None:
    """Validate ``[leasequery]``; every problem goes to ``bad``; None if there was any."""
    path = "leasequery"
    opened = open_table(raw, path, LEASEQUERY_KEYS, "[leasequery]", bad, check_keys)
    if opened is None:
        return None
    raw, count = opened
    requesters = _requesters(raw.get("requesters"), f"{path}.requesters", count)
    bulk = BulkConfig()
    if "advanced" in raw:
        bulk = _advanced(raw["advanced"], f"{path}.advanced", count, check_keys) or bulk
    if count.n:
        return None
    return LeaseQueryConfig(requesters, bulk)


def _requesters(raw: object, path: str, count: ProblemCount) -> frozenset[int]:
    if not isinstance(raw, list) or not raw:
        count.bad(path, raw, "must list the relay addresses allowed to query, e.g. "
                  "[\"192.0.2.1\"] (leasequery answers no one else)")
        return frozenset()
    out: set[int] = set()
    for i, v in enumerate(raw):
        try:
            if not isinstance(v, str):
                raise ValueError
            ip = ipaddress.IPv4Address(v)
        except ValueError:
            count.bad(f"{path}[{i}]", v, "must be an IPv4 address (text); each requester is "
                      "listed, there is no wildcard")
            continue
        if ip.is_unspecified or ip.is_multicast or int(ip) == 0xFFFFFFFF:
            count.bad(f"{path}[{i}]", v, "must be a relay's unicast address")
            continue
        if int(ip) in out:
            count.bad(f"{path}[{i}]", v, "listed twice")
        out.add(int(ip))
    return frozenset(out)


def _advanced(raw: object, path: str, count: ProblemCount,
              check_keys: CheckKeys) -> BulkConfig | None:
    if not isinstance(raw, dict):
        count.bad(path, raw, "must be a table")
        return None
    check_keys(raw, path, ADVANCED_KEYS, "[leasequery.advanced]")
    before = count.n
    kw: dict[str, Any] = {}
    take_bools(raw, path, _BOOLS, count, kw)
    take_ints(raw, path, _INTS, count, kw)
    if "active-query-enabled" in raw and raw["active-query-enabled"] is not False:
        count.bad(f"{path}.active-query-enabled", raw["active-query-enabled"],
                  "must be false: active leasequery (RFC 7724) is not offered (nor by Kea)")
    if "lease-query-ip" in raw:
        v = raw["lease-query-ip"]
        try:
            if not isinstance(v, str):
                raise ValueError
            ipaddress.IPv4Address(v)
            kw["address"] = v
        except ValueError:
            count.bad(f"{path}.lease-query-ip", v, "must be an IPv4 address (text)")
    elif kw.get("enabled"):
        count.bad(f"{path}.lease-query-ip", None, "bulk-query-enabled needs the address to "
                  "listen on, e.g. lease-query-ip = \"192.0.2.10\"")
    if count.n > before:
        return None
    return BulkConfig(**kw)
