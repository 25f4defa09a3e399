"""Which subnet (and so which link) a request belongs to.

The order is Kea's, which follows the RFCs' precedence:

1. option 118, subnet selection (RFC 3011): the subnet containing that address;
2. option 82 sub-option 5, link selection (RFC 3527): the subnet containing that address
   (sent by relays whose ``giaddr`` is not on the client's link);
3. ``giaddr`` (RFC 2131 4.3.1): the subnet containing it, or the subnet that lists it in
   ``relay``;
4. ``ciaddr``, for a request not relayed that carries one (RENEWING clients unicast to us, and
   INFORM): the subnet containing it. Without this a unicast renewal received on a
   listen-address socket, which is not a link of its own, would find no subnet;
5. the receiving link: the subnet whose ``interface`` is the link's name, else the subnet
   containing the link's address.

A selector that names an address no subnet contains selects nothing (the request is dropped as
"no-subnet"), it does not fall through to the next rule: a relay that asks for a link we do not
serve must not get addresses from another one.

Subnets with the same ``shared_network`` name form one link (Kea's shared-network): the
selected subnet's *group* is every subnet of that link, the selected one first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class SubnetSelector:
    """Subnet lookups precomputed from the configured subnets (``config.Subnet4`` objects)."""

    __slots__ = ("_by_prefix", "_by_relay", "_by_iface", "_groups", "_link_cache")

    def __init__(self, subnets: Sequence[Any]) -> None:
        # Containment: one dict per prefix length, longest prefix first, so the most specific
        # subnet wins and a lookup is a handful of dict probes whatever the number of subnets.
        by_len: dict[int, dict[int, Any]] = {}
        for s in subnets:
            net = s.network
            by_len.setdefault(net.prefixlen, {}).setdefault(int(net.network_address), s)
        self._by_prefix: tuple[tuple[int, dict[int, Any]], ...] = tuple(
            ((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF, by_len[plen])
            for plen in sorted(by_len, reverse=True)
        )
        self._by_relay: dict[int, Any] = {}
        self._by_iface: dict[str, Any] = {}
        for s in subnets:
            for r in s.relay:
                self._by_relay.setdefault(int(r), s)
            if s.interface:
                self._by_iface.setdefault(s.interface, s)
        shared: dict[str, list[Any]] = {}
        for s in subnets:
            if s.shared_network:
                shared.setdefault(s.shared_network, []).append(s)
        self._groups: dict[int, tuple[Any, ...]] = {}
        for s in subnets:
            if s.shared_network:
                members = shared[s.shared_network]
                self._groups[s.id] = (s,) + tuple(m for m in members if m is not s)
            else:
                self._groups[s.id] = (s,)
        self._link_cache: dict[tuple[str, int], Any] = {}

    def containing(self, ip: int) -> Any | None:
        """The most specific subnet whose network contains ``ip``, or None."""
        for mask, table in self._by_prefix:
            s = table.get(ip & mask)
            if s is not None:
                return s
        return None

    def group(self, subnet: Any) -> tuple[Any, ...]:
        """Every subnet on ``subnet``'s link (its shared network), ``subnet`` first."""
        return self._groups[subnet.id]

    def select(
        self,
        subnet_selection: int,
        link_selection: int,
        giaddr: int,
        ciaddr: int,
        link_name: str,
        link_address: int,
    ) -> Any | None:
        """The subnet for a request, by the rules in the module docstring; None if none."""
        if subnet_selection:
            return self.containing(subnet_selection)
        if link_selection:
            return self.containing(link_selection)
        if giaddr:
            s = self._by_relay.get(giaddr)
            if s is not None:
                return s
            return self.containing(giaddr)
        if ciaddr:
            s = self.containing(ciaddr)
            if s is not None:
                return s
        key = (link_name, link_address)
        try:
            return self._link_cache[key]
        except KeyError:
            pass
        s = self._by_iface.get(link_name) if link_name else None
        if s is None and link_address:
            s = self.containing(link_address)
        if len(self._link_cache) < 4096:
            self._link_cache[key] = s
        return s
