"""Where a reply goes: RFC 2131 section 4.1, in one function.

The rules, in the order the RFC gives them (4.1, "If the 'giaddr' field in a DHCP message from
a client is non-zero ..."):

1. ``giaddr`` set: the request came through a relay; every reply goes to the relay at
   ``giaddr:server-port``. A DHCPNAK sent through a relay has the broadcast bit set so that the
   relay broadcasts it to the client (the client may have an address the relay cannot reach).
2. A DHCPNAK that did not come through a relay is broadcast (``255.255.255.255:client-port``):
   the client's address is, by definition, wrong.
3. ``ciaddr`` set (RENEWING, REBINDING, INFORM): unicast to ``ciaddr:client-port``.
4. Broadcast bit set by the client: ``255.255.255.255:client-port``.
5. Otherwise the client accepts unicast to ``yiaddr`` at layer 2 (to ``chaddr``) before it has
   the address. The service can do that only if it can inject an ARP entry (or send raw
   frames), so the decision carries ``l2_unicast = (yiaddr, chaddr)`` and a broadcast
   destination as the fallback. Without a usable hardware address (``htype`` other than
   Ethernet or ``hlen`` not 6) the reply is plainly broadcast.
"""

from __future__ import annotations

from typing import NamedTuple

BROADCAST = 0xFFFFFFFF

#: DHCPNAK message type (RFC 2132 9.6).
_NAK = 6


class Route(NamedTuple):
    """Destination of one reply."""

    dest_ip: int  #: host-order IPv4
    dest_port: int
    broadcast: bool  #: ``dest_ip`` is the limited broadcast address
    l2_unicast: tuple[int, bytes] | None  #: (yiaddr, chaddr) the service may unicast to at L2
    set_broadcast_flag: bool  #: the reply's flags must have the broadcast bit (NAK via relay)


def reply_destination(
    msg_type: int,
    giaddr: int,
    ciaddr: int,
    broadcast_flag: bool,
    yiaddr: int,
    htype: int,
    chaddr: bytes,
    server_port: int = 67,
    client_port: int = 68,
) -> Route:
    """Apply RFC 2131 4.1 to a reply of type ``msg_type`` to a request with these fields.

    ``yiaddr`` is the reply's (0 for NAK and INFORM replies); the other fields are the request's.
    """
    if giaddr:
        return Route(giaddr, server_port, False, None, msg_type == _NAK)
    if msg_type == _NAK:
        return Route(BROADCAST, client_port, True, None, False)
    if ciaddr:
        return Route(ciaddr, client_port, False, None, False)
    if broadcast_flag or not yiaddr or htype != 1 or len(chaddr) != 6:
        return Route(BROADCAST, client_port, True, None, False)
    return Route(BROADCAST, client_port, True, (yiaddr, chaddr), False)
